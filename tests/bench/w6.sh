#!/bin/sh
# tests/bench/w6.sh: benchmark W6 - N purchases by 100 workers, each a
# durable exactly-once step that reads a balance, debits it and inserts an
# order, then a durable receipt step: awaitd running the repository's
# scripts/purchase.lua as jobs (its daemon, synchronous = full) against
# shared/peers/tarantool/purchases.lua (wal_mode fsync), same N, same run
# (target: awaitd >= Tarantool's purchases/s).
#
#   sh tests/bench/w6.sh        (from the repository root or anywhere)
#
# awaitd: a temp scripts dir holds a copy of scripts/ (not examples/) in
# which purchase.lua has concurrency = C (the repository's has 50; C = 100
# like Tarantool's fibers), and bulk.lua, which enqueues N purchase jobs
# with args {account = (k*7919+i) % 1000 + 1, price = 7, item = "x",
# provider_ms = 0} from C concurrent tasks (each enqueue returns once
# committed). Accounts 1..1000 hold 1,000,000 each (`awaitd migrate`, then
# the sqlite3 CLI, before the daemon starts). The clock runs from
# `awaitctl run bulk` to N+1 jobs succeeded (bulk is one), polled with
# `awaitctl stats` every 100 ms. Each purchase job is: its enqueue, a
# claim, the balance read, the debit tx (+ journal row), the provider step
# (journalled), the receipt tx (+ journal row), the finish: every write
# durable before the job goes on. Afterwards the database is checked:
# N orders, N receipts, 7*N debited.
#
# Lines on stdout, each one JSON object:
#   {"bench":"w6","impl":"awaitd",...,"purchases_per_s":..}  with where the
#       time went: store commits and requests, job latency percentiles, CPU
#       seconds per daemon thread over the run (loop = tid == pid; store)
#   {"bench":"w6","impl":"tarantool",...,"purchases_per_s":..}
#   {"bench":"w6","workload":"W6 purchases","ratio_vs_tarantool":..,"target":1.0,"met":..}
# A tool that is missing gives {"bench":"w6","impl":..,"skipped":"reason"}
# and the script still exits 0. Chatter goes to stderr. Environment:
#   PEERS=DIR        the peers folder (default: shared/peers beside the clone)
#   BUILD=DIR        awaitd's Release build dir (default: build-bench)
#   W6_N=N           purchases, a multiple of W6_C (default 20000)
#   W6_C=C           workers: purchase.lua's concurrency, enqueuing tasks,
#                    Tarantool's fibers (default 100)
#   BENCH_TIMEOUT=S  limit for each run (default 600)
#   BENCH_KEEP=1     keep the temp dir (daemon log, databases)
# As root it installs tarantool and sqlite3 with apt-get if missing.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=w6
. "$HERE/lib.sh"
bench_init w6
N=${W6_N:-20000}
C=${W6_C:-100}
PRICE=7
LIMIT=${BENCH_TIMEOUT:-600}

w6_setup w6

# ---- awaitd ---------------------------------------------------------------

A_LINE=
if [ "$AWAITD_OK" = 1 ]; then
	A=$TMP/awaitd
	DB=$A/w6.db
	mkdir -p "$A/scripts"
	cp "$ROOT"/scripts/*.lua "$A/scripts/" && cp -r "$ROOT/scripts/lib" "$A/scripts/lib"
	orig_c=$(sed -n 's/^ *concurrency *= *\([0-9]*\).*/\1/p' "$ROOT/scripts/purchase.lua" | head -n 1)
	sed "s/^\( *concurrency *= *\)[0-9]*/\1$C/" "$ROOT/scripts/purchase.lua" >"$A/scripts/purchase.lua"
	set_c=$(sed -n 's/^ *concurrency *= *\([0-9]*\).*/\1/p' "$A/scripts/purchase.lua" | head -n 1)
	cat >"$A/scripts/bulk.lua" <<EOF
