#!/usr/bin/env python3
"""End-to-end tests of the size and memory limits (issue 11, isolation).

Usage: test_limits.py AWAITD AWAITCTL SCRIPTS_DIR

- A job returning ~5 MB fails with too_large instead of being stored, and
  every command on it still works; ctx.step / db:tx step journals are
  bounded the same way.
- A 100 MB result written straight into the SQLite file (as an old daemon,
  or a higher limit, would have left it) does not break jobs, show, wait,
  trace, cancel or retry: they show a preview with the real size.
- Args over max_args_bytes are refused at enqueue (socket and jobs.enqueue).
- A string doubled 40 times under max_memory_mb = 256 fails fast with
  out_of_memory naming the cap, the loop keeps answering, and the memory
  goes back to the system.
- With no max_memory_mb in the config, `awaitd check` shows a real default.

Each test starts the real daemon on its own temporary directory, config,
database and socket, and drives it with the real awaitctl and raw socket
lines. Prints one line per check and "N passed, N failed".
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

from harness import AWAITCTL, AWAITD, Ctl, MIGRATIONS, SLOW, WRAP, check, finish, poll, rpc

BIG = """
return { run = function(ctx, args) return string.rep("x", 5 * 1000 * 1000) end }
"""
LOUD = """
return { run = function(ctx, args) error(string.rep("e", 3 * 1000 * 1000), 0) end }
"""
OK = """
return { run = function(ctx, args) return { ok = true, n = args and args.n } end }
"""
STEPS = """
return { run = function(ctx, args)
  local v, serr = ctx.step("big", function() return string.rep("y", 2 * 1000 * 1000) end)
  local w, terr = ctx.db:tx(function(tx) return string.rep("z", 2 * 1000 * 1000) end,
                            { step = "bigtx" })
  local small = ctx.step("small", function() return "fine" end)
  return { step = serr and serr.code, step_msg = serr and serr.message,
           tx = terr and terr.code, small = small, v = v, w = w }
end }
"""
ENQ = """
return { run = function(ctx, args)
  local id, err = jobs.enqueue("ok", { s = string.rep("a", 2 * 1000 * 1000) })
  return { id = id, code = err and err.code, message = err and err.message }
end }
"""
DOUBLE = """
return { run = function(ctx, args)
  local s = "x"
  for i = 1, 40 do s = s .. s end
  return #s
end }
"""


class Env(Ctl):
    """One test's directory: scripts, config, database, socket, log; one daemon at a time."""

    def __init__(self, name, conf=""):
        self.dir = tempfile.mkdtemp(prefix="awaitd-limits-%s-" % name)
        self.scripts = os.path.join(self.dir, "scripts")
        os.mkdir(self.scripts)
        self.db = os.path.join(self.dir, "awaitd.db")
        self.sock = os.path.join(self.dir, "awaitd.sock")
        self.conf = os.path.join(self.dir, "awaitd.conf")
        self.logpath = os.path.join(self.dir, "log")
        with open(self.conf, "w") as f:
            f.write("synchronous = normal\n" + conf)
        self.proc = None

    def script(self, name, text):
        with open(os.path.join(self.scripts, name + ".lua"), "w") as f:
            f.write(text)

    def start(self):
        log = open(self.logpath, "a")
        self.proc = subprocess.Popen(
            WRAP + [AWAITD, "-c", self.conf, "--scripts", self.scripts, "--db", self.db,
                    "--socket", self.sock, "--migrations", MIGRATIONS],
            stdout=log, stderr=log, cwd=self.dir)
        log.close()
        return bool(poll(lambda: self.proc.poll() is not None or self.ctl("ping", timeout=5)[0] == 0,
                         15)) and self.proc.poll() is None



    def job(self, jid):
        rc, v, _ = self.cjson("show", jid, timeout=20)
        return v if rc == 0 else None

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def no_protocol_error(text):
    return "protocol" not in text.lower()


# ---- (a) a big result fails the attempt; every command on the job works ------------------


