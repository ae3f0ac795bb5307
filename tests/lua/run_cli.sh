#!/bin/sh
# run_cli.sh AWAITD_BINARY FIXTURE_DIR
#
# `awaitd run` as a command (SPEC 1): exit statuses, what reaches stdout
# (ARGS_JSON as `...`) and what reaches stderr (errors, tracebacks,
# deadlock, orphan warnings, unobserved failures), checked against the
# fixtures in FIXTURE_DIR. Prints one line per check and ends with
# "N passed, N failed"; exits non-zero if any check failed.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 AWAITD_BINARY FIXTURE_DIR" >&2
	exit 2
fi
AWAITD=$1
DIR=$2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/run_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# A hung run must fail its check, not the whole ctest run.
LIMIT=
if command -v timeout >/dev/null 2>&1; then
	LIMIT="timeout 60"
fi

passed=0
failed=0
RC=0

# run ARGS...: run awaitd with ARGS; sets RC, fills $TMP/out and $TMP/err.
run() {
	RC=0
	$LIMIT "$AWAITD" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || RC=$?
}

pass() {
	passed=$((passed + 1))
	echo "ok   $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL $1: $2"
	echo "  --- stdout:"
	sed 's/^/  | /' "$TMP/out"
	echo "  --- stderr:"
	sed 's/^/  | /' "$TMP/err"
}

# check NAME WANT_RC [out|err PATTERN]...: the last run exited WANT_RC and
# each named stream contains its fixed-string PATTERN.
check() {
	name=$1
	want=$2
	shift 2
	if [ "$RC" -ne "$want" ]; then
		fail "$name" "exit status $RC, expected $want"
		return 0
	fi
	while [ $# -ge 2 ]; do
		if ! grep -qF -- "$2" "$TMP/$1"; then
			fail "$name" "std$1 does not contain '$2'"
			return 0
		fi
		shift 2
	done
	pass "$name"
}

# ---- exit statuses ----------------------------------------------------------

run run "$DIR/ok.lua"
check "normal return exits 0" 0 out "ok fixture done"

run run "$DIR/raise.lua"
check "a raising root exits 1 with message and traceback" 1 \
	err "kaboom from the root" err "stack traceback" err "raise.lua"

run run "$DIR/raise_early.lua"
check "a root raising before any suspension exits 1 the same way" 1 \
	err "early kaboom" err "stack traceback" err "raise_early.lua:3"

run run --max-slice-ms 50 "$DIR/busy.lua"
check "a root that never suspends exits 1 with blocked_loop" 1 err "blocked_loop"

run run "$DIR/return_err.lua"
check "a root returning nil, err exits 1 and prints the error" 1 err "myerr: boom"

run run "$DIR/syntax.lua"
check "a syntax error exits 1 naming file and line" 1 err "syntax.lua:3:"

run run "$TMP/no_such_script.lua"
check "a missing file exits 2 naming it" 2 err "no_such_script.lua"

run run
check "no arguments exit 2 with usage" 2 err "usage"

run run --no-such-option "$DIR/ok.lua"
check "an unknown option exits 2 naming it" 2 err "--no-such-option"

run run "$DIR/args.lua" '{"name": "widget", "n": '
check "invalid ARGS_JSON exits 2" 2 err "ARGS_JSON"

run run --max-slice-ms abc "$DIR/ok.lua"
check "a bad option value exits 2" 2 err "--max-slice-ms"

run run "$DIR/ok.lua" '{}' extra
check "an extra argument exits 2" 2 err "extra"

# ---- ARGS_JSON --------------------------------------------------------------

run run "$DIR/args.lua" '{"name": "widget", "n": 3, "list": ["a", "b"]}'
check "ARGS_JSON reaches the script as ..." 0 \
	out "name=widget" out "n=3" out "second=b"

run run "$DIR/args.lua"
check "without ARGS_JSON ... is nil" 1 err "args.lua"

# ---- what reaches stderr ----------------------------------------------------

run run "$DIR/deadlock.lua"
check "a deadlocked root exits 1 and says deadlock" 1 err "deadlock"
if grep -qF "unreachable" "$TMP/out"; then
	fail "a deadlocked root never resumes" "stdout shows the recv returned"
else
	pass "a deadlocked root never resumes"
fi

run run "$DIR/orphan.lua"
orphan_id=$(sed -n 's/^orphan-id=//p' "$TMP/out")
if [ -z "$orphan_id" ]; then
	fail "an orphan is cancelled with a WARN naming it" "no orphan-id on stdout"
else
	check "an orphan is cancelled with a WARN naming it" 0 \
		err "WARN" err "$orphan_id (at " err "orphan.lua:4"
fi

run run "$DIR/unobserved.lua"
check "an unobserved failure is logged with its traceback" "$RC" \
	err "ERROR" err "unobserved failure xyzzy" err "stack traceback" err "unobserved.lua:5"

run run "$DIR/unobserved_return.lua"
check "an unobserved nil, err failure is logged with a traceback" "$RC" \
	err "ERROR" err "refund_failed: order 1234 not refundable" err "stack traceback"

run run "$DIR/observed_later.lua"
check "a failure awaited later is not reported" 0 out "handled: error"
if grep -qE "ERROR|WARN" "$TMP/err"; then
	fail "a failure awaited later logs nothing" "stderr has an ERROR or WARN line"
else
	pass "a failure awaited later logs nothing"
fi

run run "$DIR/unobserved_detached.lua"
check "an unobserved detached failure is logged with its traceback" "$RC" \
	err "detached failure plugh" err "stack traceback"
# ... at once, not when the run ends
if grep -n -F -e "detached failure plugh" -e "ROOT-END-MARKER" "$TMP/err" | head -n 1 |
	grep -qF "plugh"; then
	pass "an unobserved detached failure is logged at once"
else
	fail "an unobserved detached failure is logged at once" "logged after the root finished"
fi

run run "$DIR/log.lua"
check "log lines go to stderr with level, task and format" 0 \
	err "INFO  [task 1] plain text and 42" err "WARN  [task 2] from a child" \
	err "ERROR [task 1] no format args: %s stays"
if grep -qF "hidden at info" "$TMP/err"; then
	fail "log.debug is filtered at the default level" "debug line printed"
else
	pass "log.debug is filtered at the default level"
fi
run run --log-level debug "$DIR/log.lua"
check "--log-level debug shows debug lines" 0 err "DEBUG [task 1] hidden at info"
run run --log-level loud "$DIR/log.lua"
check "an unknown log level is a usage error" 2 err "unknown log level"

run run "$DIR/gc_at_exit.lua"
check "a finalizer at exit cannot start a task, and nothing crashes" 0 out "root done"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
