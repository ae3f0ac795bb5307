#!/bin/sh
# tests/bench/run.sh: the benchmark command. Runs, in one go on this
# machine, each workload for awaitd and for the peers of shared/peers
# (Node.js, Tarantool, a bare Lua floor), then one summary line per
# workload with the ratios the targets are stated in.
#
#   sh tests/bench/run.sh            (from the repository root or anywhere)
#
# Every line on stdout is one JSON object. Set-up chatter (apt, cmake) and
# the peers' stderr go to stderr or to a temp dir. Environment:
#   PEERS=DIR         the peers folder (default: shared/peers beside the clone)
#   BUILD=DIR         awaitd's Release build dir (default: build-bench)
#   BENCH_TIMEOUT=S   kill any single run after S seconds (default 300)
#   BENCH_KEEP=1      keep the temp dir with every run's stdout/stderr
#
# When run as root it installs the missing peers (tarantool, lua5.4) with
# apt-get; a peer that is missing and cannot be installed gives a line
# {"bench":..,"impl":..,"skipped":"reason"} instead of a failure.
# Runs are sequential (never two benchmarks at once); the machine is
# shared, so results vary by some 10-20% between runs.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$(dirname "$0")/../../../shared/peers}
PEERS=$(cd "$PEERS" 2>/dev/null && pwd || printf '%s' "$PEERS")
BUILD=${BUILD:-$ROOT/build-bench}
AWAITD=$BUILD/awaitd
LIMIT=${BENCH_TIMEOUT:-300}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/awaitd-bench.XXXXXX") || exit 1
RESULTS=$TMP/results.jsonl
: >"$RESULTS"
cleanup() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers --------------------------------------------------------------

# JSON string contents: escape \ and ", drop control characters, cut to 300.
jstr() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g' | cut -c1-300; }

emit() { printf '%s\n' "$1"; printf '%s\n' "$1" >>"$RESULTS"; }

skip() { emit "{\"bench\":\"$1\",\"impl\":\"$2\",\"skipped\":\"$(jstr "$3")\"}"; }

have() { command -v "$1" >/dev/null 2>&1; }

# Milliseconds between two `date +%s%N` readings.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# run BENCH IMPL VARIANT EXTRA DIR CMD...: run CMD in DIR, print each JSON
# line it printed with "impl" (when missing), "variant" (when not empty)
# and the EXTRA fields (',"k":v' text) added; a run that fails or prints
# no JSON gives an "error" line. Sets PROC_MS (whole-process wall time).
run() {
	r_bench=$1 r_impl=$2 r_variant=$3 r_extra=$4 r_dir=$5
	shift 5
	r_add=
	[ -n "$r_variant" ] && r_add=",\"variant\":\"$r_variant\""
	r_add="$r_add$r_extra"
	r_t0=$(date +%s%N)
	(cd "$r_dir" && exec timeout "$LIMIT" "$@") >"$TMP/out" 2>"$TMP/err"
	r_rc=$?
	r_t1=$(date +%s%N)
	PROC_MS=$(ms_between "$r_t0" "$r_t1")
	cat "$TMP/out" >>"$TMP/all.out"
	cat "$TMP/err" >>"$TMP/all.err"
	r_n=0
	while IFS= read -r r_line; do
		case $r_line in
		'{'*'}') ;;
		*) continue ;;
		esac
		case $r_line in
		*'"impl":'*) ;;
		*) r_line="{\"impl\":\"$r_impl\",${r_line#\{}" ;;
		esac
		[ -n "$r_add" ] && r_line="${r_line%\}}$r_add}"
		emit "$r_line"
		r_n=$((r_n + 1))
	done <"$TMP/out"
	if [ "$r_rc" -ne 0 ] || [ "$r_n" -eq 0 ]; then
		r_why=$(grep -m1 '^awaitd run:' "$TMP/err")
		[ -n "$r_why" ] || r_why=$(grep -m1 -i 'error' "$TMP/err")
		[ -n "$r_why" ] || r_why=$(grep -v '^[[:space:]]*$' "$TMP/err" | tail -n 1)
		[ "$r_rc" -eq 124 ] && r_why="killed after ${LIMIT}s; $r_why"
		emit "{\"bench\":\"$r_bench\",\"impl\":\"$r_impl\"$r_add,\"error\":\"exit $r_rc\",\"process_ms\":$PROC_MS,\"stderr\":\"$(jstr "$r_why")\"}"
		return 1
	fi
	return 0
}

