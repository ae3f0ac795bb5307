-- awaitd-args: --max-slice-ms 100
-- (the default, named so that the valgrind pass of tests/run.sh, which is
-- too slow for a 100 ms slice, leaves this file out)
-- test_scale.lua: combinators over 100,000s of items under the default
-- max_slice_ms (SPEC 2, "Loop protection": work a combinator does on the
-- caller's behalf yields cooperatively and never trips the caller's slice),
-- and a task that really loops is still stopped.
local T = require "testlib"

local N = 200000

-- The test's own list building yields now and then: it is the caller's
-- work, and the slice is the point of this file.
local function fns(n, make)
  local list = {}
  for i = 1, n do
    list[i] = make(i)
    if i % 5000 == 0 then async.sleep(0) end
  end
  return list
end

T.test("all over 200,000 functions completes under the defaults", function()
  local r, err = async.all(fns(N, function(i) return function() return i end end))
  T.ok(r, err)
  T.eq(#r, N)
  T.eq(r[1], 1)
  T.eq(r[N], N)
end)

T.test("all over 100,000 sleeps: started together, all awaited", function()
  local t0 = async.now()
  local r, err = async.all(fns(100000, function(i)
    return function() async.sleep(100) return i end
  end))
  T.ok(r, err)
  T.eq(#r, 100000)
  T.eq(r[100000], 100000)
  T.ok(async.now() - t0 >= 100, "the sleeps ran")
end)

T.test("all_settled, race, any and map over 200,000 items", function()
  local list = fns(N, function(i) return function() return i end end)
  local s = async.all_settled(list)
  T.eq(#s, N)
  T.eq(s[N].value, N)
  local v, err, i = async.race(list)
  T.eq(v, 1, err)
  T.eq(i, 1)
  local a, ai = async.any(list)
  T.eq(a, 1)
  T.eq(ai, 1)
  local m, merr = async.map(list, function(f) return f() end)
  T.ok(m, merr)
  T.eq(#m, N)
  T.eq(m[N], N)
end)

T.test("a queue takes 200,000 pushes in one loop", function()
  local q = async.queue { concurrency = 100 }
  for i = 1, N do q:push(function() return i end) end
  q:wait()
  T.eq(q:stats().done, N)
end)

T.test("a failure while items are still being spawned cancels what started", function()
  local started, cleaned = 0, 0
  local list = fns(N, function(i)
    return function()
      started = started + 1
      local guard <close> = setmetatable({}, { __close = function() cleaned = cleaned + 1 end })
      if i == 10 then error("item 10 fails") end
      async.sleep(1000)
    end
  end)
  local r, err = async.all(list)
  T.eq(r, nil)
  T.err(err, "error")
  T.eq(err.index, 10)
  T.eq(cleaned, started, "every started item unwound before all returned")
end)

T.test("a task that loops without yielding is still stopped", function()
  local t = async.spawn(function() while true do end end)
  local r, err = t:await()
  T.eq(r, nil)
  T.err(err, "blocked_loop")
end)

T.run()
