-- test_timeout.lua: async.timeout and async.deadline (SPEC 2: timeout row,
-- "Deadlines nest", "Nothing outlives its combinator").
local T = require "testlib"

local function recorder()
  local rec = {}
  return rec, function(s) rec[#rec + 1] = s end
end

local function has(rec, s)
  for _, v in ipairs(rec) do if v == s then return true end end
  return false
end

T.test("timeout returns every result of work that finishes in time", function()
  local a, b, c = async.timeout(1000, function(x, y)
    async.sleep(5)
    return x, y, "z"
  end, "x", "y")
  T.eq(a, "x")
  T.eq(b, "y")
  T.eq(c, "z")
end)

T.test("timeout of work that never suspends returns its results", function()
  local v, err = async.timeout(50, function() return 42 end)
  T.eq(v, 42)
  T.eq(err, nil)
  T.eq(async.timeout(0, function() return "zero ms" end), "zero ms", "timeout(0) of sync work")
end)

T.test("timeout passes the work's own failure through", function()
  local v, err = async.timeout(1000, function()
    async.sleep(1)
    return nil, async.error("own", "mine")
  end)
  T.eq(v, nil)
  T.err(err, "own")
  local v2, err2 = async.timeout(1000, function() error("raised", 0) end)
  T.eq(v2, nil)
  T.err(err2, "error")
  T.eq(err2.message, "raised")
end)

T.test("a 50 ms timeout returns nil, timeout after about 50 ms", function()
  local t0 = async.now()
  local v, err = async.timeout(50, function()
    async.sleep(5000)
    return "late"
  end)
  T.between(async.now() - t0, 40, 1000, "elapsed")
  T.eq(v, nil)
  T.err(err, "timeout")
  T.eq(getmetatable(err), async.Error)
  T.eq(tostring(err), "timeout: " .. err.message)
end)

T.test("on expiry the work is cancelled and has unwound before timeout returns", function()
  local rec, log = recorder()
  local work
  local t0 = async.now()
  local v, err = async.timeout(50, function()
    work = async.current()
    local r <close> = setmetatable({}, { __close = function()
      log "cleanup start"
      async.sleep(30)
      log "cleanup done"
    end })
    async.sleep(5000)
    log "not reached"
  end)
  T.err(err, "timeout")
  T.eq(v, nil)
  T.eq(table.concat(rec, " "), "cleanup start cleanup done")
  T.eq(work:status(), "cancelled")
  T.between(async.now() - t0, 70, 1000, "includes the 30 ms cleanup")
end)

T.test("timeout on a task: results when it settles in time", function()
  local t = async.spawn(function() async.sleep(5); return "t-ok", 2 end)
  local a, b = async.timeout(1000, t)
  T.eq(a, "t-ok")
  T.eq(b, 2)
end)

T.test("timeout on a task: cancels it on expiry and waits for its unwinding", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    local r <close> = setmetatable({}, { __close = function()
      async.sleep(20)
      log "task unwound"
    end })
    async.sleep(5000)
  end)
  local v, err = async.timeout(30, t)
  T.eq(v, nil)
  T.err(err, "timeout")
  T.eq(t:status(), "cancelled")
  T.eq(rec[1], "task unwound")
  local _, terr = t:await()
  T.err(terr, "cancelled")
end)

T.test("timeout on an already settled task", function()
  local t = async.spawn(function() return "already" end)
  T.eq(async.timeout(10, t), "already")
  local f = async.spawn(function() return nil, async.error("x", "y") end)
  local v, err = async.timeout(10, f)
  T.eq(v, nil)
  T.err(err, "x")
end)

T.test("timeout(math.huge, fn) sets no limit", function()
  local v, err = async.timeout(math.huge, function()
    async.sleep(10)
    return "in time"
  end)
  T.eq(err, nil, "no timeout error")
  T.eq(v, "in time")
end)

