-- tests/bench/jobs/w5_bulk.lua: W5's enqueuer (tests/bench/w5.sh, w5_pg.py),
-- installed as scripts/bulk.lua: args.n noop jobs enqueued by args.workers
-- concurrent tasks, each enqueue returning once committed.
return { timeout = 600000, run = function(ctx, args)
  local n, w = args.n, args.workers or 100
  local t0 = async.now()
  local fns = {}
  for k = 1, w do fns[k] = function() for i = k, n, w do assert(jobs.enqueue("noop", { i = i })) end end end
  assert(async.all(fns))
  return { enqueue_ms = async.now() - t0 }
end }