def test_big_result():
    e = Env("result")
    try:
        e.script("big", BIG)
        e.script("ok", OK)
        e.script("steps", STEPS)
        e.script("loud", LOUD)
        check("result: daemon becomes ready", e.start(), e.log())
        jid = e.cjson("enqueue", "big", "{}")[1]["id"]
        rc, out, err = e.ctl("wait", jid, "--timeout", 20000)
        check("result: wait on the 5 MB job exits 1 (dead)",
              rc == 1 and "dead" in err and no_protocol_error(err), "%d %s %s" % (rc, out, err))
        j = e.job(jid)
        msg = (j or {}).get("error", {}).get("message", "") if j else ""
        check("result: the job is dead with too_large, size and limit named, result not stored",
              j and j["state"] == "dead" and j["error"]["code"] == "too_large"
              and "5000002 bytes" in msg and "max_result_bytes = 1048576" in msg
              and j["result"] is None, repr(j)[:2000])
        stored = sqlite3.connect("file:%s?mode=ro" % e.db, uri=True, timeout=10).execute(
            "SELECT length(result), length(error) FROM jobs WHERE id = ?", (jid,)).fetchone()
        check("result: the database holds no 5 MB row", stored[0] is None and stored[1] < 1000,
              repr(stored))
        rc, out, err = e.ctl("jobs")
        check("result: awaitctl jobs exits 0", rc == 0 and ("%d" % jid) in out, out + err)
        rc, out, err = e.ctl("show", jid)
        check("result: awaitctl show exits 0", rc == 0 and "too_large" in out, out + err)
        rc, out, err = e.ctl("cancel", jid)
        check("result: cancel of the dead job exits 1 (invalid), not a protocol error",
              rc == 1 and "dead" in err and no_protocol_error(err), "%d %s %s" % (rc, out, err))
        rc, out, err = e.ctl("retry", jid)
        check("result: retry exits 0", rc == 0, "%d %s %s" % (rc, out, err))
        check("result: the retried job fails the same way again",
              poll(lambda: (e.job(jid) or {}).get("attempt") == 2
                   and e.job(jid)["state"] == "dead", 20), repr(e.job(jid))[:2000])
        rc, out, err = e.ctl("run", "big", "{}", "--timeout", 20000)
        check("result: awaitctl run of it exits 1 naming too_large and the limit",
              rc == 1 and "too_large" in err and "max_result_bytes = 1048576" in err,
              "%d %s %s" % (rc, out, err))
        rc, out, err = e.ctl("run", "ok", '{"n":7}', "--timeout", 20000)
        check("result: a normal job still runs right after",
              rc == 0 and json.loads(out) == {"ok": True, "n": 7}, "%d %s %s" % (rc, out, err))

        rc, out, err = e.ctl("run", "steps", "{}", "--timeout", 20000)
        try:
            v = json.loads(out)
        except ValueError:
            v = None
        check("steps: ctx.step and db:tx step journals over the limit return nil, too_large",
              rc == 0 and v and v.get("step") == "too_large" and v.get("tx") == "too_large"
              and "max_result_bytes = 1048576" in v.get("step_msg", "")
              and v.get("small") == "fine" and v.get("v") is None and v.get("w") is None,
              "%d %s %s" % (rc, out[:2000], err))
        sizes = sqlite3.connect("file:%s?mode=ro" % e.db, uri=True, timeout=10).execute(
            "SELECT max(length(result)) FROM steps").fetchone()
        check("steps: no big journal row was written", (sizes[0] or 0) < 1000, repr(sizes))
        lid = e.cjson("enqueue", "loud", "{}")[1]["id"]
        e.ctl("wait", lid, "--timeout", 20000)
        j = e.job(lid)
        stored = sqlite3.connect("file:%s?mode=ro" % e.db, uri=True, timeout=10).execute(
            "SELECT length(error) FROM jobs WHERE id = ?", (lid,)).fetchone()
        check("result: a 3 MB error message is cut before it is stored, with its size",
              j and j["state"] == "dead" and j["error"].get("message_bytes") == 3000000
              and stored[0] < 20000, repr(stored))
        check("result: the log does not blame a client that does not read",
              "does not read" not in e.log(), e.log()[-3000:])
    finally:
        e.cleanup()


# ---- (b) a 100 MB row already in the database ------------------------------------------


