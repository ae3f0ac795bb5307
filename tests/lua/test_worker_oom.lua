-- awaitd-args: --workers 1 --worker-timeout-ms 20000 --max-memory 64
-- test_worker_oom.lua: a memory bomb in a worker is stopped by its state's
-- cap (max_memory), and the pool goes on with a fresh state.
local T = require "testlib"

T.test("a memory bomb gives out_of_memory naming the cap", function()
  local v, err = async.worker("worker_fns", "bomb")
  T.eq(v, nil)
  T.err(err, "out_of_memory")
  T.contains(err.message, "64 MiB")
  T.eq(async.worker("worker_fns", "add", 20, 22), 42, "the next call gets a fresh state")
end)

return T.run()
