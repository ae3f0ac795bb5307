"""tests/docs/check_man.py: the man pages render cleanly and are complete.

Usage: python3 tests/docs/check_man.py MAN_BUILD_DIR SOURCE_DIR

Renders awaitd.8, awaitctl.1 and awaitd.conf.5 (built by scdoc into
MAN_BUILD_DIR) with `man --warnings -l`, or `groff -man -Tutf8 -ww` when man
is absent; checks each has NAME, SYNOPSIS and DESCRIPTION and that the
renderer warned about nothing; and checks that awaitd.conf.5 lists every
key of daemon/service/config.c's keys[] (parsed from the source, so a key added
without docs fails here). Exits 77 (skipped) when the pages were not built
because scdoc is absent.
"""
import os
import re
import shutil
import subprocess
import sys

from config_keys import config_keys

MAN, SRC = sys.argv[1:3]
PAGES = ["awaitd.8", "awaitctl.1", "awaitd.conf.5"]
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail), flush=True)
    if not cond:
        failures.append(name)


def render(path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    if shutil.which("man"):
        cmd = ["man", "--warnings", "-l", path]
    else:
        cmd = ["groff", "-man", "-Tutf8", "-ww", path]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    text = re.sub(r".\x08", "", r.stdout)  # overstrike bold/underline
    return r.returncode, text, r.stderr


def main():
    if not all(os.path.exists(os.path.join(MAN, p)) for p in PAGES):
        print("skip: the man pages were not built (scdoc is absent: apt-get install scdoc)")
        sys.exit(77)
    texts = {}
    for p in PAGES:
        rc, text, err = render(os.path.join(MAN, p))
        texts[p] = text
        check(p + " renders", rc == 0 and text.strip(), err)
        check(p + " renders without warnings", not err.strip(), err)
        for sec in ("NAME", "SYNOPSIS", "DESCRIPTION"):
            check(p + " has " + sec, re.search(r"^%s\s*$" % sec, text, re.M) is not None)
    keys = config_keys(SRC)
    check("config.c's keys[] found", len(keys) >= 10, repr(keys))
    conf = texts.get("awaitd.conf.5", "")
    for k in keys:
        check("awaitd.conf.5 lists " + k, re.search(r"^\s+%s\s*$" % re.escape(k), conf, re.M)
              is not None)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
