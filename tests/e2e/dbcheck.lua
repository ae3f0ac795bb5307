-- tests/e2e/dbcheck.lua: ctx.db, db:tx, ctx.step and jobs.* as a job script
-- sees them, run inside the real daemon by tests/e2e/test_db.py. Returns
-- {checks = n, failures = {...}}; each failure names the check and what
-- was seen. Run with tx_timeout_ms = 300 (the test's config).
local checks, failures = 0, {}

local function check(name, cond, detail)
  checks = checks + 1
  if not cond then failures[#failures + 1] = name .. (detail and (": " .. tostring(detail)) or "") end
end

local function code(err) return type(err) == "table" and err.code or tostring(err) end

return {
  timeout = 30000,
  run = function(ctx, args)
    local db = ctx.db
    assert(db:exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v)"))
    assert(db:exec("DELETE FROM t"))

    -- type mapping
    local big = math.maxinteger - 1
    local r = db:exec("INSERT INTO t VALUES ('nil', ?), ('true', ?), ('false', ?), ('int', ?),"
      .. " ('float', ?), ('str', ?)", nil, true, false, big, 1.5, "a\0b")
    check("exec answers changes and last_id", r and r.changes == 6 and math.type(r.last_id) == "integer",
      r and r.changes)
    local rows = db:query("SELECT k, v, typeof(v) AS ty FROM t ORDER BY k")
    local by = {}
    for _, row in ipairs(rows or {}) do by[row.k] = row end
    check("query answers an array of rows keyed by column", rows and #rows == 6)
    check("nil binds NULL (absent key)", by["nil"] and by["nil"].v == nil and by["nil"].ty == "null")
    check("true binds 1", by["true"] and by["true"].v == 1 and math.type(by["true"].v) == "integer")
    check("false binds 0", by["false"] and by["false"].v == 0)
    check("64-bit integers are exact", by.int and by.int.v == big and math.type(by.int.v) == "integer",
      by.int and by.int.v)
    check("floats stay floats", by.float and by.float.v == 1.5 and math.type(by.float.v) == "float")
    check("strings keep NUL bytes", by.str and by.str.v == "a\0b", by.str and #by.str.v)

    local one = db:one("SELECT v FROM t WHERE k = ?", "int")
    check("one answers the first row", one and one.v == big)
    local none, nerr = db:one("SELECT v FROM t WHERE k = ?", "missing")
    check("one answers nil for no row", none == nil and nerr == nil)

    local v, err = db:exec("INSERT INTO t VALUES (?, ?)", "tbl", {})
    check("a table parameter is refused with invalid", v == nil and code(err) == "invalid", code(err))
    v, err = db:query("SELEC 1")
    check("a syntax error is nil, db error with SQLite's message",
      v == nil and code(err) == "db" and tostring(err.message):find("syntax error", 1, true), err)
    v, err = db:query("SELECT ?", 1, 2)
    check("the wrong number of parameters is invalid", v == nil and code(err) == "invalid", code(err))

    -- transactions
    local a, b = db:tx(function(tx)
      assert(tx:exec("INSERT INTO t VALUES ('tx1', 1)"))
      return "done", 2
    end)
    check("tx commits and returns fn's results", a == "done" and b == 2)
    check("committed rows are visible", db:one("SELECT v FROM t WHERE k = 'tx1'") ~= nil)

    v, err = db:tx(function(tx)
      assert(tx:exec("INSERT INTO t VALUES ('tx2', 1)"))
      return nil, async.error("declined", "no")
    end)
    check("fn returning nil, err rolls back and returns nil, err", v == nil and code(err) == "declined")
    check("rolled back rows are not visible", db:one("SELECT v FROM t WHERE k = 'tx2'") == nil)

    v, err = db:tx(function(tx)
      assert(tx:exec("INSERT INTO t VALUES ('tx3', 1)"))
      error("boom")
    end)
    check("fn raising rolls back and returns nil, err", v == nil and err ~= nil and
      tostring(err.message or err):find("boom", 1, true), err)
    check("rows of a raising fn are not visible", db:one("SELECT v FROM t WHERE k = 'tx3'") == nil)

    local task = async.spawn(function()
      return db:tx(function(tx)
        assert(tx:exec("INSERT INTO t VALUES ('tx4', 1)"))
        async.sleep(10000)
        return true
      end)
    end)
    async.sleep(50)
    task:cancel()
    task:await()
    local t0 = async.now()
    check("a cancelled tx rolls back", db:one("SELECT v FROM t WHERE k = 'tx4'") == nil)
    a = db:tx(function(tx) assert(tx:exec("INSERT INTO t VALUES ('tx5', 1)")); return true end)
    check("and gives the writer back at once", a == true and async.now() - t0 < 250,
      async.now() - t0)

    v, err = db:tx(function(tx)
      local inner, ierr = db:tx(function() return true end)
      return inner == nil and code(ierr) or "nested ran"
    end)
    check("db:tx inside db:tx is refused (invalid)", v == "invalid", v)
    v, err = db:tx(function(tx)
      local q, qerr = db:query("SELECT 1")
      return q == nil and code(qerr) or "plain query ran"
    end)
    check("ctx.db inside db:tx is refused (invalid) instead of waiting", v == "invalid", v)
    local ok, msg = pcall(function()
      return db:tx(function(tx) return tx:tx(function() return 1 end) end)
    end)
    check("tx:tx raises (transactions do not nest)", not ok or msg == nil, msg)

    -- an enqueue inside a rolled-back tx disappears with it
    local jid
    db:tx(function(tx)
      jid = jobs.enqueue("hello", { name = "rolled back" })
      return nil, "roll back"
    end)
    check("jobs.enqueue inside db:tx joins it", math.type(jid) == "integer", jid)
    check("and is gone when it rolls back", jid and jobs.get(jid) == nil)

    -- the writer deadline (tx_timeout_ms = 300 in the test's config)
    local slow = async.spawn(function()
      return db:tx(function(tx)
        async.sleep(800)
        return tx:exec("INSERT INTO t VALUES ('late', 1)")
      end)
    end)
    async.sleep(20)
    t0 = async.now()
    local other = db:exec("INSERT INTO t VALUES ('other', 1)")
    local waited = async.now() - t0
    check("another writer waits at most about the deadline", other and waited < 2000, waited)
    local sv, serr = slow:await()
    check("the stuck tx gets a timeout error", sv == nil and code(serr) == "timeout", code(serr))
    check("and its write is not there", db:one("SELECT v FROM t WHERE k = 'late'") == nil)

    -- steps inside one attempt
    local s1 = db:tx(function(tx) return "first" end, { step = "s" })
    check("a tx step returns fn's result", s1 == "first")
    -- (the same step name twice: test_db.py's dupstep, since it fails the attempt)
    check("step_key is stable text", ctx.step_key("p") == ctx.step_key("p") and
      ctx.step_key("p"):find(tostring(ctx.job.id), 1, true))

    -- jobs
    local id1 = jobs.enqueue("hello", { name = "k" }, { key = "dbcheck-key-" .. ctx.job.id })
    local id2 = jobs.enqueue("hello", { name = "k" }, { key = "dbcheck-key-" .. ctx.job.id })
    check("enqueue with the same key answers the same id", id1 and id1 == id2, tostring(id1) .. " " .. tostring(id2))
    local res = jobs.wait(id1, 5000)
    check("jobs.wait answers the result", res and res.greeting == "hello, k", res and res.greeting)
    local job = jobs.get(id1)
    check("jobs.get answers the job", job and job.state == "succeeded" and job.name == "hello")
    v, err = jobs.enqueue("no_such_script", {})
    check("enqueue of a missing script is no_such_script", v == nil and code(err) == "no_such_script")
    local delayed = jobs.enqueue("hello", {}, { delay = 60000 })
    v, err = jobs.wait(delayed, 100)
    check("jobs.wait times out with timeout", v == nil and code(err) == "timeout", code(err))
    return { checks = checks, failures = failures }
  end,
}
