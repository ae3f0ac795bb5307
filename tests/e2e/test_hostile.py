#!/usr/bin/env python3
"""tests/e2e/test_hostile.py: hostile scripts against one real daemon (issue 11:
no script can harm another script, the daemon, its data or the host).

    python3 tests/e2e/test_hostile.py AWAITD AWAITCTL SCRIPTS

A fuzz-style run: a few hundred mutations, drawn with random.Random(seed)
(the seed is printed; AWAITD_FUZZ_SEED=N replays a run), each one a job
script of its own that tries one hostile thing: replacing a function of a
shared module (async, json, log, jobs, http, string...) at top level or
inside run, a dangerous SQL statement through ctx.db, or a huge value.
Every mutation gets every template once, the rest are random draws.

The mutations run in batches against ONE daemon: each batch's scripts are
written into its scripts dir (the previous batch's removed), `awaitctl
reload` loads them (their top-level code runs then), and each is enqueued
and waited for. A mutation's own job may fail: that is expected. After
each batch the invariants are checked, one line each:

  alive     the daemon process is alive
  ping      `awaitctl ping` answers
  victim    a plain script returns exactly {secret = args.secret} for a
            fresh secret
  modules   a script that goes through async, json, jobs, log, ctx.db,
            string and table gets exactly what a clean sandbox gives
  normal    a hello-style job succeeds
  listing   `awaitctl --json jobs --limit 1000` exits 0 and lists exactly
            the jobs this test enqueued (sink jobs, which mutations enqueue
            on purpose, are not counted)
  forged    no stored job result, error or step holds the forged marker
  secrets   no mutation's stored result or error holds a victim's secret
  files     no file appeared at the run's ATTACH / VACUUM INTO targets
  schema    the daemon's tables, indexes and migrations record are as the
            migrations made them, no trigger or foreign key was hung on
            them, and the database is still in WAL mode

At the end the daemon is stopped (it must exit 0) and the database checked
(tables present, integrity_check ok). The summary names, per invariant, the
first batch that broke it and that batch's mutations.

Knobs: AWAITD_FUZZ_SEED (the seed, default 20261206; "random" draws one),
AWAITD_FUZZ_COUNT (mutations, default 240, 40 under valgrind), AWAITD_FUZZ_BATCH (mutations per batch, default 8; 1 pins a break on
one mutation), AWAITD_FUZZ_ONLY (comma-separated fnmatch patterns of
template ids, e.g. "sql:*,assign:json.encode": only those templates; a
pattern with a space also matches the variant, as the labels print it:
"assign:json.encode @run F=raises*" or "sql:attach via tx").

Every loop is bounded in count and in time (a budget stretched by
harness.SLOW); the test talks to the daemon only over its unix socket, and
reads its database read-only.
"""
import fnmatch
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

from harness import AWAITD, AWAITCTL, MIGRATIONS, SLOW, WRAP, check, finish

# a fixed seed by default, so that CI runs the same mutations every time;
# AWAITD_FUZZ_SEED=random draws a new one (printed, to replay it)
_seed = os.environ.get("AWAITD_FUZZ_SEED") or "20261206"
SEED = random.SystemRandom().randrange(1 << 31) if _seed == "random" else int(_seed)
# under valgrind (~50x slower) a smaller sample, so the suite stays in CI's time
COUNT = int(os.environ.get("AWAITD_FUZZ_COUNT") or (40 if WRAP else 240))
BATCH = max(1, int(os.environ.get("AWAITD_FUZZ_BATCH") or 8))
ONLY = [s for s in os.environ.get("AWAITD_FUZZ_ONLY", "").split(",") if s]
BUDGET = 120.0 * min(SLOW, 5)  # s for the mutations; each batch's checks may add ~40 s more
JOB_WAIT_MS = 8000 * SLOW  # one mutation's job (its script's own timeout is 2 s)
CTL_TIMEOUT = 30 * SLOW    # s for one awaitctl call

rng = random.Random(SEED)
TAG = "%08x" % rng.randrange(1 << 32)
PWN = "pwned-" + TAG      # what a replaced function answers
FORGED = "forged-" + TAG  # what a forging statement writes into the daemon's tables
DAEMON_TABLES = ("jobs", "steps", "schedules", "executor", "schema_migrations", "signals",
                 "awaitd_limit_starts", "awaitd_pauses", "awaitd_deps")

# --- the mutations -----------------------------------------------------------


