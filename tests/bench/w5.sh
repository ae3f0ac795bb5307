#!/bin/sh
# tests/bench/w5.sh: benchmark W5 - N trivial jobs enqueued and completed,
# each completion durable, workers of concurrency 100: awaitd (its daemon,
# synchronous = full) against BullMQ on a local Redis (appendonly yes,
# appendfsync everysec: up to a second of acknowledged work can be lost),
# same N, same run (target: awaitd >= 5x BullMQ's jobs/s end to end), and
# against the raw SQLite floor: w5_raw.c runs the store's statements for
# each job (daemon/store-jobs.c: enqueue, claim, finish + spans) on one
# connection, WAL, synchronous = FULL, one commit per 100 jobs.
#
#   sh tests/bench/w5.sh        (from the repository root or anywhere)
#
# awaitd: a temp scripts dir holds noop.lua (`return args.i * 2`,
# concurrency C) and bulk.lua (enqueues N noop jobs with jobs.enqueue from
# C concurrent tasks; each enqueue returns once committed). The clock runs
# from `awaitctl run bulk` to N+1 jobs succeeded (bulk is one), polled with
# `awaitctl stats` every 100 ms (so +-100 ms). Jobs run while bulk still
# enqueues; "enqueue_ms" is bulk's own measure, "completed_during_enqueue"
# how many had finished by then.
#
# Lines on stdout, each one JSON object:
#   {"bench":"w5","impl":"awaitd",...,"per_s":..}     per_s = N / total_ms
#   {"bench":"w5","impl":"bullmq",...,"per_s":..}     (same definition)
#   {"bench":"w5","impl":"sqlite_raw","variant":"one"|"split",...,"per_s":..}
#   {"bench":"w5","workload":"W5 jobs","ratio_vs_bullmq":..,"target":5,"met":..,"ratio_vs_sqlite_raw":..}
# ("split" commits enqueues, the claim and finishes of each 100 separately,
# the shape of awaitd's commits; ratio_vs_sqlite_raw is against "one".)
# A tool that is missing gives {"bench":"w5","impl":..,"skipped":"reason"}
# and the script still exits 0. Chatter goes to stderr. Environment:
#   PEERS=DIR        the peers folder (default: shared/peers beside the clone)
#   BUILD=DIR        awaitd's Release build dir (default: build-bench)
#   W5_N=N           jobs (default 100000)
#   W5_C=C           worker concurrency and enqueuing tasks (default 100)
#   W5_RAW=0         skip the raw SQLite floor
#   W5_REDIS_PORT=P  the Redis started for BullMQ (default 6399)
#   W5_NODE_DIR=DIR  where bullmq is installed (default
#                    ~/.cache/awaitd-w5-node; the peers folder is read-only)
#   BENCH_TIMEOUT=S  limit for each run (default 600)
#   BENCH_KEEP=1     keep the temp dir (daemon log, databases)
# As root it installs redis-server, redis-tools and sqlite3 with apt-get if
# missing; bullmq comes from npm (once, into W5_NODE_DIR).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=w5
. "$HERE/lib.sh"
bench_init w5
N=${W5_N:-100000}
C=${W5_C:-100}
RPORT=${W5_REDIS_PORT:-6399}
NODE_DIR=${W5_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/awaitd-w5-node}
LIMIT=${BENCH_TIMEOUT:-600}

# ---- set-up ---------------------------------------------------------------

if ! have redis-server || ! have redis-cli; then apt_install redis-server redis-tools || true; fi
have sqlite3 || apt_install sqlite3 || true

build_awaitd w5
if [ "$AWAITD_OK" = 1 ] && ! cmake --build "$BUILD" --target awaitctl -j2 >&2; then
	[ -x "$AWAITCTL" ] || { AWAITD_OK=0; AWAITD_WHY="awaitctl could not be built"; }
fi

# ---- awaitd ---------------------------------------------------------------

A_LINE=
if [ "$AWAITD_OK" = 1 ]; then
	A=$TMP/awaitd
	mkdir -p "$A/scripts"
	cat >"$A/scripts/noop.lua" <<EOF
