# lib.sh: shell helpers shared by the benchmark scripts (sourced). The
# sourcing script sets BENCH (the "bench" field of its JSON lines) first.

# bench_init NAME (after HERE is set): the paths every benchmark uses (ROOT,
# PEERS, BUILD, AWAITD, AWAITCTL), a temp dir TMP removed at exit (kept with
# BENCH_KEEP=1) and PIDS, the processes stopped at exit. A script that must
# undo more defines bench_cleanup_extra, which runs first.
bench_init() {
	ROOT=$(cd "$HERE/../.." && pwd)
	PEERS=${PEERS:-$ROOT/../shared/peers}
	PEERS=$(cd "$PEERS" 2>/dev/null && pwd || printf '%s' "$PEERS")
	BUILD=${BUILD:-$ROOT/build-bench}
	AWAITD=$BUILD/awaitd
	AWAITCTL=$BUILD/awaitctl
	BENCH_NAME=$1
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/awaitd-$1.XXXXXX") || exit 1
	PIDS=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	if command -v bench_cleanup_extra >/dev/null 2>&1; then bench_cleanup_extra; fi
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "$BENCH_NAME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}

have() { command -v "$1" >/dev/null 2>&1; }
jstr() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g' | cut -c1-300; }
skip() { printf '{"bench":"%s","impl":"%s","skipped":"%s"}\n' "$BENCH" "$1" "$(jstr "$2")"; }
num() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }
j() { [ -n "$1" ] && printf '%s' "$1" || printf null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "null"; else printf "%.3f", a / b }'; }
# met RATIO TARGET: true or false (RATIO >= TARGET), null when RATIO is null
met() { awk -v q="$1" -v t="$2" 'BEGIN { if (q == "null") print "null"; else print (q + 0 >= t + 0) ? "true" : "false" }'; }
apt_install() { # PACKAGE...: install them (as root) if apt-get can
	[ "$(id -u)" = 0 ] && have apt-get || return 1
	echo "$BENCH: apt-get install -y $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 2>&1 && return 0
	DEBIAN_FRONTEND=noninteractive apt-get update >&2 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 2>&1
}

# wait_for N CMD...: run CMD every 50 ms until it succeeds, at most N tries
wait_for() {
	w_n=$1
	shift
	while [ "$w_n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		w_n=$((w_n - 1))
	done
	return 1
}

# build_awaitd NAME: configure and build awaitd in $BUILD (Release) from
# $ROOT if needed; sets AWAITD_OK=1, or 0 with the reason in AWAITD_WHY.
# Uses an existing $AWAITD when the build fails. Chatter goes to stderr.
build_awaitd() {
	AWAITD_OK=1
	AWAITD_WHY=
	if [ ! -f "$BUILD/CMakeCache.txt" ]; then
		cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2 || { AWAITD_OK=0; AWAITD_WHY="cmake configure failed"; }
	fi
	if [ "$AWAITD_OK" = 1 ] && ! cmake --build "$BUILD" --target awaitd -j2 >&2; then
		echo "$1: building awaitd failed" >&2
		if [ -x "$AWAITD" ]; then echo "$1: using the existing $AWAITD" >&2; else AWAITD_OK=0; AWAITD_WHY="awaitd could not be built"; fi
	fi
	if [ "$AWAITD_OK" = 1 ] && [ ! -x "$AWAITD" ]; then AWAITD_OK=0; AWAITD_WHY="no $AWAITD"; fi
	if [ "$AWAITD_OK" = 1 ]; then
		case $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt") in
		Release) ;;
		*) echo "$1: warning: $BUILD is not a Release build" >&2 ;;
		esac
	fi
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	s_n=200
	while kill -0 "$1" 2>/dev/null && [ "$s_n" -gt 0 ]; do
		sleep 0.05
		s_n=$((s_n - 1))
	done
	kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# now_ns: CLOCK_REALTIME in nanoseconds
now_ns() { date +%s%N; }

# thread_ticks PID: one line per thread of PID, "TID UTIME STIME" in clock
# ticks (/proc/PID/task/TID/stat fields 14 and 15)
thread_ticks() {
	for t_dir in /proc/"$1"/task/*; do
		t_stat=$(cat "$t_dir/stat" 2>/dev/null) || continue
		# fields from 3 on (comm, field 2, may hold spaces and parentheses)
		set -- ${t_stat##*) }
		printf '%s %s %s\n' "${t_dir##*/}" "${12}" "${13}"
	done
}

