#!/usr/bin/env python3
"""tests/e2e/test_isolation.py: a hostile script cannot harm another script,
the daemon or its data (issue 11, findings 1-4 and os.getenv).

    python3 tests/e2e/test_isolation.py AWAITD AWAITCTL SCRIPTS

Each attack is sent by a real script in the real daemon; after each, the
refusal is checked and so is the daemon: a victim script still returns its
own secret, a normal job still runs, `awaitctl jobs` still lists every job.
"""
import json
import os
import shutil
import sqlite3
import tempfile
import time

from harness import MIGRATIONS, SCRIPTS, SLOW, Daemon, check, finish, poll

VICTIM = """
return { run = function(ctx, args) return { secret = args.secret, via = json.encode({1}) } end }
"""

# finding 1: replace the modules, at top level (runs at every load) and in run
TAKEOVER = """
local evil = function(ms, f, ctx, args) return { stolen = args } end
local refused = {}
local function try(name, f) if not pcall(f) then refused[#refused + 1] = name end end
try("async.timeout", function() async.timeout = evil end)
try("rawset", function() rawset(async, "timeout", evil) end)
try("json.encode", function() json.encode = function() return '"pwned"' end end)
try("Task.__index", function() async.Task.__index = evil end)
try("Error.__tostring", function() getmetatable(async.error("a", "b")).__tostring = evil end)
try("require", function() require("async").timeout = evil end)
return { run = function(ctx, args)
  try("run: async.timeout", function() async.timeout = evil end)
  return { refused = refused, internals = async._park ~= nil or async._start ~= nil,
           getenv = os.getenv ~= nil }
end }
"""

# findings 2 and 3: SQL against the daemon's tables and connection
SQL = """
return { run = function(ctx, args)
  local r, err = ctx.db:query(args.sql)
  if r then return { ok = true, rows = #r } end
  return { ok = false, code = err.code, message = err.message }
end }
"""

# finding 4: a statement that would run for minutes (the job's own timeout
# is an hour, so that only the statement's bounds can stop it)
LONG = """
return { timeout = 3600000, run = function(ctx, args)
  local t0 = async.now()
  local r, err = ctx.db:query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    .. "WHERE x < 1000000000) SELECT count(*) AS n FROM c")
  return { ok = r ~= nil, code = err and err.code, message = err and err.message,
           ms = async.now() - t0 }
end }
"""

# finding 4: the same under a short job timeout, so the job's deadline stops it
LONG_JOB = """
return { timeout = 300, run = function(ctx, args)
  return ctx.db:query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    .. "WHERE x < 1000000000) SELECT count(*) AS n FROM c")
end }
"""

# finding 4: a long write; stopping it rolls SQLite's whole transaction back
LONG_WRITE = """
return { timeout = 60000, run = function(ctx, args)
  assert(ctx.db:exec("CREATE TABLE IF NOT EXISTS big (x)"))
  local r, err = ctx.db:exec("INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
    .. "SELECT x + 1 FROM c WHERE x < 1000000000) SELECT x FROM c")
  local n = assert(ctx.db:one("SELECT count(*) AS n FROM big")).n
  return { ok = r ~= nil, code = err and err.code, message = err and err.message, rows = n }
end }
"""

# finding 8: a result nested too deep names its path once, not "[1]" 200 times
NESTED = """
return { run = function() local t = {} for i = 1, 201 do t = { t } end return t end }
"""

# the store issue: a long read outside a transaction leaves the loop alone
LAG = """
return { timeout = 60000, run = function(ctx, args)
  local late, ticks, reading = 0, 0, true
  local timer = async.spawn(function()
    while reading do
      local t0 = async.now()
      async.sleep(10)
      late = math.max(late, async.now() - t0 - 10)
      ticks = ticks + 1
    end
  end)
  local t0 = async.now()
  local r, err = ctx.db:query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    .. "WHERE x < ?) SELECT count(*) AS n FROM c", args.n)
  local ms = async.now() - t0
  reading = false
  timer:await()
  return { ok = r ~= nil, err = err and tostring(err), read_ms = ms, late_ms = late, ticks = ticks }
end }
"""

