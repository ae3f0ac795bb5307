#!/usr/bin/env python3
"""End-to-end tests of fairness (a script's fair_by): 10 jobs of a small
tenant enqueued after thousands of a big one start within the next few
claims, not after the big one's; three tenants take turns; jobs without
the field take their turn too; the turn survives a restart; fair_by and a
per-key limit hold together.

Usage: test_fair.py AWAITD AWAITCTL SCRIPTS_DIR
"""
import json
import os
import signal

from harness import run, SLOW, WRAP, Daemon, check, make_root, poll, rpc_many

TENANTED = r'''
return { concurrency = 4, fair_by = "tenant", limits = { { by = "acct", concurrency = 1 } },
  run = function(ctx, args)
    local t0 = async.now()
    async.sleep(5)
    if args.acct then return { acct = args.acct, t0 = t0, t1 = async.now() } end
    return args.tenant or "none"
  end }
'''

# one job of each tenant at a time, and fair_by over the same field
GATE = r'''
return { concurrency = 4, fair_by = "tenant", limits = { { by = "tenant", concurrency = 1 } },
  run = function(ctx, args) async.sleep(args.ms) return args.tenant end }
'''

BAD = 'return { fair_by = 7, run = function() end }\n'


def enqueue_all(d, argss):
    got = rpc_many(d.sock, [{"cmd": "enqueue", "args": {"name": "tenanted", "args": a}}
                            for a in argss])
    return [v["result"]["id"] for _, v in sorted(got.items())] if got else []


def started(d):
    """(started_at, id, result) of the succeeded jobs, in start order."""
    rc, js, _ = d.cjson("jobs", "--name", "tenanted", "--state", "succeeded", "--limit", "10000")
    return sorted((j["started_at"], j["id"], j["result"]) for j in js["jobs"])


