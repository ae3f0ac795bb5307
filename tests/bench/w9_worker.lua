-- W9 worker: 8 CPU-bound tasks of about TASK_MS each (string hashing,
-- calibrated on this machine), run through async.worker on the pool (one
-- worker per core), then the same on the loop. Beside each, a task sleeps
-- 10 ms in a loop and records how late its timer fires. Ideal: the pool
-- takes ceil(8 / cores) x TASK_MS and the timer stays within 5 ms; the loop
-- takes 8 x TASK_MS and delays the timer by a whole task.
-- Run with a wide slice (the loop variant runs TASK_MS without yielding):
--   awaitd run --max-slice-ms 5000 tests/bench/w9_worker.lua ['{"tasks":8,"task_ms":200}']
local args = ... or {}
local TASKS = math.tointeger(args.tasks) or 8
local TASK_MS = args.task_ms or 200
local cpu = require "w9_cpu"
local now = async.now

-- calibrate: rounds per ms, from a run of about 50 ms
local n, t0 = 1000, now()
cpu.work(n)
while now() - t0 < 50 do
  n = n * 2
  t0 = now()
  cpu.work(n)
end
local ROUNDS = math.floor(n / (now() - t0) * TASK_MS)

-- a 10 ms ticker: the worst lateness of its timer while fn runs
local function with_ticker(fn)
  local late, ticks, stop = 0, 0, false
  local ticker = async.spawn(function()
    while not stop do
      local t = now()
      async.sleep(10)
      local d = now() - t - 10
      if d > late then late = d end
      ticks = ticks + 1
    end
  end)
  local t1 = now()
  local ok = fn()
  local wall = now() - t1
  stop = true
  ticker:await()
  return ok, wall, late, ticks
end

local cores = 2
do
  local f = io.open("/proc/cpuinfo")
  if f then
    local c = 0
    for line in f:lines() do if line:match("^processor") then c = c + 1 end end
    f:close()
    if c > 0 then cores = c end
  end
end

local function emit(variant, ok, wall, late, ticks, ideal)
  print(string.format('{"bench":"worker","impl":"awaitd","variant":"%s","tasks":%d,'
    .. '"task_ms":%g,"rounds":%d,"cores":%d,"ok":%s,"ms":%.1f,"ideal_ms":%.1f,'
    .. '"vs_ideal":%.2f,"timer_late_max_ms":%.2f,"ticks":%d}',
    variant, TASKS, TASK_MS, ROUNDS, cores, tostring(ok), wall, ideal, wall / ideal, late, ticks))
  return wall, late
end

local ok, wall, late, ticks = with_ticker(function()
  local fns = {}
  for i = 1, TASKS do fns[i] = function() return async.worker("w9_cpu", "work", ROUNDS) end end
  local r, err = async.all(fns)
  return r ~= nil and #r == TASKS, err
end)
local pool_ideal = math.ceil(TASKS / cores) * TASK_MS
local pw, pl = emit("workers", ok, wall, late, ticks, pool_ideal)

ok, wall, late, ticks = with_ticker(function()
  for _ = 1, TASKS do cpu.work(ROUNDS); async.sleep(0) end
  return true
end)
local lw, ll = emit("loop", ok, wall, late, ticks, TASKS * TASK_MS)

print(string.format('{"bench":"summary","workload":"W9 worker","workers_ms":%.1f,'
  .. '"workers_ideal_ms":%.1f,"workers_vs_ideal":%.2f,"target_vs_ideal":1.25,'
  .. '"meets_vs_ideal":%s,"workers_timer_late_ms":%.2f,"target_timer_late_ms":5,'
  .. '"meets_timer":%s,"loop_ms":%.1f,"loop_timer_late_ms":%.2f}',
  pw, pool_ideal, pw / pool_ideal, tostring(pw / pool_ideal <= 1.25), pl, tostring(pl <= 5),
  lw, ll))
