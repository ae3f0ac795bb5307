#!/usr/bin/env python3
"""End-to-end tests of awaitd's persistence: durable jobs in SQLite (and,
with AWAITD_E2E_STORE=pg, those that are not about the SQLite file itself
against PostgreSQL).

Usage: test_jobs.py AWAITD AWAITCTL SCRIPTS_DIR

Each test has its own temporary directory: a copy of SCRIPTS_DIR (without
examples) plus the test's own scripts, its own database, and the repo's
migrations (or a copy with extra files). The daemon is killed (-9) and
restarted mid-run, starved of disk, given a read-only database or a broken
migration; afterwards the database is read directly (harness.db_rows) to
prove what is durable. Waits poll for conditions, never sleep blindly.
Prints one line per check and "N passed, N failed"; exits 1 if anything failed.
AWAITD_E2E_WRAP / SLOW work as in test_daemon.py.
"""
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import (AWAITCTL, AWAITD, STORE, Ctl, MIGRATIONS, SCRIPTS, SLOW, WRAP, check, db_rows,
                     finish, fresh_db, poll, rpc, skip)






class Env(Ctl):
    """One test's directory: scripts, migrations, database, socket, log; one daemon at a time."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="awaitd-jobs-%s-" % name)
        self.scripts = os.path.join(self.dir, "scripts")
        shutil.copytree(SCRIPTS, self.scripts, ignore=shutil.ignore_patterns("examples"))
        self.migrations = MIGRATIONS
        self.db = fresh_db(self.dir)
        self.sock = os.path.join(self.dir, "awaitd.sock")
        self.logpath = os.path.join(self.dir, "log")
        self.proc = None
        self.starts = 0

    def script(self, name, text):
        with open(os.path.join(self.scripts, name + ".lua"), "w") as f:
            f.write(text)

    def migration(self, fname, text):
        if self.migrations == MIGRATIONS:
            self.migrations = os.path.join(self.dir, "migrations")
            shutil.copytree(MIGRATIONS, self.migrations)
        with open(os.path.join(self.migrations, fname), "w") as f:
            f.write(text)

    def start(self, extra=(), prefix=(), preexec=None, db=None, sock=None, wait=True, binary=None):
        """Start the daemon (binary: a copy of awaitd to run instead); True once it
        answers ping (False if it exited or never did)."""
        self.starts += 1
        log = open(self.logpath, "a")
        log.write("=== start %d ===\n" % self.starts)
        log.flush()
        self.mark = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen(
            list(prefix) + WRAP + [binary or AWAITD, "--scripts", self.scripts, "--db", db or self.db,
                                   "--socket", sock or self.sock, "--migrations", self.migrations]
            + list(extra), stdout=log, stderr=log, cwd=self.dir, preexec_fn=preexec)
        log.close()
        if not wait:
            return True
        return bool(poll(lambda: self.proc.poll() is not None or self.ctl("ping", timeout=5)[0] == 0,
                         15)) and self.proc.poll() is None



    def status_jobs(self):
        rc, v, _ = self.cjson("status", timeout=10)
        return v["jobs"] if rc == 0 and isinstance(v, dict) else None

    def job(self, jid):
        rc, v, _ = self.cjson("show", jid, timeout=10)
        return v if rc == 0 else None

    def log(self, since_start=False):
        with open(self.logpath) as f:
            if since_start:
                f.seek(self.mark)
            return f.read()

    def stop(self, sig=signal.SIGTERM, wait=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def sql(self, q, *args, db=None):
        return db_rows(db or self.db, q, *args)

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def status(proc):
    """How the process ended, for messages: 'running', 'exit N' or 'killed by SIGNAME'."""
    if proc.poll() is None:
        try:
            proc.wait(2 * SLOW)  # it may be dying (writing a core dump)
        except subprocess.TimeoutExpired:
            return "running"
    rc = proc.returncode
    return "killed by %s" % signal.Signals(-rc).name if rc < 0 else "exit %d" % rc


# ---- 1. crash safety of purchases ------------------------------------------------------


def test_crash_purchases():
    n = 60 if WRAP else 300
    e = Env("crash")
    try:
        check("crash: daemon becomes ready", e.start(), e.log())
        rnd = random.Random(20261125)
        prices = [40, 90, 150, 300, 500, 800, 1200, 2500, 4000, 12000]
        unsent = [("buy-%03d" % i, {"account": rnd.randint(1, 3), "item": "item%d" % i,
                                  # slow enough that some are running whenever the kill
                                  # comes, even when slow clients (an ASan build, a loaded
                                  # machine) enqueue more slowly than the daemon runs them
                                  "price": rnd.choice(prices), "provider_ms": rnd.randint(200, 800)})
                for i in range(n)]
        acked = {}  # key -> id
        lock = threading.Lock()
        errors = []

        def enqueue_cli(key, args):
            rc, v, out = e.cjson("enqueue", "purchase", json.dumps(args), "--key", key, timeout=20)
            return v["id"] if rc == 0 and v and "id" in v else None

        def enqueue_raw(key, args):
            r = rpc(e.sock, {"id": 1, "cmd": "enqueue",
                             "args": {"name": "purchase", "args": args, "key": key}}, timeout=20)
            return r["result"]["id"] if r and r.get("ok") else None

        # the purchases go out in four quarters, each released after a kill: work is left
        # at every kill, however fast the daemon catches up after a restart
        released = [n // 4]

        def client(idx):
            fn = enqueue_raw if idx % 3 == 0 else enqueue_cli  # a mix: raw protocol and awaitctl
            while True:
                with lock:
                    if not unsent:
                        return
                    if n - len(unsent) >= released[0]:
                        key = None
                    else:
                        key, args = unsent.pop()
                if key is None:
                    time.sleep(0.01)
                    continue
                end = time.monotonic() + 60 * SLOW
                jid = None
                while jid is None and time.monotonic() < end:
                    jid = fn(key, args)  # the daemon may be down: try again, same key
                    if jid is None:
                        time.sleep(0.02)
                with lock:
                    if jid is None:
                        errors.append(key)
                    else:
                        acked[key] = jid

        threads = [threading.Thread(target=client, args=(i,)) for i in range(9)]
        for t in threads:
            t.start()
        kills = []
        for k in (1, 2, 3):
            want = released[0] - n // 8  # half of the last quarter done

            def progressed():
                js = e.status_jobs()
                if js is None:
                    return False
                done = js["succeeded"] + js["dead"] + js["failed"]
                return (done, js["running"]) if done >= want else False
            got = poll(progressed, 60, step=0.01)
            js = e.status_jobs()
            e.stop(signal.SIGKILL)
            kills.append((got, js))
            check("crash: kill -9 #%d mid-run (finished, running at kill: %s)" % (k, got),
                  bool(got) and got[0] < n, repr(js))
            time.sleep(rnd.uniform(0, 0.2))  # clients hit a dead socket meanwhile
            with lock:
                released[0] = n if k == 3 else released[0] + n // 4
            check("crash: restart #%d becomes ready" % k, e.start(), e.log(True))
            if k == 1:
                check("crash: the restarted daemon logs that it requeued orphans",
                      "requeued" in e.log(True) and "left running" in e.log(True), e.log(True))
        for t in threads:
            t.join(120 * SLOW)
        check("crash: every enqueue was acknowledged", len(acked) == n and not errors,
              "%d acked, failed: %r" % (len(acked), errors[:5]))
        check("crash: some job was running at one of the kills", any(g and g[1] for g, _ in kills),
              repr(kills))
        fin = poll(lambda: (lambda js: js and js["queued"] + js["running"] + js["failed"] == 0
                            and js)(e.status_jobs()), 120)
        check("crash: all jobs finish after the last restart", bool(fin), repr(e.status_jobs()))
        rc = e.stop()
        check("crash: SIGTERM exits 0", rc == 0, str(rc))

        # the database, read directly
        states = dict(e.sql("SELECT state, count(*) FROM jobs GROUP BY state"))
        check("crash(db): no job queued, running or failed",
              not any(states.get(s) for s in ("queued", "running", "failed")), repr(states))
        check("crash(db): one job per key", e.sql(
            "SELECT count(*), count(DISTINCT key) FROM jobs WHERE name = 'purchase'")[0] == (n, n))
        ids = dict(e.sql("SELECT key, id FROM jobs WHERE name = 'purchase'"))
        check("crash(db): every acknowledged id is the job of its key", ids == acked,
              repr([(k, v, ids.get(k)) for k, v in acked.items() if ids.get(k) != v][:5]))
        jobs = e.sql("SELECT id, state, result, attempt FROM jobs WHERE name = 'purchase'")
        charged = {}
        uncharged = set()
        for jid, state, result, attempt in jobs:
            r = json.loads(result) if result else None
            if state == "succeeded" and isinstance(r, dict) and r.get("charged") is True:
                charged[jid] = r
            else:
                uncharged.add(jid)
        check("crash(db): every job succeeded", states.get("succeeded") == n, repr(states))
        retried = sum(1 for j in jobs if j[3] > 1)
        check("crash(db): some jobs needed a second attempt (orphans were rerun: %d)" % retried,
              retried > 0)
        per_job = dict(e.sql("SELECT job_id, count(*) FROM orders GROUP BY job_id"))
        check("crash(db): every charged job has exactly one order",
              all(per_job.get(j) == 1 for j in charged),
              repr([(j, per_job.get(j)) for j in charged if per_job.get(j) != 1][:5]))
        orders = {jid: (oid, price, acc) for oid, jid, price, acc in
                  e.sql("SELECT id, job_id, price, account_id FROM orders")}
        check("crash(db): each charged result names its own order",
              all(orders.get(j, (None,))[0] == r.get("order") for j, r in charged.items()))
        rec = dict(e.sql("SELECT o.job_id, count(r.id) FROM orders o "
                         "LEFT JOIN receipts r ON r.order_id = o.id GROUP BY o.id"))
        check("crash(db): every charged job has exactly one receipt",
              all(rec.get(j) == 1 for j in charged),
              repr([(j, rec.get(j)) for j in charged if rec.get(j) != 1][:5]))
        bad = [j for j in orders if j in uncharged]
        check("crash(db): no order for a job whose result is charged=false", not bad,
              "%d such jobs, e.g. %r; its steps: %r" % (
                  len(bad), bad and e.sql("SELECT id, attempt, result FROM jobs WHERE id = ?", bad[0]),
                  bad and e.sql("SELECT seq, name, result FROM steps WHERE job_id = ?", bad[0])))
        check("crash(db): orders == jobs with charged=true (%d)" % len(charged),
              len(orders) == len(charged) and sum(per_job.values()) == len(charged),
              "%d orders, %d charged" % (sum(per_job.values()), len(charged)))
        total = e.sql("SELECT sum(balance) FROM accounts")[0][0]
        spent = e.sql("SELECT coalesce(sum(price), 0) FROM orders")[0][0]
        check("crash(db): money is conserved (13000 == %d + %d)" % (total, spent),
              total + spent == 13000)
        for acc, initial in ((1, 10000), (2, 2500), (3, 500)):
            bal = e.sql("SELECT balance FROM accounts WHERE id = ?", acc)[0][0]
            spent_acc = sum(p for _, p, a in orders.values() if a == acc)
            check("crash(db): account %d: %d == %d - %d, not negative" % (acc, bal, initial, spent_acc),
                  bal >= 0 and bal == initial - spent_acc)
        check("crash: some purchases were unaffordable", len(charged) < n)
    finally:
        e.cleanup()


# ---- 2. idempotent enqueue under concurrent clients ------------------------------------


def test_idempotent_enqueue():
    e = Env("idem")
    try:
        check("idem: daemon becomes ready", e.start(), e.log())
        procs = [subprocess.Popen([AWAITCTL, "-s", e.sock, "--json", "enqueue", "hello", "{}",
                                   "--key", "same-key"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(20)]
        outs = []
        for p in procs:
            o, err = p.communicate(timeout=60 * SLOW)
            outs.append((p.returncode, o, err))
        res = [json.loads(o) if rc == 0 else None for rc, o, _ in outs]
        check("idem: 20 concurrent enqueues all exit 0", all(r is not None for r in res), repr(outs))
        ids = {r["id"] for r in res if r}
        check("idem: all return the same id", len(ids) == 1, repr(ids))
        check("idem: exactly one says created=true",
              sum(1 for r in res if r and r.get("created") is True) == 1, repr(res))
        rc, v, out = e.cjson("jobs", "--name", "hello")
        check("idem: jobs --name hello lists one job", rc == 0 and len(v["jobs"]) == 1
              and v["jobs"][0]["key"] == "same-key", out)
    finally:
        e.cleanup()


# ---- 3. a failing migration --------------------------------------------------------------


BAD_SQL = "CREATE TABLE half_done (x INTEGER);\nINSERT INTO half_done VALUES (1);\nSELEC oops;\n"


def test_bad_migration():
    e = Env("mig")
    try:
        e.migration("0050_extra.sql", "CREATE TABLE extra (x INTEGER);\n")
        check("mig: daemon becomes ready", e.start(), e.log())
        ids = [e.cjson("enqueue", "slow", '{"ms":1}', "--delay", 3600000, "--key", "k%d" % i)[1]["id"]
               for i in range(3)]
        rc, v, _ = e.cjson("run", "hello", '{"name":"before"}')
        check("mig: jobs exist before", rc == 0 and len(ids) == 3)
        check("mig: SIGTERM exits 0", e.stop() == 0)
        before = e.sql("SELECT id, name, state, args, key, result FROM jobs ORDER BY id")
        applied = e.sql("SELECT * FROM schema_migrations")
        e.migration("0099_bad.sql", BAD_SQL)
        t0 = time.monotonic()
        e.start(wait=False)
        try:
            rc = e.proc.wait(15 * SLOW)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        text = e.log(True)
        check("mig: a failing migration stops start-up, non-zero, quickly (%.1fs)" % took,
              rc not in (None, 0) and took < 10 * SLOW, "%r %s" % (rc, text))
        check("mig: the error names 0099_bad.sql and SQLite's message",
              "0099_bad.sql" in text and "syntax error" in text, text)
        check("mig: the daemon did not open its socket", "ready" not in text, text)
        check("mig(db): existing jobs untouched",
              e.sql("SELECT id, name, state, args, key, result FROM jobs ORDER BY id") == before)
        check("mig(db): the bad migration is not recorded, nothing of it applied",
              e.sql("SELECT * FROM schema_migrations") == applied and
              not e.sql("SELECT name FROM sqlite_master WHERE name = 'half_done'"))
        os.remove(os.path.join(e.migrations, "0099_bad.sql"))
        check("mig: with good migrations it starts again", e.start(), e.log(True))
        rc, v, out = e.cjson("jobs")
        listed = {j["id"]: j for j in v["jobs"]} if rc == 0 else {}
        check("mig: awaitctl jobs shows the jobs made before",
              all(i in listed and listed[i]["state"] == "queued" for i in ids) and len(listed) == 4,
              out)
        e.stop()

        # awaitd migrate
        db2 = os.path.join(e.dir, "m.db")
        r = subprocess.run(WRAP + [AWAITD, "migrate", "--db", db2, "--migrations", MIGRATIONS],
                           capture_output=True, text=True, timeout=60 * SLOW)
        check("migrate: applies and exits 0", r.returncode == 0 and e.sql(
            "SELECT count(*) FROM accounts", db=db2)[0][0] == 3, r.stdout + r.stderr)
        r = subprocess.run(WRAP + [AWAITD, "migrate", "--db", db2, "--migrations", MIGRATIONS],
                           capture_output=True, text=True, timeout=60 * SLOW)
        check("migrate: again is a no-op, exit 0", r.returncode == 0 and e.sql(
            "SELECT count(*) FROM accounts", db=db2)[0][0] == 3, r.stdout + r.stderr)
        e.migration("0099_bad.sql", BAD_SQL)
        r = subprocess.run(WRAP + [AWAITD, "migrate", "--db", db2, "--migrations", e.migrations],
                           capture_output=True, text=True, timeout=60 * SLOW)
        check("migrate: a bad migration exits 1 naming the file",
              r.returncode == 1 and "0099_bad.sql" in r.stderr and "syntax error" in r.stderr,
              "%d %s" % (r.returncode, r.stdout + r.stderr))
        check("migrate(db): the good extra one before it is applied, the bad one is not",
              e.sql("SELECT count(*) FROM sqlite_master WHERE name IN ('extra', 'half_done')",
                    db=db2)[0][0] == 1)
    finally:
        e.cleanup()


# ---- 4. full disk ------------------------------------------------------------------------


BIG = '''return { run = function(ctx, args)
  ctx.log.info("big run %d attempt %d", ctx.job.id, ctx.job.attempt)
  return { n = #args.blob }
end }
'''


def fill_and_check(e, tag, start_kwargs, blob_kb=64, max_n=400):
    """Enqueue big jobs until one fails; the daemon must stay up. Returns acked ids."""
    blob = "x" * (blob_kb * 1024)
    acked, fail = [], None
    for i in range(max_n):
        rc, v, out = e.cjson("enqueue", "big", json.dumps({"i": i, "blob": blob}), timeout=30)
        if rc == 0 and v and "id" in v:
            acked.append(v["id"])
            continue
        fail = (rc, out)
        break
    alive = e.proc.poll() is None
    check("%s: enqueues eventually fail (after %d acknowledged)" % (tag, len(acked)),
          fail is not None, "all %d succeeded" % max_n)
    if fail:
        low = fail[1].lower()
        check("%s: the failing enqueue exits 1 with SQLite's reason" % tag,
              fail[0] == 1 and any(w in low for w in ("disk", "full", "i/o", "too large")),
              "%d %s | alive=%s | %s" % (fail[0], fail[1], alive, e.log(True)[-1500:]))
    check("%s: the daemon survives (still running, ping works)" % tag,
          alive and e.proc.poll() is None and e.ctl("ping")[0] == 0,
          "exit status %s; log: %s" % (status(e.proc), e.log(True)[-1500:]))
    if e.proc.poll() is None:
        rc, v, out = e.cjson("jobs", "--name", "big", "--limit", 10000)
        listed = {j["id"] for j in v["jobs"]} if rc == 0 else set()
        check("%s: every acknowledged job is listed" % tag, set(acked) <= listed,
              "%d acked, %d listed: %s" % (len(acked), len(listed), out[-300:]))
        # while the disk stays full, a job whose claim could not be committed must not run:
        # give the dispatcher its 1 s safety poll and more, then count the runs
        time.sleep(2.5)
        text = e.log(True)
        runs = {}
        for line in text.splitlines():
            if "big run " in line:
                jid = int(line.split("big run ")[1].split()[0])
                runs[jid] = runs.get(jid, 0) + 1
        many = {k: v for k, v in runs.items() if v > 1}
        check("%s: no job runs more than once while the disk is full" % tag, not many,
              "runs per job: %r; %d log lines, e.g. %s" % (
                  many, len(text.splitlines()),
                  " | ".join([l for l in text.splitlines() if "claiming" in l][:1] +
                             [l for l in text.splitlines() if "lease was taken" in l][:1])))
        check("%s: no outcome is lost to a 'lease taken over' (one daemon, no restart)" % tag,
              "lease was taken over" not in text, "%d such lines" % text.count("lease was taken over"))
    return acked


def restart_and_complete(e, tag, acked, db):
    e.stop(signal.SIGKILL)
    n = e.sql("SELECT count(*) FROM jobs WHERE name = 'big' AND id IN (%s)"
              % ",".join(map(str, acked or [0])), db=db)[0][0]
    check("%s(db): every acknowledged job is in the database" % tag, n == len(acked),
          "%d of %d" % (n, len(acked)))
    check("%s: restart without the limit" % tag, e.start(db=db), e.log(True))
    done = poll(lambda: e.sql("SELECT count(*) FROM jobs WHERE name = 'big' AND state = 'succeeded'"
                              " AND id IN (%s)" % ",".join(map(str, acked or [0])), db=db)[0][0]
                == len(acked), 60)
    check("%s: after restart all acknowledged jobs complete" % tag, done,
          repr(e.sql("SELECT state, count(*) FROM jobs GROUP BY state", db=db)))
    check("%s: SIGTERM exits 0" % tag, e.stop() == 0)


def test_full_disk_tmpfs():
    e = Env("tmpfs")
    mnt = os.path.join(e.dir, "small")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip("full disk on a small tmpfs", "cannot mount: " + r.stderr.strip())
        e.cleanup()
        return
    try:
        e.script("big", BIG)
        db = os.path.join(mnt, "awaitd.db")
        check("tmpfs: daemon becomes ready on a 3 MB tmpfs", e.start(db=db), e.log())
        acked = fill_and_check(e, "tmpfs(ENOSPC)", {})
        e.stop(signal.SIGKILL)
        big = os.path.join(e.dir, "big-disk")
        os.mkdir(big)
        for f in os.listdir(mnt):
            shutil.copy(os.path.join(mnt, f), big)
        restart_and_complete(e, "tmpfs(ENOSPC)", acked, os.path.join(big, "awaitd.db"))
    finally:
        e.stop(signal.SIGKILL)
        subprocess.run(["umount", mnt])
        e.cleanup()


def test_full_disk_fsize():
    e = Env("fsize")
    try:
        e.script("big", BIG)
        check("fsize: daemon becomes ready", e.start(), e.log())
        e.stop()
        biggest = max(os.path.getsize(os.path.join(e.dir, f)) for f in os.listdir(e.dir)
                      if f.startswith("awaitd.db"))
        limit = biggest + 2 * 1024 * 1024

        def fsize():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        check("fsize: daemon becomes ready under RLIMIT_FSIZE=%d" % limit,
              e.start(preexec=fsize), e.log(True))
        acked = fill_and_check(e, "fsize(EFBIG)", {})
        restart_and_complete(e, "fsize(EFBIG)", acked, e.db)
    finally:
        e.cleanup()


# ---- 5. read-only database -----------------------------------------------------------------


def ro_files(d):
    out = {}
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        if os.path.isfile(p):
            with open(p, "rb") as fh:
                out[f] = fh.read()
    return out


def test_read_only():
    e = Env("ro")
    data = os.path.join(e.dir, "data")
    view = os.path.join(e.dir, "view")
    os.mkdir(data)
    os.mkdir(view)
    mounted = False
    try:
        db = os.path.join(data, "awaitd.db")
        check("ro: daemon becomes ready", e.start(db=db), e.log())
        jid = e.cjson("enqueue", "slow", '{"ms":1}', "--delay", 3600000)[1]["id"]
        e.stop()
        before = ro_files(data)
        tried = []
        # a) a read-only bind mount (root with CAP_SYS_ADMIN)
        r = subprocess.run(["mount", "--bind", data, view], capture_output=True, text=True)
        if r.returncode == 0:
            mounted = True
            r = subprocess.run(["mount", "-o", "remount,bind,ro", view],
                               capture_output=True, text=True)
        if mounted and r.returncode == 0:
            tried.append("bind")
            vdb = os.path.join(view, "awaitd.db")
            e.start(db=vdb, wait=False)
            try:
                rc = e.proc.wait(15 * SLOW)
            except subprocess.TimeoutExpired:
                rc = None
            text = e.log(True)
            check("ro(bind mount): the daemon exits non-zero", rc not in (None, 0),
                  "%r %s" % (rc, text))
            check("ro(bind mount): the message names the database and read-only",
                  vdb in text and ("read-only" in text or "readonly" in text), text)
            check("ro(bind mount): the data is untouched", ro_files(data) == before)
        else:
            skip("ro: read-only bind mount", r.stderr.strip())
        if mounted:
            subprocess.run(["umount", view])
            mounted = False
        # b) a database the daemon's user cannot write (root can write anything: run as nobody)
        setpriv = shutil.which("setpriv")
        if os.geteuid() == 0 and setpriv:
            tried.append("nobody")
            for p in (e.dir, data, e.scripts):
                os.chmod(p, 0o755)
            run = os.path.join(e.dir, "run")
            os.mkdir(run)
            os.chmod(run, 0o777)
            for f in os.listdir(data):
                os.chmod(os.path.join(data, f), 0o644)
            # nobody must reach the binary and the migrations: the checkout may
            # sit under a mode-0700 folder (a clone in a `mktemp -d`)
            binary = os.path.join(e.dir, "awaitd")
            shutil.copy(AWAITD, binary)
            os.chmod(binary, 0o755)
            if e.migrations == MIGRATIONS:
                e.migrations = os.path.join(e.dir, "migrations")
                shutil.copytree(MIGRATIONS, e.migrations)
            e.start(db=db, sock=os.path.join(run, "s.sock"), wait=False, binary=binary,
                    prefix=[setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "env", "TMPDIR=" + run])
            try:
                rc = e.proc.wait(15 * SLOW)
            except subprocess.TimeoutExpired:
                rc = None
            text = e.log(True)
            check("ro(not writable by its user): the daemon exits non-zero", rc not in (None, 0),
                  "%r %s" % (rc, text))
            check("ro(not writable by its user): the message names the database and read-only",
                  db in text and ("read-only" in text or "readonly" in text), text)
            check("ro(not writable by its user): the data is untouched", ro_files(data) == before)
        elif os.geteuid() != 0:
            # not root: a plain read-only file does it
            tried.append("chmod")
            for f in os.listdir(data):
                os.chmod(os.path.join(data, f), 0o444)
            os.chmod(data, 0o555)
            e.start(db=db, wait=False)
            try:
                rc = e.proc.wait(15 * SLOW)
            except subprocess.TimeoutExpired:
                rc = None
            text = e.log(True)
            check("ro(chmod): the daemon exits non-zero naming the database and read-only",
                  rc not in (None, 0) and db in text and ("read-only" in text or
                                                          "readonly" in text), text)
            os.chmod(data, 0o755)
            check("ro(chmod): the data is untouched", ro_files(data) == before)
        if not tried:
            skip("read-only database", "no way to make the database read-only here")
            return
        for f in os.listdir(data):
            os.chmod(os.path.join(data, f), 0o644)
        check("ro: writable again, it starts and has the job", e.start(db=db)
              and e.job(jid) and e.job(jid)["state"] == "queued", e.log(True))
    finally:
        if mounted:
            subprocess.run(["umount", view])
        e.cleanup()


# ---- 6. cron across a restart ---------------------------------------------------------------


TICKER = """return {
  schedule = "@every 1s",
  concurrency = 1,
  run = function(ctx, args)
    assert(ctx.db:exec("INSERT INTO ticks (job_id, at) VALUES (?, ?)", ctx.job.id, os.time()))
    return { tick = ctx.job.id }
  end,
}
"""


def test_cron_restart():
    e = Env("cron")
    try:
        e.migration("0100_ticks.sql", "CREATE TABLE ticks (job_id INTEGER NOT NULL, at INTEGER);\n")
        e.script("ticker", TICKER)
        run1, run2 = (6, 5) if WRAP else (3.5, 3)
        t0 = time.monotonic()
        check("cron: daemon becomes ready", e.start(), e.log())
        time.sleep(run1)
        e.stop()
        up1 = time.monotonic() - t0
        time.sleep(2.5)
        t1 = time.monotonic()
        restart_ms = int(time.time() * 1000)
        check("cron: restarted daemon becomes ready", e.start(), e.log(True))
        time.sleep(run2)
        rc = e.stop()
        up2 = time.monotonic() - t1
        check("cron: SIGTERM exits 0", rc == 0, str(rc))
        rows = e.sql("SELECT name, expr, next_at FROM schedules WHERE name = 'ticker'")
        check("cron(db): the schedules table has one row for ticker", len(rows) == 1
              and rows[0][1] == "@every 1s", repr(e.sql("SELECT * FROM schedules")))
        jobs = e.sql("SELECT id, key, state FROM jobs WHERE name = 'ticker' ORDER BY id")
        keys = [k for _, k, _ in jobs]
        check("cron(db): every fire has a key schedule:ticker:<ms>",
              all(k and k.startswith("schedule:ticker:") and k[16:].isdigit() for k in keys),
              repr(keys))
        check("cron(db): keys are distinct (no duplicate fire)", len(set(keys)) == len(keys))
        ms = sorted(int(k[16:]) for k in keys if k and k[16:].isdigit())
        gaps = [b - a for a, b in zip(ms, ms[1:])]
        check("cron(db): fires are at least ~1 s apart", all(g >= 900 for g in gaps), repr(gaps))
        bound = int(up1) + int(up2) + 2 + 1  # one per second of uptime (+1 each at start) + catch-up
        check("cron: %d fires is plausible (>= 4, <= %d for %.1f s + %.1f s up)"
              % (len(jobs), bound, up1, up2), 4 <= len(jobs) <= bound, repr(keys))
        late = e.sql("SELECT key FROM jobs WHERE name = 'ticker' AND created_at >= ?"
                     " AND CAST(substr(key, 17) AS BIGINT) < ?", restart_ms, restart_ms)
        check("cron(db): the fires missed while down make at most one catch-up", len(late) <= 1,
              repr(late))
        check("cron(db): each fire ran once: one tick row per succeeded job",
              sorted(j for (j,) in e.sql("SELECT job_id FROM ticks")) ==
              [i for i, _, s in jobs if s == "succeeded"], repr(jobs))
        check("cron(db): no fire left unfinished except possibly the last",
              all(s == "succeeded" for _, _, s in jobs[:-1]), repr(jobs))
    finally:
        e.cleanup()


# ---- 7. SIGTERM requeues ---------------------------------------------------------------------


def test_sigterm_requeues():
    e = Env("term")
    conf = os.path.join(e.dir, "awaitd.conf")
    with open(conf, "w") as f:
        f.write("shutdown_timeout_ms = 300\n")
    try:
        check("term: daemon becomes ready", e.start(extra=["-c", conf]), e.log())
        jid = e.cjson("enqueue", "slow", '{"ms":60000}')[1]["id"]

        def running():
            rc, v, _ = e.cjson("jobs", "--state", "running", timeout=10)
            return rc == 0 and any(j["id"] == jid for j in v["jobs"])
        check("term: the job runs", poll(running, 10))
        t0 = time.monotonic()
        rc = e.stop()
        took = time.monotonic() - t0
        check("term: SIGTERM exits 0 soon after shutdown_timeout (%.1f s)" % took,
              rc == 0 and took < 10 * SLOW, "%r %s" % (rc, e.log(True)))
        row = e.sql("SELECT state, attempt, error, lease FROM jobs WHERE id = ?", jid)
        check("term(db): the job is queued again, attempt 0 (not failed/dead)",
              row and row[0][0] == "queued" and row[0][1] == 0, repr(row))
        check("term: restart", e.start(extra=["-c", conf]), e.log(True))
        check("term: after restart it is running again", poll(running, 10))
        j = e.job(jid)
        check("term: as attempt 1", j and j["attempt"] == 1, repr(j))
    finally:
        e.cleanup()


# ---- 8. retries, wait, cancel, retry, show, trace --------------------------------------------


FLAKY = """return {
  retries = 3,
  backoff = 50,
  run = function(ctx, args)
    if ctx.job.attempt < 3 then
      return nil, async.error("flaky", "attempt " .. ctx.job.attempt .. " fails")
    end
    return { ok = ctx.job.attempt }
  end,
}
"""
DOOMED = """return {
  retries = 1,
  backoff = 50,
  run = function(ctx, args) error("doomed " .. ctx.job.attempt) end,
}
"""
CLEANUP = """return {
  timeout = 60000,
  run = function(ctx, args)
    local g <close> = setmetatable({}, { __close = function()
      async.sleep(300) -- an async rollback: cancel must wait for it
      ctx.log.info("cleanup done %d", ctx.job.id)
    end })
    async.sleep(60000)
    return true
  end,
}
"""

# line 1: fetch_user; line 5: an anonymous function; line 6: a task that names itself
NAMED = """local function fetch_user(id) async.sleep(5) return id end
return {
  run = function(ctx, args)
    local a = async.spawn(fetch_user, 1)
    local b = async.spawn(function() async.sleep(5) end)
    local c = async.spawn(function() async.name("load orders") async.sleep(5) end)
    a:await(); b:await(); c:await()
    return true
  end,
}
"""


def test_job_commands():
    e = Env("cmds")
    try:
        e.script("flaky", FLAKY)
        e.script("doomed", DOOMED)
        e.script("cleanup", CLEANUP)
        e.script("named", NAMED)
        check("cmds: daemon becomes ready", e.start(), e.log())
        nid = e.cjson("enqueue", "named", "{}")[1]["id"]
        rc, out, err = e.ctl("wait", nid)
        rc, v, out = e.cjson("trace", nid)
        labels = {(s.get("name"), os.path.basename(s.get("where", "")))
                  for s in (v.get("spans", []) if rc == 0 and isinstance(v, dict) else [])}
        check("trace --json: a task is named by its function and line, or by async.name",
              {("run", "named.lua:3"), ("fetch_user", "named.lua:1"), ("<fn>", "named.lua:5"),
               ("load orders", "named.lua:6")} <= labels, out)
        cols = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # room for the labels whatever the terminal
        rc, out, err = e.ctl("trace", nid)
        if cols is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = cols
        check("trace: rows read 'fetch_user named.lua:1', '<fn> named.lua:5', 'load orders ...'",
              rc == 0 and all(s in out for s in ("  run named.lua:3 ", "    fetch_user named.lua:1 ",
                                                 "    <fn> named.lua:5 ",
                                                 "    load orders named.lua:6 ")), out + err)
        jid = e.cjson("enqueue", "flaky", "{}")[1]["id"]
        rc, out, err = e.ctl("wait", jid)
        check("flaky: wait exits 0 and prints the result",
              rc == 0 and json.loads(out) == {"ok": 3}, "%d %s %s" % (rc, out, err))
        rc, out, _ = e.ctl("show", jid)
        check("flaky: show has attempt 3", rc == 0 and "attempt:  3/4" in out, out)
        rc, v, out = e.cjson("show", jid)
        check("flaky: --json show: succeeded, attempt 3, result object, error null",
              rc == 0 and v["state"] == "succeeded" and v["attempt"] == 3
              and v["result"] == {"ok": 3} and v["error"] is None, out)

        did = e.cjson("enqueue", "doomed", "{}")[1]["id"]
        rc, out, err = e.ctl("wait", did)
        check("doomed: wait exits 1", rc == 1, "%d %s %s" % (rc, out, err))
        rc, v, out = e.cjson("show", did)
        check("doomed: --json show: dead after 2 attempts, result null, error {code, message}",
              rc == 0 and v["state"] == "dead" and v["attempt"] == 2 and v["result"] is None
              and isinstance(v["error"], dict) and v["error"].get("code") == "error"
              and "doomed 2" in v["error"].get("message", ""), out)
        rc, out, err = e.ctl("retry", did)
        j = e.job(did)
        check("doomed: retry exits 0 and queues it again",
              rc == 0 and j and j["state"] in ("queued", "running", "failed", "dead")
              and j["max_attempts"] > 2, "%d %s %s %r" % (rc, out, err, j))
        check("doomed: the retried job runs again (attempt 3)",
              poll(lambda: (e.job(did) or {}).get("attempt") == 3
                   and e.job(did)["state"] == "dead", 10), repr(e.job(did)))

        qid = e.cjson("enqueue", "slow", '{"ms":1}', "--delay", 60000)[1]["id"]
        rc, out, err = e.ctl("cancel", qid)
        j = e.job(qid)
        check("cancel: a queued delayed job is cancelled",
              rc == 0 and j and j["state"] == "cancelled", "%d %s %s %r" % (rc, out, err, j))
        rc, out, err = e.ctl("cancel", qid)
        check("cancel: cancelling it again exits 1", rc == 1, "%d %s %s" % (rc, out, err))

        cid = e.cjson("enqueue", "cleanup", "{}")[1]["id"]
        check("cancel: the cleanup job runs",
              poll(lambda: (e.job(cid) or {}).get("state") == "running", 10))
        t0 = time.monotonic()
        rc, v, out = e.cjson("cancel", cid)
        took = time.monotonic() - t0
        logged = "cleanup done %d" % cid in e.log(True)
        j = e.job(cid)
        check("cancel: of a running job returns after the job ended (%.0f ms, cleanup logged: %s)"
              % (took * 1000, logged), rc == 0 and logged and j["state"] == "cancelled"
              and j["finished_at"], "%s %r" % (out, j))
        rc, out, err = e.ctl("wait", cid)
        check("cancel: wait on a cancelled job exits 1", rc == 1, "%d %s %s" % (rc, out, err))

        lid = e.cjson("enqueue", "slow", '{"ms":30000}')[1]["id"]
        rc, out, err = e.ctl("wait", lid, "--timeout", 100)
        check("wait --timeout 100 on a long job exits 124", rc == 124, "%d %s %s" % (rc, out, err))
        e.ctl("cancel", lid)
        rc, out, err = e.ctl("show", 999999)
        check("show 999999 exits 4", rc == 4, "%d %s %s" % (rc, out, err))
        rc, out, err = e.ctl("wait", 999999)
        check("wait 999999 exits 4", rc == 4, "%d %s %s" % (rc, out, err))
        rc, out, err = e.ctl("cancel", 999999)
        check("cancel 999999 exits 4", rc == 4, "%d %s %s" % (rc, out, err))

        pid = e.cjson("enqueue", "purchase", '{"account":1,"item":"lamp","price":100,"provider_ms":30}')[1]["id"]
        rc, out, err = e.ctl("wait", pid)
        check("purchase: completes", rc == 0 and json.loads(out).get("charged") is True, out + err)
        rc, out, err = e.ctl("trace", pid)
        check("trace: a waterfall with debit, provider, receipt",
              rc == 0 and all(s in out for s in ("debit", "provider", "receipt")) and "█" in out,
              out + err)
        rc, v, out = e.cjson("trace", pid)
        spans = v.get("spans", []) if rc == 0 and isinstance(v, dict) else []
        names = [s.get("name") for s in spans]
        check("trace --json: spans with start, ms, outcome",
              spans and all(isinstance(s.get("start"), (int, float)) and
                            isinstance(s.get("ms"), (int, float)) and s.get("outcome") for s in spans)
              and {"tx debit", "step provider", "tx receipt"} <= set(names), out)
        by = {s["name"]: s for s in spans}
        if {"tx debit", "step provider", "tx receipt"} <= set(by):
            check("trace --json: the steps are sequential, provider takes >= 30 ms",
                  by["tx debit"]["start"] <= by["step provider"]["start"] <= by["tx receipt"]["start"]
                  and by["step provider"]["ms"] >= 25, out)
        check("cmds: SIGTERM exits 0", e.stop() == 0, e.log(True)[-2000:])
    finally:
        e.cleanup()


# ---- 9. ctx.step replay after a crash -------------------------------------------------------


REPLAY = """return {
  retries = 2,
  backoff = 50,
  timeout = 60000,
  run = function(ctx, args)
    local m, err = ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO markers (job_id, attempt) VALUES (?, ?)", ctx.job.id, ctx.job.attempt))
      return "marked"
    end, { step = "mark" })
    if not m then return nil, err end
    local ref, serr = ctx.step("remote", function()
      local key = ctx.step_key("remote")
      assert(ctx.db:exec("INSERT INTO step_keys (job_id, attempt, key) VALUES (?, ?, ?)",
        ctx.job.id, ctx.job.attempt, key))
      if ctx.job.attempt == 1 then async.sleep(args.ms) end
      return "ref-" .. key
    end)
    if not ref then return nil, serr end
    return { mark = m, ref = ref }
  end,
}
"""


def test_step_replay():
    e = Env("replay")
    try:
        e.migration("0100_replay.sql",
                    "CREATE TABLE markers (job_id INTEGER, attempt INTEGER);\n"
                    "CREATE TABLE step_keys (job_id INTEGER, attempt INTEGER, key TEXT);\n")
        e.script("replay", REPLAY)
        check("replay: daemon becomes ready", e.start(), e.log())
        jid = e.cjson("enqueue", "replay", '{"ms":%d}' % (2000 * SLOW))[1]["id"]
        inside = poll(lambda: e.sql("SELECT count(*) FROM step_keys")[0][0] == 1, 10)
        check("replay: the job reached the slow step", inside)
        e.stop(signal.SIGKILL)
        check("replay(db): killed inside the step: job still running in the db",
              e.sql("SELECT state FROM jobs WHERE id = ?", jid) == [("running",)])
        check("replay: restart", e.start(), e.log(True))
        rc, out, err = e.ctl("wait", jid, "--timeout", 30000 * SLOW)
        res = json.loads(out) if rc == 0 else {}
        check("replay: the job completes after the crash", rc == 0 and res.get("mark") == "marked",
              "%d %s %s" % (rc, out, err))
        marks = e.sql("SELECT job_id, attempt FROM markers")
        check("replay(db): the db:tx step was applied exactly once", marks == [(jid, 1)], repr(marks))
        keys = e.sql("SELECT attempt, key FROM step_keys ORDER BY attempt")
        check("replay(db): ctx.step ran again after the crash, with the same step_key",
              len(keys) == 2 and keys[0][0] == 1 and keys[1][0] == 2 and keys[0][1] == keys[1][1],
              repr(keys))
        check("replay: the result carries that key", res.get("ref") == "ref-" + keys[0][1]
              if keys else False, repr(res))
        steps = e.sql("SELECT seq, name, kind FROM steps WHERE job_id = ? ORDER BY seq", jid)
        check("replay(db): the journal has mark then remote",
              steps == [(1, "mark", "tx"), (2, "remote", "step")], repr(steps))
        shown = [(s.get("seq"), s.get("name"), s.get("kind")) for s in e.job(jid).get("steps", [])]
        check("replay: show lists the same journal", shown == steps, repr(e.job(jid)))
    finally:
        e.cleanup()


TESTS = [test_crash_purchases, test_idempotent_enqueue, test_bad_migration, test_full_disk_tmpfs,
         test_full_disk_fsize, test_read_only, test_cron_restart, test_sigterm_requeues,
         test_job_commands, test_step_replay]
only = os.environ.get("AWAITD_E2E_ONLY")  # e.g. AWAITD_E2E_ONLY=test_cron_restart
# about the SQLite file itself: its disk filling, its permissions, a migration's
# SQLite dialect (test_pg.py has PostgreSQL's failing migration)
SQLITE_ONLY = {test_bad_migration, test_full_disk_tmpfs, test_full_disk_fsize, test_read_only}
for t in TESTS:
    if only and t.__name__ not in only.split(","):
        continue
    if STORE != "sqlite" and t in SQLITE_ONLY:
        skip(t.__name__, "SQLite only")
        continue
    t0 = time.monotonic()
    try:
        t()
    except Exception as ex:  # a crash in a test is a failure, not an abort
        import traceback
        check(t.__name__ + " ran to the end", False, traceback.format_exc())
    print("--- %s: %.1f s" % (t.__name__, time.monotonic() - t0), flush=True)

finish()
