"""tests/docs/run_examples.py: every example in docs/*.md, run for real.

Usage: python3 tests/docs/run_examples.py AWAITD AWAITCTL SOURCE_DIR

A fenced block in docs/*.md is an example, and the line before its fence
(blank lines aside) says how it is run:

  <!-- example: run -->         a Lua file for `awaitd run FILE`; must exit 0
  <!-- example: job NAME -->    a job script, installed as scripts/NAME.lua in
                                the daemon started for that doc; it must load
                                without error, and some sh example of the same
                                doc must name it (so it is driven, not only loaded)
  <!-- example: sh -->          a shell snippet, run with `sh -eu` in the daemon's
                                directory (awaitd and awaitctl on PATH; awaitctl
                                finds the daemon at its default ./awaitd.sock)
  <!-- example: output -->      the exact stdout of the example just before it
  <!-- example: none REASON --> not run (a syntax sketch); REASON is required

Every block tagged lua, sh, shell, bash or console, and every block without a
language tag, must carry one of these markers: an unmarked one is a failure.
Each doc gets its own daemon (a fresh database, the repository's migrations,
the doc's job scripts), started before its first example and stopped after
its last, so examples run in document order against a known state. Failures
name the doc file and the line of the fence.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

AWAITD, AWAITCTL, SRC = (os.path.abspath(a) for a in sys.argv[1:4])
MARK = re.compile(r"^<!--\s*example:\s*(\S+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([A-Za-z0-9_+-]*)\s*$")
MUST_MARK = {"", "lua", "sh", "shell", "bash", "console"}
failures = []
passed = 0


def fail(where, what):
    failures.append("%s: %s" % (where, what))
    print("FAIL %s: %s" % (where, what), flush=True)


def ok(where, what):
    global passed
    passed += 1
    print("ok   %s: %s" % (where, what), flush=True)


def blocks(path):
    """[(line, lang, kind, arg, text)] of every fenced block in path (line 1-based)."""
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        mk = MARK.match(lines[j].strip()) if j >= 0 else None
        kind, arg = (mk.group(1), mk.group(2)) if mk else (None, "")
        out.append((start + 1, lang, kind, arg, "\n".join(body) + "\n"))
    return out


class Daemon:
    """A daemon in root, on its defaults (./scripts, ./awaitd.db, ./awaitd.sock)."""

    def __init__(self, root):
        self.root = root
        self.proc = None
        self.log = open(os.path.join(root, "daemon.log"), "a+")

    def ctl(self, *args):
        return subprocess.run([AWAITCTL] + list(args), cwd=self.root, capture_output=True,
                              text=True, timeout=60)

    def start(self):
        self.proc = subprocess.Popen([AWAITD], cwd=self.root, stdout=self.log,
                                     stderr=self.log)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.proc.poll() is None:
            if self.ctl("ping").returncode == 0:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.ctl("shutdown")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logtext(self):
        self.log.flush()
        with open(os.path.join(self.root, "daemon.log"), errors="replace") as f:
            return f.read()[-3000:]


def env_for(bindir):
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.pop("AWAITD_SOCKET", None)
    return env


def run_doc(path, bindir):
    rel = os.path.relpath(path, SRC)
    bl = blocks(path)
    jobs, runnable = {}, []
    prev = None
    for line, lang, kind, arg, text in bl:
        where = "%s:%d" % (rel, line)
        if kind is None:
            if lang in MUST_MARK:
                fail(where, "a ```%s block without an <!-- example: ... --> marker" % lang)
            prev = None
            continue
        if kind == "none":
            if not arg:
                fail(where, "<!-- example: none --> needs a reason")
            prev = None
        elif kind == "job":
            if not re.match(r"^[A-Za-z0-9_-]+$", arg):
                fail(where, "<!-- example: job NAME --> needs a script name, got %r" % arg)
            elif arg in jobs:
                fail(where, "job %s is defined twice in %s" % (arg, rel))
            else:
                jobs[arg] = (where, text)
            prev = None
        elif kind in ("run", "sh"):
            item = [where, kind, text, None]
            runnable.append(item)
            prev = item
        elif kind == "output":
            if prev is None:
                fail(where, "<!-- example: output --> must follow a run or sh example")
            else:
                prev[3] = (where, text)
            prev = None
        else:
            fail(where, "unknown example kind %r" % kind)
    shtext = "".join(t for _, k, t, _ in runnable if k == "sh")
    for name, (where, _) in jobs.items():
        if not re.search(r"\b%s\b" % re.escape(name), shtext):
            fail(where, "job %s is not driven by any sh example of %s" % (name, rel))
    if not jobs and not runnable:
        return

    root = tempfile.mkdtemp(prefix="awaitd-docs-")
    d = None
    try:
        os.mkdir(os.path.join(root, "scripts"))
        shutil.copytree(os.path.join(SRC, "migrations"), os.path.join(root, "migrations"))
        shutil.copy(os.path.join(SRC, "etc", "awaitd.conf"), os.path.join(root, "awaitd.conf"))
        for name, (where, text) in jobs.items():
            with open(os.path.join(root, "scripts", name + ".lua"), "w") as f:
                f.write(text)
        d = Daemon(root)
        if not d.start():
            fail(rel, "the daemon for its examples did not start: " + d.logtext())
            return
        r = d.ctl("--json", "scripts")
        loaded = {s["name"]: s for s in json.loads(r.stdout)} if r.returncode == 0 else {}
        for name, (where, _) in jobs.items():
            s = loaded.get(name)
            if s is None or s.get("error"):
                fail(where, "job %s did not load: %s" % (name, s and s.get("error")))
            else:
                ok(where, "job %s loads" % name)
        for n, (where, kind, text, expect) in enumerate(runnable):
            if kind == "run":
                f = os.path.join(root, "example%d.lua" % n)
                with open(f, "w") as fh:
                    fh.write(text)
                cmd = [AWAITD, "run", f]
            else:
                cmd = ["sh", "-eu", "-c", text]
            try:
                r = subprocess.run(cmd, cwd=root, env=env_for(bindir), capture_output=True,
                                   text=True, timeout=120)
            except subprocess.TimeoutExpired:
                fail(where, "%s example did not finish within 120 s" % kind)
                continue
            if r.returncode != 0:
                fail(where, "%s example exited %d\n--- stdout\n%s--- stderr\n%s" %
                     (kind, r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
                continue
            if expect is not None:
                want = [l.rstrip() for l in expect[1].rstrip("\n").split("\n")]
                got = [l.rstrip() for l in r.stdout.rstrip("\n").split("\n")]
                if want != got:
                    fail(expect[0], "the output of the %s example at %s differs\n--- want\n%s\n"
                         "--- got\n%s" % (kind, where, "\n".join(want), "\n".join(got)))
                    continue
            ok(where, "%s example%s" % (kind, " and its output" if expect else ""))
    finally:
        if d:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)


def main():
    bindir = tempfile.mkdtemp(prefix="awaitd-docs-bin-")
    try:
        os.symlink(AWAITD, os.path.join(bindir, "awaitd"))
        os.symlink(AWAITCTL, os.path.join(bindir, "awaitctl"))
        docs = sorted(glob.glob(os.path.join(SRC, "docs", "*.md")))
        if not docs:
            fail("docs/", "no docs/*.md found")
        for path in docs:
            run_doc(path, bindir)
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
