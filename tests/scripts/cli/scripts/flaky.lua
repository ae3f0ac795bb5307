return {
  retries = 3,
  backoff = 1000,
  timeout = 10000,
  run = function(ctx, args)
    if args.hang then async.sleep(math.huge) end
    if ctx.job.attempt <= (args.fails or 0) then
      return nil, async.error("flaky", "attempt " .. ctx.job.attempt)
    end
    return { attempt = ctx.job.attempt }
  end,
}
