# lib.sh: shell helpers shared by the benchmark scripts (sourced).

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
