#!/bin/sh
# tests/bench/w8.sh: benchmark W8 (issue 5) - 10,000 GETs of a small JSON
# document with at most 50 in flight, served by nginx on loopback
# (shared/peers/nginx/nginx.conf, 127.0.0.1:18080), awaitd's http module
# through async.queue{concurrency=50} (w8_http.lua) against Node's fetch
# with p-limit(50) (shared/peers/node/http_fanout.mjs), same server, same
# run (target: awaitd >= 3x Node's requests/s).
#
#   sh tests/bench/w8.sh        (from the repository root or anywhere)
#
# Lines on stdout, each one JSON object:
#   {"bench":"http","impl":"awaitd",...,"per_s":..,"ms":..,"errors":..}
#   {"bench":"http","impl":"node",...,"per_s":..,"ms":..,"errors":..}
#   {"bench":"summary","workload":"W8 http","awaitd_per_s":..,"node_per_s":..,"ratio":..,"target":3,"meets":..}
# "errors" counts responses that were not status 200 with the expected body
# (awaitd checks the body byte for byte; node's peer checks the status and
# that the body parses as JSON). A tool that is missing gives
# {"bench":"http","impl":..,"skipped":"reason"} and the script still exits 0.
# Chatter goes to stderr. Environment:
#   PEERS=DIR        the peers folder (default: shared/peers beside the clone)
#   BUILD=DIR        awaitd's Release build dir (default: build-bench)
#   W8_N=N           requests (default 10000)
#   W8_C=C           in flight at most (default 50)
#   W8_NODE_DIR=DIR  where p-limit is installed for the node peer (default
#                    ~/.cache/awaitd-w8-node; the peers folder is read-only)
#   W8_PERF=1        perf record -g the awaitd run; the report
#                    (perf report --no-children --sort dso,sym) goes to stderr
#   BENCH_KEEP=1     keep the temp dir
# As root it installs nginx (and curl) with apt-get if missing. nginx runs
# from a copy of the peers' nginx folder in the temp dir (it writes its pid,
# error log and temp files under its prefix).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=http
. "$HERE/lib.sh"
bench_init w8
bench_cleanup_extra() { if [ "$NGINX_UP" = 1 ]; then stop_nginx; fi; }
N=${W8_N:-10000}
C=${W8_C:-50}
NODE_DIR=${W8_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/awaitd-w8-node}

NGINX_UP=0
# ---- set-up ---------------------------------------------------------------

have nginx || apt_install nginx || true
have curl || apt_install curl || true

build_awaitd w8

# the node peer needs p-limit; the peers folder is read-only, so the script
# runs from NODE_DIR with p-limit installed there (once)
NODE_OK=0
NODE_WHY=
if ! have node; then
	NODE_WHY="node is not installed"
elif [ ! -f "$PEERS/node/http_fanout.mjs" ]; then
	NODE_WHY="no $PEERS/node/http_fanout.mjs"
else
	if [ ! -f "$NODE_DIR/node_modules/p-limit/package.json" ]; then
		mkdir -p "$NODE_DIR" &&
			printf '{"name":"awaitd-w8-node","private":true,"type":"module"}\n' >"$NODE_DIR/package.json" &&
			(cd "$NODE_DIR" && echo "w8: npm install p-limit@^6 in $NODE_DIR" >&2 &&
				timeout 300 npm install --no-audit --no-fund p-limit@^6 >&2 2>&1)
	fi
	if [ -f "$NODE_DIR/node_modules/p-limit/package.json" ]; then
		cp "$PEERS/node/http_fanout.mjs" "$NODE_DIR/http_fanout.mjs" && NODE_OK=1
	else
		NODE_WHY="p-limit is not installed in $NODE_DIR and npm could not install it"
	fi
fi

# ---- nginx ----------------------------------------------------------------

CONF=$PEERS/nginx/nginx.conf
PORT=$(sed -n 's/.*listen *127\.0\.0\.1:\([0-9]*\).*/\1/p' "$CONF" 2>/dev/null | head -n 1)
PORT=${PORT:-18080}
URL=http://127.0.0.1:$PORT/data.json
NGX=$TMP/nginx
stop_nginx() {
	if [ -f "$NGX/nginx.pid" ]; then
		n_pid=$(cat "$NGX/nginx.pid")
		kill -TERM "$n_pid" 2>/dev/null
		n_i=200
		while kill -0 "$n_pid" 2>/dev/null && [ "$n_i" -gt 0 ]; do sleep 0.05; n_i=$((n_i - 1)); done
		kill -0 "$n_pid" 2>/dev/null && kill -KILL "$n_pid" 2>/dev/null
	fi
	NGINX_UP=0
}
probe() {
	if have curl; then
		curl -fsS -o /dev/null --max-time 1 "$URL"
	else
		printf 'local r = http.get(...); assert(r and r.status == 200, "not ready")\n' >"$TMP/probe.lua" &&
			"$AWAITD" run "$TMP/probe.lua" "\"$URL\""
	fi
}

if ! have nginx; then
	skip awaitd "nginx is not installed and could not be"
	skip node "nginx is not installed and could not be"
	exit 0
