"""tests/e2e/test_pg_chaos.py: three daemons on one PostgreSQL, purchases
exactly once through a SIGKILL and a server restart (issue 14's proof).

10,000 purchases (300 under valgrind) over 1,000 accounts are enqueued
with idempotency keys by 9 clients, three per daemon, over the socket. While
they run, one daemon is killed with SIGKILL and started again, and then the
PostgreSQL server itself is restarted; a client whose enqueue got no answer
or an error sends it again, with the same key, to the next daemon.
Afterwards, from the database:
  - 0 lost: every acknowledged purchase is there, as the job of its key;
  - every job finished exactly once, in `succeeded`;
  - 0 charged twice: one order per charged job, none for the others, one
    receipt per order;
  - every account balanced: its starting balance minus the sum of its orders.
"""
import json
import os
import random
import signal
import threading
import time

from harness import SCRIPTS, SLOW, WRAP, Daemon, check, make_root, poll, rpc, run, skip
from pgserver import start_for_test

START = 1_000_000
NACC = 1000


def root():
    with open(os.path.join(SCRIPTS, "purchase.lua")) as f:
        purchase = f.read().replace("concurrency = 50,", "concurrency = 100,", 1)
    return make_root("awaitd-pgchaos-", {"scripts/purchase.lua": purchase},
                     conf="shutdown_timeout_ms = 2000\n", lib=True)


