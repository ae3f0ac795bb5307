-- jobrun.lua: runs one job in memory, for `awaitctl run` (the daemon
-- issue; with persistence, jobs will run from the store instead).
--
-- Loaded once by the daemon with (reply, make_log); returns the runner,
-- which the daemon spawns as a detached task per run. A job's concurrency
-- is a semaphore per job table (so a reloaded script starts with its new
-- limit while old runs finish under the old one); its timeout cancels the
-- run. reply(token, value, err) is called exactly once, also when the run
-- is cancelled because the daemon stops.
local reply, make_log = ...
local sems = setmetatable({}, { __mode = "k" })
local logs = {}

return function(job, name, concurrency, timeout_ms, args, token, id)
  local replied = false
  local guard <close> = setmetatable({}, { __close = function(_, e)
    if not replied then
      replied = true
      reply(token, nil, e or async.error("cancelled", "the run was cancelled"))
    end
  end })
  local sem = sems[job]
  if not sem then
    sem = async.semaphore(concurrency)
    sems[job] = sem
  end
  local permit <close> = sem:acquire()
  local log = logs[name]
  if not log then
    log = make_log(name)
    logs[name] = log
  end
  local ctx = {
    job = { id = id, name = name, attempt = 1, args = args },
    log = log,
    deadline = async.now() + timeout_ms,
  }
  local v, err = async.timeout(timeout_ms, job.run, ctx, args)
  replied = true
  reply(token, v, err)
end