T.test("timeout rejects bad arguments", function()
  T.eq(pcall(async.timeout, -1, function() end), false, "negative ms")
  T.eq(pcall(async.timeout, "x", function() end), false, "ms not a number")
  T.eq(pcall(async.timeout, 10, 42), false, "not a function or task")
end)

T.test("a cancelled timeout cancels its work too", function()
  local rec, log = recorder()
  local outer = async.spawn(function()
    return async.timeout(5000, function()
      local r <close> = setmetatable({}, { __close = function() log "work closed" end })
      async.sleep(5000)
    end)
  end)
  async.sleep(5)
  local t0 = async.now()
  outer:cancel()
  local _, err = outer:await()
  T.err(err, "cancelled")
  T.between(async.now() - t0, 0, 500)
  T.eq(rec[1], "work closed")
end)

-- ---- nesting and deadline() -----------------------------------------------

T.test("deadline() is math.huge outside any timeout", function()
  T.eq(async.deadline(), math.huge)
  local t = async.spawn(function() return async.deadline() end)
  T.eq(t:await(), math.huge, "a plain child has no deadline")
end)

T.test("a task started by timeout has a deadline", function()
  local left = async.timeout(1000, function() return async.deadline() end)
  T.between(left, 900, 1000, "ms left")
  local later = async.timeout(1000, function()
    async.sleep(50)
    return async.deadline()
  end)
  T.between(later, 0, 955, "ms left after sleeping 50")
  T.eq(async.deadline(), math.huge, "the caller's deadline is unchanged")
end)

T.test("children of a timed task inherit its deadline", function()
  local left = async.timeout(300, function()
    local child = async.spawn(function() return async.deadline() end)
    return child:await()
  end)
  T.between(left, 200, 300)
end)

T.test("deadlines nest: an inner longer timeout gets the outer's deadline", function()
  local left = async.timeout(100, function()
    return async.timeout(5000, function() return async.deadline() end)
  end)
  T.between(left, 0, 100, "inner deadline bounded by the outer")
end)

T.test("an inner shorter timeout expires on its own", function()
  local t0 = async.now()
  local v = async.timeout(2000, function()
    local iv, ierr = async.timeout(20, function() async.sleep(5000) end)
    return (iv == nil and ierr and ierr.code or "?") .. " inside"
  end)
  T.eq(v, "timeout inside")
  T.between(async.now() - t0, 15, 1000)
end)

T.test("an inner timeout never outlives the outer one", function()
  local rec, log = recorder()
  local t0 = async.now()
  local v, err = async.timeout(50, function()
    local r <close> = setmetatable({}, { __close = function() log "outer work closed" end })
    local iv = async.timeout(5000, function()
      local r2 <close> = setmetatable({}, { __close = function()
        async.sleep(10)
        log "inner work closed"
      end })
      async.sleep(5000)
      log "inner finished (not expected)"
    end)
    log "outer continued (not expected)"
    return iv
  end)
  T.between(async.now() - t0, 40, 1000, "the outer limit applies")
  T.eq(v, nil)
  T.err(err, "timeout")
  T.eq(table.concat(rec, " "), "inner work closed outer work closed")
end)

T.test("timeout in a <close> handler: the work has unwound even when the grace runs out", function()
  -- A cancelled task's <close> handler runs a timeout() longer than the
  -- cancellation grace. When the grace ends, timeout() cancels its work;
  -- the work's own cleanup must finish before timeout() returns and the
  -- task settles ("Nothing outlives its combinator").
  local work
  local outer = async.spawn(function()
    local h <close> = setmetatable({}, { __close = function()
      async.timeout(3000, function()
        work = async.current()
        local r <close> = setmetatable({}, { __close = function() async.sleep(100) end })
        async.sleep(5000)
      end)
    end })
    async.sleep(10000)
  end)
  outer:cancel()
  local _, err = outer:await()
  T.err(err, "cancelled")
  T.ok(work ~= nil, "the work started")
  local st = work:status()
  T.ok(st == "cancelled" or st == "failed" or st == "done",
    "the work settled before the task that ran timeout(), status " .. st)
end)

return T.run()