def test_big_row():
    e = Env("row")
    try:
        e.script("ok", OK)
        check("row: daemon becomes ready", e.start(), e.log())
        a = e.cjson("enqueue", "ok", '{"n":1}')[1]["id"]
        b = e.cjson("enqueue", "ok", '{"n":2}')[1]["id"]
        check("row: the two jobs ran",
              poll(lambda: all((e.job(i) or {}).get("state") == "succeeded" for i in (a, b)), 20))
        e.stop()
        big = '"' + "x" * (100 * 1000 * 1000) + '"'
        bigerr = json.dumps({"code": "boom", "message": "e" * (20 * 1000 * 1000)})
        con = sqlite3.connect(e.db, timeout=10)
        con.execute("UPDATE jobs SET result = ? WHERE id = ?", (big, a))
        con.execute("UPDATE jobs SET state = 'dead', result = NULL, error = ?, args = ? "
                    "WHERE id = ?", (bigerr, '{"s":"' + "a" * 3000000 + '"}', b))
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        del big, bigerr
        check("row: daemon restarts on the database", e.start(), e.log())

        rc, v, out = e.cjson("jobs", timeout=60)
        rows = {j["id"]: j for j in (v or {}).get("jobs", [])}
        ra, rb = rows.get(a, {}), rows.get(b, {})
        check("row: awaitctl --json jobs succeeds with short previews and the real sizes",
              rc == 0 and ra.get("result_truncated") is True
              and ra.get("result_bytes") == 100000002 and len(ra.get("result", "")) < 1000
              and rb.get("args_truncated") is True and rb.get("args_bytes") == 3000008
              and rb.get("error", {}).get("code") == "boom"
              and rb["error"].get("truncated") is True, out)
        rc, out, err = e.ctl("jobs", timeout=60)
        check("row: awaitctl jobs succeeds", rc == 0 and ("%d" % a) in out, out + err)
        rc, v, out = e.cjson("show", a, timeout=60)
        check("row: awaitctl --json show succeeds, truncated, with the real size",
              rc == 0 and v["result_truncated"] is True and v["result_bytes"] == 100000002
              and v["result"].startswith('"xxxx'), out)
        rc, out, err = e.ctl("show", a, timeout=60)
        check("row: awaitctl show prints the preview and the size (100000002 bytes)",
              rc == 0 and "truncated: 95 MiB stored" in out, (out + err)[-2000:])
        rc, out, err = e.ctl("show", b, timeout=60)
        check("row: show of the job with a 20 MB error and 3 MB args succeeds",
              rc == 0 and "boom" in out and "2.9 MiB stored" in out, (out + err)[-2000:])
        rc, out, err = e.ctl("wait", a, "--timeout", 20000, timeout=60)
        check("row: wait on it exits 0 with a preview", rc == 0 and len(out) < 10000,
              "%d %s %s" % (rc, out[-2000:], err))
        rc, out, err = e.ctl("wait", b, "--timeout", 20000, timeout=60)
        check("row: wait on the dead one exits 1",
              rc == 1 and "dead" in err and no_protocol_error(err), "%d %s" % (rc, err[-2000:]))
        r = rpc(e.sock, {"id": 5, "cmd": "wait", "args": {"id": b}})
        job = (r or {}).get("result") or {}
        check("row: raw wait answers the job with its error previewed, code kept",
              r and r.get("ok") is True and job.get("error", {}).get("code") == "boom"
              and job["error"].get("bytes") == 20000031, repr(r)[:2000])
        rc, out, err = e.ctl("trace", a, timeout=60)
        check("row: trace succeeds", rc == 0, "%d %s %s" % (rc, out[-2000:], err))
        rc, out, err = e.ctl("cancel", a, timeout=60)
        check("row: cancel of the succeeded job exits 1 (invalid), not a protocol error",
              rc == 1 and "succeeded" in err and no_protocol_error(err), "%d %s" % (rc, err))
        rc, out, err = e.ctl("retry", b, timeout=60)
        check("row: retry of the dead job exits 0", rc == 0, "%d %s %s" % (rc, out[-2000:], err))
        check("row: the log does not blame a client that does not read",
              "does not read" not in e.log(), e.log()[-3000:])
    finally:
        e.cleanup()


# ---- (c) args over max_args_bytes ----------------------------------------------------------


def test_big_args():
    e = Env("args", "max_line = 8388608\n")  # the line fits: the args limit is what refuses
    try:
        e.script("ok", OK)
        e.script("enq", ENQ)
        check("args: daemon becomes ready", e.start(), e.log())
        args = {"s": "a" * (2 * 1000 * 1000)}
        for cmd in ("enqueue", "run"):
            r = rpc(e.sock, {"id": 1, "cmd": cmd, "args": {"name": "ok", "args": args}})
            err = (r or {}).get("error") or {}
            check("args: socket %s with 2 MB args is refused with too_large" % cmd,
                  r and r.get("ok") is False and err.get("code") == "too_large"
                  and "max_args_bytes = 1048576" in err.get("message", "")
                  and "2000008 bytes" in err.get("message", ""), repr(r)[:2000])
        rc, v, out = e.cjson("jobs")
        check("args: nothing was queued", rc == 0 and v["jobs"] == [], out)
        rc, out, err = e.ctl("run", "enq", "{}", "--timeout", 20000)
        try:
            v = json.loads(out)
        except ValueError:
            v = None
        check("args: jobs.enqueue from a script returns nil, too_large",
              rc == 0 and v and v.get("id") is None and v.get("code") == "too_large"
              and "max_args_bytes" in v.get("message", ""), "%d %s %s" % (rc, out, err))
        r = rpc(e.sock, {"id": 2, "cmd": "run", "args": {"name": "ok", "args": {"n": 3}}})
        check("args: small args still run", r and r.get("ok") is True, repr(r))
    finally:
        e.cleanup()


