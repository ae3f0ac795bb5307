"""tests/e2e/test_pg.py: the PostgreSQL store with a real PostgreSQL 15 server
(pgserver.py starts one in a temporary folder) and real daemons sharing it.

- two daemons started at the same moment apply each migration once and
  register as two nodes; a PostgreSQL-only migration (NNNN_x.pg.sql alone) runs;
- purchases enqueued with idempotency keys through both daemons run exactly
  once: every order once, the balance right, a key enqueued twice one job;
- a daemon killed with SIGKILL: the other finds its node dead within seconds
  and runs its jobs, whose journaled step still happens once;
- PostgreSQL restarted under running daemons: requests meanwhile fail with
  code db and a clear message, the daemons live, reconnect, and work resumes
  with nothing acknowledged lost;
- a per-key limit holds across the daemons (never two jobs of one account
  running at once anywhere), and a key paused through one daemon holds its
  jobs back on the other;
- application SQL cannot reach the daemon's tables or end its transaction;
  a failing migration stops start-up naming the file.
"""
import json
import os
import signal
import subprocess
import time

from harness import SCRIPTS, SLOW, Daemon, check, make_root, poll, rpc_many, run, skip
from pgserver import start_for_test

LONG = min(SLOW, 4)  # jobs that must outlast a step of the test: longer under valgrind

NAP = """
return {
  concurrency = 5,
  retries = 5,
  backoff = 100,
  timeout = 600000,
  run = function(ctx, args)
    async.sleep(args.ms or 0)
    local ok, err = ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO naps (job_id) VALUES (?)", ctx.job.id))
      return true
    end, { step = "nap" })
    if not ok then return nil, err end
    return { napped = args.ms or 0 }
  end,
}
"""

NAPS_PG = "CREATE TABLE naps (job_id bigint NOT NULL, at timestamptz DEFAULT now());\n"

SOLO = """
return {
  concurrency = %d,
  timeout = 600000,
  run = function(ctx, args) async.sleep(args.ms or 0); return true end,
}
"""

WAITER = """
return {
  timeout = 600000,
  run = function(ctx, args)
    ctx.sleep(args.nap or 0)
    local v, err = ctx.wait_signal("go", { timeout = args.timeout or 600000 })
    if not v then return { timed_out = err.code } end
    return { got = v.x }
  end,
}
"""

# a trigger that refuses one job: a statement of a batch fails under its neighbours
BOOM_PG = """CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.args LIKE '%boom%' THEN RAISE EXCEPTION 'boom refused'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER boom BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION boom();
"""

TXENQ = """
return {
  run = function(ctx, args)
    local ok, err = ctx.db:tx(function(tx)
      local id = assert(jobs.enqueue("solo", { ms = 0, from_tx = args.tag }))
      if args.fail then error("changed my mind") end
      return id
    end)
    return { id = ok, err = err and err.message }
  end,
}
"""

PROBE = """
return {
  run = function(ctx, args)
    local rows, err = ctx.db:query(args.sql)
    if rows then return { rows = #rows } end
    return { code = err.code, message = err.message }
  end,
}
"""


# one job of an account at a time across all daemons; each run records its
# span by PostgreSQL's clock (the daemons' own clocks are not comparable)
ACCT = """
return {
  concurrency = 10,
  limits = { { by = "account", concurrency = 1 } },
  run = function(ctx, args)
    local t0 = ctx.db:one("SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint AS t").t
    async.sleep(args.ms or 30)
    ctx.db:exec("INSERT INTO spans (job_id, account, t0, t1) VALUES (?, ?, ?,"
      .. " (extract(epoch FROM clock_timestamp()) * 1e6)::bigint)", ctx.job.id, args.account, t0)
    return true
  end,
}
"""

SPANS_PG = ("CREATE TABLE spans (job_id bigint NOT NULL, account text NOT NULL,"
            " t0 bigint NOT NULL, t1 bigint NOT NULL);\n")


