-- test_semaphore_channel.lua: async.semaphore and async.channel (SPEC 2).
local T = require "testlib"
local recorder = T.recorder

-- ---- semaphore -------------------------------------------------------------

T.test("semaphore(n) lets at most n holders in at once", function()
  local s = async.semaphore(2)
  local inside, peak = 0, 0
  local ts = {}
  for i = 1, 6 do
    ts[i] = async.spawn(function()
      local p <close> = s:acquire()
      inside = inside + 1
      if inside > peak then peak = inside end
      async.sleep(5)
      inside = inside - 1
    end)
  end
  for i = 1, 6 do ts[i]:await() end
  T.eq(peak, 2)
  T.eq(s:available(), 2, "every permit back")
end)

T.test("acquire does not suspend while permits are free", function()
  local s = async.semaphore(1)
  local rec, log = recorder()
  local other = async.spawn(function() async.sleep(0); log "other" end)
  local p <close> = s:acquire()
  log "acquired"
  other:await()
  T.eq(table.concat(rec, " "), "acquired other")
end)

T.test("waiters are served in FIFO order", function()
  local s = async.semaphore(1)
  local rec, log = recorder()
  local first = s:acquire()
  local ts = {}
  for i = 1, 4 do
    ts[i] = async.spawn(function()
      local p <close> = s:acquire()
      log(tostring(i))
      async.sleep(1)
    end)
  end
  first:release()
  for i = 1, 4 do ts[i]:await() end
  T.eq(table.concat(rec, " "), "1 2 3 4")
end)

T.test("a release does not let a newcomer jump the queue", function()
  local s = async.semaphore(1)
  local rec, log = recorder()
  local held = s:acquire()
  local waiter = async.spawn(function()
    local p <close> = s:acquire()
    log "waiter"
  end)
  held:release()
  -- the permit now belongs to the waiter, which has not run yet
  local late = async.spawn(function()
    local p <close> = s:acquire()
    log "late"
  end)
  waiter:await()
  late:await()
  T.eq(table.concat(rec, " "), "waiter late")
end)

T.test("the permit is released when its holder raises", function()
  local s = async.semaphore(1)
  local t = async.spawn(function()
    local p <close> = s:acquire()
    async.sleep(1)
    error("holder failed")
  end)
  local _, err = t:await()
  T.err(err, "error")
  T.eq(s:available(), 1)
  local p <close> = s:acquire() -- does not hang
end)

T.test("the permit is released when its holder is cancelled", function()
  local s = async.semaphore(1)
  local holder = async.spawn(function()
    local p <close> = s:acquire()
    async.sleep(10000)
  end)
  local waiter = async.spawn(function()
    local p <close> = s:acquire()
    return "got it"
  end)
  holder:cancel()
  T.eq(waiter:await(), "got it")
  T.eq(s:available(), 1)
end)

T.test("a cancelled waiter takes no permit and does not block the next one", function()
  local s = async.semaphore(1)
  local rec, log = recorder()
  local held = s:acquire()
  local w1 = async.spawn(function()
    local p <close> = s:acquire()
    log "w1 (not expected)"
  end)
  local w2 = async.spawn(function()
    local p <close> = s:acquire()
    log "w2"
  end)
  w1:cancel()
  local _, err = w1:await()
  T.err(err, "cancelled")
  held:release()
  w2:await()
  T.eq(table.concat(rec, " "), "w2")
  T.eq(s:available(), 1)
end)

T.test("a waiter cancelled after being granted hands the permit on", function()
  local s = async.semaphore(1)
  local rec, log = recorder()
  local held = s:acquire()
  local w1 = async.spawn(function()
    local p <close> = s:acquire()
    log "w1 (not expected)"
  end)
  local w2 = async.spawn(function()
    local p <close> = s:acquire()
    log "w2"
  end)
  held:release() -- granted to w1, which is now on the run queue
  w1:cancel()   -- cancelled before it runs
  w1:await()
  w2:await()
  T.eq(table.concat(rec, " "), "w2")
  T.eq(s:available(), 1)
end)

T.test("with(fn, ...) returns fn's results and releases the permit", function()
  local s = async.semaphore(1)
  local a, b = s:with(function(x, y)
    T.eq(s:available(), 0, "held inside")
    async.sleep(1)
    return x * 2, y
  end, 21, "y")
  T.eq(a, 42)
  T.eq(b, "y")
  T.eq(s:available(), 1)
end)

T.test("with releases the permit when fn raises", function()
  local s = async.semaphore(1)
  local ok, err = pcall(s.with, s, function() error("inside with", 0) end)
  T.eq(ok, false)
  T.eq(tostring(err):find("inside with", 1, true) ~= nil, true)
  T.eq(s:available(), 1)
end)

T.test("s:release() hands a permit back; the guard releases once", function()
  local s = async.semaphore(2)
  local p1 = s:acquire()
  local p2 = s:acquire()
  T.eq(s:available(), 0)
  s:release()
  T.eq(s:available(), 1, "s:release()")
  p1:release()
  p1:release() -- a guard releases at most once
  T.eq(s:available(), 2)
end)