# ---- set-up ---------------------------------------------------------------

apt_install() { # PACKAGE: install it (as root) if apt-get can
	[ "$(id -u)" = 0 ] && have apt-get || return 1
	echo "bench: apt-get install -y $1" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >&2 2>&1 && return 0
	DEBIAN_FRONTEND=noninteractive apt-get update >&2 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >&2 2>&1
}
have tarantool || apt_install tarantool || true
have lua5.4 || apt_install lua5.4 || true

NODE_OK=0
if have node && node --version >/dev/null 2>&1; then
	NODE_OK=1
	echo "bench: node $(node --version)" >&2
fi

# awaitd: configure once, then an incremental build of the binary only (a
# no-op when it is up to date; picks up the runtime as it is now).
AWAITD_OK=1
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2 || AWAITD_OK=0
fi
if [ "$AWAITD_OK" = 1 ] && ! cmake --build "$BUILD" --target awaitd -j2 >&2; then
	echo "bench: building awaitd failed" >&2
	[ -x "$AWAITD" ] && echo "bench: using the existing $AWAITD" >&2 || AWAITD_OK=0
fi
[ -x "$AWAITD" ] || AWAITD_OK=0
if [ "$AWAITD_OK" = 1 ]; then
	case $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt") in
	Release) ;;
	*) echo "bench: warning: $BUILD is not a Release build" >&2 ;;
	esac
fi

B=$HERE
awaitd() { # BENCH VARIANT EXTRA [VAR=VALUE...] ARGS...: awaitd run ARGS
	a_bench=$1 a_variant=$2 a_extra=$3
	shift 3
	if [ "$AWAITD_OK" = 1 ]; then
		run "$a_bench" awaitd "$a_variant" "$a_extra" "$ROOT" env "$@"
	else
		skip "$a_bench" awaitd "awaitd could not be built"
		return 1
	fi
}
node_peer() { # BENCH SCRIPT ARGS...
	n_bench=$1
	shift
	if [ "$NODE_OK" != 1 ]; then skip "$n_bench" node "node is not installed"; return 1; fi
	if [ ! -f "$PEERS/node/$1" ]; then skip "$n_bench" node "no $PEERS/node/$1"; return 1; fi
	n_script=$1
	shift
	run "$n_bench" node "" "" "$PEERS" node "node/$n_script" "$@"
}
tarantool_peer() { # BENCH EXTRA SCRIPT ARGS...
	t_bench=$1 t_extra=$2
	shift 2
	if ! have tarantool; then skip "$t_bench" tarantool "tarantool is not installed and could not be"; return 1; fi
	if [ ! -f "$PEERS/tarantool/$1" ]; then skip "$t_bench" tarantool "no $PEERS/tarantool/$1"; return 1; fi
	t_script=$1
	shift
	t_dir=$(mktemp -d "$TMP/tt.XXXXXX")
	run "$t_bench" tarantool "" "$t_extra" "$t_dir" env TT_DIR="$t_dir" tarantool "$PEERS/tarantool/$t_script" "$@"
}
lua_floor() { # BENCH SCRIPT
	if ! have lua5.4; then skip "$1" lua5.4 "lua5.4 is not installed and could not be"; return 1; fi
	run "$1" lua5.4 "" "" "$PEERS" lua5.4 "lua/$2"
}
process_line() { # BENCH IMPL VARIANT: the whole-process wall time of the last run
	p_v=
	[ -n "$3" ] && p_v=",\"variant\":\"$3\""
	emit "{\"bench\":\"$1\",\"impl\":\"$2\"$p_v,\"process_ms\":$PROC_MS}"
}

