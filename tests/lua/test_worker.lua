-- awaitd-args: --workers 1 --worker-timeout-ms 300
-- test_worker.lua: async.worker (SPEC 2): CPU-bound calls in a pool of other
-- Lua states. One worker, so that a call the pool failed to stop would
-- hold up the next one.
local T = require "testlib"

T.test("results and arguments are copied across, several of each", function()
  local a, b = async.worker("worker_fns", "add", 2, 40)
  T.eq(a, 42)
  T.eq(b, "sum")
  local t, s, n, yes, big = async.worker("worker_fns", "echo",
    { list = { 1, 2, { x = "y" } }, [""] = 1.5 }, "text", nil, true, math.maxinteger)
  T.same(t, { list = { 1, 2, { x = "y" } }, [""] = 1.5 })
  T.eq(s, "text")
  T.eq(n, nil, "a nil argument comes back nil")
  T.eq(yes, true)
  T.eq(big, math.maxinteger, "64-bit integers survive")
  T.eq(select("#", async.worker("worker_fns", "echo")), 0, "no results")
end)

T.test("a copy, not a share: changing the result does not reach the worker", function()
  local arg = { n = 1 }
  local r = async.worker("worker_fns", "echo", arg)
  r.n = 2
  T.eq(arg.n, 1)
  T.ok(r ~= arg)
end)

T.test("what is not JSON-able is refused with invalid", function()
  local v, err = async.worker("worker_fns", "echo", function() end)
  T.eq(v, nil)
  T.err(err, "invalid")
  T.contains(err.message, "argument 1")
  v, err = async.worker("worker_fns", "echo", 1, coroutine.create(function() end))
  T.err(err, "invalid")
  T.contains(err.message, "argument 2")
  v, err = async.worker("worker_fns", "returns_function")
  T.err(err, "invalid")
  T.contains(err.message, "result 1")
  v, err = async.worker(42, "add")
  T.err(err, "invalid")
  v, err = async.worker("worker_fns", "")
  T.err(err, "invalid")
end)

T.test("a worker that raises gives nil, err with its traceback", function()
  local v, err = async.worker("worker_fns", "raise")
  T.eq(v, nil)
  T.err(err, "error")
  T.contains(err.message, "attempt to index a nil value")
  T.contains(err.traceback, "worker_fns.lua")
  v, err = async.worker("worker_fns", "fail")
  T.err(err, "error")
  T.eq(err.message, "worker says no")
end)

T.test("a module or function that is not there, or not a function", function()
  local v, err = async.worker("no_such_module_here", "f")
  T.eq(v, nil)
  T.contains(err.message, "no_such_module_here")
  v, err = async.worker("worker_fns", "nope")
  T.err(err, "invalid")
  T.contains(err.message, "no function 'nope'")
  v, err = async.worker("worker_fns", "not_a_function")
  T.err(err, "invalid")
end)

T.test("an endless loop is stopped at worker_timeout_ms, pcall or coroutine or not", function()
  for _, fn in ipairs({ "forever", "stubborn", "cospin", "coresume" }) do
    local t0 = async.now()
    local v, err = async.worker("worker_fns", fn)
    local took = async.now() - t0
    T.eq(v, nil)
    T.err(err, "timeout")
    T.contains(err.message, "worker_timeout_ms = 300")
    T.ok(took >= 290 and took < 5000, fn .. " stopped after " .. took .. " ms")
  end
  -- the pool kept its size: the next calls run at once
  T.eq(async.worker("worker_fns", "add", 1, 1), 2)
  T.eq(async.worker("worker_fns", "add", 2, 2), 4)
end)

T.test("a cancelled call is stopped and its worker freed", function()
  local t0 = async.now()
  local v, err = async.timeout(50, async.worker, "worker_fns", "forever")
  T.err(err, "timeout")
  T.ok(async.now() - t0 < 250, "the caller went on at its own timeout")
  -- one worker: were the abandoned call still running, this would wait for its 300 ms stop
  t0 = async.now()
  T.eq(async.worker("worker_fns", "add", 3, 4), 7)
  T.ok(async.now() - t0 < 200, "the worker was stopped, not left to run out: "
    .. (async.now() - t0) .. " ms")
  -- and a call cancelled while it waits for a worker never runs
  local first = async.spawn(async.worker, "worker_fns", "hash", 2000)
  local queued = async.spawn(async.worker, "worker_fns", "forever")
  queued:cancel()
  T.ok(first:await(), "the call ahead finishes")
  T.eq(async.worker("worker_fns", "add", 1, 2), 3)
end)

T.test("calls wait their turn: more calls than workers all finish, in any order", function()
  local fns = {}
  for i = 1, 6 do fns[i] = function() return async.worker("worker_fns", "add", i, i) end end
  local r = async.all(fns)
  for i = 1, 6 do T.eq(r[i], 2 * i) end
end)

T.test("the loop keeps running while a worker computes", function()
  local ticks = 0
  local ticker = async.spawn(function()
    while true do async.sleep(5); ticks = ticks + 1 end
  end)
  local t0 = async.now()
  local n = 0
  while async.now() - t0 < 150 do
    T.ok(async.worker("worker_fns", "hash", 2000))
    n = n + 1
  end
  ticker:cancel()
  T.ok(ticks >= 5, "the loop ticked " .. ticks .. " times during " .. n .. " calls")
end)

T.test("coroutines in a worker work as Lua's", function()
  local a, b, e = async.worker("worker_fns", "coworks")
  T.eq(a, 2)
  T.eq(b, 10)
  T.eq(e, "x")
end)

T.test("a worker state has json and none of the loop's modules", function()
  T.same(async.worker("worker_fns", "env"), { json = "[1]", async = false, jobs = false,
                                             db = false })
end)

return T.run()