return { concurrency = $C, run = function(ctx, args) return args.i * 2 end }
EOF
	cp "$HERE/jobs/w5_bulk.lua" "$A/scripts/bulk.lua"
	if jobs_bench "$A" "$A/w5.db" $((N + 1)) "{\"n\":$N,\"workers\":$C}"; then
		store=$(json_obj "$JB_STATS" store)
		commits=$(num "$store" commits)
		requests=$(num "$store" requests)
		enq_ms=$(num "$JB_RESULT" enqueue_ms)
		A_LINE=$(printf '{"bench":"w5","impl":"awaitd","n":%s,"concurrency":%s,"synchronous":"full","total_ms":%.0f,"per_s":%.0f,"complete_per_s":%.0f,"enqueue_ms":%s,"enqueue_per_s":%s,"completed_during_enqueue":%s,"drain_ms":%.0f,"drain_per_s":%s,"succeeded":%s,"store":%s,"requests_per_commit":%s,"latency_ms":%s,"wait_ms":%s,"threads":%s,"log_warnings":%s}' \
			"$N" "$C" "$JB_TOTAL_MS" "$(awk -v n="$N" -v t="$JB_TOTAL_MS" 'BEGIN { print n / t * 1000 }')" \
			"$(awk -v n="$N" -v t="$JB_TOTAL_MS" 'BEGIN { print n / t * 1000 }')" \
			"$(j "$(awk -v e="$enq_ms" 'BEGIN { if (e != "") printf "%.0f", e }')")" \
			"$(j "$(awk -v n="$N" -v e="$enq_ms" 'BEGIN { if (e + 0 > 0) printf "%.0f", n / e * 1000 }')")" \
			"$JB_DONE_AT_ENQ" "$(awk -v a="$JB_TOTAL_MS" -v b="$JB_ENQ_MS" 'BEGIN { print a - b }')" \
			"$(j "$(awk -v n="$N" -v d="$JB_DONE_AT_ENQ" -v a="$JB_TOTAL_MS" -v b="$JB_ENQ_MS" 'BEGIN { if (a - b > 0) printf "%.0f", (n + 1 - d) / (a - b) * 1000 }')")" \
			"$(j "$JB_SUCCEEDED")" "$store" "$(ratio "$requests" "$commits")" \
			"$(json_obj "$JB_STATS" latency_ms)" "$(json_obj "$JB_STATS" wait_ms)" "$JB_THREADS" \
			"$(grep -c -E ' (WARN|ERROR) ' "$JB_LOG")")
		printf '%s\n' "$A_LINE"
	else
		printf '{"bench":"w5","impl":"awaitd","error":"%s","log":"%s"}\n' "$(jstr "$JB_ERR")" \
			"$(jstr "$(grep -E ' (WARN|ERROR) ' "$JB_LOG" | tail -n 1)")"
	fi
	grep -E ' (WARN|ERROR) ' "$JB_LOG" | head -n 5 >&2
else
	skip awaitd "$AWAITD_WHY"
fi

# ---- BullMQ ---------------------------------------------------------------

B_LINE=
B_WHY=
if ! have redis-server || ! have redis-cli; then
	B_WHY="redis-server/redis-cli not installed and could not be"
elif ! have node || ! have npm; then
	B_WHY="node/npm not installed"
elif [ ! -f "$PEERS/node/bullmq_jobs.mjs" ]; then
	B_WHY="no $PEERS/node/bullmq_jobs.mjs"
else
	if [ ! -f "$NODE_DIR/node_modules/bullmq/package.json" ]; then
		mkdir -p "$NODE_DIR" && cp "$PEERS/node/package.json" "$NODE_DIR/package.json" &&
			(cd "$NODE_DIR" && echo "w5: npm install in $NODE_DIR" >&2 &&
				timeout 300 npm install --no-audit --no-fund >&2 2>&1)
	fi
	if [ -f "$NODE_DIR/node_modules/bullmq/package.json" ]; then
		cp "$PEERS/node/bullmq_jobs.mjs" "$NODE_DIR/bullmq_jobs.mjs" || B_WHY="cannot copy bullmq_jobs.mjs"
	else
		B_WHY="bullmq is not installed in $NODE_DIR and npm could not install it"
	fi
	rping() { [ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ]; }
	[ -z "$B_WHY" ] && rping && B_WHY="something already answers on port $RPORT"