# threads_json PID BEFORE AFTER: a JSON array of the CPU seconds each
# thread used between two thread_ticks snapshots (files), busiest first.
# The thread whose tid is PID is the daemon's loop; awaitd starts one other
# thread, the store's (daemon/store.c), named "store" when it is the only one.
threads_json() {
	awk -v pid="$1" -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '
		FNR == NR { u0[$1] = $2; s0[$1] = $3; next }
		{ tid[++n] = $1; u[n] = ($2 - u0[$1]) / hz; s[n] = ($3 - s0[$1]) / hz; if ($1 != pid) others++ }
		END {
			for (i = 1; i <= n; i++) for (k = i + 1; k <= n; k++) if (u[k] + s[k] > u[i] + s[i]) {
				t = tid[i]; tid[i] = tid[k]; tid[k] = t; t = u[i]; u[i] = u[k]; u[k] = t; t = s[i]; s[i] = s[k]; s[k] = t
			}
			printf "["
			for (i = 1; i <= n; i++) {
				role = tid[i] == pid ? "loop" : (others == 1 ? "store" : "other")
				printf "%s{\"tid\":%s,\"thread\":\"%s\",\"cpu_s\":%.2f,\"user_s\":%.2f,\"sys_s\":%.2f}", (i > 1 ? "," : ""), tid[i], role, u[i] + s[i], u[i], s[i]
			}
			printf "]"
		}' "$2" "$3"
}

# json_obj JSON KEY: the flat object value of "KEY":{...} (no nested
# objects inside), or null
json_obj() {
	j_v=$(printf '%s\n' "$1" | sed -n "s/.*\"$2\":\({[^{}]*}\).*/\1/p" | head -n 1)
	[ -n "$j_v" ] && printf '%s' "$j_v" || printf null
}

# jobs_bench DIR DB TOTAL ARGS_JSON: the awaitd side of the job benchmarks
# (w5.sh, w6.sh). Starts the daemon ($AWAITD, default synchronous = full)
# on DIR/scripts with the database DB and the socket DIR/s, runs the job
# "bulk" with ARGS_JSON through `$AWAITCTL run` (bulk enqueues the jobs),
# and polls `awaitctl --json stats` every 100 ms until TOTAL jobs succeeded
# (jobs.completed counts a job once its finish is committed; bulk is one
# of TOTAL); the cheap in-memory counter, where `status` would count the
# jobs table on the store thread at every poll. Then reads status and
# stats and stops the daemon. Sets:
#   JB_ERR          empty, or why the run failed
#   JB_TOTAL_MS     from starting `awaitctl run bulk` to TOTAL succeeded
#   JB_ENQ_MS       from the same start to bulk's answer (seen by the poll)
#   JB_DONE_AT_ENQ  jobs succeeded when bulk's answer was seen
#   JB_RESULT       bulk's result (JSON)
#   JB_STATS        `awaitctl --json stats` after the run
#   JB_SUCCEEDED    status: jobs.succeeded after the run
#   JB_THREADS      threads_json of the daemon over the run
#   JB_LOG          the daemon's log (DIR/awaitd.log)
# A hard limit of $LIMIT seconds (set by the caller) applies to the run.
jobs_bench() {
	jb_dir=$1 jb_db=$2 jb_total=$3 jb_args=$4
	JB_ERR= JB_TOTAL_MS= JB_ENQ_MS= JB_DONE_AT_ENQ= JB_RESULT= JB_STATS= JB_SUCCEEDED= JB_THREADS=null
	JB_LOG=$jb_dir/awaitd.log
	jb_sock=$jb_dir/s
	"$AWAITD" --scripts "$jb_dir/scripts" --db "$jb_db" --migrations "$ROOT/migrations" \
		--socket "$jb_sock" >"$JB_LOG" 2>&1 &
	jb_pid=$!
	if ! wait_for 200 "$AWAITCTL" -s "$jb_sock" ping; then
		JB_ERR="daemon not ready after 10 s: $(tail -n 1 "$JB_LOG")"
		stop_pid "$jb_pid"
		return 1
	fi
	thread_ticks "$jb_pid" >"$jb_dir/ticks0"
	rm -f "$jb_dir/run.rc"
	jb_t0=$(now_ns)
	("$AWAITCTL" -s "$jb_sock" --json run bulk "$jb_args" >"$jb_dir/run.out" 2>"$jb_dir/run.err"
		echo $? >"$jb_dir/run.rc") &
	jb_runner=$!
	jb_done=0 jb_dead=0 jb_enq=
	while :; do
		jb_now=$(now_ns)
		if [ -z "$jb_enq" ] && [ -f "$jb_dir/run.rc" ]; then
			jb_enq=$jb_now
			JB_DONE_AT_ENQ=$jb_done
			if [ "$(cat "$jb_dir/run.rc")" != 0 ]; then
				JB_ERR="awaitctl run bulk: $(cat "$jb_dir/run.err" "$jb_dir/run.out" | tail -n 1)"
				break
			fi
		fi
		jb_st=$("$AWAITCTL" -s "$jb_sock" --json stats 2>/dev/null)
		jb_jobs=${jb_st#*\"jobs\":\{}
		jb_done=$(num "$jb_jobs" completed)
		jb_done=${jb_done:-0}
		jb_d=$(num "$jb_jobs" dead)
		jb_c=$(num "$jb_jobs" cancelled)
		jb_dead=$((${jb_d:-0} + ${jb_c:-0}))
		if [ "$jb_done" -ge "$jb_total" ]; then
			jb_end=$(now_ns)
			break
		fi
		if [ $((jb_done + jb_dead)) -ge "$jb_total" ]; then
			JB_ERR="$jb_dead jobs dead or cancelled"
			break
		fi
		if [ $(((jb_now - jb_t0) / 1000000000)) -ge "$LIMIT" ]; then
			JB_ERR="$jb_done of $jb_total jobs succeeded after ${LIMIT}s"
			break
		fi
		sleep 0.1
	done
	thread_ticks "$jb_pid" >"$jb_dir/ticks1"
	wait "$jb_runner" 2>/dev/null
	if [ -z "$JB_ERR" ]; then
		JB_TOTAL_MS=$(ms_between "$jb_t0" "$jb_end")
		JB_ENQ_MS=$(ms_between "$jb_t0" "${jb_enq:-$jb_end}")
		[ -n "$JB_DONE_AT_ENQ" ] || JB_DONE_AT_ENQ=$jb_done
		JB_RESULT=$(grep -m1 '^{' "$jb_dir/run.out")
	fi
	JB_THREADS=$(threads_json "$jb_pid" "$jb_dir/ticks0" "$jb_dir/ticks1")
	JB_STATS=$("$AWAITCTL" -s "$jb_sock" --json stats 2>/dev/null)
	jb_status=$("$AWAITCTL" -s "$jb_sock" --json status 2>/dev/null)
	JB_SUCCEEDED=$(num "${jb_status#*\"jobs\":\{}" succeeded)
	stop_pid "$jb_pid"
	[ -z "$JB_ERR" ]
}

# Milliseconds between two now_ns readings.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# w6_db DB [SQL]: a migrated database for the W6 benchmarks, accounts
# 1..1000 holding 1,000,000 each (as in the Tarantool peer), then SQL.
# Returns non-zero when either step failed (chatter on stderr).
w6_db() {
	"$AWAITD" migrate --db "$1" --migrations "$ROOT/migrations" >&2 &&
		sqlite3 "$1" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)
			INSERT OR REPLACE INTO accounts (id, owner, balance) SELECT i, 'w6-' || i, 1000000 FROM c; ${2:-}" >&2
}

