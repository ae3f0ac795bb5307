-- 07_timeout.lua: timeouts and races that really stop the losing work.
--
-- In Node.js a timeout only stops *waiting*; the slow work keeps running
-- unless you thread an AbortSignal through every call:
--
--   const ac = new AbortController();
--   const timer = setTimeout(() => ac.abort(), 100);
--   try { await slowWork({ signal: ac.signal }); } finally { clearTimeout(timer); }
--
--   await Promise.race([slowSource(), fastSource()]);   // slow one keeps going
--
-- In awaitd, async.timeout and async.race cancel the loser, and they return
-- only after its cleanup (<close> handlers) has run.
--
-- Run: awaitd run scripts/examples/07_timeout.lua

-- A to-be-closed "resource": its __close runs however the block is left:
-- normal return, error, or cancellation. (Like `finally`, or `using` in
-- recent JS.) It records in `events` what happened.
local events = {}
local function resource(name)
  events[#events + 1] = "open " .. name
  return setmetatable({}, { __close = function(_, err)
    events[#events + 1] = string.format("close %s (%s)", name, err and err.code or "normal")
  end })
end

-- Slow work, simulated with async.sleep (no http module yet).
local function slow_work(ms)
  local conn <close> = resource("connection")
  async.sleep(ms)
  events[#events + 1] = "slow work finished" -- never printed when cancelled
  return "slow result"
end

-- 1. async.timeout cancels slow work; cleanup ran before timeout returned.
local t0 = async.now()
local v, err = async.timeout(100, slow_work, 1000)
local elapsed = async.now() - t0
print(string.format("timeout: %s, %s after %.0f ms", tostring(v), tostring(err), elapsed))
print("events when timeout returned: " .. table.concat(events, "; "))
print(string.format("cleanup ran before timeout returned: %s",
  tostring(err.code == "timeout" and events[#events] == "close connection (cancelled)")))

-- Work that finishes in time returns its values as they are.
print(string.format("timeout with time to spare: %s", (async.timeout(200, slow_work, 20))))

-- 2. async.race: the first to settle wins, the other is cancelled.
local function source(name, ms)
  return function()
    local conn <close> = resource(name)
    async.sleep(ms)
    return name
  end
end
events = {}
t0 = async.now()
local winner, rerr, index = async.race({ source("slow mirror", 500), source("fast mirror", 50) })
print(string.format("race: %s (item %d, err %s) in %.0f ms", winner, index, tostring(rerr),
  async.now() - t0))
print("race events: " .. table.concat(events, "; "))

-- 3. Nested timeouts: deadlines nest, an inner timeout never outlives an
--    outer one. The inner 1000 ms budget is cut to the outer 80 ms.
t0 = async.now()
local ov, oerr = async.timeout(80, function()
  local iv, ierr = async.timeout(1000, slow_work, 5000)
  -- The inner timeout is cut short by the outer deadline; by the time we
  -- get here the outer task is being cancelled, so just pass it on.
  return iv, ierr
end)
elapsed = async.now() - t0
print(string.format("nested: outer 80 ms, inner 1000 ms -> %s after %.0f ms", tostring(oerr), elapsed))
print(string.format("nested timeout honoured the outer deadline: %s",
  tostring(ov == nil and oerr.code == "timeout" and elapsed < 500)))
