-- W1 spawn: N trivial tasks (each sleep(0) then return i), spawned in
-- batches of B and awaited with async.all. Peer: node/spawn.mjs,
-- tarantool/spawn.lua, lua/coroutine_floor.lua.
-- usage: awaitd run tests/bench/w1_spawn.lua ['{"n":1000000,"batch":1000}']
local args = ... or {}
local N = math.tointeger(args.n) or 1000000
local B = math.tointeger(args.batch) or 1000

local vm = require("benchlib").vm

local spawn, sleep, all, now = async.spawn, async.sleep, async.all, async.now
local function task(i) sleep(0); return i end

local t0, sum = now(), 0
local tasks = {}
for i = 1, N, B do
  local m = math.min(B, N - i + 1)
  for j = 1, m do tasks[j] = spawn(task, i + j - 1) end
  for j = m + 1, #tasks do tasks[j] = nil end
  local res, err = all(tasks)
  if not res then error("all failed: " .. tostring(err)) end
  for j = 1, m do sum = sum + res[j] end
end
local ms = async.now() - t0
assert(sum == N * (N + 1) // 2, "wrong sum " .. sum)
local hwm = vm("VmHWM")
print(string.format('{"bench":"spawn","impl":"awaitd","n":%d,"batch":%d,"ms":%.1f,"per_s":%d,"rss_mb":%s}',
  N, B, ms, math.floor(N / ms * 1000), hwm and string.format("%.1f", hwm / 1024) or "null"))
