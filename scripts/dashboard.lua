-- scripts/dashboard.lua: a parallel fan-out. Three simulated services of
-- 100 ms each answer in ~100 ms together (async.all), an optional widget
-- gets 150 ms (async.timeout) and falls back to a default.
-- `awaitctl run dashboard '{"user":42}'`
local fake = require "fake"

return {
  description = "Builds a user's dashboard from three services in parallel",
  concurrency = 20,
  timeout = 2000,
  run = function(ctx, args)
    local user = args and args.user or 1
    local t0 = async.now()
    local parts, err = async.all {
      function() return fake.call(100, { id = user, name = "user " .. user }) end,
      function() return fake.call(100, { count = 3 }) end,
      function() return fake.call(100, { "book", "lamp" }) end,
    }
    if not parts then return nil, err end
    local weather = async.timeout(150, fake.call, 400, "sunny") or "unknown"
    return {
      user = parts[1], orders = parts[2], recommendations = parts[3],
      weather = weather, ms = math.floor(async.now() - t0),
    }
  end,
}
