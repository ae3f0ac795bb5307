-- scripts/nightly_report.lua: a database job on a schedule. Every night at
-- 02:00 UTC it sums the previous day's orders into the reports table.
-- Run it now with `awaitctl run nightly_report '{"day":"2026-11-24"}'`.
return {
  description = "Sum yesterday's orders into reports (02:00 UTC)",
  schedule = "0 2 * * *",
  concurrency = 1,
  retries = 2,
  run = function(ctx, args)
    local now = os.time()
    local day = args and args.day or os.date("!%Y-%m-%d", now - 86400)
    local y, m, d = day:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
    if not y then return nil, async.error("invalid", "day must be YYYY-MM-DD") end
    local from = os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 0 }
    -- os.time reads local time; the daemon's day boundaries are UTC
    local utc_offset = os.time(os.date("*t", now)) - os.time(os.date("!*t", now))
    from = (from + utc_offset) * 1000
    local id = ctx.db:tx(function(tx)
      local s = assert(tx:one(
        "SELECT count(*) AS n, coalesce(sum(price), 0) AS total FROM orders"
        .. " WHERE created_at >= ? AND created_at < ?", from, from + 86400000))
      local r = assert(tx:one(
        "INSERT INTO reports (day, orders, revenue, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        day, s.n, s.total, now * 1000))
      return r.id
    end, { step = "report " .. day })
    return { day = day, report = id }
  end,
}