# ---- (d) one huge allocation under max_memory_mb = 256 -----------------------------------


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def test_doubling():
    e = Env("oom", "max_memory_mb = 256\n")
    try:
        e.script("double", DOUBLE)
        e.script("ok", OK)
        check("oom: daemon becomes ready", e.start(), e.log())
        pings, stop = [], threading.Event()

        def pinger():
            while not stop.is_set():
                t0 = time.monotonic()
                rc = e.ctl("ping", timeout=30)[0]
                pings.append((rc, time.monotonic() - t0))
                time.sleep(0.05)

        th = threading.Thread(target=pinger)
        th.start()
        t0 = time.monotonic()
        rc, out, err = e.ctl("run", "double", "{}", "--timeout", 60000, timeout=90)
        took = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        th.join()
        check("oom: the job fails with out_of_memory within 10 s (%.1f s)" % took,
              rc == 1 and "out_of_memory" in err and took < 10 * SLOW, "%d %s %s" % (rc, out, err))
        check("oom: its message names the allocation and max_memory_mb = 256",
              "max_memory_mb = 256" in err and "allocation of" in err, err)
        worst = max((p[1] for p in pings), default=None)
        check("oom: ping answered throughout (%d pings, worst %.2f s)" % (len(pings), worst or -1),
              pings and all(p[0] == 0 for p in pings) and worst < 3 * SLOW, repr(pings))
        rc = e.ctl("ping", timeout=10)[0]
        check("oom: ping answers after", rc == 0)
        rss = poll(lambda: (rss_mb(e.proc.pid) or 1e9) < 300 and rss_mb(e.proc.pid), 10)
        check("oom: daemon VmRSS falls back under 300 MB (%s MB)" % rss_mb(e.proc.pid), rss,
              rss_mb(e.proc.pid))
        rc, out, err = e.ctl("run", "ok", '{"n":1}', "--timeout", 20000)
        check("oom: a normal job still runs", rc == 0, "%d %s %s" % (rc, out, err))
    finally:
        e.cleanup()


# ---- (e) the default cap ---------------------------------------------------------------------


def test_default_cap():
    e = Env("default")
    try:
        e.script("ok", OK)
        r = subprocess.run([AWAITD, "check", "-c", e.conf, "--scripts", e.scripts],
                           capture_output=True, text=True, timeout=60 * SLOW)
        line = [l for l in r.stdout.splitlines() if l.startswith("max_memory_mb = ")]
        try:
            mb = float(line[0].split()[2]) if line else 0
        except ValueError:
            mb = 0
        check("default: awaitd check shows a non-zero default max_memory_mb (%s)" % mb,
              r.returncode == 0 and 64 <= mb <= 4096 and "(default" in line[0],
              r.stdout + r.stderr)
        with open(e.conf, "a") as f:
            f.write("max_memory_mb = 0\n")
        r = subprocess.run([AWAITD, "check", "-c", e.conf, "--scripts", e.scripts],
                           capture_output=True, text=True, timeout=60 * SLOW)
        check("default: an explicit 0 is shown as no cap",
              r.returncode == 0 and "max_memory_mb = 0 (no cap)" in r.stdout, r.stdout + r.stderr)
    finally:
        e.cleanup()


TESTS = [test_big_result, test_big_row, test_big_args, test_doubling, test_default_cap]
only = os.environ.get("AWAITD_E2E_ONLY")
for t in TESTS:
    if only and t.__name__ not in only.split(","):
        continue
    t0 = time.monotonic()
    try:
        t()
    except Exception:  # a crash in a test is a failure, not an abort
        import traceback
        check(t.__name__ + " ran to the end", False, traceback.format_exc())
    print("--- %s: %.1f s" % (t.__name__, time.monotonic() - t0), flush=True)

finish()
