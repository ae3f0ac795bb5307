#!/usr/bin/env python3
"""tests/e2e/test_crash_load.py: purchases stay exactly once when the daemon
is killed under load (issue 13).

    python3 tests/e2e/test_crash_load.py AWAITD AWAITCTL SCRIPTS

1,000 accounts; purchase jobs (scripts/purchase.lua, concurrency 100, a
short provider call) enqueued with idempotency keys by 8 clients over the
socket, up to 100 running at once; the daemon is killed with SIGKILL at
three moments drawn at random (after a random share of the enqueues was
acknowledged, with purchases running; seeded: AWAITD_CRASH_SEED, printed)
and restarted each time; the clients retry an enqueue that got no answer,
with the same key. Afterwards, from the database:
  - every acknowledged purchase is there, as the job of its key, and every
    job succeeded;
  - no purchase is charged twice: one order per charged job, none for an
    uncharged one, one receipt per order;
  - every account's balance is its starting balance minus the sum of its
    orders.
"""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

from harness import AWAITD, Daemon, MIGRATIONS, SCRIPTS, SLOW, WRAP, check, finish, poll, rpc

START = 1_000_000
NACC = 1000


def setup():
    root = tempfile.mkdtemp(prefix="awaitd-crashload-")
    shutil.copytree(SCRIPTS, os.path.join(root, "scripts"),
                    ignore=shutil.ignore_patterns("examples"))
    p = os.path.join(root, "scripts", "purchase.lua")
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace("concurrency = 50,", "concurrency = 100,", 1))
    shutil.copytree(MIGRATIONS, os.path.join(root, "migrations"))
    with open(os.path.join(root, "awaitd.conf"), "w") as f:
        f.write("shutdown_timeout_ms = 2000\n")
    db = os.path.join(root, "awaitd.db")
    subprocess.run([AWAITD, "migrate", "--db", db, "--migrations",
                    os.path.join(root, "migrations")], check=True, capture_output=True)
    con = sqlite3.connect(db)
    con.executemany("INSERT OR REPLACE INTO accounts (id, owner, balance) VALUES (?, ?, ?)",
                    [(i, "acc-%d" % i, START) for i in range(1, NACC + 1)])
    con.commit()
    con.close()
    return root


def main():
    seed = int(os.environ.get("AWAITD_CRASH_SEED", "20261207"))
    rnd = random.Random(seed)
    print("seed %d" % seed, flush=True)
    n = 300 if WRAP else 2000
    root = setup()
    d = Daemon(root)
    purchases = [("p-%05d" % i, {"account": rnd.randint(1, NACC), "item": "i%d" % i,
                                 "price": rnd.choice([7, 50, 120, 999, 2500]),
                                 "provider_ms": rnd.randint(5, 60)}) for i in range(n)]
    unsent = list(purchases)
    acked, errors = {}, []
    lock = threading.Lock()
    stop_clients = threading.Event()

    def client():
        while not stop_clients.is_set():
            with lock:
                if not unsent:
                    return
                key, args = unsent.pop()
            end = time.monotonic() + 120 * SLOW
            jid = None
            while jid is None and time.monotonic() < end:
                r = rpc(d.sock, {"id": 1, "cmd": "enqueue",
                                 "args": {"name": "purchase", "args": args, "key": key}})
                if r and r.get("ok"):
                    jid = r["result"]["id"]
                else:
                    time.sleep(0.02)  # down or restarting: the same key again
            with lock:
                (acked.__setitem__(key, jid) if jid is not None else errors.append(key))

    try:
        check("daemon starts", d.start(), open(os.path.join(root, "log")).read())
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        running_at_kill = []
        # three random moments of the run: after a random share of the
        # enqueues was acknowledged, once purchases are running
        marks = sorted(rnd.uniform(0.1, 0.85) for _ in range(3))
        for k, mark in enumerate(marks):
            poll(lambda: len(acked) >= mark * n, 120)

            def running():
                rc, st, _ = d.cjson("status", timeout=10)
                return (st or {}).get("jobs", {}).get("running")
            running_at_kill.append(poll(running, 5) or 0)
            time.sleep(rnd.uniform(0, 0.05) * SLOW)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            check("kill -9 #%d after %d%% of the enqueues (running: %s) and restart"
                  % (k + 1, mark * 100, running_at_kill[-1]),
                  d.start(), open(os.path.join(root, "log")).read()[-2000:])
        for t in threads:
            t.join(300 * SLOW)
        check("every enqueue was acknowledged (%d)" % len(acked), not errors and len(acked) == n,
              errors[:5])
        check("purchases were running at some kill (%s)" % running_at_kill,
              any(r for r in running_at_kill))

        def settled():
            rc, st, _ = d.cjson("status", timeout=10)
            j = (st or {}).get("jobs", {})
            return rc == 0 and j.get("queued") == 0 and j.get("running") == 0 \
                and j.get("failed") == 0
        check("all purchases finish after the last restart", poll(settled, 120), "")
        check("SIGTERM exits 0", d.stop() == 0)

        con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True)
        jobs = {key: (jid, state, result) for jid, key, state, result in con.execute(
            "SELECT id, key, state, result FROM jobs WHERE name = 'purchase'")}
        missing = [k for k, jid in acked.items() if k not in jobs or jobs[k][0] != jid]
        check("every acknowledged purchase is there, as the job of its key",
              not missing and len(jobs) == n, missing[:5])
        bad = [(k, v[1]) for k, v in jobs.items() if v[1] != "succeeded"]
        check("every purchase succeeded", not bad, bad[:5])
        charged = {v[0] for v in jobs.values() if v[2] and json.loads(v[2]).get("charged")}
        orders = con.execute("SELECT job_id, count(*) FROM orders GROUP BY job_id").fetchall()
        twice = [o for o in orders if o[1] != 1]
        check("no purchase is charged twice (one order per job)", not twice, twice[:5])
        check("an order for every charged purchase and none for the others (%d)" % len(charged),
              {o[0] for o in orders} == charged,
              sorted({o[0] for o in orders} ^ charged)[:5])
        rec = con.execute("SELECT count(*), count(DISTINCT order_id) FROM receipts").fetchone()
        check("one receipt per order", rec[0] == rec[1] == len(orders), (rec, len(orders)))
        off = con.execute(
            "SELECT a.id, a.balance, coalesce(sum(o.price), 0) FROM accounts a"
            " LEFT JOIN orders o ON o.account_id = a.id WHERE a.id <= ? GROUP BY a.id"
            " HAVING a.balance != ? - coalesce(sum(o.price), 0)", (NACC, START)).fetchall()
        check("every balance is its start minus the sum of its orders", not off, off[:5])
        con.close()
    finally:
        stop_clients.set()
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
