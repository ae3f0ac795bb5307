-- 05_pipeline.lua: producer -> N workers -> collector, connected by
-- channels. A bounded channel gives backpressure; close() tells the next
-- stage that no more values will come.
--
-- Node.js has no built-in channel; the closest is an async iterator / a
-- stream pipeline:
--
--   const jobs = new Channel(4);          // e.g. from a library
--   producer: for (const n of items) await jobs.send(n); jobs.close();
--   workers:  for await (const n of jobs) await results.send(await work(n));
--   collector: for await (const r of results) total += r;
--
-- Run: awaitd run scripts/examples/05_pipeline.lua

local ITEMS, WORKERS = 24, 4

local jobs = async.channel(4)    -- capacity 4: the producer waits when it is full
local results = async.channel(4)

-- Stage 1: the producer. send() suspends while the channel is full.
local function producer()
  for i = 1, ITEMS do jobs:send(i) end
  jobs:close() -- "no more jobs": receivers drain what is left, then get "closed"
  return ITEMS
end

-- Stage 2: a worker. recv() returns nil, err (err.code == "closed") once
-- the channel is closed and drained: the loop ends cleanly.
-- The work itself is simulated with async.sleep (no http module yet).
local function worker(id)
  local handled = 0
  while true do
    local n, err = jobs:recv()
    if not n then
      assert(err.code == "closed", tostring(err))
      break
    end
    async.sleep(20)             -- the "slow" transformation
    results:send({ worker = id, value = n * n })
    handled = handled + 1
  end
  return handled
end

-- Stage 3: the collector sums results until the results channel closes.
local function collector()
  local count, sum = 0, 0
  while true do
    local r = results:recv()
    if not r then break end
    count, sum = count + 1, sum + r.value
  end
  return { count = count, sum = sum }
end

local t0 = async.now()
local collect = async.spawn(collector)
local prod = async.spawn(producer)
local workers = {}
for w = 1, WORKERS do workers[w] = async.spawn(worker, w) end

-- When every worker is done, close the results channel: close propagates
-- down the pipeline, and the collector finishes.
local per_worker = assert(async.all(workers))
results:close()
local totals = assert(collect:await())
local produced = assert(prod:await())
local elapsed = async.now() - t0

local expected = 0
for i = 1, ITEMS do expected = expected + i * i end

print(string.format("produced %d items; workers handled %s", produced, table.concat(per_worker, " + ")))
print(string.format("collected %d results, sum of squares = %d (expected %d)", totals.count,
  totals.sum, expected))
print(string.format("elapsed %.0f ms with %d workers (one worker: ~%d ms)", elapsed, WORKERS,
  ITEMS * 20))
print(string.format("pipeline complete: %s", tostring(totals.count == ITEMS and totals.sum == expected)))