def q(s):
    """s as a Lua string literal."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# What a replaced function does instead (F in the templates).
REPLACEMENTS = [
    "function(...) return %s end" % q(PWN),
    "function(...) return nil, %s end" % q(PWN),
    "function(...) error(%s) end" % q(PWN),
    "function(...) return {%s, code = %s, message = %s} end" % (q(PWN), q(PWN), q(PWN)),
    "function(...) local n = 0 while true do n = n + 1 end end",
]
REPLACEMENT_NAMES = ["returns-marker", "nil-err-marker", "raises-marker", "table-marker", "loops"]

# Module fields a script could try to replace for every other script.
ASSIGN_TARGETS = [
    "async.timeout", "async.all", "async.spawn", "async.sleep", "async.error", "async.try",
    "async._park", "async._unpark", "async.await", "async.Error.__tostring",
    "async.Task.await", "async.Task.__index",
    "json.encode", "json.decode", "log.info", "log.error",
    "jobs.enqueue", "jobs.get", "http.request", "http.get",
    "string.rep", "string.format", "table.concat", "math.floor", "coroutine.wrap", "os.time",
]

# Other ways to reach a module table (each guarded with pcall in the script).
OTHER_ASSIGNS = {
    "rawset-async.all": 'rawset(async, "all", F)',
    "rawset-json.encode": 'rawset(json, "encode", F)',
    "require-json.encode": 'require("json").encode = F',
    "require-async.timeout": 'require("async").timeout = F',
    "mt-async.Error.__tostring": "getmetatable(async.Error or {}).__tostring = F",
    "mt-error-value.__tostring": 'getmetatable(async.error("x", "y")).__tostring = F',
    "mt-task.__index.await": "getmetatable(async.spawn(function() end)).__index.await = F",
    "mt-string.__index.rep": 'getmetatable("").__index.rep = F',
    "wipe-json": "for k in pairs(json) do json[k] = nil end",
    "wipe-async": "for k in pairs(async) do if k ~= \"Error\" and k ~= \"Task\" then async[k] = nil end end",
    "setmetatable-log": "setmetatable(log, {__index = function() return F end})\n"
                        "  for k in pairs(log) do log[k] = nil end",
    "mt-json.null": "json.null = F",
}

# Only inside run: ctx exists there.
RUN_ASSIGNS = {
    "mt-ctx.db.__index.tx": "getmetatable(ctx.db).__index.tx = F",
    "mt-ctx.db.__index.query": "getmetatable(ctx.db).__index.query = F",
    "mt-ctx.db.__index.exec": "getmetatable(ctx.db).__index.exec = F",
    "mt-ctx.db.__index.one": "getmetatable(ctx.db).__index.one = F",
    "ctx.db.tx": "ctx.db.tx = F",
    "mt-ctx.log.__index.info": "getmetatable(ctx.log).__index.info = F",
}


def sql_list(xdb, ydb):
    """Dangerous statements: (id, [statements]) run in order through ctx.db."""
    f = FORGED
    return [
        ("drop-jobs", ["DROP TABLE jobs"]),
        ("drop-steps", ["DROP TABLE steps"]),
        ("delete-jobs", ["DELETE FROM jobs"]),
        ("forge-result", ["UPDATE jobs SET result = '\"%s\"'" % f]),
        ("forge-result-not-json", ["UPDATE jobs SET result = '%s{'" % f]),
        ("forge-state", ["UPDATE jobs SET state = 'succeeded', result = '\"%s\"' "
                         "WHERE state <> 'running'" % f]),
        ("insert-steps", ["INSERT INTO steps (job_id, seq, name, kind, result, at) "
                          "SELECT id, 1000 + id, 'forged' || id, 'step', '[\"%s\"]', 0 FROM jobs" % f]),
        ("insert-jobs", ["INSERT INTO jobs (name, state, run_at, created_at, result) "
                         "VALUES ('victim', 'succeeded', 0, 0, '\"%s\"')" % f]),
        ("temp-table-jobs", ["CREATE TEMP TABLE jobs (x)"]),
        ("temp-table-steps", ["CREATE TEMP TABLE steps (x)"]),
        ("trigger-on-jobs", ["CREATE TRIGGER IF NOT EXISTS hostile_t AFTER UPDATE ON jobs BEGIN "
                             "UPDATE jobs SET result = '\"%s\"' WHERE id = NEW.id; END" % f]),
        ("temp-trigger-on-jobs", ["CREATE TEMP TRIGGER IF NOT EXISTS hostile_tt AFTER UPDATE ON main.jobs "
                                  "BEGIN UPDATE jobs SET result = '\"%s\"' WHERE id = NEW.id; END" % f]),
        ("view-on-jobs", ["CREATE VIEW IF NOT EXISTS hostile_v AS SELECT * FROM jobs",
                          "SELECT * FROM hostile_v"]),
        ("select-jobs", ["SELECT id, args, result FROM jobs"]),
        ("attach", ["ATTACH DATABASE '%s' AS x" % xdb, "CREATE TABLE x.t (a)"]),
        ("query-only", ["PRAGMA query_only = 1"]),
        ("writable-schema", ["PRAGMA writable_schema = 1"]),
        ("writable-schema-edit", ["PRAGMA writable_schema = 1",
                                  "DELETE FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'"]),
        ("journal-mode-delete", ["PRAGMA journal_mode = DELETE"]),
        ("foreign-keys-off", ["PRAGMA foreign_keys = OFF"]),
        ("vacuum-into", ["VACUUM INTO '%s'" % ydb]),
        ("load-extension", ["SELECT load_extension('x')"]),
        ("fk-on-jobs", ["CREATE TABLE IF NOT EXISTS hostile_fk (id INTEGER REFERENCES jobs (id) "
                        "ON DELETE RESTRICT)", "INSERT INTO hostile_fk SELECT id FROM jobs"]),
        ("dbpage-read", ["SELECT pgno, hex(data) AS d FROM sqlite_dbpage"]),
        ("dbpage-write", ["UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 2"]),
        ("cte-1e9", ["WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
                     "WHERE n < 1000000000) SELECT count(*) AS n FROM c"]),
        ("begin-immediate", ["BEGIN IMMEDIATE"]),
        ("savepoint", ["SAVEPOINT hostile"]),
        ("schema-version", ["PRAGMA schema_version = 1"]),
        ("executor-epoch", ["UPDATE executor SET epoch = epoch + 1000"]),
        ("schema-migrations", ["DELETE FROM schema_migrations"]),
    ]


HUGE_RUN = {
    "result-50mb-string": 'return string.rep("x", 50 * 1024 * 1024)',
    "result-50mb-field": 'return { s = string.rep("x", 50 * 1024 * 1024) }',
    "nested-200": "local t = {} for i = 1, 200 do t = { t } end return t",
    "nested-20000": "local t = {} for i = 1, 20000 do t = { t } end return t",
    "nested-1e6": "local t = {} for i = 1, 1000000 do t = { t } end return t",
    "json-encode-nested-1e6": "local t = {} for i = 1, 1000000 do t = { t } end return json.encode(t)",
    "json-decode-nested-1e6": 'return json.decode(string.rep("[", 1000000) .. string.rep("]", 1000000))',
    "double-40": 'local s = "x" for i = 1, 40 do s = s .. s end return #s',
    "sql-param-50mb": 'return ctx.db:one("SELECT length(?) AS n", string.rep("x", 50 * 1024 * 1024))',
    "log-10mb": 'ctx.log.info("%s", string.rep("y", 10 * 1024 * 1024)) return true',
    "sleep-1e19": "return async.sleep(1e19)",
    "sleep-nan": "return async.sleep(0/0)",
    "timeout-1e19": "return async.timeout(1e19, function() return 1 end)",
    "enqueue-delay-1e19": 'return jobs.enqueue("sink", {}, { delay = 1e19 })',
    "enqueue-delay-neg-1e19": 'return jobs.enqueue("sink", {}, { delay = -1e19 })',
    "enqueue-delay-nan": 'return jobs.enqueue("sink", {}, { delay = 0/0 })',
    "enqueue-delay-huge": 'return jobs.enqueue("sink", {}, { delay = math.huge })',
    "enqueue-at-1e19": 'return jobs.enqueue("sink", {}, { at = 1e19 })',
    "enqueue-priority-1e300": 'return jobs.enqueue("sink", {}, { priority = 1e300 })',
    "enqueue-priority-minint": 'return jobs.enqueue("sink", {}, { priority = math.mininteger })',
    "enqueue-key-1mb": 'return jobs.enqueue("sink", {}, { key = string.rep("k", 1024 * 1024) })',
    "enqueue-args-nested": 'local t = {} for i = 1, 100000 do t = { t } end '
                           'return jobs.enqueue("sink", t)',
    "wait-1e19": "return jobs.wait(ctx.job.id + 1000000, 1e19)",
    "queue-concurrency-1e19": "local q = async.queue{ concurrency = 1e19, rate = 1e19, per = 0 } "
                              "return q:push(function() return 1 end):await()",
    "spawn-100k": "local ts = {} for i = 1, 100000 do ts[i] = async.spawn(function() "
                  "async.sleep(1e9) end) end return #ts",
}

# Harmless look-alikes: they must break nothing, so a broken invariant is
# the hostile mutations' doing and not the harness's.
CONTROLS = {
    "own-local": "local async = { timeout = F } async.timeout = F",
    "own-global": "myglobal = F",
    "own-table-sql": 'return ctx.db:exec("CREATE TABLE IF NOT EXISTS hostile_app (a)") and '
                     'ctx.db:exec("INSERT INTO hostile_app VALUES (1)")',
    "select-1": 'return ctx.db:query("SELECT 1 AS one")',
    "small-result": 'return { ok = true, s = string.rep("x", 1000) }',
}

HUGE_TOP = {
    "top-double-40": 'local s = "x" for i = 1, 40 do s = s .. s end',
    "top-nested-1e6": "local t = {} for i = 1, 1000000 do t = { t } end",
    "top-loop": "while true do end",
}


def templates(xdb, ydb):
    """Every template: (id, where, code); where is 'top', 'run' or 'either'."""
    out = []
    for t in ASSIGN_TARGETS:
        out.append(("assign:" + t, "either", t + " = F"))
    for k, code in OTHER_ASSIGNS.items():
        out.append(("assign:" + k, "either", code))
    for k, code in RUN_ASSIGNS.items():
        out.append(("assign:" + k, "run", code))
    for k, stmts in sql_list(xdb, ydb):
        out.append(("sql:" + k, "run", stmts))
    for k, code in HUGE_RUN.items():
        out.append(("huge:" + k, "run", code))
    for k, code in HUGE_TOP.items():
        out.append(("huge:" + k, "top", code))
    for k, code in CONTROLS.items():
        out.append(("control:" + k, "run" if "ctx" in code or "return" in code else "either", code))
    if ONLY:
        out = [t for t in out if any(fnmatch.fnmatchcase(t[0], o.split(" ")[0]) for o in ONLY)]
    return out


def lua_sql(stmts, how):
    """Lua that runs statements through ctx.db (exec, query or a tx) and returns what came back."""
    lits = ", ".join(q(s) for s in stmts)
    if how == "tx":
        return ("return ctx.db:tx(function(tx) local out = {} for i, s in ipairs({%s}) do "
                "local r, e = tx:query(s) out[i] = r or tostring(e) end return out end)" % lits)
    return ("local out = {} for i, s in ipairs({%s}) do local r, e = ctx.db:%s(s) "
            "out[i] = r or tostring(e) end return out" % (lits, how))


def mutation_script(mid, tid, where, code, repl):
    """The Lua source of one mutation: top-level code guarded so the script loads."""
    top, run = "", "return true"
    if where == "top":
        top = code
    else:
        run = code
    return """-- hostile mutation %(mid)s: %(tid)s (%(where)s)
