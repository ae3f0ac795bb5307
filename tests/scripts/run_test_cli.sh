#!/bin/sh
# run_test_cli.sh AWAITD FIXTURES MIGRATIONS
#
# `awaitd test` as a command: TAP on stdout, exit statuses, virtual time
# (an hour of sleeps in well under a second), retries and timeouts of jobs,
# a broken file, a test that waits for nothing. Prints one line per check
# and "N passed, N failed"; exits non-zero if any check failed.
set -eu

AWAITD=$1
DIR=$2
MIG=$3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/run_test_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
passed=0
failed=0
RC=0

run() {
	RC=0
	timeout 60 "$AWAITD" test --migrations "$MIG" --scripts "$DIR/scripts" "$@" \
		>"$TMP/out" 2>"$TMP/err" </dev/null || RC=$?
}

check() { # NAME WANT_RC [PATTERN...]: the last run's status, and stdout holds each PATTERN
	name=$1 want=$2
	shift 2
	if [ "$RC" -ne "$want" ]; then
		failed=$((failed + 1))
		echo "FAIL $name: exit status $RC, expected $want"
		sed 's/^/  | /' "$TMP/out" "$TMP/err"
		return 0
	fi
	for p in "$@"; do
		if ! grep -qF -- "$p" "$TMP/out"; then
			failed=$((failed + 1))
			echo "FAIL $name: stdout does not contain '$p'"
			sed 's/^/  | /' "$TMP/out" "$TMP/err"
			return 0
		fi
	done
	passed=$((passed + 1))
	echo "ok   $name"
}

t0=$(date +%s%N)
run "$DIR/hour.lua"
t1=$(date +%s%N)
check "an hour of virtual sleep passes" 0 "TAP version 13" "ok 1 - sleeps an hour" "1..1"
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 1000 ]; then
	passed=$((passed + 1)); echo "ok   ... in under a second ($ms ms)"
else
	failed=$((failed + 1)); echo "FAIL an hour of virtual sleep took $ms ms (want < 1000)"
fi

run "$DIR/mixed.lua"
check "failures are 'not ok' with a diagnostic, the run exits 1" 1 \
	"ok 1 - passes" "not ok 2 - fails on purpose" "# assertion: the sides: expected \"right\", got \"left\"" \
	"not ok 3 - returns nil, err" "# nope: said no" \
	"not ok 4 - waits for nothing" "still running after 60000 ms of virtual time" \
	"ok 5 - passes after the others" "1..5" "# 3 of 5 failed"

run "$DIR/retry.lua"
check "jobs retry with backoff and time out, in virtual time; workers answer" 0 \
	"ok 1 - a flaky job retries" "ok 2 - a job that never ends" "ok 3 - a worker call" "1..3"

run "$DIR/broken.lua" "$DIR/hour.lua"
check "a file that does not load is one failed test; the next file still runs" 1 \
	"not ok 1 - $DIR/broken.lua" "ok 2 - sleeps an hour" "1..2"

run "$DIR/held.lua"
check "a transaction across a virtual sleep holds the writer, not the clock" 0 \
	"ok 1 - a job's transaction" "ok 2 - test.db has no tx" "1..2"

t0=$(date +%s%N)
run "$DIR/stuck_top.lua"
t1=$(date +%s%N)
check "a file whose own code waits for nothing fails at its virtual day" 1 \
	"not ok 1 - $DIR/stuck_top.lua" "still running after 86400000 ms" "1..1"
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 10000 ]; then
	passed=$((passed + 1)); echo "ok   ... in $ms ms"
else
	failed=$((failed + 1)); echo "FAIL a stuck file took $ms ms"
fi

run
check "no file is a usage error" 2
run --nope "$DIR/hour.lua"
check "an unknown option is a usage error" 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
