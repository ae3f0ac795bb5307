-- 08_safety.lua: three things awaitd does that Node.js does not.
--
--   1. No orphans. In Node, a promise you forget keeps running after the
--      function that created it returned:
--        async function handler() { sendEmail(); return "ok"; } // email still going
--      In awaitd the forgotten child is cancelled when its parent returns,
--      and a warning on stderr names it (file:line).
--   2. No silent failures. Node reports an unhandled rejection (and by
--      default crashes). awaitd logs a failed task nobody awaited, with its
--      traceback, and keeps going.
--   3. Loop protection. In Node, `while (true) {}` freezes the whole
--      process: timers, sockets, everything. awaitd stops a task that runs
--      for more than max_slice_ms (100 ms by default) without suspending:
--      it fails with err.code == "blocked_loop", and other tasks keep going.
--
-- Run: awaitd run scripts/examples/08_safety.lua
--      (the warning and the error log lines appear on stderr)

-- 1. A child left running when its parent returns is cancelled.
local email_sent, email_cleanup = false, nil
local function send_email()
  local guard <close> = setmetatable({}, { __close = function(_, err)
    email_cleanup = err and err.code or "normal"
  end })
  async.sleep(200) -- simulated SMTP call (no http module yet)
  email_sent = true
end

local handler = async.spawn(function()
  async.spawn(send_email) -- forgotten: never awaited
  async.sleep(10)
  return "ok"
end)
print(string.format("handler returned %q", handler:await()))
async.sleep(0) -- one loop turn: let the cancelled child unwind
print(string.format("orphan cancelled: %s (email sent: %s, its cleanup saw: %s)",
  tostring(not email_sent and email_cleanup == "cancelled"), tostring(email_sent),
  tostring(email_cleanup)))

-- The fix is to await the child, or to say that it is background work:
-- async.detach(fn) starts a task owned by the daemon instead of the caller.

-- 2. A failure nobody awaited is logged (look at stderr: "failed and
--    nobody awaited it", with a traceback). Detached, so that it has no
--    parent to report to: the log line appears when it fails.
local ghost = async.detach(function()
  async.sleep(10)
  error("payment webhook failed")
end)
async.sleep(30)
print(string.format("unawaited failure logged on stderr; the task is %s", ghost:status()))

-- 3. A busy loop is stopped while a ticker keeps ticking. The ticker
--    ticks every 20 ms; 50 ms in, a task starts spinning without ever
--    suspending. One thread runs all tasks, so the ticker misses its ticks
--    while the loop spins, but only for max_slice_ms: then the spinning
--    task is failed and the ticker carries on.
local t0 = async.now()
local ticks = {}
local ticker = async.spawn(function()
  while true do
    async.sleep(20)
    ticks[#ticks + 1] = string.format("%.0f", async.now() - t0)
  end
end)

async.sleep(50)
local busy_start
local busy = async.spawn(function()
  async.sleep(0)              -- start on the next loop turn, like real work
  busy_start = async.now() - t0
  local n = 0
  while true do n = n + 1 end -- never suspends: would freeze Node forever
end)
local _, berr = busy:await()
local stopped_at = async.now() - t0
local ticks_before = #ticks
print(string.format("busy loop ran from %.0f to %.0f ms, then: %s", busy_start, stopped_at,
  tostring(berr)))
print(string.format("blocked_loop: %s", tostring(berr.code == "blocked_loop")))

async.sleep(100)
print("ticker ticked at (ms): " .. table.concat(ticks, ", "))
print(string.format("ticker kept ticking: %s (%d ticks before the kill, %d after)",
  tostring(#ticks > ticks_before), ticks_before, #ticks - ticks_before))

ticker:cancel() -- we are done with it: cancel and await, so nothing is left running
ticker:await()