local F = %(repl)s
local ok_top, err_top = pcall(function()
  %(top)s
end)
return {
  description = %(desc)s,
  timeout = 2000,
  run = function(ctx, args)
    local ok, r, e = pcall(function()
      %(run)s
    end)
    if not ok then return { raised = tostring(r) } end
    return r, e
  end,
}
""" % dict(mid=mid, tid=tid, where=where, repl=repl, top=top or "return", run=run,
           desc=q("%s: %s at %s" % (mid, tid, where)))


def draw(xdb, ydb):
    """COUNT mutations: every template once (as COUNT allows), then random draws, shuffled."""
    ts = templates(xdb, ydb)
    picks = list(ts) + [rng.choice(ts) for _ in range(max(0, COUNT - len(ts)))]
    rng.shuffle(picks)
    muts = []
    for i, (tid, where, code) in enumerate(picks[:COUNT]):
        if where == "either":
            where = rng.choice(["top", "run"])
        if tid.startswith("sql:"):
            how = rng.choice(["exec", "query", "tx"])
            tid, code = tid + " via " + how, lua_sql(code, how)
        mid = "m%03d" % i
        ri = rng.randrange(len(REPLACEMENTS))
        repl = REPLACEMENTS[ri]
        label = "%s %s @%s" % (mid, tid, where) + (" F=%s" % REPLACEMENT_NAMES[ri]
                                                   if tid.startswith("assign:") else "")
        muts.append({"id": mid, "tid": tid, "label": label,
                     "src": mutation_script(mid, tid, where, code, repl)})
    if any(" " in o for o in ONLY):  # a pattern with a space also picks the variant
        muts = [m for m in muts
                if any(fnmatch.fnmatchcase(m["label"].split(" ", 1)[1], o + "*") for o in ONLY)]
    return muts


# --- the scripts that must stay unharmed --------------------------------------

VICTIM = """-- victim: its result is computed from its args alone
return {
  timeout = 10000,
  run = function(ctx, args) return { secret = args.secret } end,
}
"""

# Goes through each shared module the way an ordinary script does; in a clean
# sandbox the result is exactly MODULES_WANT(secret).
MODULES = """-- victim_modules: every hop goes through a module another script may have touched
local function clean(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" then
      for k, x in pairs(v) do if tostring(k):find("pwned") or tostring(x):find("pwned") then return false end end
    elseif tostring(v):find("pwned") then
      return false
    end
  end
  return true
end
return {
  timeout = 10000,
  run = function(ctx, args)
    local s = args.secret
    local v, err = async.timeout(5000, function()
      local all, e = async.all({ function() return string.rep(s, 1) end })
      if not all then return nil, e end
      return all[1]
    end)
    if v == nil then return nil, err end
    local back = json.decode(json.encode({ s = v }))
    local row, e2 = ctx.db:tx(function(tx) return tx:one("SELECT ? AS s", back.s) end)
    if not row then return nil, e2 end
    local task = async.spawn(function() async.sleep(0) return ("%s"):format(row.s) end)
    local got = task:await()
    local j = jobs.get(ctx.job.id)
    log.info("victim_modules %s", got)
    ctx.log.info("victim_modules ctx.log")
    local rows = ctx.db:query("SELECT 1 AS one")
    local ok, t = async.try(function() return "tried" end)
    return {
      secret = got,
      job = j ~= nil and j.id == ctx.job.id,
      err = tostring(async.error("probe", "x")),
      rows = rows and #rows,
      one = ctx.db:one("SELECT 2 AS two").two,
      exec = ctx.db:exec("SELECT 3").changes,
      try = ok,
      rep = ("ab"):rep(2) .. string.rep("c", 2),
      fmt = string.format("%d-%s", 7, "x"),
      concat = table.concat({ "a", "b" }, ","),
      floor = math.floor(2.5),
      wrap = coroutine.wrap(function() return "w" end)(),
      time = type(os.time()) == "number",
      null = json.null ~= nil and json.encode({ json.null }) == "[null]",
      http = clean(pcall(http.request, {})) and clean(pcall(http.get)),
      enqueue = clean(pcall(jobs.enqueue)),
      park = type(async._park) ~= "string",
    }
  end,
}
"""


def modules_want(secret):
    return {"secret": secret, "job": True, "err": "probe: x", "rows": 1, "one": 2, "exec": 0,
            "try": "tried", "rep": "ababcc", "fmt": "7-x", "concat": "a,b", "floor": 2,
            "wrap": "w", "time": True, "null": True, "http": True, "enqueue": True, "park": True}


NORMAL = """-- normal: a hello-style job
return {
  timeout = 5000,
  run = function(ctx, args)
    local name = args and args.name or "world"
    ctx.log.info("greeting %s", name)
    return { greeting = "hello, " .. name, job = ctx.job.name }
  end,
}
"""

SINK = "return { timeout = 1000, run = function(ctx, args) return true end }\n"


# --- the daemon ---------------------------------------------------------------

class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="awaitd-hostile-")
        self.sock = os.path.join(self.dir, "awaitd.sock")
        self.db = os.path.join(self.dir, "awaitd.db")
        self.scripts = os.path.join(self.dir, "scripts")
        os.mkdir(self.scripts)
        for name, src in (("victim", VICTIM), ("victim_modules", MODULES), ("normal", NORMAL),
                          ("sink", SINK)):
            self.write(name, src)
        self.conf = os.path.join(self.dir, "awaitd.conf")
        with open(self.conf, "w") as f:
            # a cap, as on any shared machine (awaitd.conf): a hostile doubling
            # must hit it instead of the host's memory
            f.write("max_memory_mb = 1024\ntx_timeout_ms = 2000\nshutdown_timeout_ms = 3000\n")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen(
            WRAP + [AWAITD, "-c", self.conf, "--scripts", self.scripts, "--socket", self.sock,
                    "--db", self.db, "--migrations", MIGRATIONS],
            stdout=self.log, stderr=self.log, cwd=self.dir)

    def write(self, name, src):
        with open(os.path.join(self.scripts, name + ".lua"), "w") as f:
            f.write(src)

    def remove(self, name):
        try:
            os.unlink(os.path.join(self.scripts, name + ".lua"))
        except FileNotFoundError:
            pass

    def ctl(self, *args, timeout=CTL_TIMEOUT):
        try:
            r = subprocess.run([AWAITCTL, "-s", self.sock] + list(args), capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "awaitctl %s: no answer in %ss" % (args[0], timeout)
        dec = lambda b: b.decode("utf-8", "replace")
        return r.returncode, dec(r.stdout), dec(r.stderr)

    def ctl_json(self, *args, timeout=CTL_TIMEOUT):
        rc, out, err = self.ctl("--json", *args, timeout=timeout)
        try:
            return rc, json.loads(out) if out.strip() else None, err
        except ValueError:
            return rc, None, err + " (unparsable output: %s)" % out[:200]

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, deadline):
        end = time.monotonic() + deadline
        while time.monotonic() < end and self.alive():
            if self.ctl("ping", timeout=5)[0] == 0:
                return True
            time.sleep(0.02)
        return False

    def stop(self, wait=20 * SLOW):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def logtail(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-2000:]


def ro(db):
    """A read-only connection to the daemon's live WAL database."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    c.text_factory = lambda b: b.decode("utf-8", "replace")
    return c


def schema_rows(db):
    with ro(db) as c:
        q = ("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN (%s) "
             "ORDER BY type, name" % ",".join("?" * len(DAEMON_TABLES)))
        return c.execute(q, DAEMON_TABLES).fetchall()


def schema_problems(db, baseline):
    """What differs from the migrations' schema; [] when intact."""
    problems = []
    try:
        with open(db, "rb") as f:
            head = f.read(100)
        if len(head) < 20 or head[18] != 2 or head[19] != 2:
            problems.append("not in WAL mode (header bytes 18-19: %r)" % (head[18:20],))
        now = schema_rows(db)
        for row in baseline:
            if row not in now:
                problems.append("missing or changed: %s %s" % (row[0], row[1]))
        for row in now:
            if row not in baseline:
                problems.append("added on %s: %s %s" % (row[2], row[0], row[1]))
        with ro(db) as c:
            migs = c.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
            if migs < 2:
                problems.append("schema_migrations has %d rows" % migs)
            for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                for fk in c.execute("SELECT * FROM pragma_foreign_key_list(?)", (t,)).fetchall():
                    if fk[2] in DAEMON_TABLES and not (t in ("steps", "signals", "awaitd_deps") and fk[2] == "jobs"):
                        problems.append("foreign key %s -> %s" % (t, fk[2]))
    except sqlite3.Error as e:
        problems.append("sqlite: %s" % e)
    return problems


# --- the run ------------------------------------------------------------------

class Run:
    def __init__(self, d, baseline, xdb, ydb):
        self.d, self.baseline, self.xdb, self.ydb = d, baseline, xdb, ydb
        self.ids = set()          # every job this test enqueued, mutations and checks
        self.secrets = []         # every victim secret handed out so far
        self.broken = {}          # invariant -> (batch number, labels) of its first break
        self.nfail = {}           # invariant -> batches that broke it
        self.outcomes = {}        # mutation job outcome -> count
        self.deadline = time.monotonic() + BUDGET

    def inv(self, batch, labels, name, ok, detail=""):
        check("batch %02d %s: %s" % (batch, name, INVARIANTS[name]), ok,
              "%s | batch: %s" % (detail, "; ".join(labels)) if not ok else "")
        if not ok:
            self.nfail[name] = self.nfail.get(name, 0) + 1
            self.broken.setdefault(name, (batch, labels, str(detail)[:300]))

    def enqueue(self, name, args=None):
        a = [json.dumps(args)] if args is not None else []
        rc, out, err = self.d.ctl_json("enqueue", name, *a)
        if rc == 0 and isinstance(out, dict) and "id" in out:
            self.ids.add(out["id"])
            return out["id"], ""
        return None, "enqueue %s: rc %d %s" % (name, rc, err.strip()[:300])

    def run_job(self, name, args=None, wait_ms=10000 * SLOW):
        """Enqueue and wait: (rc, job or None, detail)."""
        jid, why = self.enqueue(name, args)
        if jid is None:
            return None, None, why
        rc, out, err = self.d.ctl_json("wait", str(jid), "--timeout", str(int(wait_ms)),
                                       timeout=wait_ms / 1000 + CTL_TIMEOUT)
        return rc, out, "wait %d: rc %d %s %s" % (jid, rc, json.dumps(out)[:300], err.strip()[:300])

    def mutations(self, batch):
        for m in batch:
            self.d.write(m["id"], m["src"])
        rc, _, err = self.d.ctl("reload")
        ran = 0
        for m in batch:
            if time.monotonic() > self.deadline:
                self.outcomes["not run: over budget"] = self.outcomes.get("not run: over budget", 0) + 1
                continue
            if not self.d.alive():
                self.outcomes["daemon dead"] = self.outcomes.get("daemon dead", 0) + 1
                continue
            rc, job, _ = self.run_job(m["id"], wait_ms=JOB_WAIT_MS)
            ran += 1
            state = (job or {}).get("state") if isinstance(job, dict) else None
            key = "not enqueued" if rc is None else "rc %d%s" % (rc, " " + state if state else "")
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
        for m in batch:
            self.d.remove(m["id"])
        return ran

    def invariants(self, n, labels):
        d = self.d
        self.inv(n, labels, "alive", d.alive(), "exit %s; log: %s" % (d.proc.returncode, d.logtail()))
        rc, out, err = d.ctl("ping", timeout=10 * SLOW)
        self.inv(n, labels, "ping", rc == 0, "rc %d %s" % (rc, err.strip()))

        secret = "secret-%s-%06d" % (TAG, rng.randrange(10 ** 6))
        self.secrets.append(secret)
        rc, job, why = self.run_job("victim", {"secret": secret})
        self.inv(n, labels, "victim", rc == 0 and isinstance(job, dict)
                 and job.get("result") == {"secret": secret}, why)

        secret2 = "secret-%s-%06d" % (TAG, rng.randrange(10 ** 6))
        self.secrets.append(secret2)
        rc, job, why = self.run_job("victim_modules", {"secret": secret2})
        got = job.get("result") if isinstance(job, dict) else None
        want = modules_want(secret2)
        if isinstance(got, dict):
            diff = {k: got.get(k) for k in set(want) | set(got) if got.get(k) != want.get(k)}
        else:
            diff = {"(result)": got}
        self.inv(n, labels, "modules", rc == 0 and got == want,
                 "differs: %s; %s" % (json.dumps(diff)[:400], why))

        rc, job, why = self.run_job("normal", {"name": "ann"})
        self.inv(n, labels, "normal", rc == 0 and isinstance(job, dict) and job.get("result")
                 == {"greeting": "hello, ann", "job": "normal"}, why)

        rc, out, err = d.ctl_json("jobs", "--limit", "1000")
        listed = [j for j in (out or {}).get("jobs", [])] if isinstance(out, dict) else []
        mine = [j for j in listed if j.get("name") != "sink"]
        ids = {j.get("id") for j in mine}
        self.inv(n, labels, "listing", rc == 0 and len(mine) == len(self.ids) and ids == self.ids,
                 "rc %d, %d jobs listed (not sink), %d enqueued; missing %s, extra %s; %s"
                 % (rc, len(mine), len(self.ids), sorted(self.ids - ids)[:10],
                    sorted(ids - self.ids)[:10], err.strip()[:300]))

        forged, leaked, why = [], [], ""
        try:
            with ro(d.db) as c:
                for jid, name, res, e in c.execute("SELECT id, name, result, error FROM jobs"):
                    text = (res or "") + (e or "")
                    if FORGED in text:
                        forged.append(jid)
                    if name.startswith("m") and any(s in text for s in self.secrets):
                        leaked.append(jid)
                forged += ["step of %d" % j for (j,) in c.execute(
                    "SELECT job_id FROM steps WHERE instr(result, ?) > 0", (FORGED,))]
        except sqlite3.Error as e:
            why = "sqlite: %s" % e
        self.inv(n, labels, "forged", not forged and not why, "%s %s" % (forged[:10], why))
        self.inv(n, labels, "secrets", not leaked and not why,
                 "mutation jobs holding a victim's secret: %s %s" % (leaked[:10], why))

        made = [p for p in (self.xdb, self.ydb) if os.path.exists(p)]
        self.inv(n, labels, "files", not made, "created: %s" % made)
        for p in made:  # so that the next batch's check is its own
            os.unlink(p)

        probs = schema_problems(d.db, self.baseline)
        self.inv(n, labels, "schema", not probs, "; ".join(probs[:8]))


INVARIANTS = {
    "alive": "the daemon process is alive",
    "ping": "awaitctl ping answers",
    "victim": "a victim script returns exactly its fresh secret",
    "modules": "the shared modules behave for another script as in a clean sandbox",
    "normal": "a hello-style job succeeds",
    "listing": "awaitctl jobs --json exits 0 and lists every job enqueued",
    "forged": "no stored result, error or step holds the forged marker",
    "secrets": "no mutation's stored result holds a victim's secret",
    "files": "no file appeared at the ATTACH / VACUUM INTO targets",
    "schema": "the daemon's tables are as the migrations made them, in WAL mode",
}


def main():
    print("hostile: seed %d (AWAITD_FUZZ_SEED=%d replays this run), %d mutations, batches of %d"
          % (SEED, SEED, COUNT, BATCH), flush=True)
    outside = tempfile.mkdtemp(prefix="awaitd-hostile-out-")  # not the daemon's dir
    xdb, ydb = os.path.join(outside, "x.db"), os.path.join(outside, "y.db")
    muts = draw(xdb, ydb)
    d = Daemon()
    try:
        ready = d.wait_ready(15 * SLOW)
        check("the daemon starts with the victim scripts", ready, d.logtail())
        if not ready:
            return
        baseline = schema_rows(d.db)
        check("the daemon's tables exist after its migrations",
              {r[1] for r in baseline if r[0] == "table"} >= set(DAEMON_TABLES), baseline)
        run = Run(d, baseline, xdb, ydb)
        run.invariants(0, ["(none: the clean daemon)"])

        start = time.monotonic()
        run.deadline = start + BUDGET
        batches = [muts[i:i + BATCH] for i in range(0, len(muts), BATCH)]
        done = 0
        for n, batch in enumerate(batches, 1):
            if time.monotonic() > run.deadline:
                break
            if not d.alive():
                print("     the daemon died: the %d mutations left are not run"
                      % (len(muts) - done), flush=True)
                break
            labels = [m["label"] for m in batch]
            done += run.mutations(batch)
            run.invariants(n, labels)
        elapsed = time.monotonic() - start
        if d.alive():
            check("all %d mutations ran within the %.0f s budget (%d ran in %.0f s)"
                  % (len(muts), BUDGET, done, elapsed), done == len(muts))
        print("     mutation jobs: %s" % ", ".join("%s: %d" % kv for kv in sorted(run.outcomes.items())))

        rc = d.stop()
        check("the daemon stops on SIGTERM with exit 0", rc == 0, "exit %s; %s" % (rc, d.logtail()))
        try:
            with ro(d.db) as c:
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                integ = c.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.Error as e:
            tables, integ = set(), "sqlite: %s" % e
        check("after the stop: jobs, steps and schedules exist",
              {"jobs", "steps", "schedules"} <= tables, sorted(tables))
        check("after the stop: the database passes integrity_check", integ == "ok", integ)

        print("summary: seed %d, %d of %d mutations run" % (SEED, done, len(muts)))
        for name, text in INVARIANTS.items():
            if name in run.broken:
                b, labels, detail = run.broken[name]
                print("  BROKEN %-8s in %d batches, first in batch %d: %s\n           by one of: %s"
                      % (name, run.nfail[name], b, detail, "; ".join(labels)))
            else:
                print("  held   %-8s %s" % (name, text))
    finally:
        if d.alive():
            d.proc.kill()
            d.proc.wait()
        shutil.rmtree(d.dir, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)


def on_term(signum, frame):
    """A SIGTERM (ctest's timeout) unwinds through main's finally: no daemon is left behind."""
    raise SystemExit(1)


signal.signal(signal.SIGTERM, on_term)
try:
    main()
except Exception as e:  # a crash in the harness is a failure, not an abort
    import traceback
    check("test_hostile ran to the end", False, traceback.format_exc())
finish()
