-- awaitd-args: --max-memory 64
-- test_oom.lua: the memory cap (SPEC 2 "Loop protection": out_of_memory).
-- Run with a 64 MB cap on the Lua state (first line).
local T = require "testlib"

-- Allocate 1 MB strings until the cap refuses one (about 64 of them).
local function hog()
  local keep = {}
  for i = 1, 1000 do keep[i] = string.rep("x", 1 << 20) .. i end
  return #keep
end

T.test("a task that allocates past the cap fails with out_of_memory", function()
  local t = async.spawn(function()
    async.sleep(0)
    return hog()
  end)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "out_of_memory")
  T.eq(getmetatable(err), async.Error)
  T.eq(t:status(), "failed")
end)

T.test("out_of_memory before the first suspension too", function()
  local t = async.spawn(hog)
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "out_of_memory")
end)

T.test("other tasks go on while one runs out of memory", function()
  local sleeper = async.spawn(function()
    async.sleep(20)
    return "slept"
  end)
  local counter = async.spawn(function()
    local n = 0
    for _ = 1, 5 do async.sleep(1); n = n + 1 end
    return n
  end)
  local _, err = async.spawn(function() async.sleep(1); return hog() end):await()
  T.err(err, "out_of_memory")
  T.eq(sleeper:await(), "slept")
  T.eq(counter:await(), 5)
end)

T.test("memory is reclaimed after a task ran out of it", function()
  for round = 1, 3 do
    local _, err = async.spawn(hog):await()
    T.err(err, "out_of_memory", "round " .. round)
  end
  collectgarbage()
  collectgarbage()
  T.between(collectgarbage("count"), 0, 16 * 1024, "KB in use after collecting")
  -- a large but legal allocation works again
  local n = async.spawn(function()
    local s = string.rep("y", 24 << 20)
    return #s
  end):await()
  T.eq(n, 24 << 20)
end)

T.test("out_of_memory inside pcall still fails the allocating task", function()
  -- SPEC 2: "a Lua state over its memory limit fails the allocating task
  -- with out_of_memory" (like blocked_loop, a pcall cannot undo it)
  local t = async.spawn(function()
    pcall(hog)
    return "survived"
  end)
  local v, err = t:await()
  T.eq(v, nil, "the task failed")
  T.err(err, "out_of_memory")
end)

T.test("try cannot keep an out-of-memory task running either", function()
  -- like pcall: the allocating task fails, whatever it catches
  local got = {}
  local t = async.spawn(function()
    got.v, got.err = async.try(hog)
    got.after = true
    return "checked"
  end)
  local v, err = t:await()
  T.eq(v, nil, "the task failed")
  T.err(err, "out_of_memory")
  T.eq(getmetatable(err), async.Error)
  T.eq(got.after, nil, "nothing ran after the refused allocation")
end)

T.test("the daemon survives: a small task runs fine afterwards", function()
  collectgarbage()
  local t = async.spawn(function()
    local parts = {}
    for i = 1, 1000 do parts[i] = tostring(i) end
    async.sleep(1)
    return #table.concat(parts, ",")
  end)
  T.eq(t:await(), 3892)
end)

return T.run()
