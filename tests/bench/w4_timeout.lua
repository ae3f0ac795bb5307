-- W4 timeout: N operations each under async.timeout(50, op); even ones
-- finish in 10 ms, odd ones would take 1000 ms and time out at 50 ms. All
-- N run under one async.all; each item returns a status ("ok" or the
-- error code) so all() does not fail fast. Peer: node/timeout.mjs.
-- The script prints its JSON line and returns: nothing it started is left
-- running (the timed-out operations were cancelled), so the process should
-- exit at once; run.sh measures the whole process wall time.
-- Each item is one task (async.timeout runs the operation in the item's
-- own task, under a timeout scope), and starting 100,000 tasks takes longer
-- than the 100 ms default max slice. So the items are spawned by this loop,
-- which yields with sleep(0)
-- whenever it has run YIELD_MS (default 40) without suspending ("yields"
-- and "note" in the output say so), and the spawned tasks are then handed
-- to one async.all. {"yield_ms": 0} never yields (needs --max-slice-ms);
-- {"functions": true} hands all() the N functions instead, so all() spawns
-- them itself, in one slice (also needs --max-slice-ms). As in W2, the
-- one async.all over 100,000 tasks may itself exceed the default slice;
-- the run then fails with blocked_loop (run.sh reports it).
-- Expected counts: ok = timed_out = N/2; fewer "ok" means operations that
-- had finished were reported as timed out.
-- usage: awaitd run tests/bench/w4_timeout.lua ['{"n":100000,"timeout_ms":50}']
local args = ... or {}
local N = math.tointeger(args.n) or 100000
local T = args.timeout_ms or 50
local FAST, SLOW = args.fast_ms or 10, args.slow_ms or 1000
local YIELD_MS = args.yield_ms or 40
local FUNCTIONS = args.functions and true or false

local spawn, sleep, timeout, now = async.spawn, async.sleep, async.timeout, async.now

local function op(i)
  sleep(i % 2 == 1 and SLOW or FAST)
  return i
end
local function item(i)
  local v, err = timeout(T, op, i)
  if v ~= nil then return "ok" end
  return err and err.code or "nil"
end

local t0 = now()
local list, yields, last = {}, 0, t0
for i = 1, N do
  if FUNCTIONS then
    list[i] = function() return item(i) end
  else
    list[i] = spawn(item, i)
    if YIELD_MS > 0 and i % 256 == 0 and i < N then
      local t = now()
      if t - last >= YIELD_MS then sleep(0); yields = yields + 1; last = now() end
    end
  end
end
local spawn_ms = now() - t0
local res, err = async.all(list)
local ms = now() - t0
if not res then error("all failed: " .. tostring(err)) end
local ok, timed_out, other = 0, 0, 0
for i = 1, N do
  local r = res[i]
  if r == "ok" then ok = ok + 1 elseif r == "timeout" then timed_out = timed_out + 1 else other = other + 1 end
end
local note = ""
if yields > 0 then
  note = string.format(',"note":"items spawned by a loop that yielded (sleep(0)) %d times, after each %g ms of spawning, to stay under the 100 ms max slice; then one async.all"', yields, YIELD_MS)
end
print(string.format('{"bench":"timeout","impl":"awaitd","n":%d,"timeout_ms":%g,"ms":%.1f,"spawn_ms":%.1f,"ok":%d,"timed_out":%d,"other":%d,"yields":%d%s}',
  N, T, ms, spawn_ms, ok, timed_out, other, yields, note))
