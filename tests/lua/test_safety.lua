-- awaitd-args: --max-slice-ms 50
-- test_safety.lua: loop protection (SPEC 2 "Loop protection": blocked_loop)
-- and the misuse of plain coroutines inside tasks ("invalid"). Run with a
-- 50 ms slice (first line).
local T = require "testlib"
local recorder = T.recorder

-- Busy-wait ms milliseconds without suspending.
local function spin(ms)
  local t0 = async.now()
  while async.now() - t0 < ms do end
end

T.test("a task that never suspends fails with blocked_loop", function()
  local t0 = async.now()
  local t = async.spawn(function()
    while true do end
  end)
  local v, err = t:await()
  T.between(async.now() - t0, 40, 1000, "killed after about one slice")
  T.eq(v, nil)
  T.err(err, "blocked_loop")
  T.eq(getmetatable(err), async.Error)
  T.eq(t:status(), "failed")
  T.eq(type(err.traceback), "string")
end)

T.test("blocked_loop after a suspension too", function()
  local t = async.spawn(function()
    async.sleep(1)
    while true do end
  end)
  local _, err = t:await()
  T.err(err, "blocked_loop")
end)

T.test("pcall cannot swallow blocked_loop", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    local ok, e = pcall(function() while true do end end)
    log("after pcall " .. tostring(ok))
    return "survived"
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "blocked_loop")
  T.eq(#rec, 0, "nothing ran after the busy pcall")
end)

T.test("a busy loop inside coroutine.wrap fails the task", function()
  local t = async.spawn(function()
    local gen = coroutine.wrap(function() while true do end end)
    gen()
    return "survived"
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "blocked_loop")
end)

T.test("a busy loop inside coroutine.wrap inside pcall fails the task", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    local ok = pcall(coroutine.wrap(function() while true do end end))
    log("after " .. tostring(ok))
    for _ = 1, 10 do log "more" end
    return "survived"
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "blocked_loop")
end)

T.test("a busy loop inside coroutine.resume fails the task", function()
  local t = async.spawn(function()
    local co = coroutine.create(function() while true do end end)
    local ok = coroutine.resume(co)
    return "survived", ok
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "blocked_loop")
end)

T.test("pcall around a C function calling a busy Lua callback cannot swallow it", function()
  -- table.sort's comparator runs where the task cannot yield
  local t = async.spawn(function()
    pcall(table.sort, { 3, 2, 1 }, function() while true do end end)
    return "escaped"
  end)
  local v, err = t:await()
  T.eq(v, nil, "the task must not finish normally")
  T.err(err, "blocked_loop")
end)

T.test("pcall around string.gsub with a busy callback cannot swallow it", function()
  local t = async.spawn(function()
    local ok = pcall(string.gsub, "abc", ".", function() while true do end end)
    return "escaped", ok
  end)
  local v, err = t:await()
  T.eq(v, nil, "the task must not finish normally")
  T.err(err, "blocked_loop")
end)

T.test("a blocked task's <close> handlers run", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    local c <close> = setmetatable({}, { __close = function() log "closed" end })
    while true do end
  end)
  local _, err = t:await()
  T.err(err, "blocked_loop")
  T.eq(table.concat(rec, " "), "closed")
end)

T.test("other tasks and timers go on after a task is killed", function()
  local rec, log = recorder()
  local sleeper = async.spawn(function()
    async.sleep(20)
    log "sleeper woke"
    return "slept"
  end)
  local busy = async.spawn(function() while true do end end)
  local _, err = busy:await()
  T.err(err, "blocked_loop")
  T.eq(sleeper:await(), "slept")
  local t0 = async.now()
  async.sleep(30)
  T.between(async.now() - t0, 25, 1000, "a timer after the kill")
  T.eq(table.concat(rec, " "), "sleeper woke")
end)

T.test("a task that suspends often may run far longer than a slice", function()
  local t = async.spawn(function()
    local t0 = async.now()
    local n = 0
    while async.now() - t0 < 200 do
      spin(10)
      async.sleep(0)
      n = n + 1
    end
    return n
  end)
  local n, err = t:await()
  T.eq(err, nil)
  T.ok(n >= 5, "ran many slices")
end)

T.test("work just under the slice is not killed", function()
  local t = async.spawn(function()
    spin(20)
    async.sleep(0)
    spin(20)
    return "fine"
  end)
  T.eq(t:await(), "fine")
end)

T.test("a parent is not killed for the time a killed child spent", function()
  -- The child runs synchronously inside spawn and is killed after one
  -- slice; the parent then works 30 ms of its own (under the 50 ms slice)
  -- and must finish normally: the child's busy time is not the parent's.
  local parent = async.spawn(function()
    local child = async.spawn(function() while true do end end)
    local cstatus = child:status()
    spin(30)
    child:await() -- settled: observed without suspending
    return "parent ok", cstatus
  end)
  local v, cstatus = parent:await()
  T.eq(v, "parent ok", "the parent finished")
  T.eq(cstatus, "failed", "the child was killed")
end)

-- ---- plain coroutines inside tasks ---------------------------------------

T.test("a plain coroutine.yield at the top of a task fails it with invalid", function()
  local t = async.spawn(function()
    coroutine.yield("x")
    return "not reached"
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "invalid")
  T.eq(t:status(), "failed")
end)

T.test("coroutine.yield inside pcall in a task fails it with invalid", function()
  local t = async.spawn(function()
    async.sleep(0)
    pcall(coroutine.yield)
    return "not reached"
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "invalid")
end)

T.test("async.sleep inside coroutine.wrap in a task raises instead of hanging", function()
  local t0 = async.now()
  local t = async.spawn(function()
    local ok, e = pcall(function()
      coroutine.wrap(function() async.sleep(10) end)()
    end)
    return ok, e
  end)
  local ok, e = t:await()
  T.eq(ok, false, "the wrapped async.sleep raised")
  T.eq(type(e), "string")
  T.between(async.now() - t0, 0, 500, "did not hang")
end)

T.test("plain coroutines still work as generators inside a task", function()
  local t = async.spawn(function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do coroutine.yield(i) end
    end)
    local sum = gen() + gen() + gen()
    async.sleep(0)
    local co = coroutine.create(function(a) local b = coroutine.yield(a + 1); return b * 2 end)
    local _, x = coroutine.resume(co, 1)
    local _, y = coroutine.resume(co, 10)
    return sum, x, y
  end)
  local sum, x, y = t:await()
  T.eq(sum, 6)
  T.eq(x, 2)
  T.eq(y, 20)
end)

return T.run()
