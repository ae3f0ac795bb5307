-- scripts/hello.lua: the smallest job. `awaitctl run hello '{"name":"ann"}'`
return {
  description = "Greets whoever is named in the args",
  timeout = 5000,
  run = function(ctx, args)
    local name = args and args.name or "world"
    ctx.log.info("greeting %s", name)
    return { greeting = "hello, " .. name, job = ctx.job.name }
  end,
}