OWN_TABLES = """
return { run = function(ctx, args)
  assert(ctx.db:exec("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"))
  assert(ctx.db:exec("CREATE INDEX IF NOT EXISTS notes_body ON notes (body)"))
  local e = assert(ctx.db:exec("INSERT INTO notes (body) VALUES (?)", args.body))
  local info = assert(ctx.db:query("PRAGMA table_info(notes)"))
  local row = assert(ctx.db:one("SELECT body FROM notes WHERE id = ?", e.last_id))
  local shop = assert(ctx.db:query("SELECT count(*) AS n FROM accounts"))
  return { body = row.body, columns = #info, accounts = shop[1].n }
end }
"""

ATTACKS = [
    # (name, sql, a fragment the refusal must name[, its code when not "invalid"])
    ("read other jobs' args", "SELECT args FROM jobs", '"jobs" is one of the daemon\'s own tables'),
    ("forge a result", "UPDATE jobs SET result = '\"forged\"'", '"jobs"'),
    ("delete the history", "DELETE FROM jobs", '"jobs"'),
    ("drop the journal", "DROP TABLE steps", '"steps"'),
    ("write the journal", "INSERT INTO steps VALUES (1, 1, 'x', 'tx', '[]', 0)", '"steps"'),
    ("qualified name", "SELECT * FROM main.schedules", '"schedules"'),
    ("quoted name", 'SELECT * FROM "JOBS"', '"jobs"'),
    ("migrations table", "DELETE FROM schema_migrations", '"schema_migrations"'),
    ("the epoch", "UPDATE executor SET epoch = 0", '"executor"'),
    # (SQLite checks a view when it is used, not when it is made)
    ("a view over jobs", "SELECT * FROM peek", '"jobs"'),
    ("a trigger on jobs", "CREATE TRIGGER t AFTER INSERT ON jobs BEGIN SELECT 1; END", '"jobs"'),
    ("an index on jobs", "CREATE INDEX j2 ON jobs (name)", '"jobs"'),
    ("a temp table shadowing jobs", "CREATE TEMP TABLE jobs (x)", "temporary"),
    ("attach", "ATTACH DATABASE '%(attach)s' AS x", "ATTACH"),
    ("vacuum into", "VACUUM INTO '%(vacuum)s'", "VACUUM", "db"),  # SQLite refuses it first
    ("query_only", "PRAGMA query_only = 1", '"query_only" is refused'),
    ("writable_schema", "PRAGMA writable_schema = 1", '"writable_schema" is refused'),
    ("journal_mode", "PRAGMA journal_mode = DELETE", '"journal_mode" is refused'),
    ("pragma as a table", "SELECT * FROM pragma_query_only", '"query_only" is refused'),
    ("load_extension", "SELECT load_extension('/tmp/x')", '"load_extension" is refused'),
    ("fts3_tokenizer", "SELECT fts3_tokenizer('simple')", '"fts3_tokenizer" is refused'),
    ("other scripts' SQL", "SELECT sql FROM sqlite_stmt", '"sqlite_stmt"'),
    ("sqlite_master write", "DELETE FROM sqlite_master", "may not be modified", "db"),
    ("transaction control", "COMMIT", "use db:tx"),
    ("a foreign key to jobs", "CREATE TABLE mine (j INTEGER REFERENCES jobs (id))",
     'table "mine" would reference "jobs"'),
    ("... twice (no cached statement skips the check)",
     "CREATE TABLE mine (j INTEGER REFERENCES jobs (id))", 'table "mine" would reference "jobs"'),
    ("a foreign key added later", "ALTER TABLE notes ADD COLUMN j INTEGER REFERENCES \"Jobs\"",
     'table "notes" would reference "Jobs"'),
]


def setup():
    root = tempfile.mkdtemp(prefix="awaitd-iso-")
    os.mkdir(os.path.join(root, "scripts"))
    shutil.copy(os.path.join(SCRIPTS, "hello.lua"), os.path.join(root, "scripts"))
    shutil.copytree(MIGRATIONS, os.path.join(root, "migrations"))
    with open(os.path.join(root, "awaitd.conf"), "w") as f:
        f.write("max_statement_ms = 500\nshutdown_timeout_ms = 2000\n")
    for name, text in (("victim", VICTIM), ("a_takeover", TAKEOVER), ("sql", SQL),
                       ("long", LONG), ("long_job", LONG_JOB), ("long_write", LONG_WRITE), ("own", OWN_TABLES), ("nested", NESTED), ("lag", LAG)):
        with open(os.path.join(root, "scripts", name + ".lua"), "w") as f:
            f.write(text)
    return root