def root_with(files=None, solo=1):
    with open(os.path.join(SCRIPTS, "purchase.lua")) as f:
        purchase = f.read()
    base = {"scripts/purchase.lua": purchase, "scripts/nap.lua": NAP,
            "scripts/probe.lua": PROBE, "scripts/solo.lua": SOLO % solo,
            "scripts/waiter.lua": WAITER, "scripts/txenq.lua": TXENQ, "scripts/acct.lua": ACCT,
            "migrations/0100_naps.pg.sql": NAPS_PG, "migrations/0102_boom.pg.sql": BOOM_PG,
            "migrations/0103_spans.pg.sql": SPANS_PG}
    base.update(files or {})
    return make_root("awaitd-pg-", base, lib=True)


def q1(pg, sql):
    rows = pg.psql(sql)
    return rows[0] if rows else None


def section_start_and_purchases(pg, a, b):
    procs = []
    for d in (a, b):  # at the same moment: both race for the migrations
        procs.append(threading_start(d))
    for t in procs:
        t.join()
    check("start: both daemons come up on one PostgreSQL", all(t.ok for t in procs),
          a.logtext()[-2000:] + b.logtext()[-2000:])
    dup = q1(pg, "SELECT count(*) - count(DISTINCT version) FROM schema_migrations")
    n = q1(pg, "SELECT count(*) FROM schema_migrations")
    check("migrations: each applied once (no version twice)", dup == "0", dup)
    files = {f.split("_")[0] for f in os.listdir(os.path.join(a.dir, "migrations"))
             if f.endswith(".sql")}
    check("migrations: every file's version is recorded", n == str(len(files)), (n, files))
    check("migrations: a PostgreSQL-only migration ran (naps exists)",
          q1(pg, "SELECT to_regclass('naps') IS NOT NULL") == "t")
    check("migrations: recorded under the .sql name",
          q1(pg, "SELECT name FROM schema_migrations WHERE version = 1") == "0001_core.sql")
    check("nodes: two daemons, two nodes", q1(pg, "SELECT count(*) FROM awaitd_nodes") == "2")
    rc, st, out = a.cjson("status")
    check("status: names the PostgreSQL database",
          rc == 0 and st and str(st.get("db", st.get("database", ""))).startswith("postgresql://"),
          out)

    nodes = (st or {}).get("nodes") or []
    check("status: lists the two nodes (host, pid, running)",
          len(nodes) == 2 and {n.get("pid") for n in nodes} == {a.proc.pid, b.proc.pid}
          and all("running" in n and n.get("host") for n in nodes), st)
    rc, out, _ = b.ctl("status")
    check("status: the human view has a line per node and marks this one",
          rc == 0 and "nodes:          2" in out and out.count("  node ") == 2
          and "pid %d" % b.proc.pid in out and "(this daemon)" in out, out)

    # enqueues without a key go as one INSERT of arrays per batch: odd text survives it
    odd = {"ms": 0, "s": 'a "quoted" \\ back\\slash, {brace} NULL \u00e9\u4e2d \t tab', "n": None,
           "list": [1, "two", {"k": "}"}]}
    rc, out, err = a.ctl("enqueue", "solo", json.dumps(odd))
    jid = out.split()[0] if rc == 0 else "0"
    rc, v, out = a.cjson("show", jid)
    check("enqueue: args with quotes, backslashes, braces and non-ASCII come back as sent",
          rc == 0 and (v or {}).get("args") == odd, (out, odd))
    rc, out, err = a.ctl("enqueue", "solo", '{"ms":0}', "--priority", "5", "--delay", "60000")
    jid = out.split()[0] if rc == 0 else "0"
    check("enqueue: options survive the batched insert (priority, delay)",
          q1(pg, "SELECT priority, run_at > created_at + 50000, state FROM jobs WHERE id = "
             + jid) == "5|t|queued", pg.psql("SELECT * FROM jobs WHERE id = " + jid))
    a.ctl("cancel", jid)

    # one bad request among twenty in a batch fails alone; its neighbours are committed
    reqs = [{"cmd": "enqueue", "args": {"name": "solo", "args": {"ms": 0, "t": "boom" if i == 10
                                                                 else "fine-%d" % i}}}
            for i in range(20)]
    got = rpc_many(a.sock, reqs) or {}
    bad = got.get(11) or {}
    good = [got.get(i + 1, {}).get("result", {}).get("id") for i in range(20) if i != 10]
    check("batch: the refused enqueue fails with PostgreSQL's message",
          bad.get("ok") is False and "boom refused" in json.dumps(bad), bad)
    check("batch: its 19 neighbours are acknowledged and stored",
          all(good) and q1(pg, "SELECT count(*) FROM jobs WHERE args LIKE '%%fine-%%' AND id IN"
                           " (%s)" % ",".join(str(g) for g in good if g)) == "19", (good, got))

    # purchases through both daemons, each with an idempotency key
    ids = {}
    for i in range(60):
        d = a if i % 2 else b
        rc, out, err = d.ctl("enqueue", "purchase",
                             '{"account":1,"item":"pen","price":100}', "--key", "buy-%d" % i)
        if rc == 0:
            ids[i] = out.split()[0]
    check("purchases: 60 enqueued through two daemons", len(ids) == 60, len(ids))
    rc, out, _ = a.ctl("enqueue", "purchase", '{"account":1,"item":"pen","price":100}',
                       "--key", "buy-7")
    check("purchases: a key enqueued again (on the other daemon) names the same job",
          rc == 0 and out.split()[0] == ids.get(7), (rc, out, ids.get(7)))
    done = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE name = 'purchase' AND state"
                           " IN ('succeeded', 'dead', 'cancelled')") == "60", 60)
    check("purchases: all 60 finished", done,
          pg.psql("SELECT state, count(*) FROM jobs GROUP BY state"))
    check("purchases: all succeeded",
          q1(pg, "SELECT count(*) FROM jobs WHERE name = 'purchase' AND state = 'succeeded'")
          == "60")
    check("purchases: 60 orders, one per job",
          q1(pg, "SELECT count(*), count(DISTINCT job_id) FROM orders") == "60|60")
    check("purchases: the balance is 10000 - 60 x 100",
          q1(pg, "SELECT balance FROM accounts WHERE id = 1") == "4000")
    check("purchases: 60 receipts, one per order",
          q1(pg, "SELECT count(DISTINCT order_id) FROM receipts") == "60")