fi
if probe >/dev/null 2>&1; then
	skip awaitd "something already answers on $URL"
	skip node "something already answers on $URL"
	exit 0
fi
# a writable prefix: the conf writes nginx.pid, error.log and tmp/ under it
# (readable by the worker, which runs as nobody/www-data under root: mktemp
# makes the temp dir 0700)
cp -r "$PEERS/nginx" "$NGX" && chmod -R u+w,a+rX "$NGX" && chmod a+x "$TMP" && mkdir -p "$NGX/tmp"
if ! nginx -p "$NGX" -c nginx.conf >"$TMP/nginx.out" 2>&1; then
	msg=$(cat "$TMP/nginx.out" "$NGX/error.log" 2>/dev/null | tail -n 1)
	skip awaitd "nginx did not start: $msg"
	skip node "nginx did not start: $msg"
	exit 0
fi
NGINX_UP=1
if ! wait_for 200 probe; then
	msg=$(tail -n 1 "$NGX/error.log" 2>/dev/null)
	skip awaitd "nginx not answering on $URL after 10 s: $msg"
	skip node "nginx not answering on $URL after 10 s: $msg"
	exit 0
fi
echo "w8: nginx $(nginx -v 2>&1 | sed 's/.*\///') on $URL" >&2

# ---- awaitd ---------------------------------------------------------------

A_LINE=
if [ "$AWAITD_OK" = 1 ]; then
	ARGS="{\"url\":\"$URL\",\"n\":$N,\"concurrency\":$C,\"expect_file\":\"$NGX/html/data.json\"}"
	PERF=
	if [ "${W8_PERF:-0}" = 1 ] && have perf; then PERF="perf record -g -o $TMP/perf.data --"; fi
	(cd "$ROOT" && timeout 300 $PERF "$AWAITD" run "$HERE/w8_http.lua" "$ARGS") >"$TMP/a.out" 2>"$TMP/a.err"
	rc=$?
	if [ -n "$PERF" ]; then
		perf report -i "$TMP/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
			grep -v '^$' | grep -v '^#' | grep '%' | head -n 60 >&2
	fi
	A_LINE=$(grep -m1 '^{' "$TMP/a.out")
	if [ -n "$A_LINE" ] && [ "$rc" = 0 ]; then
		printf '%s\n' "$A_LINE"
	else
		[ -n "$A_LINE" ] && printf '%s\n' "$A_LINE"
		printf '{"bench":"http","impl":"awaitd","error":"exit %s","stderr":"%s"}\n' "$rc" \
			"$(jstr "$(grep -v '^[[:space:]]*$' "$TMP/a.err" | tail -n 1)")"
		A_LINE=
	fi
else
	skip awaitd "$AWAITD_WHY"
fi

# ---- node -----------------------------------------------------------------

N_LINE=
if [ "$NODE_OK" = 1 ]; then
	(cd "$NODE_DIR" && timeout 300 node http_fanout.mjs "$URL" "$N" "$C") >"$TMP/n.out" 2>"$TMP/n.err"
	rc=$?
	raw=$(grep -m1 '^{' "$TMP/n.out")
	if [ -n "$raw" ] && [ "$rc" = 0 ]; then
		ok=$(num "$raw" ok)
		N_LINE=$(printf '{"bench":"http","impl":"node","client":"fetch+p-limit","node":"%s","n":%s,"concurrency":%s,"ms":%s,"per_s":%s,"ok":%s,"errors":%s}' \
			"$(node --version)" "$(j "$(num "$raw" n)")" "$(j "$(num "$raw" concurrency)")" \
			"$(j "$(num "$raw" ms)")" "$(j "$(num "$raw" per_s)")" "$(j "$ok")" \
			"$(awk -v n="$N" -v ok="$ok" 'BEGIN { if (ok == "") print "null"; else print n - ok }')")
		printf '%s\n' "$N_LINE"
	else
		printf '{"bench":"http","impl":"node","error":"exit %s","stderr":"%s"}\n' "$rc" \
			"$(jstr "$(grep -v '^[[:space:]]*$' "$TMP/n.err" | tail -n 1)")"
	fi
else
	skip node "$NODE_WHY"
fi

stop_nginx

# ---- summary --------------------------------------------------------------

a=$(num "$A_LINE" per_s)
n=$(num "$N_LINE" per_s)
r=$(ratio "$a" "$n")
ae=$(num "$A_LINE" errors)
ne=$(num "$N_LINE" errors)
meets=$(awk -v q="$r" -v e="$ae" 'BEGIN { if (q == "null") print "null"; else print (q + 0 >= 3 && e + 0 == 0) ? "true" : "false" }')
printf '{"bench":"summary","workload":"W8 http","n":%s,"concurrency":%s,"awaitd_per_s":%s,"node_per_s":%s,"ratio":%s,"target":3,"meets":%s,"awaitd_errors":%s,"node_errors":%s}\n' \
	"$N" "$C" "$(j "$a")" "$(j "$n")" "$r" "$meets" "$(j "$ae")" "$(j "$ne")"
exit 0
