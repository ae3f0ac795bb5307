-- Bytes per suspended task: N tasks each suspended in async.sleep(10000).
-- lua_bytes_per_task: growth of collectgarbage("count") (after a full
-- collection before each reading) / N; it includes the task userdata, its
-- coroutine and stack, the closure-free call frame, and the 16-byte slot of
-- the list that holds it. rss_bytes_per_task: VmRSS growth / N (adds the
-- C-side timer event and allocator overhead).
-- A stop-the-world collectgarbage("collect") over 100,000 coroutines takes
-- longer than the 100 ms default max slice, so "full GC" here is two
-- complete incremental cycles run by collectgarbage("step") with sleep(0)
-- between steps. Spawning yields likewise every YIELD_MS of work.
-- Then it cancels them all and waits until they have unwound (cancel_ms),
-- so it exits without leaving work behind.
-- usage: awaitd run tests/bench/task_bytes.lua ['{"n":100000}']
local args = ... or {}
local N = math.tointeger(args.n) or 100000
local YIELD_MS = args.yield_ms or 20

local spawn, sleep, now = async.spawn, async.sleep, async.now

local vm = require("benchlib").vm

-- Run GC steps, yielding between them, until `cycles` cycles have completed.
local function full_gc(cycles)
  local done, last = 0, now()
  while done < cycles do
    if collectgarbage("step", 256) then done = done + 1 end
    if now() - last >= YIELD_MS then sleep(0); last = now() end
  end
end

local function nap() sleep(10000) end

local tasks = {}
for i = 1, N do tasks[i] = false end -- the list itself is not counted
full_gc(2)
local kb0, rss0 = collectgarbage("count"), vm("VmRSS")

local t0, last = now(), now()
for i = 1, N do
  tasks[i] = spawn(nap)
  if i % 256 == 0 and now() - last >= YIELD_MS then sleep(0); last = now() end
end
local spawn_ms = now() - t0
full_gc(2)
local kb1, rss1 = collectgarbage("count"), vm("VmRSS")
for i = 1, N do assert(tasks[i]:status() == "suspended") end

local tc = now()
for i = 1, N do tasks[i]:cancel() end
last = now()
for i = 1, N do
  tasks[i]:await() -- returns nil, cancelled
  if now() - last >= YIELD_MS then sleep(0); last = now() end
end
local cancel_ms = now() - tc

print(string.format('{"bench":"task_bytes","impl":"awaitd","n":%d,"lua_bytes_per_task":%.0f,"rss_bytes_per_task":%.0f,"spawn_ms":%.1f,"cancel_ms":%.1f}',
  N, (kb1 - kb0) * 1024 / N, rss0 and rss1 and (rss1 - rss0) * 1024 / N or -1, spawn_ms, cancel_ms))