class threading_start:
    """Start a daemon on a thread of its own (so several start at once)."""

    def __init__(self, d):
        import threading
        self.ok = False
        self.t = threading.Thread(target=self.go, args=(d,))
        self.t.start()

    def go(self, d):
        self.ok = d.start()

    def join(self):
        self.t.join()


def section_kill(pg, a, b):
    ids = []
    for i in range(10):
        rc, out, _ = (a if i % 2 else b).ctl("enqueue", "nap", '{"ms":%d}' % (3000 * LONG))
        if rc == 0:
            ids.append(int(out.strip()))
    running = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE name = 'nap' AND state ="
                              " 'running'") == str(len(ids)), 20)
    check("kill: 10 naps running over both daemons", running,
          pg.psql("SELECT epoch, state, count(*) FROM jobs WHERE name = 'nap' GROUP BY 1, 2"))
    node_a = q1(pg, "SELECT id FROM awaitd_nodes WHERE pid = %d" % a.proc.pid)
    held = q1(pg, "SELECT count(*) FROM jobs WHERE state = 'running' AND epoch = %s" % node_a)
    check("kill: the daemon to kill holds some of them", held not in (None, "0"), held)
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    freed = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE state = 'running' AND epoch = "
                            + node_a) == "0", 20)
    took = time.monotonic() - t0
    check("kill: the other daemon takes the dead node's jobs back within seconds (%.1f s)" % took,
          freed and took < 10 * SLOW, took)
    check("kill: the dead node's row is gone",
          q1(pg, "SELECT count(*) FROM awaitd_nodes WHERE id = %s" % node_a) == "0")
    check("kill: the survivor logs it", "dead nodes" in b.logtext(), b.logtext()[-1500:])
    these = "(%s)" % ",".join(str(i) for i in ids)
    done = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE id IN %s AND state ="
                           " 'succeeded'" % these) == "10", 60)
    check("kill: all 10 naps succeed", done,
          pg.psql("SELECT state, count(*) FROM jobs WHERE id IN %s GROUP BY 1" % these))
    check("kill: each nap's journaled step happened once",
          q1(pg, "SELECT count(*), count(DISTINCT job_id) FROM naps WHERE job_id IN "
             + these) == "10|10")
    check("kill: the daemon restarts and joins as a new node", a.start(),
          a.logtext()[-1500:])


