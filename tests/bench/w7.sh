#!/bin/sh
# tests/bench/w7.sh: benchmark W7 (issue 3) - `ping` over the control
# socket from 16 concurrent clients, no pipelining, against Redis's PING
# over a unix socket on the same machine (target: awaitd >= Redis).
#
#   sh tests/bench/w7.sh        (from the repository root or anywhere)
#
# Lines on stdout, each one JSON object:
#   {"bench":"ping","impl":"awaitd","client":"w7_ping",...}     awaitd, w7_ping
#   {"bench":"ping","impl":"redis","client":"redis-benchmark","variant":"PING_INLINE"|"PING_MBULK",...}
#   {"bench":"ping","impl":"redis","client":"w7_ping",...}      the same client
#                                                               as for awaitd
#   {"bench":"summary","workload":"W7 ping",...}
# A tool that is missing gives {"bench":"ping","impl":..,"skipped":"reason"}
# and the script still exits 0. Chatter goes to stderr. Environment:
#   BUILD=DIR        awaitd's Release build dir (default: build-bench)
#   W7_CLIENTS=N     concurrent clients (default 16)
#   W7_SECONDS=S     measured seconds per w7_ping run (default 5; +0.5 warm-up)
#   W7_REQUESTS=N    redis-benchmark -n (default 200000)
#   W7_PERF=1        perf record -g the daemon during its run; the report
#                    (perf report --no-children --sort sym) goes to stderr
#   BENCH_KEEP=1     keep the temp dir
# As root it installs redis-server and redis-tools with apt-get if missing.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=ping
. "$HERE/lib.sh"
bench_init w7
CLIENTS=${W7_CLIENTS:-16}
SECONDS_=${W7_SECONDS:-5}
REQUESTS=${W7_REQUESTS:-200000}

# stop PID: stop_pid, and forget it
stop() {
	stop_pid "$1"
	PIDS=$(printf '%s\n' $PIDS | grep -vx "$1" | tr '\n' ' ')
}

# ---- set-up ---------------------------------------------------------------

if ! have redis-server || ! have redis-benchmark || ! have redis-cli; then
	apt_install redis-server redis-tools || true
fi
# the Debian package starts a system redis on port 6379; it is not used here

build_awaitd w7

PING=$TMP/w7_ping
CC=${CC:-cc}
if ! have "$CC" || ! "$CC" -O2 -pthread -o "$PING" "$HERE/w7_ping.c" >&2; then
	skip awaitd "cannot build w7_ping with $CC"
	skip redis "cannot build w7_ping with $CC"
	exit 0
fi

# ---- awaitd ---------------------------------------------------------------

A_LINE=
if [ "$AWAITD_OK" = 1 ]; then
	ASOCK=$TMP/awaitd.sock
	"$AWAITD" --scripts "$ROOT/scripts" --socket "$ASOCK" >"$TMP/awaitd.out" 2>"$TMP/awaitd.err" &
	APID=$!
	PIDS="$PIDS $APID"
	if wait_for 200 "$PING" --probe "$ASOCK"; then
		PERF_PID=
		if [ "${W7_PERF:-0}" = 1 ] && have perf; then
			perf record -g -o "$TMP/perf.data" -p "$APID" >/dev/null 2>"$TMP/perf.err" &
			PERF_PID=$!
			sleep 0.3
		fi
		timeout $((SECONDS_ + 60)) "$PING" "$ASOCK" "$CLIENTS" "$SECONDS_" >"$TMP/a.out" 2>"$TMP/a.err"
		rc=$?
		if [ -n "$PERF_PID" ]; then
			kill -INT "$PERF_PID" 2>/dev/null
			wait "$PERF_PID" 2>/dev/null
			perf report -i "$TMP/perf.data" --no-children --sort sym --stdio 2>/dev/null |
				grep -v '^$' | head -n 150 >&2
		fi
		A_LINE=$(grep -m1 '^{' "$TMP/a.out")
		if [ -n "$A_LINE" ]; then
			printf '%s\n' "$A_LINE"
		else
			printf '{"bench":"ping","impl":"awaitd","error":"exit %s","stderr":"%s"}\n' "$rc" "$(jstr "$(tail -n 1 "$TMP/a.err")")"
		fi
		[ "$rc" = 0 ] || A_LINE=$(printf '%s' "$A_LINE" | grep -v '"errors":[1-9]')
	else
		printf '{"bench":"ping","impl":"awaitd","error":"daemon not ready after 10 s","stderr":"%s"}\n' \
			"$(jstr "$(tail -n 1 "$TMP/awaitd.err")")"
	fi
	stop "$APID"
else
	skip awaitd "$AWAITD_WHY"
fi

# ---- redis ----------------------------------------------------------------

