#!/usr/bin/env python3
"""End-to-end tests of fan-in: a job enqueued `after` others is `blocked`,
runs once after every one of them succeeded (and reads their results), is
cancelled naming the job when one ends dead or cancelled (and its own
dependents with it), is queued or cancelled at once when its jobs ended
already, holds across a restart; `status` counts blocked jobs; bad ids are
refused and store nothing.

Usage: test_fanin.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import signal
import time

from harness import run, SLOW, Daemon, check, make_root, poll, rpc

PART = r'''
return { run = function(ctx, args)
  async.sleep(args.ms or 1)
  if args.hold then ctx.wait_signal("go") end  -- held until the test says go
  if args.fail then return nil, async.error("broken", "part " .. args.n .. " failed") end
  return { part = args.n }
end }
'''

# the fan-in: reads what the jobs it waited for returned, counts its runs
JOIN = r'''
return { run = function(ctx, args)
  local got = {}
  for _, id in ipairs(args.after or {}) do
    got[#got + 1] = jobs.get(id).result.part
  end
  ctx.db:exec("INSERT INTO runs (job) VALUES (?)", ctx.job.id)
  return { parts = got }
end }
'''

# a job that enqueues a fan-in itself, with jobs.enqueue's after
FAN = r'''
return { run = function(ctx, args)
  local a = jobs.enqueue("part", { n = 1, ms = 50 })
  local b = jobs.enqueue("part", { n = 2, ms = 80 })
  local j = jobs.enqueue("join", { after = { a, b } }, { after = { a, b } })
  local bad, err = pcall(jobs.enqueue, "join", {}, { after = { "x" } })
  return { join = j, bad = err and err:match("after must be") ~= nil }
end }
'''

RUNS = "CREATE TABLE runs (job INTEGER NOT NULL);\n"


def show(d, jid):
    return d.cjson("show", jid)[1] or {}


def enqueue(d, name, args, *opts):
    rc, out, err = d.ctl("enqueue", name, json.dumps(args), *opts)
    return int(out.split()[0]) if rc == 0 else (rc, out, err)


def runs(d, jid):
    rc, out, _ = d.ctl("run", "count", json.dumps({"job": jid}))
    return json.loads(out) if rc == 0 else None


COUNT = r'''
return { run = function(ctx, args)
  return ctx.db:one("SELECT count(*) AS n FROM runs WHERE job = ?", args.job).n
end }
'''


def main():
    root = make_root("awaitd-fanin-", {"scripts/part.lua": PART, "scripts/join.lua": JOIN,
                                       "scripts/fan.lua": FAN, "scripts/count.lua": COUNT,
                                       "migrations/0100_runs.sql": RUNS})
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())

        # two parts, then the join: blocked until both succeeded, then once
        p1 = enqueue(d, "part", {"n": 1, "ms": 300, "hold": True})
        p2 = enqueue(d, "part", {"n": 2, "ms": 600, "hold": True})
        j = enqueue(d, "join", {"after": [p1, p2]}, "--after", "%d,%d" % (p1, p2))
        check("the join is blocked while its parts run", show(d, j).get("state") == "blocked",
              show(d, j))
        rc, st, _ = d.cjson("status")
        check("status counts it as blocked", st["jobs"].get("blocked") == 1, st["jobs"])
        rc, out, _ = d.ctl("show", j)
        check("show names the jobs it waits for",
              "held:     after jobs %d, %d (not succeeded yet)" % (p1, p2) in out, out)
        d.ctl("signal", p1, "go")
        poll(lambda: show(d, p1).get("state") == "succeeded", 20)
        rc, out, _ = d.ctl("show", j)
        check("... then the one left", show(d, j)["state"] == "blocked" and
              "held:     after job %d (not succeeded yet)" % p2 in out, out)
        d.ctl("signal", p2, "go")
        rc, lst, _ = d.cjson("jobs", "--state", "blocked")
        check("jobs --state blocked lists it", [x["id"] for x in lst["jobs"]] == [j], lst)
        rc, out, err = d.ctl("wait", j, "--timeout", str(20000 * SLOW))
        check("it runs after both and reads their results",
              rc == 0 and json.loads(out) == {"parts": [1, 2]}, (rc, out, err))
        js, a, b = show(d, j), show(d, p1), show(d, p2)
        check("it started after the last part finished",
              js["started_at"] >= max(a["finished_at"], b["finished_at"]), (js, a, b))
        check("it ran once", runs(d, j) == 1, runs(d, j))

        # a part dies: the join is cancelled, naming it, and so is a join after the join
        q1 = enqueue(d, "part", {"n": 1, "ms": 200})
        q2 = enqueue(d, "part", {"n": 2, "ms": 100, "fail": True})
        j2 = enqueue(d, "join", {}, "--after", "%d,%d" % (q1, q2))
        j3 = enqueue(d, "join", {}, "--after", str(j2))
        rc, out, err = d.ctl("wait", j2, "--timeout", str(20000 * SLOW))
        js = show(d, j2)
        check("a part ends dead: the join is cancelled, naming it",
              rc == 1 and js["state"] == "cancelled"
              and js["error"] == {"code": "dependency_failed",
                                  "message": "job %d it waits for ended dead" % q2}, (rc, js))
        rc, out, err = d.ctl("wait", j3, "--timeout", str(20000 * SLOW))
        js = show(d, j3)
        check("... and the join after it too", rc == 1 and js["state"] == "cancelled"
              and ("job %d" % j2) in js["error"]["message"], js)
        check("neither ran", runs(d, j2) == 0 and runs(d, j3) == 0)
        rc, out, err = d.ctl("retry", j2)
        check("retrying it while its part is dead is refused, naming the part",
              rc != 0 and ("job %d, which is dead" % q2) in err
              and show(d, j2)["state"] == "cancelled", (rc, err))

        # jobs that ended already: queued at once, or cancelled at once
        j4 = enqueue(d, "join", {"after": [p1]}, "--after", str(p1))
        rc, out, err = d.ctl("wait", j4, "--timeout", str(20000 * SLOW))
        check("after a job that succeeded already: runs at once", rc == 0
              and json.loads(out) == {"parts": [1]}, (rc, out, err, show(d, j4)))
        j5 = enqueue(d, "join", {}, "--after", "%d,%d" % (p1, q2))
        js = show(d, j5)
        check("after a dead one: cancelled at once", js["state"] == "cancelled"
              and js["error"]["code"] == "dependency_failed", js)
        rc, out, err = d.ctl("retry", j5)
        check("... and retrying it is refused while that job is dead (it keeps its edges)",
              rc != 0 and ("job %d, which is dead" % q2) in err, (rc, out, err))

        # a wait with a timeout on a blocked job times out, whatever else is settled meanwhile
        h = enqueue(d, "part", {"n": 1, "hold": True})
        jh = enqueue(d, "join", {}, "--after", str(h))
        for _ in range(5):  # fan-ins settling while the wait waits
            x = enqueue(d, "part", {"n": 1})
            enqueue(d, "join", {"after": [x]}, "--after", str(x))
        t0 = time.monotonic()
        rc, out, err = d.ctl("wait", jh, "--timeout", "1000")
        check("wait --timeout 1000 on a blocked job: exit 124 in time (%.1f s)"
              % (time.monotonic() - t0), rc == 124 and time.monotonic() - t0 < 10 * SLOW,
              (rc, err))
        d.ctl("signal", h, "go")
        rc, out, err = d.ctl("wait", jh, "--timeout", str(20000 * SLOW))
        check("... and it runs once released", rc == 0, (rc, out, err))

        # cancelling a blocked job
        r1 = enqueue(d, "part", {"n": 1, "ms": 3000})
        j6 = enqueue(d, "join", {}, "--after", str(r1))
        j7 = enqueue(d, "join", {}, "--after", str(j6))
        rc, out, err = d.ctl("cancel", j6)
        check("a blocked job can be cancelled", rc == 0 and show(d, j6)["state"] == "cancelled",
              (rc, out, err))
        check("... and what waited for it is cancelled with it",
              show(d, j7)["state"] == "cancelled", show(d, j7))

        # across a restart: still blocked, then runs once
        s1 = enqueue(d, "part", {"n": 1, "ms": 300, "hold": True})
        j8 = enqueue(d, "join", {"after": [s1]}, "--after", str(s1))
        poll(lambda: show(d, s1).get("state") == "waiting", 10)
        d.stop(signal.SIGKILL)
        check("restarts after SIGKILL", d.start(), open(d.log.name).read())
        check("the join is still blocked", show(d, j8).get("state") == "blocked", show(d, j8))
        d.ctl("signal", s1, "go")
        rc, out, err = d.ctl("wait", j8, "--timeout", str(30000 * SLOW))
        check("... and runs once its part succeeded", rc == 0 and runs(d, j8) == 1,
              (rc, out, err, runs(d, j8)))

        # from a script: jobs.enqueue(name, args, {after = {...}})
        rc, out, err = d.ctl("run", "fan")
        got = json.loads(out) if rc == 0 else {}
        check("jobs.enqueue with after, and a bad id raises", rc == 0 and got.get("bad") is True,
              (rc, out, err))
        rc, out, err = d.ctl("wait", got.get("join", 0), "--timeout", str(20000 * SLOW))
        check("... the fan-in a script made runs after both", rc == 0
              and json.loads(out) == {"parts": [1, 2]}, (rc, out, err))

        # bad ids
        before = d.cjson("status")[1]["jobs"]
        rc, out, err = d.ctl("enqueue", "join", "{}", "--after", "999999")
        check("after a job that does not exist: invalid", rc != 0 and "no job 999999" in err,
              (rc, out, err))
        rc, out, err = d.ctl("enqueue", "join", "{}", "--after", "%d,999999" % q2)
        check("after a dead job and one that does not exist: invalid",
              rc != 0 and "no job 999999" in err, (rc, out, err))
        rc, out, err = d.ctl("enqueue", "join", "{}", "--after", "1,x")
        check("--after 1,x: a usage error", rc == 2 and "job ids separated by commas" in err,
              (rc, err))
        got = rpc(d.sock, {"id": 1, "cmd": "enqueue", "args": {"name": "join", "after": [0]}})
        check("after [0] on the wire: invalid_request", got and
              got["error"]["code"] == "invalid_request", got)
        got = rpc(d.sock, {"id": 2, "cmd": "enqueue",
                           "args": {"name": "join", "after": list(range(1, 103))}})
        check("after 102 jobs: invalid_request", got and
              "more than 100" in got["error"]["message"], got)
        check("nothing was stored", d.cjson("status")[1]["jobs"] == before)
        check("SIGTERM exits 0", d.stop() == 0)


if __name__ == "__main__":
    run(main)