def section_pg_restart(pg, a, b):
    rc, out, _ = a.ctl("enqueue", "nap", '{"ms":%d}' % (1500 * LONG))
    nap = out.strip() if rc == 0 else None
    poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = %s" % nap) == "running", 10)
    pg.stop("fast")
    rc, out, err = a.ctl("enqueue", "nap", '{"ms":0}', timeout=30)
    check("pg down: an enqueue fails with code db and says why", rc != 0 and "db" in (out + err)
          and "PostgreSQL" in (out + err), (rc, out, err))
    check("pg down: both daemons live", a.proc.poll() is None and b.proc.poll() is None)
    time.sleep(1)
    pg.start()
    ok = poll(lambda: a.ctl("enqueue", "nap", '{"ms":0}', timeout=10)[0] == 0, 30)
    check("pg back: enqueues work again", ok, a.logtext()[-2000:])
    check("pg back: the daemon logged the loss and its reconnection",
          "reconnecting" in a.logtext() and "connected again" in a.logtext(), a.logtext()[-2000:])
    done = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE name = 'nap' AND state NOT IN"
                           " ('succeeded')") == "0", 60)
    check("pg back: every nap job succeeds, the one running across the restart too", done,
          pg.psql("SELECT id, state, error FROM jobs WHERE name = 'nap' AND state <>"
                  " 'succeeded'"))
    check("pg back: each nap's step happened once",
          q1(pg, "SELECT count(*) - count(DISTINCT job_id) FROM naps") == "0")
    check("pg back: the job started before the restart is done",
          nap is not None and q1(pg, "SELECT state FROM jobs WHERE id = %s" % nap) == "succeeded")


def section_notify(pg, a, b):
    """Each daemon runs one solo job at a time. With one busy, what is enqueued
    through it is claimed by the other, woken by the busy one's NOTIFY (its own
    poll comes only once a second)."""
    by_node = {q1(pg, "SELECT id FROM awaitd_nodes WHERE pid = %d" % d.proc.pid): d
               for d in (a, b)}
    rc, out, _ = b.ctl("enqueue", "solo", '{"ms":%d}' % (5000 * LONG))
    busy = out.split()[0] if rc == 0 else "0"
    poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + busy) == "running", 10)
    node = q1(pg, "SELECT epoch FROM jobs WHERE id = " + busy)
    full = by_node.get(node)
    check("notify: a long solo job runs on one of the daemons", full is not None, node)
    other = [n for n in by_node if n != node]
    waits, on_other = [], 0
    for _ in range(3 if full else 0):
        time.sleep(0.37)  # so that the three land at different points of a poll period
        rc, out, _ = full.ctl("enqueue", "solo", '{"ms":0}')
        jid = out.split()[0] if rc == 0 else "0"
        poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "succeeded", 10)
        row = q1(pg, "SELECT epoch, started_at - created_at FROM jobs WHERE id = " + jid)
        epoch, wait = (row or "|").split("|")
        on_other += epoch in other
        waits.append(int(wait) if wait else 99999)
    check("notify: the other daemon runs what the busy one was given", on_other == 3,
          (on_other, waits))
    check("notify: and starts each within milliseconds, not at its next poll (%s ms)" % waits,
          len(waits) == 3 and max(waits) < 300 * SLOW, waits)
    if full:
        # a job another daemon runs: `awaitctl run` here still gets its outcome
        rc, out, err = full.ctl("run", "solo", '{"ms":0}', timeout=20)
        check("notify: `run` through the busy daemon returns the outcome the other produced",
              rc == 0 and out.strip() == "true", (rc, out, err))
        rc, out, err = full.ctl("run", "nap", '{"ms":%d}' % (300 * LONG), timeout=20)
        check("notify: and `run` of a job it may run itself too", rc == 0 and "napped" in out,
              (rc, out, err))


