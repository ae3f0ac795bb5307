-- W3 throttle: N tasks of sleep(D) through async.queue{concurrency = L};
-- ideal wall = ceil(N/L) * D. Peer: node/throttle.mjs.
-- Pushing 10,000 items takes some 60-90 ms on a busy 2-core machine, near
-- the 100 ms default max slice, so the push loop yields (sleep(0)) whenever
-- it has run YIELD_MS (default 40) without suspending; "yields" in the
-- output counts those ({"yield_ms": 0} never yields). The queue is already
-- running while the loop pushes, so the yields barely change the result.
-- usage: awaitd run tests/bench/w3_throttle.lua ['{"n":10000,"limit":100,"sleep_ms":10}']
local args = ... or {}
local N = math.tointeger(args.n) or 10000
local L = math.tointeger(args.limit) or 100
local D = args.sleep_ms or 10
local YIELD_MS = args.yield_ms or 40

local sleep, now = async.sleep, async.now
local running, peak = 0, 0
local function item(i)
  running = running + 1
  if running > peak then peak = running end
  sleep(D)
  running = running - 1
  return i
end

local t0 = now()
local q = async.queue{ concurrency = L }
local tasks, yields, last = {}, 0, t0
for i = 1, N do
  tasks[i] = q:push(item, i)
  if YIELD_MS > 0 and i % 64 == 0 and i < N and now() - last >= YIELD_MS then
    sleep(0); yields = yields + 1; last = now()
  end
end
local push_ms = now() - t0
q:wait()
local ms = now() - t0
-- every item settled: collect (and check) the results
local res, err = async.all(tasks)
if not res then error("an item failed: " .. tostring(err)) end
for i = 1, N do assert(res[i] == i) end
local st = q:stats()
local ideal = math.ceil(N / L) * D
print(string.format('{"bench":"throttle","impl":"awaitd","n":%d,"limit":%d,"sleep_ms":%g,' ..
  '"ms":%.1f,"ideal_ms":%g,"overhead":%.3f,"peak":%d,"push_ms":%.1f,"yields":%d,"done":%d,"failed":%d}',
  N, L, D, ms, ideal, ms / ideal, peak, push_ms, yields, st.done, st.failed))
if peak > L then error("peak " .. peak .. " exceeded the limit " .. L) end
