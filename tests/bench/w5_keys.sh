#!/bin/sh
# tests/bench/w5_keys.sh: W5 with a per-key limit (issue 17) - N trivial
# durable jobs enqueued by C tasks and completed at concurrency C, first as
# W5 is (no limit), then with `limits = { { by = "k", concurrency = 1 } }`
# over K distinct keys, same N, same run, same machine. Target: the limited
# run keeps at least 80% of the plain run's jobs/s (River Pro users report a
# global limit halving throughput).
#
#   sh tests/bench/w5_keys.sh        (from the repository root or anywhere)
#
# Lines on stdout, each one JSON object:
#   {"bench":"w5_keys","impl":"awaitd","variant":"plain"|"limited",...,"per_s":..}
#   {"bench":"w5_keys","workload":"W5 with a per-key limit","ratio":..,"target":0.8,"met":..}
# Environment: BUILD=DIR (default build-bench), W5K_N (default 20000),
# W5K_C (100), W5K_KEYS (1000), BENCH_TIMEOUT=S (600), BENCH_KEEP=1.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=w5_keys
. "$HERE/lib.sh"
bench_init w5_keys
N=${W5K_N:-20000}
C=${W5K_C:-100}
K=${W5K_KEYS:-1000}
LIMIT=${BENCH_TIMEOUT:-600}

build_awaitd w5_keys
if [ "$AWAITD_OK" = 1 ] && ! cmake --build "$BUILD" --target awaitctl -j2 >&2; then
	[ -x "$AWAITCTL" ] || { AWAITD_OK=0; AWAITD_WHY="awaitctl could not be built"; }
fi
if [ "$AWAITD_OK" != 1 ]; then
	skip awaitd "$AWAITD_WHY"
	exit 0
fi

# run VARIANT LIMITS_LUA: one W5 run; prints its line, sets PER_S
run() {
	d=$TMP/$1
	mkdir -p "$d/scripts"
	cat >"$d/scripts/noop.lua" <<LUA
return { concurrency = $C, $2 run = function(ctx, args) return args.i * 2 end }
LUA
	cat >"$d/scripts/bulk.lua" <<LUA
return { timeout = 600000, run = function(ctx, args)
  local n, w = args.n, args.workers
  local fns = {}
  for k = 1, w do fns[k] = function()
    for i = k, n, w do assert(jobs.enqueue("noop", { i = i, k = "key-" .. (i % $K) })) end
  end end
  assert(async.all(fns))
  return true
end }
LUA
	PER_S=
	if jobs_bench "$d" "$d/w5.db" $((N + 1)) "{\"n\":$N,\"workers\":$C}"; then
		PER_S=$(awk -v n="$N" -v t="$JB_TOTAL_MS" 'BEGIN { printf "%.0f", n / t * 1000 }')
		printf '{"bench":"w5_keys","impl":"awaitd","variant":"%s","n":%s,"concurrency":%s,"keys":%s,"total_ms":%.0f,"per_s":%s,"succeeded":%s,"log_warnings":%s}\n' \
			"$1" "$N" "$C" "$K" "$JB_TOTAL_MS" "$PER_S" "$(j "$JB_SUCCEEDED")" \
			"$(grep -c -E ' (WARN|ERROR) ' "$JB_LOG")"
	else
		printf '{"bench":"w5_keys","impl":"awaitd","variant":"%s","error":"%s"}\n' "$1" "$(jstr "$JB_ERR")"
	fi
}

run plain ""
PLAIN=$PER_S
run limited "limits = { { by = \"k\", concurrency = 1 } },"
LIMITED=$PER_S
r=$(ratio "$LIMITED" "$PLAIN")
printf '{"bench":"w5_keys","workload":"W5 with a per-key limit over %s keys","plain_per_s":%s,"limited_per_s":%s,"ratio":%s,"target":0.8,"met":%s}\n' \
	"$K" "$(j "$PLAIN")" "$(j "$LIMITED")" "$r" "$(met "$r" 0.8)"
exit 0