# ---- workloads ------------------------------------------------------------

# W1 spawn: 1,000,000 trivial tasks in batches of 1,000.
awaitd spawn "" "" "$AWAITD" run "$B/w1_spawn.lua"
node_peer spawn spawn.mjs
tarantool_peer spawn "" spawn.lua
lua_floor coroutine_floor coroutine_floor.lua
lua_floor coroutine_pool_floor coroutine_pool_floor.lua

# W2 timers: 100,000 concurrent sleep(100) under one all().
# Default limits first (the script yields while spawning when it must);
# then the way Node does it, every timer created in one go, which needs a
# larger max slice.
awaitd timers "" "" "$AWAITD" run "$B/w2_timers.lua"
awaitd timers one_go_max_slice_5000 "" "$AWAITD" run --max-slice-ms 5000 "$B/w2_timers.lua" '{"yield_ms":0}'
awaitd timers all_of_functions "" "$AWAITD" run "$B/w2_timers.lua" '{"functions":true}'
node_peer timers timers.mjs
# (each fiber stack takes memory maps: 100,000 fibers exceed
# vm.max_map_count; should 30,000 fail too, 20,000)
tarantool_peer timers ',"note":"n=30000: 100,000 fibers exhaust memory maps"' timers.lua 30000 ||
	tarantool_peer timers ',"note":"n=20000: 30,000 fibers failed (memory maps), see the line above"' timers.lua 20000

# W3 throttle: 10,000 x sleep(10) through a queue of concurrency 100.
awaitd throttle "" "" "$AWAITD" run "$B/w3_throttle.lua"
node_peer throttle throttle.mjs
# diagnostic: the same with libevent's precise timer. libevent 2.1 reads
# CLOCK_MONOTONIC_COARSE (4 ms ticks on this kernel) unless the base has
# EVENT_BASE_FLAG_PRECISE_TIMER (or EVENT_PRECISE_TIMER=1 is set): awaitd's
# sleep(10) then takes ~12 ms and sleep(1) ~4 ms.
awaitd throttle EVENT_PRECISE_TIMER=1 "" EVENT_PRECISE_TIMER=1 "$AWAITD" run "$B/w3_throttle.lua"

# W4 timeout: 100,000 x timeout(50) (half 10 ms, half 1000 ms), one all().
if awaitd timeout "" "" "$AWAITD" run "$B/w4_timeout.lua"; then
	process_line timeout awaitd ""
fi
# the way Node does it: all() gets the 100,000 functions and starts them
# itself, at the defaults (it yields between chunks)...
if awaitd timeout functions "" "$AWAITD" run "$B/w4_timeout.lua" '{"functions":true}'; then
	process_line timeout awaitd functions
fi
# ... and in one slice
if awaitd timeout functions_max_slice_5000 "" "$AWAITD" run --max-slice-ms 5000 "$B/w4_timeout.lua" '{"functions":true}'; then
	process_line timeout awaitd functions_max_slice_5000
fi
if node_peer timeout timeout.mjs; then
	process_line timeout node ""
fi

# W9 worker: 8 CPU-bound tasks of ~200 ms through async.worker (one worker
# per core) and then on the loop, a 10 ms timer ticking beside each (the
# script prints both lines and its summary line; no peer: Node's
# worker_threads would need a second module format)
awaitd worker "" "" "$AWAITD" run --max-slice-ms 5000 "$B/w9_worker.lua"

# Bytes per suspended task.
awaitd task_bytes "" "" "$AWAITD" run "$B/task_bytes.lua"

# W7 ping: the control socket against Redis (own script; prints its own
# result lines and its summary line)
sh "$(dirname "$0")/w7.sh"

# W8 http: 10,000 GETs from nginx, 50 in flight, against Node's fetch +
# p-limit (own script; prints its own result lines and its summary line)
sh "$(dirname "$0")/w8.sh"