fi
if [ -z "$B_WHY" ]; then
	mkdir -p "$TMP/redis"
	redis-server --port "$RPORT" --bind 127.0.0.1 --appendonly yes --appendfsync everysec \
		--dir "$TMP/redis" --save '' --daemonize no >"$TMP/redis.log" 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
	if wait_for 200 rping; then
		(cd "$NODE_DIR" && REDIS_PORT=$RPORT timeout "$LIMIT" node bullmq_jobs.mjs "$N" "$C") \
			>"$TMP/b.out" 2>"$TMP/b.err"
		rc=$?
		raw=$(grep -m1 '^{' "$TMP/b.out")
		if [ -n "$raw" ] && [ "$rc" = 0 ]; then
			tot=$(num "$raw" total_ms)
			B_LINE=$(printf '{"bench":"w5","impl":"bullmq","bullmq":"%s","redis":"%s","appendfsync":"everysec","n":%s,"concurrency":%s,"total_ms":%s,"per_s":%s,"enqueue_per_s":%s,"complete_per_s":%s}' \
				"$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$NODE_DIR/node_modules/bullmq/package.json" | head -n 1)" \
				"$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')" "$N" "$C" "$(j "$tot")" \
				"$(j "$(awk -v n="$N" -v t="$tot" 'BEGIN { if (t + 0 > 0) printf "%.0f", n / t * 1000 }')")" \
				"$(j "$(num "$raw" enqueue_per_s)")" "$(j "$(num "$raw" complete_per_s)")")
			printf '%s\n' "$B_LINE"
		else
			printf '{"bench":"w5","impl":"bullmq","error":"exit %s","stderr":"%s"}\n' "$rc" \
				"$(jstr "$(grep -v '^[[:space:]]*$' "$TMP/b.err" | tail -n 1)")"
		fi
	else
		printf '{"bench":"w5","impl":"bullmq","error":"redis-server not ready after 10 s","stderr":"%s"}\n' \
			"$(jstr "$(tail -n 1 "$TMP/redis.log")")"
	fi
	stop_pid "$RPID"
	PIDS=$(printf '%s\n' $PIDS | grep -vx "$RPID" | tr '\n' ' ')
else
	skip bullmq "$B_WHY"
fi

# ---- raw SQLite -----------------------------------------------------------

R_LINE=
if [ "${W5_RAW:-1}" = 0 ]; then
	skip sqlite_raw "W5_RAW=0"
elif [ "$AWAITD_OK" != 1 ]; then
	skip sqlite_raw "no awaitd to apply the migrations: $AWAITD_WHY"
elif ! ${CC:-cc} -O2 -o "$TMP/w5_raw" "$HERE/w5_raw.c" -lsqlite3 >&2; then
	skip sqlite_raw "cannot build w5_raw.c with ${CC:-cc} -lsqlite3"
else
	for v in one split; do
		db=$TMP/raw-$v.db
		# (the daemon's own migration runner: it skips PostgreSQL's NNNN_x.pg.sql)
		if ! "$AWAITD" migrate --db "$db" --migrations "$ROOT/migrations" >&2; then
			printf '{"bench":"w5","impl":"sqlite_raw","variant":"%s","error":"applying the migrations failed"}\n' "$v"
			continue
		fi
		timeout "$LIMIT" "$TMP/w5_raw" "$db" "$N" 100 "$v" >"$TMP/r.out" 2>"$TMP/r.err"
		rc=$?
		line=$(grep -m1 '^{' "$TMP/r.out")
		if [ -n "$line" ] && [ "$rc" = 0 ]; then
			printf '%s\n' "$line"
			[ "$v" = one ] && R_LINE=$line
		else
			printf '{"bench":"w5","impl":"sqlite_raw","variant":"%s","error":"exit %s","stderr":"%s"}\n' "$v" "$rc" \
				"$(jstr "$(tail -n 1 "$TMP/r.err")")"
		fi
		rm -f "$db" "$db-wal" "$db-shm"
	done
fi

# ---- summary --------------------------------------------------------------

a=$(num "$A_LINE" per_s)
b=$(num "$B_LINE" per_s)
r=$(num "$R_LINE" per_s)
rb=$(ratio "$a" "$b")
met=$(met "$rb" 5)
printf '{"bench":"w5","workload":"W5 jobs","n":%s,"concurrency":%s,"awaitd_per_s":%s,"bullmq_per_s":%s,"sqlite_raw_per_s":%s,"ratio_vs_bullmq":%s,"target":5,"met":%s,"ratio_vs_sqlite_raw":%s}\n' \
	"$N" "$C" "$(j "$a")" "$(j "$b")" "$(j "$r")" "$rb" "$met" "$(ratio "$a" "$r")"
exit 0
