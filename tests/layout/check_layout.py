#!/usr/bin/env python3
"""tests/layout/check_layout.py: the house rules the build cannot see.

    python3 tests/layout/check_layout.py SOURCE_DIR

1. Includes point one way. Every `#include "x.h"` in daemon/<part>/ and
   bindings/ is resolved to the part that holds x.h; an include from a part
   to one it may not call is an error:

       service -> control, ctl, web, jobs, bindings, store, runtime, base
       web     -> control, jobs, store, runtime, base
       ctl     -> control (the protocol), store (enqueue limits), base
       control -> jobs, store, runtime, base
       jobs    -> bindings, store, runtime, base
       bindings-> store, runtime, base
       store   -> base
       runtime -> base

   and no two parts include each other. KNOWN would list wrong-way
   includes kept for a while (an entry no longer needed is an error too, so
   the list only shrinks); it is empty.
2. No source file is over MAX_LINES lines, but for those in LONG, which may
   not grow past the size recorded there while they wait to be split.

Prints one line per check and "N passed, M failed".
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
MAX_LINES = 600

MAY = {
    "service": {"control", "ctl", "web", "jobs", "bindings", "store", "runtime", "base"},
    "web": {"control", "jobs", "store", "runtime", "base"},
    "ctl": {"control", "store", "base"},
    "control": {"jobs", "store", "runtime", "base"},
    "jobs": {"bindings", "store", "runtime", "base"},
    "bindings": {"store", "runtime", "base"},
    "store": {"base"},
    "runtime": {"base"},
    "base": set(),
}

# wrong-way includes still to be removed: (file, header); none left
KNOWN = set()

# files waiting to be split by concern, with the size they may not grow
# past; none are left
LONG = {}

counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    counts["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok or not detail else ": " + detail))


def part_of(rel):
    bits = rel.split("/")
    if bits[0] == "bindings":
        return "bindings"
    if bits[0] == "daemon" and len(bits) == 3:
        return bits[1]
    return None


def sources():
    out = []
    for top in ("daemon", "bindings"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(d, f), ROOT))
    return sorted(out)


def main():
    files = sources()
    stray = [f for f in files if part_of(f) is None]
    check("every source file sits in a part folder (daemon/<part>/ or bindings/)", not stray,
          ", ".join(stray))
    check("the parts are the known ones", {part_of(f) for f in files} - {None} <= set(MAY),
          str({part_of(f) for f in files} - set(MAY)))
    where = {}
    for f in files:
        if f.endswith(".h"):
            where.setdefault(os.path.basename(f), set()).add(part_of(f))
    dup = {h: p for h, p in where.items() if len(p) > 1}
    check("no header name is used by two parts", not dup, str(dup))

    wrong, seen_known, edges = [], set(), set()
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for f in files:
        src = part_of(f)
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                m = inc.match(line)
                if not m:
                    continue
                h = os.path.basename(m.group(1))
                dst = next(iter(where.get(h, {None})))
                if dst is None or dst == src or src is None:
                    continue  # generated (embed/*_lua.h) or within the part
                if (f, h) in KNOWN:
                    seen_known.add((f, h))
                    continue
                edges.add((src, dst))
                if dst in MAY[src]:
                    continue
                wrong.append("%s:%d: %s (%s) includes %s (%s)" % (f, n, f, src, h, dst))
    check("includes point one way (%d part-to-part edges)" % len(edges), not wrong,
          "\n  " + "\n  ".join(wrong))
    stale = sorted(KNOWN - seen_known)
    check("every KNOWN wrong-way include is still there (remove fixed ones from the list)",
          not stale, ", ".join("%s -> %s" % k for k in stale))
    # the rules themselves: with KNOWN set aside, no two parts include each other
    circles = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    check("no two parts include each other (KNOWN aside)", not circles, str(circles))

    long_now = []
    for f in files:
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            n = sum(1 for _ in fh)
        limit = max(MAX_LINES, LONG.get(f, 0))
        if n > limit:
            long_now.append("%s: %d lines (limit %d)" % (f, n, limit))
    check("no source file over %d lines (but the %d in LONG, which may not grow)"
          % (MAX_LINES, len(LONG)), not long_now, "; ".join(long_now))
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    sys.exit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    main()