# W10 dashboard: 50 browsers polling the dashboard's /api/ paths once a
# second; the loop lag they add, by the daemon's own probe (own script; no
# peer: the other systems' dashboards are separate services)
sh "$(dirname "$0")/w10.sh"

# W5 with a per-key limit: the same jobs with { by = "k", concurrency = 1 }
# over 1,000 keys against W5 without it, same run (own script; own lines)
sh "$(dirname "$0")/w5_keys.sh"

# W5 jobs: 100,000 durable trivial jobs through the daemon, against BullMQ
# on Redis (appendfsync everysec) and the raw SQLite floor (own script;
# prints its own result lines and its summary line)
sh "$(dirname "$0")/w5.sh"

# W5 on the PostgreSQL store: 20,000 jobs with 1, 2 and 3 daemons on one
# PostgreSQL 15 of the bench's own, against Graphile Worker 0.18 on the same
# server (own script; own lines)
python3 "$(dirname "$0")/w5_pg.py" "$BUILD"

# W6 purchases: 20,000 purchase jobs (debit+order step, receipt step, each
# durable) by 100 workers, against Tarantool with wal_mode fsync (own
# script; prints its own result lines and its summary line)
sh "$(dirname "$0")/w6.sh"

# W6 as db:tx: 100,000 purchases (two transactions each) by 100 tasks in
# one job, against the same Tarantool peer (own script; own lines)
sh "$(dirname "$0")/w6_tx.sh"

# ---- summary --------------------------------------------------------------

# pick BENCH IMPL [VARIANT]: the first result line (no error/skip/process line)
pick() {
	grep -F "\"bench\":\"$1\"" "$RESULTS" | grep -F "\"impl\":\"$2\"" |
		grep -v -e '"error"' -e '"skipped"' -e '"process_ms"' |
		if [ -n "${3:-}" ]; then grep -F "\"variant\":\"$3\""; else grep -v '"variant"'; fi |
		head -n 1
}
pick_process() {
	grep -F "\"bench\":\"$1\"" "$RESULTS" | grep -F "\"impl\":\"$2\"" | grep -F '"process_ms"' |
		grep -v '"error"' |
		if [ -n "${3:-}" ]; then grep -F "\"variant\":\"$3\""; else grep -v '"variant"'; fi |
		head -n 1
}
# num LINE KEY: a number field of a JSON line, or empty
num() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }
# j VALUE: the value, or null when empty
j() { [ -n "$1" ] && printf '%s' "$1" || printf null; }
# ratio A B (3 decimals) or null
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "null"; else printf "%.3f", a / b }'; }
# le A T / ge A T: true/false/null
le() { awk -v a="$1" -v t="$2" 'BEGIN { if (a == "" || a == "null") print "null"; else print (a + 0 <= t + 0) ? "true" : "false" }'; }
ge() { awk -v a="$1" -v t="$2" 'BEGIN { if (a == "" || a == "null") print "null"; else print (a + 0 >= t + 0) ? "true" : "false" }'; }

# W1
a=$(num "$(pick spawn awaitd)" per_s)
n=$(num "$(pick spawn node)" per_s)
t=$(num "$(pick spawn tarantool)" per_s)
f=$(num "$(pick coroutine_floor lua5.4)" per_s)
p=$(num "$(pick coroutine_pool_floor lua5.4)" per_s)
rn=$(ratio "$a" "$n")
rt=$(ratio "$a" "$t")
emit "{\"bench\":\"summary\",\"workload\":\"W1 spawn\",\"awaitd_per_s\":$(j "$a"),\"node_per_s\":$(j "$n"),\"tarantool_per_s\":$(j "$t"),\"awaitd_vs_node\":$rn,\"target_vs_node\":0.6,\"meets_vs_node\":$(ge "$rn" 0.6),\"awaitd_vs_tarantool\":$rt,\"target_vs_tarantool\":4,\"meets_vs_tarantool\":$(ge "$rt" 4),\"awaitd_vs_lua_floor\":$(ratio "$a" "$f"),\"awaitd_vs_lua_pool_floor\":$(ratio "$a" "$p")}"

