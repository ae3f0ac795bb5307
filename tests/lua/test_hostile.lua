-- test_hostile.lua: scripts that try to break the runtime (found in review);
-- each must end with a clear error for the script and a living loop. Run
-- under ASan in tests/run.sh: a use-after-free here fails the suite.
local T = require "testlib"

T.test("suspending inside a C callback fails the call, not the runtime", function()
  local t = async.spawn(function()
    local ok, err = pcall(string.gsub, "ab", ".", function() async.sleep(30) end)
    local ok2, err2 = pcall(table.sort, { 3, 2, 1 }, function(a, b) async.sleep(0) return a < b end)
    return tostring(ok) .. " " .. tostring(ok2), tostring(err)
  end)
  local r, msg = t:await()
  T.eq(r, "false false")
  T.ok(msg:find("cannot suspend here", 1, true), msg)
  collectgarbage(); collectgarbage()
  async.sleep(60) -- a timer left behind would fire into freed memory here
end)

T.test("timeout(0, task) leaves the task's other awaiters intact", function()
  local t = async.spawn(function() async.sleep(50) return 1 end)
  local x = async.spawn(function() async.sleep(0); return t:await() end)
  local v, err = async.timeout(0, t)
  T.eq(v, nil)
  T.err(err, "timeout")
  local _, xerr = x:await() -- woken (t was cancelled), not deadlocked
  T.err(xerr, "cancelled")
end)

T.test("error values with odd fields and raising __tostring do not bring it down", function()
  local a = async.spawn(function()
    local e = async.error("x", "y"); e.code = {}
    async.sleep(0)
    error(e)
  end)
  local b = async.spawn(function()
    return nil, setmetatable({}, { __tostring = function() error("boom") end })
  end)
  local _, ea = a:await()
  local _, eb = b:await()
  T.ok(ea ~= nil and eb ~= nil)
  T.eq(tostring(ea), "error: y") -- described from raw fields, no metamethod run
  T.eq(eb.code, "error")
  -- unobserved, they are reported by the runtime without calling user code
  async.spawn(function() return nil, setmetatable({}, { __tostring = function() while true do end end }) end)
  async.sleep(1)
end)

T.test("spawn with very many arguments", function()
  local args = {}
  for i = 1, 20000 do args[i] = i end
  local t = async.spawn(function(...) return select("#", ...) end, table.unpack(args))
  T.eq(t:await(), 20000)
end)

T.test("a forged task handle is refused", function()
  -- async.Task is a read-only view: a table given it as metatable gets no
  -- task behaviour, and the task functions refuse it
  local forged = setmetatable({}, async.Task)
  T.eq(forged.id, nil)
  local ok, err = pcall(async.await, forged)
  T.eq(ok, false)
  T.ok(tostring(err):find("task expected", 1, true), tostring(err))
  ok, err = pcall(function() async.Task.__index = function() return 1 end end)
  T.eq(ok, false)
  T.ok(tostring(err):find("read-only", 1, true), tostring(err))
  T.eq(async.spawn(function() end).id ~= nil, true)
end)

-- (the module tables themselves are read-only in the daemon's sandboxes:
-- tests/unit/test_scripts.c and tests/e2e/test_isolation.py)
T.test("the async module hides its internals; Error is read-only", function()
  for _, k in ipairs({ "_park", "_start", "_cancel_all", "_port", "_watch" }) do
    T.eq(async[k], nil, k)
  end
  local t = async.spawn(function() end)
  T.eq(t._result, nil)
  T.eq(t._wait, nil)
  local ok = pcall(function() getmetatable(async.error("x", "y")).__tostring = print end)
  T.eq(ok, false)
  T.eq(tostring(async.error("x", "y")), "x: y")
  T.eq(getmetatable(async.error("x", "y")), async.Error)
end)

T.test("a <close> handler raising during cancellation does not resurrect the task", function()
  local rec, log = T.recorder()
  local t = async.spawn(function()
    pcall(function()
      local c <close> = setmetatable({}, { __close = function() error("rollback failed") end })
      async.sleep(1000)
    end)
    log("still running after cancel")
  end)
  async.sleep(0)
  t:cancel()
  local _, err = t:await()
  T.eq(#rec, 0)
  T.eq(t:status(), "cancelled")
  T.ok(err ~= nil)
end)

T.test("a task's own coroutine cannot be resumed or closed from Lua", function()
  local co
  local a = async.spawn(function()
    co = coroutine.running()
    async.sleep(20)
    return "a done"
  end)
  local ok, err = pcall(coroutine.resume, co)
  T.eq(ok, false)
  T.ok(tostring(err):find("task's coroutine", 1, true), tostring(err))
  T.eq(pcall(coroutine.close, co), false)
  T.eq(a:await(), "a done")
end)

T.test("a bad item in a combinator's list leaves the caller's tasks alone", function()
  local mine = async.spawn(function() async.sleep(10) return "mine" end)
  local ok = pcall(async.all, { mine, 42 })
  T.eq(ok, false)
  T.eq(mine:await(), "mine")
end)

T.test("cancelling a 50,000-deep await chain", function()
  local N, depth = 50000, 0
  local function level(n)
    async.sleep(0)
    depth = n
    if n < N then return async.spawn(level, n + 1):await() end
    async.sleep(100000)
  end
  local top = async.spawn(level, 1)
  while depth < N do async.sleep(1) end
  top:cancel()
  local _, err = top:await()
  T.err(err, "cancelled")
end)

return T.run()