def main():
    pg = start_for_test(check, skip, "chaos")
    if not pg:
        return
    seed = int(os.environ.get("AWAITD_CRASH_SEED", "20261207"))
    rnd = random.Random(seed)
    print("seed %d" % seed, flush=True)
    n = 300 if WRAP else 10000
    daemons = [Daemon(root(), db=pg.uri) for _ in range(3)]
    stop_clients = threading.Event()
    try:
        ok = daemons[0].start()  # the first applies the migrations; then the accounts
        pg.psql("INSERT INTO accounts (id, owner, balance) SELECT i, 'acc-' || i, %d"
                " FROM generate_series(1, %d) i ON CONFLICT (id) DO UPDATE SET balance = %d"
                % (START, NACC, START))
        ok = ok and daemons[1].start() and daemons[2].start()
        check("chaos: three daemons up on one PostgreSQL", ok,
              [d.logtext()[-800:] for d in daemons])
        purchases = [("p-%05d" % i, {"account": rnd.randint(1, NACC), "item": "i%d" % i,
                                     "price": rnd.choice([7, 50, 120, 999, 2500]),
                                     "provider_ms": rnd.randint(5, 40)}) for i in range(n)]
        unsent = list(purchases)
        acked, errors = {}, []
        lock = threading.Lock()

        def client(k):
            turn = k % 3
            while not stop_clients.is_set():
                with lock:
                    if not unsent:
                        return
                    key, args = unsent.pop()
                end = time.monotonic() + 180 * SLOW
                jid = None
                while jid is None and time.monotonic() < end:
                    r = rpc(daemons[turn].sock, {"id": 1, "cmd": "enqueue",
                                                 "args": {"name": "purchase", "args": args,
                                                          "key": key}}, timeout=20)
                    if r and r.get("ok"):
                        jid = r["result"]["id"]
                    else:  # down, restarting, or PostgreSQL away: the next daemon, same key
                        turn = (turn + 1) % 3
                        time.sleep(0.02)
                with lock:
                    (acked.__setitem__(key, jid) if jid is not None else errors.append(key))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(9)]
        for t in threads:
            t.start()

        def done_share():
            rows = pg.psql("SELECT count(*) FROM jobs WHERE name = 'purchase' AND state ="
                           " 'succeeded'")
            return int(rows[0]) / n if rows else 0

        # a daemon killed mid-run, and started again
        poll(lambda: len(acked) >= rnd.uniform(0.2, 0.4) * n, 300)
        victim = daemons[rnd.randrange(3)]
        running = pg.psql("SELECT count(*) FROM jobs WHERE state = 'running'")[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        check("chaos: kill -9 one daemon mid-run (%s running over all) and restart it" % running,
              victim.start(), victim.logtext()[-1500:])
        # then PostgreSQL itself restarts
        poll(lambda: len(acked) >= rnd.uniform(0.5, 0.7) * n, 300)
        shown = done_share()
        pg.restart()
        check("chaos: PostgreSQL restarted at %.0f%% done; the daemons live" % (shown * 100),
              all(d.proc.poll() is None for d in daemons))
        for t in threads:
            t.join(600 * SLOW)
        check("chaos: every enqueue was acknowledged (%d)" % len(acked),
              not errors and len(acked) == n, errors[:5])
        settled = poll(lambda: pg.psql("SELECT count(*) FROM jobs WHERE name = 'purchase' AND"
                                       " state NOT IN ('succeeded', 'dead', 'cancelled')")
                       == ["0"], 300)
        check("chaos: all purchases finish", settled,
              pg.psql("SELECT state, count(*) FROM jobs GROUP BY state"))

        jobs = {}
        for line in pg.psql("SELECT id, key, state, coalesce(result, '') FROM jobs"
                            " WHERE name = 'purchase'"):
            jid, key, state, result = line.split("|", 3)
            jobs[key] = (int(jid), state, result)
        missing = [k for k, jid in acked.items() if k not in jobs or jobs[k][0] != jid]
        check("chaos: 0 lost: every acknowledged purchase is there, as the job of its key",
              not missing and len(jobs) == n, (missing[:5], len(jobs)))
        bad = [(k, v[1]) for k, v in jobs.items() if v[1] != "succeeded"]
        check("chaos: every job finished in succeeded", not bad,
              (len(bad), bad[:5], pg.psql("SELECT left(error, 300), count(*) FROM jobs WHERE"
                                          " state <> 'succeeded' GROUP BY 1 ORDER BY 2 DESC"
                                          " LIMIT 5"),
               # (whose they are: the node, lease and times of those not done, the nodes)
               pg.psql("SELECT id, key, state, attempt, epoch, lease, started_at, run_at FROM"
                       " jobs WHERE state <> 'succeeded' ORDER BY id LIMIT 10"),
               pg.psql("SELECT id, pid, started, seen_at FROM awaitd_nodes ORDER BY id"),
               [line for d in daemons for line in d.logtext().splitlines()
                if any(("job %d" % jobs[k][0]) in line for k, _ in bad[:3])][:20]))
        charged = {v[0] for v in jobs.values() if v[2] and json.loads(v[2]).get("charged")}
        orders = {}
        for line in pg.psql("SELECT job_id, count(*) FROM orders GROUP BY job_id"):
            jid, cnt = line.split("|")
            orders[int(jid)] = int(cnt)
        twice = [(j, c) for j, c in orders.items() if c != 1]
        check("chaos: 0 charged twice (one order per job)", not twice, twice[:5])
        check("chaos: an order for every charged purchase, none for the others (%d)"
              % len(charged), set(orders) == charged, sorted(set(orders) ^ charged)[:5])
        rec = pg.psql("SELECT count(*), count(DISTINCT order_id) FROM receipts")[0]
        check("chaos: one receipt per order", rec == "%d|%d" % (len(orders), len(orders)),
              (rec, len(orders)))
        off = pg.psql("SELECT a.id, a.balance, coalesce(sum(o.price), 0) FROM accounts a"
                      " LEFT JOIN orders o ON o.account_id = a.id WHERE a.id <= %d"
                      " GROUP BY a.id HAVING a.balance <> %d - coalesce(sum(o.price), 0)"
                      % (NACC, START))
        check("chaos: every account balanced (start minus the sum of its orders)", not off,
              off[:5])
        # the nodes that lost their connection (the killed one; all of them when PostgreSQL
        # restarted) are reaped by the next heartbeat of a live one: a second or so later
        reaped = poll(lambda: pg.psql("SELECT count(*) FROM awaitd_nodes") == ["3"], 60, 0.2)
        check("chaos: the nodes of lost connections were taken over (3 rows left)", reaped,
              pg.psql("SELECT * FROM awaitd_nodes"))
        codes = [d.stop() for d in daemons]  # valgrind's errors and leaks: status 99
        check("chaos: the daemons exit 0 on SIGTERM (%s)" % codes, codes == [0, 0, 0],
              [d.logtext()[-800:] for d in daemons])
    finally:
        stop_clients.set()
        for d in daemons:
            d.__exit__()
        pg.close()


run(main)
