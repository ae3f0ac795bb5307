#!/bin/sh
# tests/bench/w10.sh: benchmark W10 (issue 16) - the dashboard served to 50
# browsers polling once a second, measured by the daemon's own loop-lag
# probe (target: under 1 ms of lag per second) and its CPU.
#
#   sh tests/bench/w10.sh        (from the repository root or anywhere)
#
# The daemon holds 2,000 finished jobs and 20 running ones reporting
# progress, so the pages are real. One JSON line on stdout:
#   {"bench":"dashboard","impl":"awaitd","clients":50,"lag_ms_per_s":..,...}
# No peer: the other systems' dashboards are separate services.
# Environment: BUILD=DIR (default build-bench), W10_CLIENTS (50),
# W10_SECONDS (10), BENCH_KEEP=1.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=dashboard
. "$HERE/lib.sh"
bench_init w10
build_awaitd w10
if [ "$AWAITD_OK" != 1 ]; then
	skip awaitd "$AWAITD_WHY"
	exit 0
fi
if ! have python3; then
	skip awaitd "no python3 for the browsers"
	exit 0
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/scripts"
cat >"$TMP/scripts/quick.lua" <<'LUA'
return { concurrency = 100, run = function(ctx, args) return { n = args.n } end }
LUA
cat >"$TMP/scripts/long.lua" <<'LUA'
return { concurrency = 20, timeout = 3600000, run = function(ctx, args)
  for i = 1, 100000 do ctx.progress(i / 100000, "item " .. i); async.sleep(50) end
end }
LUA
cat >"$TMP/scripts/fill.lua" <<'LUA'
return { run = function(ctx, args)
  for i = 1, 2000 do jobs.enqueue("quick", { n = i }) end
  for i = 1, 20 do jobs.enqueue("long", { n = i }) end
  return true
end }
LUA
printf 'http_listen = 127.0.0.1:%s\n' "$PORT" >"$TMP/awaitd.conf"
"$AWAITD" -c "$TMP/awaitd.conf" --scripts "$TMP/scripts" --db "$TMP/db" \
	--migrations "$ROOT/migrations" --socket "$TMP/s" >"$TMP/awaitd.out" 2>"$TMP/awaitd.err" &
APID=$!
PIDS="$PIDS $APID"
if ! wait_for 200 "$AWAITCTL" -s "$TMP/s" ping; then
	printf '{"bench":"dashboard","impl":"awaitd","error":"daemon not ready","stderr":"%s"}\n' \
		"$(jstr "$(tail -n 1 "$TMP/awaitd.err")")"
	exit 0
fi
"$AWAITCTL" -s "$TMP/s" run fill >/dev/null
done_quick() { "$AWAITCTL" -s "$TMP/s" --json status | grep -q '"succeeded":200[0-9]'; }
wait_for 600 done_quick
python3 "$HERE/w10_dashboard.py" "$PORT" "$APID" "${W10_CLIENTS:-50}" "${W10_SECONDS:-10}" \
	2>"$TMP/py.err" || printf '{"bench":"dashboard","impl":"awaitd","error":"%s"}\n' \
	"$(jstr "$(tail -n 1 "$TMP/py.err")")"
exit 0
