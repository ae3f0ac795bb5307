-- scripts/slow.lua: a job that takes `ms` (default 1000), to watch
-- timeouts, concurrency and the drain at shutdown.
-- `awaitctl run slow '{"ms":300}'`
return {
  description = "Sleeps for args.ms milliseconds, at most 2 at once",
  concurrency = 2,
  timeout = 10000,
  run = function(ctx, args)
    local ms = args and args.ms or 1000
    async.sleep(ms)
    return { slept = ms }
  end,
}
