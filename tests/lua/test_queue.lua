-- test_queue.lua: async.queue (SPEC 2: queue row): concurrency, rate,
-- backpressure, stats, pause/resume, and slots held until cleanup ends.
local T = require "testlib"
local recorder = T.recorder

T.test("push returns a task whose await gives the item's results", function()
  local q = async.queue { concurrency = 2 }
  local t = q:push(function(a, b)
    async.sleep(1)
    return a + b, "sum"
  end, 20, 22)
  T.eq(getmetatable(t), async.Task)
  local v, s = t:await()
  T.eq(v, 42)
  T.eq(s, "sum")
end)

T.test("at most concurrency items run at once", function()
  local q = async.queue { concurrency = 2 }
  local running, peak = 0, 0
  local ts = {}
  for i = 1, 7 do
    ts[i] = q:push(function()
      running = running + 1
      if running > peak then peak = running end
      async.sleep(5)
      running = running - 1
      return i
    end)
  end
  q:wait()
  T.eq(peak, 2, "peak")
  for i = 1, 7 do T.eq(ts[i]:await(), i) end
end)

T.test("stats count running, pending, done and failed", function()
  local q = async.queue { concurrency = 2 }
  T.same(q:stats(), { running = 0, pending = 0, done = 0, failed = 0 }, "empty queue")
  for _ = 1, 3 do q:push(function() async.sleep(10) end) end
  local f1 = q:push(function() async.sleep(5); error("raised") end)
  local f2 = q:push(function() async.sleep(5); return nil, async.error("bad", "returned") end)
  T.same(q:stats(), { running = 2, pending = 3, done = 0, failed = 0 }, "after 5 pushes")
  q:wait()
  T.same(q:stats(), { running = 0, pending = 0, done = 3, failed = 2 }, "after wait")
  T.err(select(2, f1:await()), "error")
  T.err(select(2, f2:await()), "bad")
end)

T.test("pending items start in push order", function()
  local q = async.queue { concurrency = 1 }
  local rec, log = recorder()
  for i = 1, 5 do
    q:push(function()
      log(tostring(i))
      async.sleep(1)
    end)
  end
  q:wait()
  T.eq(table.concat(rec, " "), "1 2 3 4 5")
end)

T.test("wait returns at once when idle and suspends until idle otherwise", function()
  local q = async.queue { concurrency = 3 }
  local rec, log = recorder()
  local other = async.spawn(function() async.sleep(0); log "other" end)
  T.eq(q:wait(), true)
  log "wait returned"
  other:await()
  T.eq(table.concat(rec, " "), "wait returned other", "an idle queue's wait does not suspend")
  local t0 = async.now()
  local finished = 0
  for _ = 1, 6 do q:push(function() async.sleep(20); finished = finished + 1 end) end
  q:wait()
  T.eq(finished, 6, "every item finished when wait returned")
  T.between(async.now() - t0, 35, 1000, "two rounds of 20 ms")
end)

T.test("several tasks may wait on one queue", function()
  local q = async.queue { concurrency = 1 }
  q:push(function() async.sleep(20) end)
  local ws = {}
  for i = 1, 3 do ws[i] = async.spawn(function() return q:wait() end) end
  for i = 1, 3 do T.eq(ws[i]:await(), true) end
  T.eq(q:stats().running, 0)
end)