def run_json(d, *args, timeout=60):
    rc, out, err = d.ctl("--json", "run", *args, timeout=timeout)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, out + err


class Health:
    """The daemon's invariants: the victim, a normal job, the listing."""

    def __init__(self, d):
        self.d = d
        self.n = 0
        self.runs = 0

    def __call__(self, after):
        self.n += 1
        secret = "s-%d-%d" % (self.n, time.monotonic_ns())
        rc, res, err = run_json(self.d, "victim", json.dumps({"secret": secret}))
        check("after %s: the victim gets its own secret back" % after,
              rc == 0 and res == {"secret": secret, "via": "[1]"}, (rc, res, err))
        rc, out, err = self.d.ctl("run", "hello", '{"name": "x"}')
        check("after %s: a normal job runs" % after, rc == 0, out + err)
        self.runs += 2
        rc, out, err = self.d.ctl("--json", "jobs", "--limit", "10000")
        jobs = json.loads(out) if rc == 0 else None
        if isinstance(jobs, dict):
            jobs = jobs.get("jobs", [])
        check("after %s: awaitctl jobs lists every job (%d)" % (after, self.runs),
              rc == 0 and isinstance(jobs, list) and len(jobs) == self.runs, out + err)

    def ran(self, n=1):
        self.runs += n


