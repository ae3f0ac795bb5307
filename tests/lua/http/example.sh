#!/bin/sh
# example.sh AWAITD_BINARY
#
# Runs scripts/examples/09_http_dashboard.lua against the local HTTP server
# (server.py): starts the server, waits until it prints its port, runs the
# example (must exit 0 and print the combined result, the fan-out line and
# the optional widget's default), then with '"fail":"orders"' (must exit 1
# and name the failed item), stops the server. Prints one line per check,
# then "N passed, N failed"; exits 1 when any check failed.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 AWAITD_BINARY" >&2
	exit 2
fi
AWAITD=$1
DIR=$(cd "$(dirname "$0")" && pwd)
EXAMPLE=$DIR/../../../scripts/examples/09_http_dashboard.lua

TMP=$(mktemp -d "${TMPDIR:-/tmp}/http_example.XXXXXX")
SERVER=
cleanup() {
	if [ -n "$SERVER" ]; then
		kill "$SERVER" 2>/dev/null || true
		wait "$SERVER" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass=0
fail=0
ok() {
	pass=$((pass + 1))
	echo "ok   - $1"
}
bad() {
	fail=$((fail + 1))
	echo "FAIL - $1"
	sed 's/^/       stdout| /' "$TMP/out"
	sed 's/^/       stderr| /' "$TMP/err" | tail -n 15
}

python3 "$DIR/server.py" >"$TMP/port" &
SERVER=$!
i=0
while [ ! -s "$TMP/port" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$SERVER" 2>/dev/null; then
		echo "example.sh: the HTTP server did not start" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	sleep 0.1
done
BASE=http://127.0.0.1:$(head -n 1 "$TMP/port")

guard=
if command -v timeout >/dev/null 2>&1; then
	guard="timeout 30"
fi

# run ARGS_JSON: run the example, keep stdout, stderr and status in rc
run() {
	rc=0
	# shellcheck disable=SC2086 # $guard is a command prefix or nothing
	$guard "$AWAITD" run "$EXAMPLE" "$1" >"$TMP/out" 2>"$TMP/err" || rc=$?
}
expect_rc() {
	if [ "$rc" -eq "$1" ]; then ok "$2: exit status $1"; else bad "$2: exit status $rc, expected $1"; fi
}
expect_out() {
	if grep -q -- "$1" "$TMP/out"; then ok "$2: stdout has '$1'"; else bad "$2: stdout lacks '$1'"; fi
}

run "{\"base\":\"$BASE\"}"
expect_rc 0 "09_http_dashboard"
expect_out '^combined: {.*"name":"widget"' "09_http_dashboard"
expect_out '^user id intact (64-bit): true$' "09_http_dashboard"
expect_out '^weather: weather unavailable$' "09_http_dashboard"
expect_out '^parallel fan-out: true$' "09_http_dashboard"

run "{\"base\":\"$BASE\",\"fail\":\"orders\"}"
expect_rc 1 "09_http_dashboard {fail: orders}"
expect_out '^dashboard failed: item 2 (orders)' "09_http_dashboard {fail: orders}"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
