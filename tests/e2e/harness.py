"""tests/e2e/harness.py: what the end-to-end scripts share.

Each script is run as `python3 tests/e2e/test_X.py AWAITD AWAITCTL SCRIPTS`
(tests/CMakeLists.txt). AWAITD_E2E_WRAP="valgrind ..." runs every daemon
under that wrapper; SLOW then stretches the deadlines. check() prints one
line per check; finish() prints "N passed, M failed" and exits 1 if any
check failed.
"""
import os
import sys
import time

AWAITD, AWAITCTL, SCRIPTS = (os.path.abspath(a) for a in sys.argv[1:4])
MIGRATIONS = os.path.join(os.path.dirname(SCRIPTS), "migrations")
WRAP = os.environ.get("AWAITD_E2E_WRAP", "").split()
SLOW = 20 if WRAP else 1  # deadlines stretch under valgrind
_counts = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        _counts["passed"] += 1
        print("ok   " + name, flush=True)
    else:
        _counts["failed"] += 1
        print("FAIL " + name + (": " + str(detail)[-3000:] if detail else ""), flush=True)


def skip(name, why):
    print("skip %s (%s)" % (name, why), flush=True)


def poll(cond, deadline, step=0.02):
    """cond() until truthy or deadline seconds (times SLOW) pass; its last value."""
    end = time.monotonic() + deadline * SLOW
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def finish():
    print("%d passed, %d failed" % (_counts["passed"], _counts["failed"]))
    sys.exit(1 if _counts["failed"] else 0)
