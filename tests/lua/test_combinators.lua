-- test_combinators.lua: async.all, all_settled, race, any and map (SPEC 2),
-- and "Nothing outlives its combinator": every item a combinator cancelled
-- has finished unwinding (its <close> handlers done) when it returns.
local T = require "testlib"
local recorder, has = T.recorder, T.has

-- A function for a combinator: sleeps ms, then returns v.
local function after(ms, v)
  return function() async.sleep(ms); return v end
end

-- Sleeps ms, then fails with an error value of `code`.
local function fail_after(ms, code)
  return function()
    async.sleep(ms)
    return nil, async.error(code, code .. " happened")
  end
end

-- An item that sleeps a long time and, when cancelled, runs an async
-- rollback of `ms` in a <close> handler, recording its start and end.
local function slow_with_rollback(log, name, ms)
  return function()
    local guard <close> = setmetatable({}, { __close = function(_, err)
      log(name .. " rollback start")
      async.sleep(ms)
      log(name .. " rollback done")
    end })
    async.sleep(10000)
    log(name .. " finished (not expected)")
  end
end

-- ---- all -----------------------------------------------------------------

T.test("all returns the first value of each item, in list order", function()
  local res, err = async.all { after(30, "a"), after(10, "b"), after(20, "c") }
  T.eq(err, nil)
  T.same(res, { "a", "b", "c" })
end)

T.test("all waits for all: it takes as long as the slowest item", function()
  local t0 = async.now()
  local res = async.all { after(10, 1), after(60, 2) }
  T.same(res, { 1, 2 })
  T.between(async.now() - t0, 55, 1000, "elapsed")
end)

T.test("all keeps only the first value of an item", function()
  local res = async.all { function() return 1, 2, 3 end, function() return "x", "y" end }
  T.same(res, { 1, "x" })
end)

T.test("all accepts tasks and functions mixed", function()
  local t = async.spawn(after(10, "task"))
  local res = async.all { t, after(5, "fn"), async.spawn(function() return "sync" end) }
  T.same(res, { "task", "fn", "sync" })
end)

T.test("all of an empty list is an empty table", function()
  local res, err = async.all {}
  T.eq(err, nil)
  T.same(res, {})
end)

T.test("all fails fast with the first failure and err.index", function()
  local t0 = async.now()
  local res, err = async.all { after(2000, "slow"), fail_after(10, "boom"), after(3000, "slower") }
  T.eq(res, nil)
  T.err(err, "boom")
  T.eq(err.index, 2)
  T.eq(err.message, "boom happened")
  T.eq(getmetatable(err), async.Error)
  T.between(async.now() - t0, 5, 1000, "did not wait for the slow items")
end)

T.test("all fails fast on a raised error too", function()
  local res, err = async.all { after(1000, 1), after(1000, 2), function()
    async.sleep(5)
    error("raised", 0)
  end }
  T.eq(res, nil)
  T.err(err, "error")
  T.eq(err.message, "raised")
  T.eq(err.index, 3)
end)

T.test("all cancels the other items and waits for their unwinding", function()
  local rec, log = recorder()
  local items = {
    slow_with_rollback(log, "a", 30),
    fail_after(10, "bad"),
    slow_with_rollback(log, "c", 50),
  }
  local t1 = async.spawn(items[1])
  local res, err = async.all { t1, items[2], items[3] }
  T.eq(res, nil)
  T.eq(err.index, 2)
  -- when all returned, every rollback had finished
  T.ok(has(rec, "a rollback done"), "a unwound before all returned: " .. table.concat(rec, ", "))
  T.ok(has(rec, "c rollback done"), "c unwound before all returned: " .. table.concat(rec, ", "))
  T.ok(not has(rec, "a finished (not expected)"))
  T.eq(t1:status(), "cancelled", "a task item was cancelled")
end)

