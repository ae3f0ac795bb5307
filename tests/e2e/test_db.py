#!/usr/bin/env python3
"""tests/e2e/test_db.py: ctx.db, db:tx, ctx.step and jobs.* as scripts see
them, in the real daemon (its store thread and SQLite file).

    python3 tests/e2e/test_db.py AWAITD AWAITCTL SCRIPTS

dbcheck.lua runs its own checks inside a job and answers the list of
failures; steps across attempts and a crash are checked from outside.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from harness import AWAITD, AWAITCTL, MIGRATIONS, SCRIPTS, SLOW, WRAP, Daemon, check, finish, poll, skip

HERE = os.path.dirname(os.path.abspath(__file__))



STEPS = """
-- attempt 1 journals two steps then fails; attempt 2 must get both
-- journaled results without running them again
return {
  retries = 2, backoff = 10,
  run = function(ctx, args)
    local a = ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO calls (job, what) VALUES (?, 'tx')", ctx.job.id))
      return "tx-result"
    end, { step = "debit" })
    local b = ctx.step("remote", function(x)
      ctx.db:exec("INSERT INTO calls (job, what) VALUES (?, ?)", ctx.job.id, "remote " .. ctx.step_key("remote"))
      return x * 2, "second"
    end, 21)
    if ctx.job.attempt == 1 then return nil, async.error("flaky", "first attempt fails") end
    return { a = a, b = b, attempt = ctx.job.attempt }
  end,
}
"""

NONDET = """
return {
  retries = 1, backoff = 10,
  run = function(ctx, args)
    local name = ctx.job.attempt == 1 and "one" or "two"
    local v, err = ctx.step(name, function() return 1 end)
    if not v then return nil, err end
    if ctx.job.attempt == 1 then return nil, async.error("flaky", "fails once") end
    return v
  end,
}
"""

CRASH = """
-- the tx step, then a slow remote step: killed there, the retry must not
-- apply the tx again and must call the remote with the same key
return {
  run = function(ctx, args)
    ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO calls (job, what) VALUES (?, 'tx')", ctx.job.id))
      return true
    end, { step = "debit" })
    return ctx.step("remote", function()
      ctx.db:exec("INSERT INTO calls (job, what) VALUES (?, ?)", ctx.job.id, "remote " .. ctx.step_key("remote"))
      async.sleep(args.ms)
      return "paid"
    end)
  end,
}
"""


# a step name used twice in one attempt; the script catches the error and returns
DUPSTEP = """
return {
  run = function(ctx)
    ctx.db:tx(function(tx) return "first" end, { step = "s" })
    local v, err = ctx.db:tx(function(tx) return "again" end, { step = "s" })
    return { v = v, code = err and err.code }
  end,
}
"""


def setup():
    root = tempfile.mkdtemp(prefix="awaitd-db-")
    shutil.copytree(SCRIPTS, os.path.join(root, "scripts"),
                    ignore=shutil.ignore_patterns("examples"))
    shutil.copytree(MIGRATIONS, os.path.join(root, "migrations"))
    with open(os.path.join(root, "migrations", "0100_calls.sql"), "w") as f:
        f.write("CREATE TABLE calls (id INTEGER PRIMARY KEY, job INTEGER, what TEXT);\n")
    with open(os.path.join(root, "awaitd.conf"), "w") as f:
        f.write("tx_timeout_ms = 300\n")
    for name, text in (("steps", STEPS), ("nondet", NONDET), ("crash", CRASH),
                       ("dupstep", DUPSTEP)):
        with open(os.path.join(root, "scripts", name + ".lua"), "w") as f:
            f.write(text)
    shutil.copy(os.path.join(HERE, "dbcheck.lua"), os.path.join(root, "scripts"))
    return root


def main():
    root = setup()
    d = Daemon(root)
    try:
        check("daemon starts", d.start(), open(d.log.name).read())
        rc, out, err = d.ctl("--json", "run", "dbcheck")
        res = json.loads(out) if rc == 0 else {}
        check("dbcheck ran %s checks" % res.get("checks"), rc == 0 and res.get("checks", 0) >= 35,
              out + err)
        for f in res.get("failures", ["(no result)"]):
            check("dbcheck: " + f, False)
        check("dbcheck: no failures", rc == 0 and res.get("failures") in ([], {}), res.get("failures"))

        rc, out, err = d.ctl("--json", "enqueue", "steps")
        jid = json.loads(out)["id"] if rc == 0 else 0
        rc, out, err = d.ctl("--json", "wait", str(jid), "--timeout", str(20000 * SLOW))
        job = json.loads(out) if out.strip() else {}
        check("a job retried after a failure gets its journaled steps",
              rc == 0 and job.get("result") == {"a": "tx-result", "b": 42, "attempt": 2},
              out + err)
        rc, out, err = d.ctl("--json", "show", str(jid))
        steps = json.loads(out).get("steps", []) if rc == 0 else []
        check("show lists the steps in order with their results",
              [(s["seq"], s["name"], s["kind"]) for s in steps] == [(1, "debit", "tx"), (2, "remote", "step")]
              and steps[1]["result"] == [42, "second"], out)

        rc, out, err = d.ctl("--json", "enqueue", "nondet")
        nid = json.loads(out)["id"] if rc == 0 else 0
        rc, out, err = d.ctl("--json", "wait", str(nid), "--timeout", str(20000 * SLOW))
        job = json.loads(out) if out.strip() else {}
        check("a retry that reaches other steps fails with nondeterministic",
              rc == 1 and job.get("state") == "dead"
              and (job.get("error") or {}).get("code") == "nondeterministic", out + err)

        rc, out, err = d.ctl("--json", "run", "dupstep")
        check("the same step name twice is nondeterministic, and fails the attempt even"
              " though the script went on", rc == 1 and "nondeterministic" in err
              and "journaled already" in err, out + err)

        rc, out, err = d.ctl("--json", "enqueue", "crash", '{"ms":3000}')
        cid = json.loads(out)["id"] if rc == 0 else 0
        end = time.monotonic() + 10 * SLOW
        calls = []
        while time.monotonic() < end:
            with sqlite3.connect(d.db) as c:
                calls = c.execute("SELECT what FROM calls WHERE job = ?", (cid,)).fetchall()
            if len(calls) >= 2:
                break
            time.sleep(0.05)
        d.stop(signal.SIGKILL)
        check("killed in the remote step", len(calls) == 2, calls)
        check("restart", d.start(), open(d.log.name).read()[-2000:])
        rc, out, err = d.ctl("--json", "run", "crash", '{"ms":10}')  # a fresh run works too
        rc, out, err = d.ctl("--json", "wait", str(cid), "--timeout", str(20000 * SLOW))
        job = json.loads(out) if out.strip() else {}
        with sqlite3.connect(d.db) as c:
            calls = [w for (w,) in c.execute("SELECT what FROM calls WHERE job = ? ORDER BY id", (cid,))]
        check("after the crash the job completes", rc == 0 and job.get("result") == "paid", out + err)
        check("the tx step was applied once", calls.count("tx") == 1, calls)
        remote = [w for w in calls if w.startswith("remote ")]
        check("the remote step ran again with the same step_key",
              len(remote) == 2 and remote[0] == remote[1] and str(cid) in remote[0], remote)
        check("the daemon stops cleanly", d.stop() == 0)
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    finish()


main()