R_LINE= R_MBULK= R_SAME=
if have redis-server && have redis-benchmark && have redis-cli; then
	RSOCK=$TMP/redis.sock
	mkdir -p "$TMP/redis"
	(cd "$TMP/redis" && exec redis-server --port 0 --unixsocket "$RSOCK" --save '' --appendonly no \
		--daemonize no >"$TMP/redis.log" 2>&1) &
	RPID=$!
	PIDS="$PIDS $RPID"
	rping() { [ "$(redis-cli -s "$RSOCK" ping 2>/dev/null)" = PONG ]; }
	if wait_for 200 rping; then
		rv=$(redis-benchmark --version 2>/dev/null | awk '{ print $2 }')
		timeout 300 redis-benchmark -s "$RSOCK" -t ping -c "$CLIENTS" -n "$REQUESTS" -q --csv >"$TMP/rb.csv" 2>"$TMP/rb.err"
		# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
		awk -F, -v c="$CLIENTS" -v n="$REQUESTS" -v v="$rv" '
			{ gsub(/"/, "") }
			$1 == "test" { for (i = 1; i <= NF; i++) col[$i] = i; next }
			$1 ~ /^PING/ && ("rps" in col) {
				p50 = ("p50_latency_ms" in col) ? sprintf("%.1f", $(col["p50_latency_ms"]) * 1000) : "null"
				p99 = ("p99_latency_ms" in col) ? sprintf("%.1f", $(col["p99_latency_ms"]) * 1000) : "null"
				avg = ("avg_latency_ms" in col) ? sprintf("%.1f", $(col["avg_latency_ms"]) * 1000) : "null"
				printf "{\"bench\":\"ping\",\"impl\":\"redis\",\"client\":\"redis-benchmark\",\"redis_benchmark\":\"%s\",\"variant\":\"%s\",\"clients\":%d,\"requests\":%d,\"per_s\":%.0f,\"mean_us\":%s,\"p50_us\":%s,\"p99_us\":%s}\n", v, $1, c, n, $(col["rps"]), avg, p50, p99
			}' "$TMP/rb.csv" >"$TMP/rb.jsonl"
		if [ -s "$TMP/rb.jsonl" ]; then
			cat "$TMP/rb.jsonl"
			R_LINE=$(grep -m1 '"variant":"PING_INLINE"' "$TMP/rb.jsonl")
			R_MBULK=$(grep -m1 '"variant":"PING_MBULK"' "$TMP/rb.jsonl")
		else
			printf '{"bench":"ping","impl":"redis","client":"redis-benchmark","error":"no results","stderr":"%s"}\n' \
				"$(jstr "$(cat "$TMP/rb.err" "$TMP/rb.csv" | tail -n 1)")"
		fi
		# the same client as for awaitd (inline PING, one per round trip)
		timeout $((SECONDS_ + 60)) "$PING" "$RSOCK" "$CLIENTS" "$SECONDS_" redis >"$TMP/r.out" 2>"$TMP/r.err"
		R_SAME=$(grep -m1 '^{' "$TMP/r.out")
		if [ -n "$R_SAME" ]; then printf '%s\n' "$R_SAME"; else
			printf '{"bench":"ping","impl":"redis","client":"w7_ping","error":"no result","stderr":"%s"}\n' \
				"$(jstr "$(tail -n 1 "$TMP/r.err")")"
		fi
	else
		printf '{"bench":"ping","impl":"redis","error":"redis-server not ready after 10 s","stderr":"%s"}\n' \
			"$(jstr "$(tail -n 1 "$TMP/redis.log")")"
	fi
	stop "$RPID"
else
	skip redis "redis-server/redis-benchmark not installed and could not be"
fi

# ---- summary --------------------------------------------------------------

a=$(num "$A_LINE" per_s)
ri=$(num "$R_LINE" per_s)
rm=$(num "$R_MBULK" per_s)
rs=$(num "$R_SAME" per_s)
# the target is the faster of redis-benchmark's two PING tests
r=$(awk -v x="$ri" -v y="$rm" 'BEGIN { if (x == "" && y == "") print ""; else print (x + 0 >= y + 0) ? x : y }')
rt=$( [ -n "$r" ] && { [ "$r" = "$ri" ] && echo PING_INLINE || echo PING_MBULK; } )
rr=$(ratio "$a" "$r")
meets=$(awk -v q="$rr" 'BEGIN { if (q == "null") print "null"; else print (q + 0 >= 1) ? "true" : "false" }')
printf '{"bench":"summary","workload":"W7 ping","clients":%s,"awaitd_per_s":%s,"redis_per_s":%s,"redis_test":%s,"ratio":%s,"target":1.0,"meets":%s,"awaitd_p50_us":%s,"awaitd_p99_us":%s,"redis_p50_us":%s,"redis_p99_us":%s,"redis_w7_ping_per_s":%s,"ratio_same_client":%s,"redis_w7_ping_p50_us":%s,"redis_w7_ping_p99_us":%s}\n' \
	"$CLIENTS" "$(j "$a")" "$(j "$r")" "$( [ -n "$rt" ] && printf '"%s"' "$rt" || printf null)" "$rr" "$meets" \
	"$(j "$(num "$A_LINE" p50_us)")" "$(j "$(num "$A_LINE" p99_us)")" \
	"$(j "$(num "$( [ "$rt" = PING_MBULK ] && printf '%s' "$R_MBULK" || printf '%s' "$R_LINE")" p50_us)")" \
	"$(j "$(num "$( [ "$rt" = PING_MBULK ] && printf '%s' "$R_MBULK" || printf '%s' "$R_LINE")" p99_us)")" \
	"$(j "$rs")" "$(ratio "$a" "$rs")" "$(j "$(num "$R_SAME" p50_us)")" "$(j "$(num "$R_SAME" p99_us)")"
exit 0
