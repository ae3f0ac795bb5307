# lib.sh: shell helpers shared by the benchmark scripts (sourced). The
# sourcing script sets BENCH (the "bench" field of its JSON lines) first.

have() { command -v "$1" >/dev/null 2>&1; }
jstr() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g' | cut -c1-300; }
skip() { printf '{"bench":"%s","impl":"%s","skipped":"%s"}\n' "$BENCH" "$1" "$(jstr "$2")"; }
num() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }
j() { [ -n "$1" ] && printf '%s' "$1" || printf null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "null"; else printf "%.3f", a / b }'; }
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