T.test("pause keeps new items pending; resume starts them", function()
  local q = async.queue { concurrency = 5 }
  local rec, log = recorder()
  q:pause()
  q:push(function() log "a" end)
  q:push(function() log "b" end)
  async.sleep(20)
  T.eq(#rec, 0, "nothing ran while paused")
  T.same(q:stats(), { running = 0, pending = 2, done = 0, failed = 0 })
  q:resume()
  q:wait()
  T.eq(table.concat(rec, " "), "a b")
  T.eq(q:stats().done, 2)
end)

T.test("pause does not stop items already running", function()
  local q = async.queue { concurrency = 1 }
  local rec, log = recorder()
  local a = q:push(function() async.sleep(10); log "a done" end)
  q:push(function() log "b ran" end)
  q:pause()
  a:await()
  async.sleep(20)
  T.eq(table.concat(rec, " "), "a done", "b waits for resume")
  q:resume()
  q:wait()
  T.eq(table.concat(rec, " "), "a done b ran")
end)

T.test("max_pending: push suspends the caller while the queue is full", function()
  local q = async.queue { concurrency = 1, max_pending = 1 }
  local rec, log = recorder()
  local peak_pending = 0
  local function item(name)
    log(name .. " start")
    async.sleep(20)
    local p = q:stats().pending
    if p > peak_pending then peak_pending = p end
    log(name .. " end")
  end
  q:push(item, "1") -- runs
  q:push(item, "2") -- pending
  log "two pushed"
  T.eq(q:stats().pending, 1)
  q:push(item, "3") -- must wait until item 2 has left the pending list
  log "third pushed"
  q:wait()
  T.eq(table.concat(rec, ", "),
    "1 start, two pushed, 1 end, 2 start, third pushed, 2 end, 3 start, 3 end")
  T.ok(peak_pending <= 1, "never more than max_pending waiting")
  T.eq(q:stats().done, 3)
end)

T.test("rate: a token bucket that starts full", function()
  -- rate 2 per 100 ms: two start at once, then one every 50 ms.
  local q = async.queue { concurrency = 10, rate = 2, per = 100 }
  local starts = {}
  local t0 = async.now()
  for i = 1, 6 do q:push(function() starts[i] = async.now() - t0; async.sleep(1) end) end
  q:wait()
  T.eq(#starts, 6)
  T.between(starts[1], 0, 30, "first start")
  T.between(starts[2], 0, 30, "second start (bucket starts full)")
  for k = 3, 6 do
    T.between(starts[k], (k - 2) * 50 - 5, 2000, "start " .. k)
  end
  T.between(starts[6], 0, 1500, "not much slower than the rate")
end)

T.test("rate: an item refused a token starts when the bucket refills", function()
  -- The first item takes the only token and finishes at once; the second
  -- arrives on an idle queue with an empty bucket and must start about
  -- 50 ms later (not stall forever).
  local q = async.queue { rate = 1, per = 50 }
  local rec, log = recorder()
  local t0 = async.now()
  q:push(function() log "first" end)
  q:push(function() log "second" end)
  local ok, err = async.timeout(3000, function() q:wait() end)
  T.eq(err, nil, "the queue drained within 3 s")
  T.eq(table.concat(rec, " "), "first second")
  T.between(async.now() - t0, 40, 1000, "second start waited for a token")
end)

T.test("cancelling a pending item: it never runs and the queue goes on", function()
  local q = async.queue { concurrency = 1 }
  local rec, log = recorder()
  local a = q:push(function() async.sleep(20); log "a" end)
  local b = q:push(function() log "b" end)
  local c = q:push(function() log "c" end)
  b:cancel()
  local _, err = b:await()
  T.err(err, "cancelled")
  a:await()
  c:await()
  q:wait()
  T.eq(table.concat(rec, " "), "a c")
  local st = q:stats()
  T.eq(st.running, 0)
  T.eq(st.pending, 0)
end)

T.test("a timed-out item keeps its slot until its cleanup has finished", function()
  local q = async.queue { concurrency = 1 }
  local rec, log = recorder()
  local first = q:push(function()
    local c <close> = setmetatable({}, { __close = function()
      log "cleanup start"
      async.sleep(50)
      log "cleanup end"
    end })
    async.sleep(5000)
  end)
  local second = q:push(function()
    log("second start, running " .. q:stats().running)
  end)
  local v, err = async.timeout(5, first)
  T.eq(v, nil)
  T.err(err, "timeout")
  second:await()
  T.eq(table.concat(rec, " | "), "cleanup start | cleanup end | second start, running 1")
  q:wait()
  local st = q:stats()
  T.eq(st.running, 0)
  T.eq(st.pending, 0)
  T.eq(st.done + st.failed, 2)
end)

T.test("timeout around a push never lets the queue exceed its limit", function()
  local q = async.queue { concurrency = 2 }
  local running, peak = 0, 0
  local function item()
    running = running + 1
    if running > peak then peak = running end
    local c <close> = setmetatable({}, { __close = function()
      async.sleep(20)
      running = running - 1
    end })
    async.sleep(100)
  end
  local ts = {}
  for i = 1, 6 do
    ts[i] = async.spawn(function() return async.timeout(5, q:push(item)) end)
  end
  for i = 1, 6 do ts[i]:await() end
  q:wait()
  T.eq(peak, 2, "peak concurrency")
  T.eq(running, 0)
end)

T.test("pending items hold no coroutine: 20,000 of them stay small", function()
  -- a parked coroutine costs ~1.6 KB (stack, call frames, task); a pending
  -- item is only its task handle until a slot frees
  local q = async.queue { concurrency = 1 }
  collectgarbage(); collectgarbage()
  local before = collectgarbage("count")
  for i = 1, 20000 do
    q:push(function() async.sleep(0) end)
    if i % 2000 == 0 then async.sleep(0) end
  end
  collectgarbage(); collectgarbage()
  local per_item = (collectgarbage("count") - before) * 1024 / 20000
  T.between(per_item, 1, 1100, "bytes per pending item")
  local st = q:stats()
  T.eq(st.pending + st.running + st.done, 20000)
  T.ok(st.pending > 19000, "most items still pending: " .. st.pending)
  q:wait()
  T.same(q:stats(), { running = 0, pending = 0, done = 20000, failed = 0 })
end)

T.test("a pending item whose pusher finishes is cancelled, counted, and the queue goes idle", function()
  local q = async.queue { concurrency = 1 }
  local ran = 0
  local pusher = async.spawn(function()
    q:push(function() async.sleep(20); ran = ran + 1 end)
    q:push(function() ran = ran + 1 end) -- pending when the pusher returns
  end)
  pusher:await()
  q:wait()
  T.eq(ran, 0, "orphaned items were cancelled")
  T.same(q:stats(), { running = 0, pending = 0, done = 0, failed = 2 })
end)

T.test("queue rejects bad options and items", function()
  T.eq(pcall(async.queue, { concurrency = 0 }), false, "concurrency 0")
  T.eq(pcall(async.queue, { concurrency = 1.5 }), false, "fractional concurrency")
  T.eq(pcall(async.queue, { rate = -1 }), false, "negative rate")
  local q = async.queue {}
  T.eq(pcall(q.push, q, 42), false, "push(non-function)")
end)

return T.run()
