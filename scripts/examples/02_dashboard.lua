-- 02_dashboard.lua: a dashboard page fans out to several services at once.
-- Required widgets go through async.all (fail-fast); an optional widget is
-- bounded by async.timeout and falls back to a default when it is slow.
--
-- The same thing in Node.js:
--
--   const [user, orders, recs] = await Promise.all([
--     getUser(id), getOrders(id), getRecommendations(id),
--   ]);                                  // one rejection rejects the whole
--   const weather = await Promise.race([
--     getWeather(), sleep(50).then(() => "weather unavailable"),
--   ]);                                  // ...but the slow call keeps running!
--
-- In awaitd the loser is cancelled for you, and a failure tells you which
-- item failed (err.index), which Promise.all does not.
--
-- Run:  awaitd run scripts/examples/02_dashboard.lua                    (succeeds)
--       awaitd run scripts/examples/02_dashboard.lua '{"fail":"orders"}' (exits 1)

local args = ... or {}

-- No http/db module yet: each service is simulated with async.sleep, which
-- suspends the task as a network round trip would. A service named in
-- args.fail returns nil, err (a failure value, not an exception).
local function service(name, ms, value)
  return function()
    async.sleep(ms)
    if args.fail == name then
      return nil, async.error("unavailable", name .. " service returned 503", { service = name })
    end
    return value
  end
end

local get_user    = service("user", 80, { name = "Ann", plan = "pro" })
local get_orders  = service("orders", 100, { { id = 1, total = 30 }, { id = 2, total = 12 } })
local get_recs    = service("recommendations", 60, { "tea", "mugs" })
local get_weather = service("weather", 1000, "sunny") -- optional, and slow today

-- The optional widget never fails: bounded to 150 ms, with a default.
-- async.timeout runs the function as a task; on expiry it cancels it (its
-- sleep is interrupted, nothing keeps running) and returns nil, err with
-- err.code == "timeout".
local function weather_or_default()
  local w, err = async.timeout(150, get_weather)
  if not w then
    print(string.format("weather: %s -> using the default", tostring(err)))
    return "weather unavailable"
  end
  return w
end

local function render_dashboard()
  local t0 = async.now()

  -- All four widgets run at once. If a required one fails, async.all
  -- cancels the others (the optional widget included) and returns
  -- nil, err with err.index = the position of the item that failed.
  local names = { "user", "orders", "recommendations", "weather" }
  local parts, err = async.all({ get_user, get_orders, get_recs, weather_or_default })
  if not parts then
    print(string.format("dashboard failed: item %d (%s) -> %s", err.index, names[err.index],
      tostring(err)))
    print(string.format("failed after %.0f ms: the other calls were cancelled, not awaited",
      async.now() - t0))
    return nil, err -- the tuple convention: nil, err
  end

  local user, orders, recs, weather = parts[1], parts[2], parts[3], parts[4]
  local elapsed = async.now() - t0
  print(string.format("user: %s (%s)", user.name, user.plan))
  print(string.format("orders: %d, recommendations: %s", #orders, table.concat(recs, ", ")))
  print(string.format("weather: %s", weather))
  print(string.format("dashboard rendered in %.0f ms (one after another: ~%d ms)",
    elapsed, 80 + 100 + 60 + 150))
  print(string.format("parallel fan-out: %s", tostring(elapsed < 80 + 100 + 60)))
  return true
end

-- The root task returns what render_dashboard returns: with nil, err,
-- `awaitd run` prints the error on stderr and exits 1.
return render_dashboard()