# w6_tarantool: the W6 peer (purchases.lua N C, wal_mode fsync, in
# $TMP/tt) as one JSON line of $BENCH, also left in T_LINE (empty when it
# was skipped or failed). Needs $PEERS, $LIMIT, N and C.
w6_tarantool() {
	T_LINE=
	if ! have tarantool; then
		skip tarantool "tarantool is not installed and could not be"
	elif [ ! -f "$PEERS/tarantool/purchases.lua" ]; then
		skip tarantool "no $PEERS/tarantool/purchases.lua"
	else
		mkdir -p "$TMP/tt"
		t_raw=$(cd "$TMP/tt" && TT_DIR="$TMP/tt" timeout "$LIMIT" tarantool "$PEERS/tarantool/purchases.lua" "$N" "$C" fsync 2>"$TMP/t.err" | grep -m1 '^{')
		if [ -n "$t_raw" ]; then
			T_LINE=$(printf '{"bench":"%s","impl":"tarantool","tarantool":"%s","wal_mode":"fsync","n":%s,"workers":%s,"total_ms":%s,"purchases_per_s":%s}' \
				"$BENCH" "$(tarantool --version | head -n 1 | awk '{ print $2 }')" "$(j "$(num "$t_raw" n)")" "$C" \
				"$(j "$(num "$t_raw" ms)")" "$(j "$(num "$t_raw" per_s)")")
			printf '%s\n' "$T_LINE"
		else
			printf '{"bench":"%s","impl":"tarantool","error":"%s"}\n' "$BENCH" \
				"$(jstr "$(grep -v '^[[:space:]]*$' "$TMP/t.err" | tail -n 1)")"
		fi
	fi
}

# w6_setup NAME: what both W6 benchmarks need before they run: N a multiple
# of C (exits 2 otherwise), tarantool and sqlite3 installed when possible,
# awaitd and awaitctl built (AWAITD_OK / AWAITD_WHY as build_awaitd sets).
w6_setup() {
	if [ $((N % C)) != 0 ]; then
		echo "$1: W6_N ($N) must be a multiple of W6_C ($C) (Tarantool's workers take N/C each)" >&2
		exit 2
	fi
	have tarantool || apt_install tarantool || true
	have sqlite3 || apt_install sqlite3 || true
	build_awaitd "$1"
	if [ "$AWAITD_OK" = 1 ] && ! cmake --build "$BUILD" --target awaitctl -j2 >&2; then
		[ -x "$AWAITCTL" ] || { AWAITD_OK=0; AWAITD_WHY="awaitctl could not be built"; }
	fi
	[ "$AWAITD_OK" = 1 ] && ! have sqlite3 && { AWAITD_OK=0; AWAITD_WHY="the sqlite3 CLI is not installed and could not be"; }
}
