#!/bin/sh
# run.sh AWAITD_BINARY
#
# Start the local HTTP server (server.py), wait until it prints its port,
# run test_http.lua with `awaitd run` against it, stop the server, and exit
# with awaitd's status.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 AWAITD_BINARY" >&2
	exit 2
fi
AWAITD=$1
DIR=$(cd "$(dirname "$0")" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/http_test.XXXXXX")
SERVER=
TLS_SERVER=
cleanup() {
	if [ -n "$TLS_SERVER" ]; then
		kill "$TLS_SERVER" 2>/dev/null || true
		wait "$TLS_SERVER" 2>/dev/null || true
	fi
	if [ -n "$SERVER" ]; then
		kill "$SERVER" 2>/dev/null || true
		wait "$SERVER" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

python3 "$DIR/server.py" >"$TMP/port" &
SERVER=$!

# readiness, not a fixed sleep: the port is printed once it listens
i=0
while [ ! -s "$TMP/port" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$SERVER" 2>/dev/null; then
		echo "run.sh: the HTTP server did not start" >&2
		exit 1
	fi
	sleep 0.1
done
PORT=$(head -n 1 "$TMP/port")

# an HTTPS server with a self-signed certificate: the system CA store must
# refuse it (proves TLS is spoken and verified); skipped without openssl
TLS=
if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 \
		-keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1; then
	python3 "$DIR/server.py" "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/tlsport" &
	TLS_SERVER=$!
	i=0
	while [ ! -s "$TMP/tlsport" ] && [ $i -lt 100 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	[ -s "$TMP/tlsport" ] && TLS="https://127.0.0.1:$(head -n 1 "$TMP/tlsport")"
fi

# a port nothing listens on, for the refused-connection test
CLOSED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

LIMIT=
if command -v timeout >/dev/null 2>&1; then
	LIMIT="timeout 100"
fi

rc=0
$LIMIT "$AWAITD" run "$DIR/test_http.lua" \
	"{\"base\":\"http://127.0.0.1:$PORT\",\"closed\":\"http://127.0.0.1:$CLOSED\",\"lib\":\"$DIR/..\",\"tls\":\"$TLS\"}" || rc=$?
exit $rc