# W2: the default-limits run when it succeeded, else the one-go run
w2=$(pick timers awaitd)
w2v=default
if [ -z "$w2" ]; then
	w2=$(pick timers awaitd one_go_max_slice_5000)
	w2v=one_go_max_slice_5000
fi
[ -n "$w2" ] || w2v=none
nl=$(pick timers node)
ams=$(num "$w2" ms)
ov=$(ratio "$ams" 100)
arss=$(num "$w2" rss_mb)
nrss=$(num "$nl" rss_mb)
rr=$(ratio "$arss" "$nrss")
emit "{\"bench\":\"summary\",\"workload\":\"W2 timers\",\"awaitd_run\":\"$w2v\",\"awaitd_default_limits_ok\":$([ -n "$(pick timers awaitd)" ] && echo true || echo false),\"awaitd_ms\":$(j "$ams"),\"awaitd_overhead\":$ov,\"target_overhead\":1.3,\"meets_overhead\":$(le "$ov" 1.3),\"node_overhead\":$(ratio "$(num "$nl" ms)" 100),\"awaitd_rss_mb\":$(j "$arss"),\"node_rss_mb\":$(j "$nrss"),\"rss_vs_node\":$rr,\"meets_rss\":$(le "$rr" 1)}"

# W3
w3=$(pick throttle awaitd)
ov=$(num "$w3" overhead)
emit "{\"bench\":\"summary\",\"workload\":\"W3 throttle\",\"awaitd_ms\":$(j "$(num "$w3" ms)"),\"awaitd_overhead\":$(j "$ov"),\"target_overhead\":1.02,\"meets_overhead\":$(le "$ov" 1.02),\"awaitd_peak\":$(j "$(num "$w3" peak)"),\"node_overhead\":$(j "$(num "$(pick throttle node)" overhead)"),\"awaitd_precise_timer_overhead\":$(j "$(num "$(pick throttle awaitd EVENT_PRECISE_TIMER=1)" overhead)")}"

# W4: the default-limits run when it succeeded, else the functions run
w4v=
w4=$(pick timeout awaitd)
if [ -z "$w4" ]; then
	w4v=functions_max_slice_5000
	w4=$(pick timeout awaitd "$w4v")
fi
ams=$(num "$w4" ms)
aok=$(num "$w4" ok)
ato=$(num "$w4" timed_out)
apr=$(num "$(pick_process timeout awaitd "$w4v")" process_ms)
nl=$(pick timeout node)
counts=null
[ -n "$aok" ] && counts=$([ "$aok" = 50000 ] && [ "$ato" = 50000 ] && echo true || echo false)
emit "{\"bench\":\"summary\",\"workload\":\"W4 timeout\",\"awaitd_run\":\"${w4v:-default}\",\"awaitd_settle_ms\":$(j "$ams"),\"target_settle_ms\":150,\"meets_settle\":$(le "$ams" 150),\"awaitd_ok\":$(j "$aok"),\"awaitd_timed_out\":$(j "$ato"),\"awaitd_counts_as_expected\":$counts,\"awaitd_process_ms\":$(j "$apr"),\"awaitd_exit_after_settle_ms\":$(j "$(awk -v p="$apr" -v s="$ams" 'BEGIN { if (p != "" && s != "") printf "%.1f", p - s }')"),\"node_settle_ms\":$(j "$(num "$nl" ms)"),\"node_process_ms\":$(j "$(num "$(pick_process timeout node)" process_ms)")}"

# bytes per task
tb=$(pick task_bytes awaitd)
emit "{\"bench\":\"summary\",\"workload\":\"task_bytes\",\"lua_bytes_per_task\":$(j "$(num "$tb" lua_bytes_per_task)"),\"rss_bytes_per_task\":$(j "$(num "$tb" rss_bytes_per_task)"),\"cancel_ms\":$(j "$(num "$tb" cancel_ms)")}"
