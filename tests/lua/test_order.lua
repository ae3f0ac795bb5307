-- test_order.lua: spawn, async.fn, sleep, now, and the order in which tasks
-- run (SPEC 2: "Order", "Errors before and after the first suspension").
local T = require "testlib"
local recorder = T.recorder

T.test("async is a global and a module", function()
  T.eq(require "async", async)
  T.eq(type(async.spawn), "function")
  T.eq(type(async.Task), "table")
  T.eq(type(async.Error), "table")
end)

T.test("spawn runs the child until it suspends: A C B", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    log "A"
    async.sleep(0)
    log "B"
  end)
  log "C"
  t:await()
  T.eq(table.concat(rec, " "), "A C B")
end)

T.test("a child that never suspends has finished when spawn returns", function()
  local rec, log = recorder()
  local t = async.spawn(function(x, y)
    log "child"
    return x + y
  end, 2, 3)
  T.eq(table.concat(rec, " "), "child", "ran before spawn returned")
  T.eq(t:status(), "done")
  T.eq(t:await(), 5)
end)

T.test("spawn passes its arguments, nils included", function()
  local t = async.spawn(function(...)
    return select("#", ...), ...
  end, 1, nil, "x", nil)
  local n, a, b, c, d = t:await()
  T.eq(n, 4, "argument count")
  T.eq(a, 1)
  T.eq(b, nil)
  T.eq(c, "x")
  T.eq(d, nil)
end)

T.test("resumptions happen in FIFO order, after the caller's own code", function()
  local rec, log = recorder()
  local ts = {}
  for i = 1, 3 do
    ts[i] = async.spawn(function()
      log("s" .. i)
      async.sleep(0)
      log("r" .. i)
    end)
  end
  log "caller"
  for i = 1, 3 do ts[i]:await() end
  T.eq(table.concat(rec, " "), "s1 s2 s3 caller r1 r2 r3")
end)

T.test("sleep(0) yields exactly once: two yielding tasks interleave", function()
  local rec, log = recorder()
  local a = async.spawn(function()
    for i = 1, 3 do log("a" .. i); async.sleep(0) end
  end)
  local b = async.spawn(function()
    for i = 1, 3 do log("b" .. i); async.sleep(0) end
  end)
  a:await()
  b:await()
  T.eq(table.concat(rec, " "), "a1 b1 a2 b2 a3 b3")
end)

T.test("an awaiter is resumed on a later turn, not inside the settling task", function()
  local rec, log = recorder()
  local t = async.spawn(function()
    async.sleep(0)
    log "t-before-return"
    return "v"
  end)
  local w = async.spawn(function()
    local v = t:await()
    log("w-got-" .. v)
  end)
  local x = async.spawn(function()
    async.sleep(0)
    log "x"
  end)
  w:await()
  x:await()
  -- t and x were queued in the same turn (FIFO), w only when t settled
  T.eq(table.concat(rec, " "), "t-before-return x w-got-v")
end)

T.test("async.fn returns a function that spawns and returns the task", function()
  local rec, log = recorder()
  local afn = async.fn(function(a, b)
    log "body"
    async.sleep(0)
    return a * b
  end)
  T.eq(type(afn), "function")
  local t = afn(6, 7)
  log "after"
  T.eq(getmetatable(t), async.Task, "returns a task")
  T.eq(t:status(), "suspended")
  T.eq(t:await(), 42)
  T.eq(table.concat(rec, " "), "body after")
  local ok = pcall(async.fn, 42)
  T.eq(ok, false, "async.fn(non-function) raises")
end)

T.test("sleep(ms) suspends about ms milliseconds", function()
  local t0 = async.now()
  async.sleep(50)
  T.between(async.now() - t0, 45, 1000, "sleep(50) elapsed")
end)

T.test("sleeps end in order of their deadlines", function()
  local rec, log = recorder()
  local ts = {}
  for _, ms in ipairs { 60, 20, 40 } do
    ts[#ts + 1] = async.spawn(function()
      async.sleep(ms)
      log(tostring(ms))
    end)
  end
  for _, t in ipairs(ts) do t:await() end
  T.eq(table.concat(rec, " "), "20 40 60")
end)

T.test("sleep(math.huge) sleeps until cancelled, it does not return at once", function()
  -- math.huge is "no deadline" elsewhere in the API (async.deadline())
  local t = async.spawn(function()
    async.sleep(math.huge)
    return "woke"
  end)
  local t2 = async.spawn(function()
    async.sleep(1e300)
    return "woke"
  end)
  async.sleep(50)
  T.ok(t:status() ~= "done", "sleep(math.huge) returned after < 50 ms")
  T.ok(t2:status() ~= "done", "sleep(1e300) returned after < 50 ms")
  t:cancel()
  t2:cancel()
  t:await()
  t2:await()
end)

T.test("now() is a monotonic float in ms", function()
  local a = async.now()
  T.eq(type(a), "number")
  async.sleep(5)
  local b = async.now()
  T.ok(b > a, "now() advances across a sleep")
  T.between(b - a, 4, 1000, "ms units")
end)

T.test("sleep rejects bad arguments", function()
  T.eq(pcall(async.sleep, -1), false, "negative ms raises")
  T.eq(pcall(async.sleep, "x"), false, "string ms raises")
  T.eq(pcall(async.spawn, 42), false, "spawn(non-function) raises")
end)

T.test("an error before the first suspension fails the task", function()
  local t = async.spawn(function() error("early boom") end)
  T.eq(t:status(), "failed")
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "error")
  T.ok(err.message:find("early boom", 1, true), "message: " .. tostring(err.message))
end)

T.test("an error after the first suspension fails the task the same way", function()
  local t = async.spawn(function()
    async.sleep(0)
    error("late boom")
  end)
  T.eq(t:status(), "suspended")
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "error")
  T.ok(err.message:find("late boom", 1, true), "message: " .. tostring(err.message))
  T.eq(t:status(), "failed")
  T.eq(getmetatable(err), async.Error)
end)

T.test("nil, err before and after the first suspension look the same", function()
  local early = async.spawn(function() return nil, async.error("myerr", "e") end)
  local late = async.spawn(function()
    async.sleep(0)
    return nil, async.error("myerr", "l")
  end)
  local _, e1 = early:await()
  local _, e2 = late:await()
  T.err(e1, "myerr")
  T.err(e2, "myerr")
  T.eq(early:status(), "failed")
  T.eq(late:status(), "failed")
end)

return T.run()