T.test("semaphore rejects bad sizes", function()
  T.eq(pcall(async.semaphore, 0), false)
  T.eq(pcall(async.semaphore, 1.5), false)
  T.eq(pcall(async.semaphore, "2"), false)
end)

-- ---- channel -----------------------------------------------------------------

T.test("a rendezvous channel: send suspends until a receiver takes the value", function()
  local ch = async.channel()
  local rec, log = recorder()
  local sender = async.spawn(function()
    log "send"
    local ok = ch:send("v1")
    log("sent " .. tostring(ok))
  end)
  T.eq(sender:status(), "suspended", "send blocks with no receiver")
  async.sleep(5)
  T.eq(table.concat(rec, " "), "send", "still blocked")
  T.eq(ch:recv(), "v1")
  sender:await()
  T.eq(table.concat(rec, " "), "send sent true")
end)

T.test("channel(0) is a rendezvous channel; recv waits for a sender", function()
  local ch = async.channel(0)
  local r = async.spawn(function() return ch:recv() end)
  T.eq(r:status(), "suspended")
  T.eq(ch:send("x"), true)
  T.eq(r:await(), "x")
end)

T.test("a buffered channel: send suspends only when full", function()
  local ch = async.channel(2)
  T.eq(ch:send(1), true)
  T.eq(ch:send(2), true)
  local rec, log = recorder()
  local s = async.spawn(function()
    ch:send(3)
    log "third sent"
  end)
  T.eq(s:status(), "suspended", "full")
  async.sleep(5)
  T.eq(#rec, 0)
  T.eq(ch:recv(), 1)
  s:await()
  T.eq(rec[1], "third sent")
  T.eq(ch:recv(), 2)
  T.eq(ch:recv(), 3)
end)

T.test("values come out in FIFO order across senders", function()
  local ch = async.channel(1)
  local ts = {}
  for i = 1, 5 do ts[i] = async.spawn(function() ch:send(i) end) end
  local got = {}
  for i = 1, 5 do got[i] = ch:recv() end
  T.same(got, { 1, 2, 3, 4, 5 })
  for i = 1, 5 do ts[i]:await() end
end)

T.test("receivers are served in FIFO order", function()
  local ch = async.channel()
  local rs = {}
  for i = 1, 3 do rs[i] = async.spawn(function() return i, ch:recv() end) end
  for _, v in ipairs { "a", "b", "c" } do ch:send(v) end
  for i, want in ipairs { "a", "b", "c" } do
    local idx, v = rs[i]:await()
    T.eq(idx, i)
    T.eq(v, want, "receiver " .. i)
  end
end)

T.test("close: buffered values drain, then recv gives nil, closed", function()
  local ch = async.channel(3)
  ch:send("a")
  ch:send("b")
  ch:close()
  T.eq(ch:recv(), "a")
  T.eq(ch:recv(), "b")
  local v, err = ch:recv()
  T.eq(v, nil)
  T.err(err, "closed")
  T.eq(getmetatable(err), async.Error)
  local v2, err2 = ch:recv()
  T.eq(v2, nil, "stays closed")
  T.err(err2, "closed")
end)

T.test("close wakes waiting receivers with nil, closed", function()
  local ch = async.channel()
  local rs = {}
  for i = 1, 2 do rs[i] = async.spawn(function() return ch:recv() end) end
  ch:close()
  for i = 1, 2 do
    -- the receiver returns nil, err: it fails with the closed error
    local v, err = rs[i]:await()
    T.eq(v, nil)
    T.err(err, "closed", "receiver " .. i)
  end
end)

T.test("close wakes waiting senders with nil, closed", function()
  local ch = async.channel()
  local s = async.spawn(function()
    local ok, err = ch:send("never taken")
    return ok == nil and err and err.code or "not closed"
  end)
  ch:close()
  T.eq(s:await(), "closed")
end)

T.test("send on a closed channel gives nil, closed; close is idempotent", function()
  local ch = async.channel(5)
  ch:close()
  ch:close()
  local ok, err = ch:send(1)
  T.eq(ok, nil)
  T.err(err, "closed")
end)

T.test("a cancelled receiver does not lose a value", function()
  local ch = async.channel()
  local r1 = async.spawn(function() return ch:recv() end)
  local r2 = async.spawn(function() return ch:recv() end)
  r1:cancel()
  r1:await()
  T.eq(ch:send("for r2"), true)
  T.eq(r2:await(), "for r2")
end)

T.test("a receiver cancelled after being handed a value passes it on", function()
  local ch = async.channel()
  local r1 = async.spawn(function() return ch:recv() end)
  local s = async.spawn(function() return ch:send("precious") end)
  -- r1 was handed the value and sits on the run queue
  r1:cancel()
  local _, err = r1:await()
  T.err(err, "cancelled")
  s:await()
  T.eq(ch:recv(), "precious", "the value was not lost")
end)

T.test("send(nil) raises", function()
  local ch = async.channel(1)
  T.eq(pcall(ch.send, ch, nil), false)
  T.eq(pcall(async.channel, -1), false, "negative capacity")
end)

return T.run()
