-- W2 timers: N concurrent async.sleep(D) under one async.all; ideal wall = D.
-- Peer: node/timers.mjs (and tarantool/timers.lua 30000).
-- Node creates its N timers in one go. awaitd cannot always do that: a
-- task that runs longer than max_slice_ms (default 100) without suspending
-- is killed with blocked_loop, and creating 100,000 sleeping tasks takes
-- longer than that. So the spawning loop yields with sleep(0) whenever it
-- has run for YIELD_MS (default: 40% of the 100 ms default slice) without
-- suspending, and the output says so ("yields", "note"): the measurement
-- then includes those loop turns. {"chunk": K} yields every K tasks
-- instead; {"yield_ms": 0, "chunk": 0} never yields (needs a larger
-- --max-slice-ms).
-- Even so, async.all over 100,000 tasks does O(N) work in one slice of the
-- caller (checking the list, watching every task, collecting the results
-- of those already settled) and, with the GC cost of 100,000 live
-- coroutines, that alone can exceed the default slice: the run then fails
-- with blocked_loop (reported as such by run.sh, which also runs the
-- one-go variant under --max-slice-ms 5000).
-- {"functions": true} runs the workload as Node writes it instead: one
-- async.all over N functions, at the defaults.
-- usage: awaitd run tests/bench/w2_timers.lua ['{"n":100000,"sleep_ms":100}']
local args = ... or {}
local N = math.tointeger(args.n) or 100000
local D = args.sleep_ms or 100
local CHUNK = math.tointeger(args.chunk) or 0
local YIELD_MS = args.yield_ms or (CHUNK > 0 and 0 or 40)

local vm = require("benchlib").vm

local spawn, sleep, now = async.spawn, async.sleep, async.now
local function nap() sleep(D); return true end

local rss0 = vm("VmRSS")
if args.functions then
  -- the workload as Node writes it: one all() over N functions, at the
  -- defaults (all spawns them and yields between chunks by itself)
  local fns = {}
  for i = 1, N do fns[i] = nap end
  local t0 = now()
  local res, err = async.all(fns)
  local ms = now() - t0
  if not res then error("all failed: " .. tostring(err)) end
  local hwm = vm("VmHWM")
  print(string.format('{"bench":"timers","impl":"awaitd","variant":"all_of_functions","n":%d,' ..
    '"sleep_ms":%g,"ms":%.1f,"overhead":%.3f,"rss_mb":%s,"rss_growth_mb":%s}', N, D, ms, ms / D,
    hwm and string.format("%.1f", hwm / 1024) or "null",
    hwm and rss0 and string.format("%.1f", (hwm - rss0) / 1024) or "null"))
  return
end
local t0 = now()
local tasks, yields, last = {}, 0, t0
for i = 1, N do
  tasks[i] = spawn(nap)
  if CHUNK > 0 then
    if i % CHUNK == 0 and i < N then sleep(0); yields = yields + 1 end
  elseif YIELD_MS > 0 and i % 256 == 0 and i < N then
    local t = now()
    if t - last >= YIELD_MS then sleep(0); yields = yields + 1; last = now() end
  end
end
local spawn_ms = now() - t0
local res, err = async.all(tasks)
local ms = now() - t0
if not res then error("all failed: " .. tostring(err)) end
local hwm = vm("VmHWM")
local note = ""
if yields > 0 then
  note = CHUNK > 0
    and string.format(',"note":"spawning yielded (sleep(0)) every %d tasks, %d times, to stay under the max slice"', CHUNK, yields)
    or string.format(',"note":"spawning yielded (sleep(0)) %d times, after each %g ms of spawning, to stay under the 100 ms max slice"', yields, YIELD_MS)
end
print(string.format('{"bench":"timers","impl":"awaitd","n":%d,"sleep_ms":%g,"ms":%.1f,"overhead":%.3f,' ..
  '"spawn_ms":%.1f,"rss_mb":%s,"rss_growth_mb":%s,"yields":%d%s}',
  N, D, ms, ms / D, spawn_ms,
  hwm and string.format("%.1f", hwm / 1024) or "null",
  hwm and rss0 and string.format("%.1f", (hwm - rss0) / 1024) or "null", yields, note))
