#!/bin/sh
# run_examples.sh AWAITD_BINARY EXAMPLES_DIR
#
# Runs every example of scripts/examples with `awaitd run` and its default
# arguments, checks that it exits 0 and that its stdout holds the line(s)
# proving its lesson (e.g. "parallel faster: true", "peak concurrency: 3").
# The examples with a failure path (02, 04) are also run with failing
# arguments and must exit 1. Prints one line per check, then
# "N passed, N failed"; exits 1 when any check failed.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 AWAITD_BINARY EXAMPLES_DIR" >&2
	exit 2
fi
AWAITD=$1
DIR=$2

pass=0
fail=0
out=
shown=no
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# A hung example must not hang the suite (timeout is not POSIX: optional).
guard=
if command -v timeout >/dev/null 2>&1; then
	guard="timeout 30"
fi

ok() {
	pass=$((pass + 1))
	echo "ok   - $1"
}

bad() {
	fail=$((fail + 1))
	echo "FAIL - $1"
	# show what the example printed, indented, once per run
	if [ -n "${out:-}" ] && [ -f "$out" ] && [ "$shown" = no ]; then
		shown=yes
		sed 's/^/       stdout| /' "$out"
		sed 's/^/       stderr| /' "$err" | tail -n 15
	fi
}

# run NAME [ARGS_JSON]: run one example, keep its stdout, stderr and status
run() {
	name=$1
	shift
	out=$tmp/$name.out
	err=$tmp/$name.err
	shown=no
	rc=0
	# shellcheck disable=SC2086 # $guard is a command prefix or nothing
	$guard "$AWAITD" run "$DIR/$name.lua" "$@" >"$out" 2>"$err" || rc=$?
}

# expect_rc WANT LABEL
expect_rc() {
	if [ "$rc" -eq "$1" ]; then
		ok "$2: exit status $1"
	else
		bad "$2: exit status $rc, expected $1"
	fi
}

# expect_out PATTERN LABEL: a line of stdout matches the basic regex PATTERN
expect_out() {
	if grep -q -- "$1" "$out"; then
		ok "$2: stdout has '$1'"
	else
		bad "$2: stdout lacks '$1'"
	fi
}

# expect_err PATTERN LABEL: a line of stderr matches PATTERN
expect_err() {
	if grep -q -- "$1" "$err"; then
		ok "$2: stderr has '$1'"
	else
		bad "$2: stderr lacks '$1'"
	fi
}

EXAMPLES="01_sequential_vs_parallel 02_dashboard 03_tuple_errors 04_purchase
05_pipeline 06_limit 07_timeout 08_safety"

for name in $EXAMPLES; do
	out=
	if [ ! -f "$DIR/$name.lua" ]; then
		bad "$name: $DIR/$name.lua is missing"
		continue
	fi
	run "$name"
	expect_rc 0 "$name"
	case $name in
	01_sequential_vs_parallel)
		expect_out '^parallel faster: true$' "$name"
		;;
	02_dashboard)
		expect_out '^parallel fan-out: true$' "$name"
		expect_out '^weather: weather unavailable$' "$name"
		;;
	03_tuple_errors)
		expect_out '^try caught the raise: true$' "$name"
		expect_out '^cause chain depth: 2$' "$name"
		;;
	04_purchase)
		expect_out '^result: {"balance":20,"order":1001}$' "$name"
		;;
	05_pipeline)
		expect_out '^pipeline complete: true$' "$name"
		;;
	06_limit)
		expect_out '^queue peak concurrency: 3$' "$name"
		expect_out '^map peak concurrency: 3$' "$name"
		expect_out '^rate limited: true$' "$name"
		;;
	07_timeout)
		expect_out '^cleanup ran before timeout returned: true$' "$name"
		expect_out '^race: fast mirror' "$name"
		expect_out '^nested timeout honoured the outer deadline: true$' "$name"
		;;
	08_safety)
		expect_out '^orphan cancelled: true' "$name"
		expect_out '^blocked_loop: true$' "$name"
		expect_out '^ticker kept ticking: true' "$name"
		expect_err 'WARN.*08_safety\.lua:[0-9]' "$name (orphan warning names where it was)"
		expect_err 'ERROR.*payment webhook failed' "$name (unawaited failure logged)"
		;;
	esac
done

# Any other example in the directory must at least run cleanly.
for f in "$DIR"/[0-9]*.lua; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .lua)
	known=no
	for e in $EXAMPLES; do
		[ "$e" != "$name" ] || known=yes
	done
	if [ "$known" = no ]; then
		run "$name"
		expect_rc 0 "$name"
	fi
done

# The failure paths: a required call fails / insufficient funds -> exit 1.
if [ -f "$DIR/02_dashboard.lua" ]; then
	run 02_dashboard '{"fail":"orders"}'
	expect_rc 1 "02_dashboard {fail: orders}"
	expect_out '^dashboard failed: item 2 (orders)' "02_dashboard {fail: orders}"
fi
if [ -f "$DIR/04_purchase.lua" ]; then
	run 04_purchase '{"user":"bob","amount":30}'
	expect_rc 1 "04_purchase {user: bob}"
	expect_err 'insufficient_funds' "04_purchase {user: bob}"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