def section_waits(pg, a, b):
    rc, out, _ = a.ctl("enqueue", "waiter", '{"nap":300}')
    jid = out.split()[0] if rc == 0 else "0"
    parked = poll(lambda: q1(pg, "SELECT state, wait_for FROM jobs WHERE id = " + jid)
                  == "waiting|go", 30)
    check("waits: the job slept durably, then parks waiting for its signal", parked,
          pg.psql("SELECT state, wait_for, error FROM jobs WHERE id = " + jid))
    rc, out, err = b.ctl("signal", jid, "go", '{"x":42}')
    check("waits: a signal sent through the other daemon is taken", rc == 0, (rc, out, err))
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "succeeded", 30)
    check("waits: the job wakes and ends with the signal's payload",
          done and q1(pg, "SELECT result FROM jobs WHERE id = " + jid) == '{"got":42}',
          pg.psql("SELECT state, result, error FROM jobs WHERE id = " + jid))
    check("waits: the journal has the sleep and the signal",
          pg.psql("SELECT kind FROM steps WHERE job_id = %s ORDER BY seq" % jid)
          == ["sleep", "signal"], pg.psql("SELECT * FROM steps WHERE job_id = " + jid))
    rc, out, _ = b.ctl("enqueue", "waiter", '{"timeout":300}')
    jid = out.split()[0] if rc == 0 else "0"
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "succeeded", 30)
    check("waits: a wait's timeout ends it with code timeout",
          done and q1(pg, "SELECT result FROM jobs WHERE id = " + jid)
          == '{"timed_out":"timeout"}', pg.psql("SELECT * FROM jobs WHERE id = " + jid))
    rc, out, _ = a.ctl("enqueue", "waiter", '{}')
    jid = out.split()[0] if rc == 0 else "0"
    poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "waiting", 30)
    rc, out, err = b.ctl("cancel", jid)
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "cancelled", 30)
    check("waits: cancelling a waiting job (through the other daemon) ends it cancelled",
          rc == 0 and done, (rc, out, err, pg.psql("SELECT state, error FROM jobs WHERE id = "
                                                   + jid)))


def section_coordination(pg, a, b):
    """Fan-in and pause of a whole script, shared by the daemons."""
    # (3 s: the checks below run two awaitctl calls and a psql before it ends, each slow
    # under ASan on a loaded machine)
    rc, out, _ = a.ctl("enqueue", "nap", '{"ms":%d}' % (3000 * LONG))
    parent = out.split()[0] if rc == 0 else "0"
    rc, out, err = b.ctl("enqueue", "solo", '{"ms":0}', "--after", parent)
    child = out.split()[0] if rc == 0 else "0"
    check("after: a job enqueued after another is blocked",
          q1(pg, "SELECT state FROM jobs WHERE id = " + child) == "blocked", (rc, out, err))
    rc, v, out = a.cjson("show", child)
    check("after: show names the job it waits for",
          rc == 0 and (v or {}).get("held", {}).get("kind") == "after"
          and (v or {}).get("held", {}).get("jobs") == [int(parent)], out)
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + child) == "succeeded", 30)
    check("after: it runs once the other succeeded", done,
          pg.psql("SELECT id, state FROM jobs WHERE id IN (%s, %s)" % (parent, child)))
    # a parent cancelled: its dependents are cancelled, and theirs in turn
    rc, out, _ = a.ctl("enqueue", "solo", '{"ms":0}', "--delay", "600000")
    p0 = out.split()[0] if rc == 0 else "0"
    c1 = b.ctl("enqueue", "solo", '{"ms":0}', "--after", p0)[1].split()[0]
    c2 = a.ctl("enqueue", "solo", '{"ms":0}', "--after", c1)[1].split()[0]
    a.ctl("cancel", p0)
    rows = pg.psql("SELECT state, error FROM jobs WHERE id IN (%s, %s) ORDER BY id" % (c1, c2))
    check("after: cancelling a parent cancels its dependents down the chain",
          len(rows) == 2 and all(r.startswith("cancelled|") and "dependency_failed" in r
                                 for r in rows) and ("job %s it waits" % p0) in rows[0]
          and ("job %s it waits" % c1) in rows[1], rows)
    rc, out, err = a.ctl("pause", "solo")
    check("pause: a script paused through one daemon", rc == 0, (rc, out, err))
    rc, out, _ = b.ctl("enqueue", "solo", '{"ms":0}')
    held = out.split()[0] if rc == 0 else "0"
    time.sleep(1.5)
    check("pause: the other daemon starts none of its jobs",
          q1(pg, "SELECT state FROM jobs WHERE id = " + held) == "queued")
    rc, v, out = b.cjson("show", held)
    check("pause: show says the job waits behind the pause",
          rc == 0 and (v or {}).get("held", {}).get("kind") == "pause", out)
    b.ctl("resume", "solo")
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + held) == "succeeded", 30)
    check("pause: resumed, the job runs", done)


