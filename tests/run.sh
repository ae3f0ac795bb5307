#!/bin/sh
# The whole test suite: build from scratch, run every unit, Lua and e2e
# test; then again under AddressSanitizer + UndefinedBehaviorSanitizer;
# then the Lua and e2e tests under valgrind. Benchmarks are separate
# (tests/bench/run.sh). Usage: sh tests/run.sh [--quick]   (--quick: plain build only)
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWAITD_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build -LE bench --output-on-failure -j "$jobs"

[ "${1:-}" = "--quick" ] && exit 0

echo "== ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAWAITD_SANITIZE=ON -DAWAITD_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan -LE bench --output-on-failure -j "$jobs"

echo "== valgrind (Lua API tests)"
passed=0
for f in tests/lua/test_*.lua; do
	args=$(sed -n '1s/^-- awaitd-args: //p' "$f")
	case "$args" in *max-memory*|*max-slice*) continue ;; esac # timing-sensitive under valgrind
	# valgrind runs code ~50x slower: widen the slice so no test task is
	# killed as a blocked loop merely for being run under it (the file's own
	# args, such as --workers, stay); --fair-sched: the worker threads must
	# not starve the loop
	args="$args --max-slice-ms 5000"
	# shellcheck disable=SC2086
	valgrind -q --vgdb=no --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		build/awaitd run $args "$f" >/dev/null || { echo "valgrind: $f failed"; echo "$passed passed, 1 failed"; exit 1; }
	echo "valgrind clean: $f"
	passed=$((passed + 1))
done
echo "valgrind: $passed passed, 0 failed"

echo "== valgrind (awaitd test: the example scripts' tests on the virtual clock)"
valgrind -q --vgdb=no --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	build/awaitd test --scripts scripts --migrations migrations tests/scripts/test_*.lua >/dev/null ||
	{ echo "valgrind: awaitd test failed"; exit 1; }
echo "valgrind clean: awaitd test"

echo "== valgrind (e2e: the daemon under valgrind, driven by awaitctl)"
for f in tests/e2e/test_*.py; do
	echo "-- $f"
	# --fair-sched: valgrind runs one thread at a time, and without it a
	# reader thread in a long statement starves the loop for minutes.
	# --vgdb=no: no gdbserver FIFOs in /tmp, whose names reuse pids: a stale
	# root-owned one made the run as `nobody` in test_jobs fail to start
	AWAITD_E2E_WRAP="valgrind -q --vgdb=no --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
		python3 "$f" build/awaitd build/awaitctl scripts
done

