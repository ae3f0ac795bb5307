-- 06_limit.lua: limiting concurrency (at most 3 at once) and rate (at
-- most N starts per period), like p-limit / p-queue / p-map in Node.js:
--
--   import PQueue from "p-queue";
--   const queue = new PQueue({ concurrency: 3 });
--   jobs.forEach((j) => queue.add(() => work(j)));
--   await queue.onIdle();
--
--   import pMap from "p-map";
--   const results = await pMap(jobs, work, { concurrency: 3 });
--
--   const limited = new PQueue({ intervalCap: 5, interval: 100 });  // rate
--
-- Run: awaitd run scripts/examples/06_limit.lua

local JOBS, LIMIT, WORK_MS = 20, 3, 30

-- A probe that records how many jobs run at the same time.
local function probe()
  local p = { now = 0, peak = 0 }
  function p.enter() p.now = p.now + 1; if p.now > p.peak then p.peak = p.now end end
  function p.leave() p.now = p.now - 1 end
  return p
end

-- The job: simulated with async.sleep (no http module yet).
local function make_work(p)
  return function(n)
    p.enter()
    async.sleep(WORK_MS)
    p.leave()
    return n * 10
  end
end

-- 1. async.queue: push work, it starts when a slot is free.
do
  local p = probe()
  local work = make_work(p)
  local q = async.queue({ concurrency = LIMIT })
  local t0 = async.now()
  local tasks = {}
  for i = 1, JOBS do tasks[i] = q:push(work, i) end -- returns a task per item
  q:wait()                                          -- like queue.onIdle()
  local elapsed = async.now() - t0
  local first = tasks[1]:await()
  local s = q:stats()
  print(string.format("queue: %d jobs, done %d, failed %d, first result %d", JOBS, s.done, s.failed,
    first))
  print(string.format("queue peak concurrency: %d", p.peak))
  print(string.format("queue elapsed %.0f ms (ceil(%d/%d) x %d ms = %d ms; unlimited would be %d ms)",
    elapsed, JOBS, LIMIT, WORK_MS, math.ceil(JOBS / LIMIT) * WORK_MS, WORK_MS))
end

-- 2. async.map: the same limit, results in input order, fail-fast like all.
do
  local p = probe()
  local work = make_work(p)
  local list = {}
  for i = 1, JOBS do list[i] = i end
  local t0 = async.now()
  local results = assert(async.map(list, work, { concurrency = LIMIT }))
  local elapsed = async.now() - t0
  print(string.format("map: %d results, results[20] = %d", #results, results[20]))
  print(string.format("map peak concurrency: %d", p.peak))
  print(string.format("map elapsed %.0f ms", elapsed))
end

-- 3. A rate-limited queue: at most 5 starts per 100 ms (token bucket), no
--    matter how fast the work is. 15 instant jobs: 5 start at once, then
--    the bucket refills at one token every 20 ms.
do
  local q = async.queue({ rate = 5, per = 100 })
  local starts = {}
  local t0 = async.now()
  for i = 1, 15 do
    q:push(function() starts[#starts + 1] = async.now() - t0 end)
  end
  q:wait()
  local elapsed = async.now() - t0
  local in_first_100 = 0
  for _, at in ipairs(starts) do if at < 100 then in_first_100 = in_first_100 + 1 end end
  print(string.format("rate: 15 jobs started over %.0f ms; %d started in the first 100 ms",
    elapsed, in_first_100))
  print(string.format("rate limited: %s", tostring(elapsed >= 150 and in_first_100 <= 10)))
end
