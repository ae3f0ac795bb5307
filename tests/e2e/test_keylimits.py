#!/usr/bin/env python3
"""End-to-end tests of per-key limits (a script's `limits`): 200 purchases
over 5 accounts with { by = "account", concurrency = 1 } and script
concurrency 20 never run two jobs of one account at once and do run
several accounts at once; two limits hold together; a rate limit of 10
a second starts no more than 10 jobs of a key in any 1-second window;
jobs without a value run freely; the limit holds across a SIGKILL and restart; bad settings and
bad values are refused, saying why.

Usage: test_keylimits.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import signal
import time

from harness import run, SLOW, Daemon, check, make_root, poll, rpc_many

ACCT = r'''
return { concurrency = 20, limits = { { by = "account", concurrency = 1 } },
  run = function(ctx, args)
    local t0 = async.now()
    ctx.db:exec("INSERT INTO runs (job) VALUES (?)", ctx.job.id)
    async.sleep(args.ms or 20)
    return { account = args.account, t0 = t0, t1 = async.now() }
  end }
'''

# two limits: one job per account and two per region at once
TWO = r'''
return { concurrency = 20,
  limits = { { by = "account", concurrency = 1 }, { by = "region", concurrency = 2 } },
  run = function(ctx, args)
    local t0 = async.now()
    async.sleep(15)
    return { account = args.account, region = args.region, t0 = t0, t1 = async.now() }
  end }
'''

# ten starts a second per provider, however many are queued
RATED = r'''
return { concurrency = 50, limits = { { by = "provider", rate = 10, per = 1000 } },
  run = function(ctx, args)
    ctx.db:exec("INSERT INTO runs (job) VALUES (?)", ctx.job.id)
    return args.provider
  end }
'''

# one start per key per 10 minutes: the second waits, and show says why
ONCE = r'''
return { limits = { { by = "provider", rate = 1, per = 600000 } },
  run = function(ctx, args) return args.provider end }
'''

# one start per key per 150 ms: its claims are woken at each window, the
# other scripts' are not
PACED = r'''
return { limits = { { by = "provider", rate = 1, per = 150 } },
  run = function(ctx, args) return args.provider end }
'''

RUNS = "CREATE TABLE runs (job INTEGER NOT NULL);\n"


def runs_twice(d):
    """Jobs that ran more than once (a claim must never take a job twice)."""
    return d.sql("SELECT job, count(*) FROM runs GROUP BY job HAVING count(*) > 1")


# by as a function of args: a nested value no field name reaches
BYFN = r'''
return { concurrency = 20,
  limits = { { by = function(a)
                 if a.loop then while true do end end
                 if a.table then return {} end
                 if a.boom then error("no user") end
                 return a.user and ("user-" .. a.user.id)
               end, concurrency = 1 } },
  run = function(ctx, args)
    local t0 = async.now()
    async.sleep(15)
    return { user = args.user and args.user.id, t0 = t0, t1 = async.now() }
  end }
'''

# jobs.enqueue from inside a task calls the by function too
FROMTASK = r'''
return { run = function(ctx, args)
  local id = assert(jobs.enqueue("byfn", { user = { id = 9 } }))
  local none, err = jobs.enqueue("byfn", { boom = true })
  return { id = id, refused = none == nil and err.code == "invalid" }
end }
'''

BAD_MISSING = 'return { limits = { { by = "account" } }, run = function() end }\n'
BAD_RATE = 'return { limits = { { by = "p", rate = 10 } }, run = function() end }\n'
BAD_BY = 'return { limits = { { by = 7, concurrency = 1 } }, run = function() end }\n'
BAD_LIST = 'return { limits = { 1, 2, 3, 4, 5 }, run = function() end }\n'


def results(d, name):
    rc, js, _ = d.cjson("jobs", "--name", name, "--limit", "1000")
    return [j for j in (js or {}).get("jobs", [])]


def overlaps(spans):
    """Pairs of spans (t0, t1) that overlap."""
    spans = sorted(spans)
    return [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]


def most_at_once(spans):
    events = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans],
                    key=lambda e: (e[0], e[1]))
    n = best = 0
    for _, k in events:
        n += k
        best = max(best, n)
    return best


def mean_at_once(spans):
    """How many of the spans ran at once on average while any ran: the sum of
    their lengths over the length of their union (1.0: one after another)."""
    total = sum(t1 - t0 for t0, t1 in spans)
    union, end = 0.0, None
    for t0, t1 in sorted(spans):
        if end is None or t0 >= end:
            union += t1 - t0
            end = t1
        elif t1 > end:
            union += t1 - end
            end = t1
    return total / union if union else 0.0


def enqueue_all(d, name, argss):
    got = rpc_many(d.sock, [{"cmd": "enqueue", "args": {"name": name, "args": a}}
                            for a in argss])
    return got and all(v.get("ok") for v in got.values())


def all_done(d, name, n):
    return lambda: sum(1 for j in results(d, name) if j["state"] == "succeeded") == n


def main():
    root = make_root("awaitd-keylimits-", {
        "scripts/acct.lua": ACCT, "scripts/two.lua": TWO, "scripts/rated.lua": RATED,
        "scripts/once.lua": ONCE, "migrations/0100_runs.sql": RUNS, "scripts/byfn.lua": BYFN,
        "scripts/fromtask.lua": FROMTASK, "scripts/paced.lua": PACED,
        "scripts/bad_missing.lua": BAD_MISSING,
        "scripts/bad_rate.lua": BAD_RATE, "scripts/bad_by.lua": BAD_BY,
        "scripts/bad_list.lua": BAD_LIST})
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())

        # bad settings: the script does not load, and says why
        rc, js, _ = d.cjson("scripts")
        errs = {s["name"]: s.get("error") or "" for s in js}
        lims = {s["name"]: s.get("limits") for s in js}
        check("awaitctl scripts shows the limits",
              lims["two"] == [{"by": "account", "concurrency": 1},
                              {"by": "region", "concurrency": 2}], lims)
        check("a limit with neither concurrency nor rate: refused",
              "needs concurrency = N, or rate = N" in errs["bad_missing"], errs)
        check("a rate without per: refused", "rate and per go together" in errs["bad_rate"],
              errs)
        check("by that is not a field name: refused", "by must name a field" in errs["bad_by"],
              errs)
        check("more than 4 limits: refused", "1 to 4 limits" in errs["bad_list"], errs)
        rc, out, err = d.ctl("enqueue", "acct", '{"account": {"id": 1}}')
        check("an account that is an object: invalid, nothing stored",
              rc != 0 and "must be a string or a number" in err and not results(d, "acct"),
              (rc, out, err))

        # 200 purchases over 5 accounts (and 10 without one)
        argss = [{"account": "acct-%d" % (i % 5)} for i in range(200)] + [{} for _ in range(10)]
        t = time.monotonic()
        check("210 jobs enqueued", enqueue_all(d, "acct", argss))
        check("all succeed", poll(all_done(d, "acct", 210), 120), results(d, "acct")[:3])
        took = time.monotonic() - t
        n = d.cjson("stats")[1]["jobs"]["by_script"]["acct"]["claims"]
        # (a claim that left jobs held by their keys used to be asked again at once, by a
        # NEXT_DUE that named their past run_at: a claim a millisecond until one ended)
        check("claims follow the jobs' ends, no busy loop while keys are full (%d claims)" % n,
              n <= 250, n)
        jobs = [j["result"] for j in results(d, "acct")]
        by = {}
        for r in jobs:
            by.setdefault(r.get("account"), []).append((r["t0"], r["t1"]))
        bad = {a: overlaps(s) for a, s in by.items() if a and overlaps(s)}
        check("no two jobs of one account ran at once (%d accounts)" % (len(by) - 1),
              not bad and len(by) == 6, bad)
        keyed = [s for a, spans in by.items() if a for s in spans]
        most = most_at_once(keyed)
        check("several accounts ran at once (at most %d at a time, of 5)" % most,
              2 <= most <= 5, most)
        check("the 10 jobs without an account were not held (%d ran together)"
              % most_at_once(by[None]), most_at_once(by[None]) >= 2, by[None])
        # 40 jobs of 20 ms each per account, one at a time; accounts side by side (not a
        # wall-clock bound: on PostgreSQL each job's start waits for the last one's commit)
        check("accounts in parallel, not one after another: %.1f keyed jobs at once on"
              " average while any ran (%.1f s in all)" % (mean_at_once(keyed), took),
              mean_at_once(keyed) >= 1.2, keyed[:10])

        # two limits at once
        argss = [{"account": "a%d" % (i % 6), "region": "r%d" % (i % 2)} for i in range(60)]
        check("60 jobs under two limits enqueued", enqueue_all(d, "two", argss))
        check("... all succeed", poll(all_done(d, "two", 60), 120))
        res = [j["result"] for j in results(d, "two")]
        acc, reg = {}, {}
        for r in res:
            acc.setdefault(r["account"], []).append((r["t0"], r["t1"]))
            reg.setdefault(r["region"], []).append((r["t0"], r["t1"]))
        check("one job per account at a time", not any(overlaps(s) for s in acc.values()), acc)
        check("at most two per region at a time",
              all(most_at_once(s) <= 2 for s in reg.values()), reg)
        check("both regions ran at once", most_at_once([s for v in reg.values() for s in v]) >= 2)

        # a rate limit: at most 10 starts of a provider in any second
        argss = [{"provider": "p1"} for _ in range(40)] + [{"provider": "p2"} for _ in range(10)]
        d.ctl("pause", "rated")  # all of them queued before the first claim
        check("50 rate-limited jobs enqueued", enqueue_all(d, "rated", argss))
        d.ctl("resume", "rated")
        check("... all succeed", poll(all_done(d, "rated", 50), 120))
        starts = {}
        for j in results(d, "rated"):
            starts.setdefault(j["result"], []).append(j["started_at"])
        worst = max(sum(1 for u in v if t - 1000 < u <= t) for v in starts.values() for t in v)
        check("no more than 10 starts of a provider in any 1-second window (most: %d)" % worst,
              worst <= 10, starts)
        p1 = sorted(starts["p1"])
        check("40 jobs of p1 took four windows (%d ms from first to last start)"
              % (p1[-1] - p1[0]), p1[-1] - p1[0] >= 3000, p1)
        check("p2 was not held behind p1 (started within its first second)",
              max(starts["p2"]) - p1[0] < 1000, (starts["p2"], p1[0]))
        check("no job ran twice (each claim pass takes a job once)", runs_twice(d) == [],
              runs_twice(d))

        # a rate window opening wakes the claims of its own script, not everyone's
        def claims():
            by = d.cjson("stats")[1]["jobs"]["by_script"]
            return {k: v.get("claims", 0) for k, v in by.items()}
        d.ctl("pause", "paced")
        check("15 jobs paced at one start per 150 ms enqueued",
              enqueue_all(d, "paced", [{"provider": "q"}] * 15))
        before, t = claims(), time.monotonic()
        d.ctl("resume", "paced")
        check("... all succeed", poll(all_done(d, "paced", 15), 60))
        after, took = claims(), time.monotonic() - t
        grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        others = max(v for k, v in grew.items() if k != "paced")
        check("paced: claimed again at each window, not in a loop (%d claims in %.1f s)"
              % (grew["paced"], took), 10 <= grew["paced"] <= 100, grew)
        check("... the other scripts only at the 1 s safety poll (at most %d claims each)"
              % others, others <= took + 3, grew)

        # show names the limit a queued job waits behind
        rc, out, _ = d.ctl("enqueue", "acct", '{"account": "held", "ms": 3000}')
        first = int(out.split()[0])
        rc, out, _ = d.ctl("enqueue", "acct", '{"account": "held"}')
        second = int(out.split()[0])
        poll(lambda: d.cjson("show", first)[1]["state"] == "running", 10)
        rc, out, _ = d.ctl("show", second)
        check("show: a job behind a full key says so",
              "held:     limit by account = held: 1 of 1 running" in out, out)
        rc, js, _ = d.cjson("show", second)
        check("show --json: held {kind, by, key, running, of}",
              js.get("held") == {"kind": "limit", "by": "account", "key": "held", "running": 1,
                                 "of": 1}, js)
        rc, out, _ = d.ctl("wait", second, "--timeout", str(30000 * SLOW))
        check("... and it runs once the first is done", rc == 0, out)
        d.ctl("run", "once", '{"provider": "z"}')
        rc, out, _ = d.ctl("enqueue", "once", '{"provider": "z"}')
        z = int(out.split()[0])
        rc, out, _ = d.ctl("show", z)
        check("show: a job behind a full rate says so",
              "held:     rate limit by provider = z: 1 of 1 starts in 10m00s" in out, out)
        d.ctl("cancel", z)

        # by as a function of args
        argss = [{"user": {"id": i % 3}} for i in range(30)] + [{} for _ in range(3)]
        check("33 jobs under a by function enqueued", enqueue_all(d, "byfn", argss))
        check("... all succeed", poll(all_done(d, "byfn", 33), 120))
        users = {}
        for r in (j["result"] for j in results(d, "byfn")):
            users.setdefault(r.get("user"), []).append((r["t0"], r["t1"]))
        check("one job per user at a time, by what the function returned",
              all(not overlaps(s) for u, s in users.items() if u is not None)
              and len(users) == 4, users)
        for args, want in (('{"loop": true}', "ran past"), ('{"table": true}', "must return"),
                           ('{"boom": true}', "no user")):
            rc, out, err = d.ctl("enqueue", "byfn", args)
            check("a by function that %s: the enqueue is refused, saying so" % want,
                  rc != 0 and "limits[1].by" in err and want in err, (rc, err))
        rc, out, _ = d.ctl("scripts")
        check("scripts shows a by function", "byfn: limit by (function): 1 at a time" in out,
              out)
        check("the daemon still answers", d.ctl("ping")[0] == 0)
        rc, out, err = d.ctl("run", "fromtask")
        got = json.loads(out) if rc == 0 else {}
        rc2, out2, _ = d.ctl("wait", got.get("id", 0), "--timeout", str(20000 * SLOW))
        check("jobs.enqueue from a task calls the by function (and a failing one is refused)",
              got.get("refused") is True and rc2 == 0 and json.loads(out2)["user"] == 9,
              (out, err, out2))

        # across a crash: kill mid-run, restart, the limit still holds
        argss = [{"account": "k%d" % (i % 3), "ms": 60} for i in range(45)]
        before = len(results(d, "acct"))
        check("45 more enqueued", enqueue_all(d, "acct", argss))
        time.sleep(0.5)
        d.stop(signal.SIGKILL)
        check("restarts after SIGKILL", d.start(), open(d.log.name).read())
        check("... all of them succeed", poll(all_done(d, "acct", before + 45), 120))
        spans = {}
        for r in (j["result"] for j in results(d, "acct")):
            if r.get("account", "").startswith("k"):
                spans.setdefault(r["account"], []).append((r["t0"], r["t1"]))
        kids = {j["id"] for j in results(d, "acct")
                if (j["result"] or {}).get("account", "").startswith("k")}
        twice = runs_twice(d)
        check("no job ran twice but those the SIGKILL cut short (at most one per account)",
              len(twice) <= 3 and all(j in kids and n == 2 for j, n in twice), twice)
        check("no overlap per account across the restart",
              sum(len(s) for s in spans.values()) == 45
              and not any(overlaps(s) for s in spans.values()), spans)
        check("SIGTERM exits 0", d.stop() == 0)


if __name__ == "__main__":
    run(main)