def main():
    big_n = 600 if WRAP else 3000
    root = make_root("awaitd-fair-", {"scripts/tenanted.lua": TENANTED, "scripts/bad.lua": BAD,
                                      "scripts/gate.lua": GATE})
    with Daemon(root) as d:
        check("daemon starts", d.start(), open(d.log.name).read())
        rc, js, _ = d.cjson("scripts")
        errs = {s["name"]: s.get("error") or "" for s in js}
        check("fair_by that is not a field name: refused",
              "fair_by must name a field" in errs["bad"], errs)

        # pause while enqueueing, so the big tenant's thousands are all ahead
        d.ctl("pause", "tenanted")
        big = enqueue_all(d, [{"tenant": "big"} for _ in range(big_n)])
        small = enqueue_all(d, [{"tenant": "small"} for _ in range(10)])
        check("%d + 10 jobs enqueued, small last" % big_n,
              len(big) == big_n and len(small) == 10 and min(small) > max(big))
        d.ctl("resume", "tenanted")
        ok = poll(lambda: sum(1 for s in started(d) if s[2] == "small") == 10, 120)
        order = [s[2] for s in started(d)]
        last_small = max(i for i, t in enumerate(order) if t == "small")
        check("the 10 small jobs started within the first 30 starts (the last at #%d)"
              % (last_small + 1), ok and last_small < 30, order[:40])
        check("... alternating with the big tenant, not after it",
              order[:20].count("small") >= 8, order[:20])

        # three tenants and jobs without one take turns
        d.ctl("pause", "tenanted")
        poll(lambda: all(j["state"] != "running" for j in
                         d.cjson("jobs", "--name", "tenanted", "--state", "running")[1]["jobs"]),
             60)
        d.stop(signal.SIGKILL)  # the big backlog stays queued
        check("restarts", d.start(), open(d.log.name).read())
        n0 = len(started(d))
        t = enqueue_all(d, [{"tenant": "t%d" % (i % 3)} for i in range(30)] + [{} for _ in range(5)])
        check("35 more enqueued", len(t) == 35)
        d.ctl("resume", "tenanted")
        ok = poll(lambda: sum(1 for s in started(d) if s[2] in ("t0", "t1", "t2", "none")) == 35,
                  120)
        later = [s[2] for s in started(d)[n0:]]
        first = later[:25]
        check("after a restart, the tenants take turns: each of t0, t1, t2 and the jobs "
              "without one start in the first 25 (%s)" % ",".join(first),
              ok and all(x in first for x in ("t0", "t1", "t2", "none", "big")), later[:40])
        # fair_by and a per-key limit together: the limit still holds
        ids = enqueue_all(d, [{"tenant": "a", "acct": "same"} for _ in range(12)]
                          + [{"tenant": "b", "acct": "b%d" % i} for i in range(12)])
        ok = poll(lambda: all(d.cjson("show", i)[1]["state"] == "succeeded" for i in ids), 120)
        spans = sorted((r["t0"], r["t1"]) for r in (d.cjson("show", i)[1]["result"] for i in ids)
                       if r["acct"] == "same")
        check("fair_by with a limit: one job of account 'same' at a time",
              ok and len(spans) == 12 and all(b[0] >= a[1] for a, b in zip(spans, spans[1:])),
              spans)
        # jobs enqueued before the script had fair_by take their turn too
        old = os.path.join(root, "scripts", "late.lua")
        with open(old, "w") as f:
            f.write('return { concurrency = 2, run = function(ctx, args) async.sleep(5) '
                    'return args.tenant or "old" end }\n')
        d.ctl("reload")
        d.ctl("pause", "late")
        olds = rpc_many(d.sock, [{"cmd": "enqueue", "args": {"name": "late", "args": {}}}
                                 for _ in range(3)])
        with open(old, "w") as f:
            f.write('return { concurrency = 2, fair_by = "tenant", run = function(ctx, args) '
                    'async.sleep(5) return args.tenant or "old" end }\n')
        d.ctl("reload")
        rpc_many(d.sock, [{"cmd": "enqueue", "args": {"name": "late", "args": {"tenant": "big"}}}
                          for _ in range(200)])
        d.ctl("resume", "late")

        def late_order():
            rc, js, _ = d.cjson("jobs", "--name", "late", "--state", "succeeded", "--limit", "500")
            return [j["result"] for j in sorted(js["jobs"], key=lambda j: (j["started_at"], j["id"]))]
        poll(lambda: late_order().count("old") == 3, 60)
        order = late_order()
        check("jobs from before fair_by was set start in their turn (by #%d)"
              % (max(i for i, t in enumerate(order) if t == "old") + 1 if "old" in order else -1),
              olds and order.count("old") == 3
              and max(i for i, t in enumerate(order) if t == "old") < 12, order[:20])
        gate_round(d)
        check("SIGTERM exits 0", d.stop(signal.SIGTERM) == 0)


def gate_round(d):
    """A round that wraps past the last value served, to a value whose limit is
    full, with no other value left: the claim ends (it once went round for ever)."""
    def gate(args):
        r = rpc_many(d.sock, [{"cmd": "enqueue", "args": {"name": "gate", "args": args}}])
        return r[1]["result"]["id"] if r and r[1].get("ok") else None
    def job(i):
        return d.cjson("show", i, timeout=10)[1] or {}
    a1 = gate({"tenant": "a", "ms": 1500 * SLOW})
    poll(lambda: job(a1).get("state") == "running", 30)
    a2 = gate({"tenant": "a", "ms": 5})  # served last: a; a is full
    b1 = gate({"tenant": "b", "ms": 5})  # b, then round to a (full), and no value is left
    ok = poll(lambda: job(b1).get("state") == "succeeded", 30)
    check("fair_by: a claim whose round comes back to a full value ends (b ran)", ok, job(b1))
    check("... the daemon still answers", d.ctl("ping", timeout=10)[0] == 0)
    check("... and a's second job runs after its first",
          poll(lambda: job(a2).get("state") == "succeeded", 30)
          and job(a2)["started_at"] >= job(a1)["finished_at"], (job(a1), job(a2)))

if __name__ == "__main__":
    run(main)