def main():
    root = setup()
    d = Daemon(root)
    health = Health(d)
    try:
        check("daemon starts", d.start(), open(d.log.name).read())
        rc, out, err = d.ctl("scripts")
        check("every test script loads", rc == 0 and "error" not in out.lower(), out + err)

        # finding 1
        rc, res, err = run_json(d, "a_takeover")
        health.ran()
        refused = set((res or {}).get("refused", []))
        want = {"async.timeout", "rawset", "json.encode", "Task.__index", "Error.__tostring",
                "require", "run: async.timeout"}
        check("module takeover: every write refused", rc == 0 and refused == want, (res, err))
        check("module takeover: no internals in async", res and res.get("internals") is False, res)
        check("os.getenv is gone from the sandbox", res and res.get("getenv") is False, res)
        health("the takeover")
        rc, out, err = d.ctl("reload")
        check("reload after the takeover", rc == 0, out + err)
        health("a reload")

        # findings 2 and 3
        rc, res, err = run_json(d, "own", json.dumps({"body": "hi"}))
        health.ran()
        check("scripts keep full SQL over their own tables",
              rc == 0 and res and res.get("body") == "hi" and res.get("columns") == 2
              and isinstance(res.get("accounts"), int), (res, err))
        paths = {"attach": os.path.join(root, "outside", "x.db"),
                 "vacuum": os.path.join(root, "outside", "y.db")}
        os.mkdir(os.path.join(root, "outside"))
        rc, res, err = run_json(d, "sql", json.dumps({"sql": "CREATE VIEW peek AS SELECT * FROM jobs"}))
        health.ran()
        for name, sql, fragment, *code in ATTACKS:
            rc, res, err = run_json(d, "sql", json.dumps({"sql": sql % paths}))
            health.ran()
            check("SQL %s: refused (%s)" % (name, fragment),
                  rc == 0 and res and res.get("ok") is False
                  and res.get("code") == (code[0] if code else "invalid")
                  and fragment in res.get("message", ""), (res, err))
        check("no file was written outside the state directory",
              os.listdir(os.path.join(root, "outside")) == [], os.listdir(os.path.join(root, "outside")))
        health("the SQL attacks")
        rc, res, err = run_json(d, "own", json.dumps({"body": "again"}))
        health.ran()
        check("... and still after the attacks (the refused ALTER left notes as it was)",
              rc == 0 and res and res.get("body") == "again" and res.get("columns") == 2, (res, err))

        # finding 8: the error path of a too-deep result
        rc, out, err = d.ctl("--json", "run", "nested")
        health.ran()
        msg = out + err
        check("a result nested too deep fails once, its path collapsed to a depth",
              rc == 1 and "nesting deeper than 200" in msg and "levels)" in msg
              and "[1]" * 10 not in msg and len(msg) < 600, msg[:800])
        health("a too-deep result")

        # finding 4
        t0 = time.monotonic()
        rc, res, err = run_json(d, "long")
        health.ran()
        took = time.monotonic() - t0
        check("a long statement is stopped with timeout, naming max_statement_ms",
              rc == 0 and res and res.get("ok") is False and res.get("code") == "timeout"
              and "max_statement_ms" in res.get("message", ""), (res, err))
        check("... within a generous bound (%.1f s)" % took, took < 10 * SLOW, took)
        rc, res, err = run_json(d, "long_write")
        health.ran()
        check("a long write is stopped at max_slice_ms (it runs on the loop), and none of it is kept",
              rc == 0 and res and res.get("code") == "timeout" and res.get("rows") == 0
              and "max_slice_ms" in res.get("message", ""), (res, err))
        health("a stopped write")
        rc, out, err = d.ctl("--json", "enqueue", "long_job")
        health.ran()
        jid = json.loads(out)["id"] if rc == 0 else None
        rc, out, err = d.ctl("--json", "wait", str(jid), "--timeout", str(int(20000 * SLOW)))
        check("a job whose deadline passes mid-statement ends (the statement stops)",
              rc == 1 and jid is not None, (rc, out, err))
        t0 = time.monotonic()
        rc, out, err = d.ctl("ping", timeout=10)
        check("the store answers right after", rc == 0 and time.monotonic() - t0 < 5 * SLOW,
              out + err)
        health("the long statements")

        # A read that would run for minutes (no max_statement_ms to stop it):
        # the store answers everything else meanwhile, and SIGTERM still
        # ends the daemon in time.
        d.stop()
        with open(os.path.join(root, "awaitd.conf"), "w") as f:
            f.write("max_statement_ms = 3600000\nshutdown_timeout_ms = 2000\n")
        d = Daemon(root)
        health.d = d
        check("the daemon restarts with max_statement_ms = 1 h", d.start(), open(d.log.name).read())
        rc, out, err = d.ctl("--json", "enqueue", "long")
        health.ran()
        lid = json.loads(out)["id"] if rc == 0 else None
        check("a minutes-long read is enqueued", lid is not None, out + err)
        poll(lambda: ((d.cjson("show", str(lid))[1]) or {}).get("state") == "running", 10 * SLOW)
        health("a long read started")
        rc, out, err = d.ctl("--json", "enqueue", "hello", '{"name": "y"}')
        health.ran()
        check("an enqueue is answered while the long read runs", rc == 0, out + err)
        state = ((d.cjson("show", str(lid))[1]) or {}).get("state")
        check("... and the long read is still running (it did not hold the store up)",
              state == "running", state)
        rc, res, err = run_json(d, "lag", json.dumps({"n": 3000000 // SLOW}))
        health.ran()
        check("a long read (%.0f ms) leaves a 10 ms timer on time (late by %.1f ms at most)"
              % ((res or {}).get("read_ms", 0), (res or {}).get("late_ms", -1)),
              rc == 0 and res and res.get("ok") and res.get("read_ms", 0) >= 500
              and res.get("late_ms", 1e9) < 50 * SLOW and res.get("ticks", 0) >= 20 // SLOW, (res, err))
        t0 = time.monotonic()
        code = d.stop()
        took = time.monotonic() - t0
        check("SIGTERM during a minutes-long statement: exits 0 within shutdown_timeout + a few s "
              "(%.1f s)" % took, code == 0 and took < (2 + 8) * SLOW, (code, took))
        db = sqlite3.connect(os.path.join(root, "awaitd.db"))
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.close()
        check("the daemon's tables are intact and WAL mode kept",
              {"jobs", "steps", "schedules", "executor", "schema_migrations"} <= tables
              and "notes" in tables and "mine" not in tables and mode == "wal", (tables, mode))
        d = Daemon(root)
        check("the daemon restarts on the same database", d.start(), open(d.log.name).read())
        health.d = d
        health("a restart")
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