T.test("all: a caller cancelled while waiting takes its items down first", function()
  local rec, log = recorder()
  local outer = async.spawn(function()
    return async.all { slow_with_rollback(log, "x", 20), slow_with_rollback(log, "y", 20) }
  end)
  async.sleep(5)
  outer:cancel()
  local _, err = outer:await()
  T.err(err, "cancelled")
  T.ok(has(rec, "x rollback done") and has(rec, "y rollback done"),
    "items unwound before the caller settled: " .. table.concat(rec, ", "))
end)

T.test("all raises on a list item that is neither task nor function", function()
  T.eq(pcall(async.all, { 1 }), false)
  T.eq(pcall(async.all, "not a list"), false)
end)

T.test("all in a <close> handler: items have unwound even when the grace runs out", function()
  -- A cancelled task's <close> handler runs all() (an async rollback). When
  -- the task's grace ends, all() cancels its item; the item's own rollback
  -- must finish before all() returns and before the task settles ("Nothing
  -- outlives its combinator", "no task outlives its parent").
  local rec, log = recorder()
  local item
  local outer = async.spawn(function()
    local h <close> = setmetatable({}, { __close = function()
      async.all { function()
        item = async.current()
        local r <close> = setmetatable({}, { __close = function()
          async.sleep(100)
          log "item rollback done"
        end })
        async.sleep(5000)
      end }
    end })
    async.sleep(10000)
  end)
  outer:cancel()
  local _, err = outer:await()
  T.err(err, "cancelled")
  T.ok(item ~= nil, "the item started")
  local st = item:status()
  T.ok(st == "cancelled" or st == "failed" or st == "done",
    "the item settled before its combinator's caller did, status " .. st)
end)

-- ---- all_settled ---------------------------------------------------------

T.test("all_settled reports every outcome and never fails", function()
  local settled = async.all_settled {
    after(10, "v1"),
    fail_after(5, "e2"),
    function() error("e3", 0) end,
    async.spawn(after(1, "v4")),
  }
  T.eq(#settled, 4)
  T.same(settled[1], { ok = true, value = "v1" })
  T.eq(settled[2].ok, false)
  T.err(settled[2].err, "e2")
  T.eq(settled[3].ok, false)
  T.err(settled[3].err, "error")
  T.eq(settled[3].err.message, "e3")
  T.same(settled[4], { ok = true, value = "v4" })
end)

T.test("all_settled waits for every item, failures included", function()
  local t0 = async.now()
  local settled = async.all_settled { fail_after(1, "quick"), after(50, "slow") }
  T.between(async.now() - t0, 45, 1000)
  T.eq(settled[2].value, "slow")
end)

T.test("all_settled of an empty list", function()
  T.same(async.all_settled {}, {})
end)

-- ---- race ----------------------------------------------------------------

T.test("race returns the first to settle as v, nil, i", function()
  local v, err, i = async.race { after(50, "slow"), after(5, "fast"), after(100, "slower") }
  T.eq(v, "fast")
  T.eq(err, nil)
  T.eq(i, 2)
end)

T.test("race: a failure that settles first wins as nil, err, i", function()
  local v, err, i = async.race { after(100, "slow"), fail_after(5, "lost") }
  T.eq(v, nil)
  T.err(err, "lost")
  T.eq(i, 2)
end)

T.test("race cancels the losers and waits for their unwinding", function()
  local rec, log = recorder()
  local loser = async.spawn(slow_with_rollback(log, "l1", 30))
  local v, _, i = async.race { loser, after(5, "winner"), slow_with_rollback(log, "l3", 40) }
  T.eq(v, "winner")
  T.eq(i, 2)
  T.ok(has(rec, "l1 rollback done"), "l1 unwound: " .. table.concat(rec, ", "))
  T.ok(has(rec, "l3 rollback done"), "l3 unwound: " .. table.concat(rec, ", "))
  T.eq(loser:status(), "cancelled")
end)

T.test("race with an already settled task returns it", function()
  local done = async.spawn(function() return "ready" end)
  local v, err, i = async.race { after(1000, "x"), done }
  T.eq(v, "ready")
  T.eq(err, nil)
  T.eq(i, 2)
end)

-- ---- any -----------------------------------------------------------------

T.test("any returns the first success as v, i", function()
  local v, i = async.any { fail_after(1, "e1"), after(30, "ok2"), after(60, "ok3") }
  T.eq(v, "ok2")
  T.eq(i, 2)
end)

T.test("any ignores failures that settle first", function()
  local t0 = async.now()
  local v, i = async.any { fail_after(1, "a"), fail_after(2, "b"), after(40, "c") }
  T.eq(v, "c")
  T.eq(i, 3)
  T.between(async.now() - t0, 35, 1000)
end)

T.test("any: when all fail, all_failed lists the errors by index", function()
  local v, err = async.any { fail_after(20, "e1"), function() error("e2", 0) end, fail_after(5, "e3") }
  T.eq(v, nil)
  T.err(err, "all_failed")
  T.eq(getmetatable(err), async.Error)
  T.eq(type(err.errors), "table")
  T.err(err.errors[1], "e1")
  T.err(err.errors[2], "error")
  T.eq(err.errors[2].message, "e2")
  T.err(err.errors[3], "e3")
end)

T.test("any cancels the others after a success and waits for their unwinding", function()
  local rec, log = recorder()
  local v, i = async.any { slow_with_rollback(log, "p", 30), after(5, "yes"), slow_with_rollback(log, "q", 30) }
  T.eq(v, "yes")
  T.eq(i, 2)
  T.ok(has(rec, "p rollback done") and has(rec, "q rollback done"),
    "unwound before any returned: " .. table.concat(rec, ", "))
end)

-- ---- map -----------------------------------------------------------------

T.test("map calls fn(item, i) and keeps the order of the list", function()
  local res, err = async.map({ 30, 10, 20 }, function(ms, i)
    async.sleep(ms)
    return ms * 10 + i
  end)
  T.eq(err, nil)
  T.same(res, { 301, 102, 203 })
end)

T.test("map runs at most n at once", function()
  local running, peak = 0, 0
  local list = {}
  for i = 1, 9 do list[i] = i end
  local res = async.map(list, function(x)
    running = running + 1
    if running > peak then peak = running end
    async.sleep(5)
    running = running - 1
    return x * x
  end, { concurrency = 3 })
  T.eq(peak, 3, "peak concurrency")
  T.eq(#res, 9)
  T.eq(res[9], 81)
end)

T.test("map with concurrency 1 runs items one after the other", function()
  local rec, log = recorder()
  async.map({ "a", "b", "c" }, function(x)
    log(x .. "+")
    async.sleep(1)
    log(x .. "-")
  end, { concurrency = 1 })
  T.eq(table.concat(rec, " "), "a+ a- b+ b- c+ c-")
end)

T.test("map of an empty list", function()
  T.same(async.map({}, function() error("never") end), {})
end)

T.test("map fails fast with err.index and starts nothing more", function()
  local started = {}
  local res, err = async.map({ 1, 2, 3, 4, 5, 6 }, function(x)
    started[#started + 1] = x
    async.sleep(5)
    if x == 2 then return nil, async.error("bad_item", "item 2") end
    async.sleep(1000)
    return x
  end, { concurrency = 2 })
  T.eq(res, nil)
  T.err(err, "bad_item")
  T.eq(err.index, 2)
  T.ok(#started <= 3, "stopped launching after the failure, started " .. #started)
end)

T.test("map cancels running items and waits for their unwinding", function()
  local rec, log = recorder()
  local res, err = async.map({ "x", "bad", "y" }, function(name)
    if name == "bad" then
      async.sleep(5)
      error("bad item", 0)
    end
    return slow_with_rollback(log, name, 20)()
  end)
  T.eq(res, nil)
  T.err(err, "error")
  T.eq(err.index, 2)
  T.ok(has(rec, "x rollback done") and has(rec, "y rollback done"),
    "unwound before map returned: " .. table.concat(rec, ", "))
end)

return T.run()