def section_limits(pg, a, b):
    """A per-key limit and a pause of one key hold across the daemons."""
    reqs = [{"cmd": "enqueue", "args": {"name": "acct", "args": {"account": "a%d" % (i % 4)}}}
            for i in range(40)]
    got = [rpc_many(a.sock, reqs[:20]), rpc_many(b.sock, reqs[20:])]
    ids = [v["result"]["id"] for g in got if g for v in g.values() if v.get("ok")]
    check("limits: 40 jobs over 4 accounts enqueued through both daemons", len(ids) == 40, got)
    done = poll(lambda: q1(pg, "SELECT count(*) FROM jobs WHERE name = 'acct'"
                               " AND state = 'succeeded'") == "40", 60)
    check("limits: all of them succeed", done,
          pg.psql("SELECT state, count(*) FROM jobs WHERE name = 'acct' GROUP BY state"))
    nodes = pg.psql("SELECT count(DISTINCT epoch) FROM jobs WHERE name = 'acct'")
    check("limits: both daemons ran some", nodes == ["2"], nodes)
    overlap = pg.psql("SELECT x.job_id, y.job_id FROM spans x JOIN spans y ON"
                      " x.account = y.account AND x.job_id < y.job_id AND x.t0 < y.t1"
                      " AND y.t0 < x.t1")
    check("limits: never two jobs of one account at once, across the daemons",
          overlap == [] and q1(pg, "SELECT count(*) FROM spans") == "40", overlap[:5])
    par = q1(pg, "SELECT count(*) FROM spans x JOIN spans y ON x.account <> y.account"
                 " AND x.job_id < y.job_id AND x.t0 < y.t1 AND y.t0 < x.t1")
    check("limits: and jobs of different accounts do run at once", int(par or 0) > 0, par)
    # one key paused through a: b holds its jobs back, and says why; the others run
    rc, out, err = a.ctl("pause", "acct", "--key", "a1")
    check("pause key: through one daemon", rc == 0 and "a1" in out, (rc, out, err))
    rc, out, _ = b.ctl("enqueue", "acct", '{"account":"a1"}')
    held = out.split()[0] if rc == 0 else "0"
    rc, out, _ = b.ctl("enqueue", "acct", '{"account":"a2"}')
    free = out.split()[0] if rc == 0 else "0"
    ran = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + free) == "succeeded", 30)
    time.sleep(1.2)
    check("pause key: the other key's job runs, the paused key's waits",
          ran and q1(pg, "SELECT state FROM jobs WHERE id = " + held) == "queued",
          pg.psql("SELECT id, state FROM jobs WHERE id IN (%s, %s)" % (held, free)))
    rc, v, out = b.cjson("show", held)
    check("pause key: show on the other daemon names the paused key",
          (v or {}).get("held", {}).get("kind") == "pause"
          and (v or {}).get("held", {}).get("key") == "a1", out)
    a.ctl("resume", "acct", "--key", "a1")
    check("pause key: resumed, it runs",
          poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + held) == "succeeded", 30))