-- enqueue args.n purchase jobs from args.workers concurrent tasks
return { timeout = 600000, run = function(ctx, args)
  local n, w = args.n, args.workers or 100
  local t0 = async.now()
  local fns = {}
  for k = 1, w do fns[k] = function()
    for i = k, n, w do
      assert(jobs.enqueue("purchase", { account = (k * 7919 + i) % 1000 + 1, price = $PRICE, item = "x", provider_ms = 0 }))
    end
  end end
  assert(async.all(fns))
  return { enqueue_ms = async.now() - t0 }
end }
EOF
	if [ "$set_c" != "$C" ]; then
		printf '{"bench":"w6","impl":"awaitd","error":"could not set concurrency = %s in the copy of purchase.lua"}\n' "$C"
	elif ! w6_db "$DB"; then
		printf '{"bench":"w6","impl":"awaitd","error":"could not create the database with 1000 accounts"}\n'
	elif jobs_bench "$A" "$DB" $((N + 1)) "{\"n\":$N,\"workers\":$C}"; then
		# what the database holds now (the daemon is stopped)
		check=$(sqlite3 -separator ' ' "$DB" "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM receipts),
			(SELECT 1000 * 1000000 - sum(balance) FROM accounts WHERE id BETWEEN 1 AND 1000),
			(SELECT count(*) FROM steps), (SELECT count(*) FROM jobs WHERE name = 'purchase' AND state = 'succeeded')")
		set -- $check
		ok=$([ "${1:-}" = "$N" ] && [ "${2:-}" = "$N" ] && [ "${3:-}" = $((PRICE * N)) ] && [ "${5:-}" = "$N" ] && echo true || echo false)
		store=$(json_obj "$JB_STATS" store)
		commits=$(num "$store" commits)
		requests=$(num "$store" requests)
		enq_ms=$(num "$JB_RESULT" enqueue_ms)
		A_LINE=$(printf '{"bench":"w6","impl":"awaitd","n":%s,"workers":%s,"purchase_concurrency":%s,"repo_purchase_concurrency":%s,"synchronous":"full","total_ms":%.0f,"purchases_per_s":%.0f,"enqueue_ms":%s,"completed_during_enqueue":%s,"drain_ms":%.0f,"succeeded":%s,"orders":%s,"receipts":%s,"debited":%s,"steps":%s,"consistent":%s,"store":%s,"requests_per_commit":%s,"commits_per_purchase":%s,"latency_ms":%s,"wait_ms":%s,"threads":%s,"log_warnings":%s}' \
			"$N" "$C" "$C" "$(j "$orig_c")" "$JB_TOTAL_MS" \
			"$(awk -v n="$N" -v t="$JB_TOTAL_MS" 'BEGIN { print n / t * 1000 }')" \
			"$(j "$(awk -v e="$enq_ms" 'BEGIN { if (e != "") printf "%.0f", e }')")" \
			"$JB_DONE_AT_ENQ" "$(awk -v a="$JB_TOTAL_MS" -v b="$JB_ENQ_MS" 'BEGIN { print a - b }')" \
			"$(j "$JB_SUCCEEDED")" "$(j "${1:-}")" "$(j "${2:-}")" "$(j "${3:-}")" "$(j "${4:-}")" "$ok" \
			"$store" "$(ratio "$requests" "$commits")" "$(ratio "$commits" "$N")" \
			"$(json_obj "$JB_STATS" latency_ms)" "$(json_obj "$JB_STATS" wait_ms)" "$JB_THREADS" \
			"$(grep -c -E ' (WARN|ERROR) ' "$JB_LOG")")
		printf '%s\n' "$A_LINE"
	else
		printf '{"bench":"w6","impl":"awaitd","error":"%s","log":"%s"}\n' "$(jstr "$JB_ERR")" \
			"$(jstr "$(grep -E ' (WARN|ERROR) ' "$JB_LOG" | tail -n 1)")"
	fi
	[ -f "$A/awaitd.log" ] && grep -E ' (WARN|ERROR) ' "$A/awaitd.log" | head -n 5 >&2
else
	skip awaitd "$AWAITD_WHY"
fi

# ---- Tarantool ------------------------------------------------------------

w6_tarantool

# ---- summary --------------------------------------------------------------

a=$(num "$A_LINE" purchases_per_s)
t=$(num "$T_LINE" purchases_per_s)
rt=$(ratio "$a" "$t")
met=$(met "$rt" 1)
cons=$(printf '%s' "$A_LINE" | sed -n 's/.*"consistent":\(true\|false\).*/\1/p')
printf '{"bench":"w6","workload":"W6 purchases","n":%s,"workers":%s,"awaitd_per_s":%s,"tarantool_per_s":%s,"ratio_vs_tarantool":%s,"target":1.0,"met":%s,"awaitd_consistent":%s}\n' \
	"$N" "$C" "$(j "$a")" "$(j "$t")" "$rt" "$met" "$(j "$cons")"
exit 0