def section_tx_enqueue(pg, a):
    """jobs.enqueue inside db:tx joins the transaction, as on SQLite."""
    rc, v, out = a.cjson("run", "txenq", '{"tag":"kept"}')
    jid = (v or {}).get("id")
    done = jid and poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = %d" % jid)
                        == "succeeded", 20)
    check("tx: a job enqueued in a committed db:tx is stored and runs", done, out)
    rc, v, out = a.cjson("run", "txenq", '{"tag":"dropped","fail":true}')
    check("tx: one enqueued in a db:tx that rolls back is not stored",
          rc == 0 and (v or {}).get("err") and
          q1(pg, "SELECT count(*) FROM jobs WHERE name = 'solo' AND args LIKE '%dropped%'") == "0", out)


def section_rejoin(pg, a):
    """Alone on the database, a daemon that loses PostgreSQL under a running job
    takes that job to its new node: it is not run again."""
    rc, out, _ = a.ctl("enqueue", "nap", '{"ms":%d}' % (2500 * LONG))
    jid = out.split()[0] if rc == 0 else "0"
    poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "running", 20)
    pg.restart()
    done = poll(lambda: q1(pg, "SELECT state FROM jobs WHERE id = " + jid) == "succeeded", 60)
    check("rejoin: the job running across the restart succeeds on its first attempt",
          done and q1(pg, "SELECT attempt FROM jobs WHERE id = " + jid) == "1",
          pg.psql("SELECT state, attempt, epoch FROM jobs WHERE id = " + jid))
    check("rejoin: its step ran once",
          q1(pg, "SELECT count(*) FROM naps WHERE job_id = " + jid) == "1")


def section_guards(pg, a):
    def probe(sql):
        rc, v, out = a.cjson("run", "probe", '{"sql":%s}' % __import__("json").dumps(sql))
        return v if isinstance(v, dict) else {"out": out}

    r = probe("SELECT * FROM jobs")
    check("guard: application SQL cannot read the jobs table", r.get("code") == "invalid"
          and "jobs" in r.get("message", ""), r)
    r = probe("select 1 from awaitd_nodes")
    check("guard: nor awaitd_nodes", r.get("code") == "invalid", r)
    r = probe("COMMIT")
    check("guard: nor end the store's transaction", r.get("code") == "invalid", r)
    r = probe("SELECT id FROM accounts WHERE id = 1")
    check("guard: its own tables are fine", r.get("rows") == 1, r)
    r = probe("SELECT nonsense FROM accounts")
    check("guard: an SQL error comes back as db with PostgreSQL's message",
          r.get("code") == "db" and "nonsense" in r.get("message", ""), r)


def section_bad_migration(pg):
    root = root_with({"migrations/0101_bad.pg.sql": "CREATE TABLE oops (;\n"})
    d = Daemon(root, db=pg.uri)
    try:
        d.start()
        rc = d.proc.wait(30 * SLOW) if d.proc else None
        text = d.logtext()
        check("bad migration: the daemon does not start", rc not in (None, 0), (rc, text))
        check("bad migration: the message names the file and PostgreSQL's reason",
              "0101_bad.pg.sql" in text and "syntax error" in text, text[-1500:])
        check("bad migration: nothing of it stays",
              q1(pg, "SELECT count(*) FROM schema_migrations WHERE version = 101") == "0")
    finally:
        d.__exit__()


def main():
    pg = start_for_test(check, skip, "pg")
    if not pg:
        return
    try:
        with Daemon(root_with(), db=pg.uri) as a, Daemon(root_with(), db=pg.uri) as b:
            section_start_and_purchases(pg, a, b)
            section_notify(pg, a, b)
            section_waits(pg, a, b)
            section_coordination(pg, a, b)
            section_limits(pg, a, b)
            section_tx_enqueue(pg, a)
            section_guards(pg, a)
            section_kill(pg, a, b)
            section_pg_restart(pg, a, b)
            # (under valgrind an error or a leak makes the exit status 99)
            check("stop: the other daemon exits 0 on SIGTERM", b.stop() == 0, b.logtext()[-1500:])
            section_rejoin(pg, a)
            check("stop: the daemon exits 0 on SIGTERM, no node left",
                  a.stop() == 0 and q1(pg, "SELECT count(*) FROM awaitd_nodes") == "0",
                  a.logtext()[-1500:])
        section_bad_migration(pg)
    finally:
        pg.close()


run(main)
