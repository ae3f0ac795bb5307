-- async.lua: the combinators of the async module, written on the C
-- primitives of async.c (spawn, await, cancel, ports, parking).
--
-- Invariants every combinator keeps:
--  * it returns only after every item it cancelled has finished unwinding
--    (`settle_all` in a <close> guard, so this also holds when the caller
--    itself is cancelled while waiting);
--  * failures are values: nil, err with err.index naming the item;
--  * waiters are served FIFO; a waiter that is cancelled after it was
--    handed something (a slot, a permit, a value) hands it on.
local M, P = ...  -- the public module, the private building blocks

local spawn, port_new, park, unpark = M.spawn, P.port, P.park, P.unpark
local spawn_within, current, now, scope = P.spawn_within, M.current, M.now, P.scope
local Task, Error, Error_mt = M.Task, M.Error, P.Error_mt
local cancel_all, join, wrap_error, breathe = P.cancel_all, P.join, P.wrap_error, P.breathe
-- task methods called directly: no __index lookup in the hot paths
local t_await, t_result, t_watch, t_wait = M.await, P.result, P.watch, P.wait
local getmetatable, setmetatable, type, select, error = getmetatable, setmetatable, type, select, error
local pcall, xpcall, msgh, huge = pcall, xpcall, P.msgh, math.huge

local function is_task(v) return getmetatable(v) == Task end -- (a task handle)

local function errorf(level, fmt, ...) error(string.format(fmt, ...), level + 1) end

-- A copy of err with index i (the item's own error value stays untouched).
local function with_index(err, i)
  local e = {}
  for k, v in pairs(err) do e[k] = v end
  e.index = i
  return setmetatable(e, Error_mt)
end

-- Spawn the functions of list into tasks (tasks are taken as they are),
-- in C, in chunks: between two the caller breathes (yields to the loop once
-- it has used a quarter of its slice), so spawning 100,000 items never
-- trips its own slice. The caller's guard holds `tasks` already: if it is
-- cancelled meanwhile, what was started is settled.
local start_chunk = P.start
local function start(name, list, tasks)
  local i = start_chunk(name, list, tasks, 1)
  while i do
    breathe()
    i = start_chunk(name, list, tasks, i)
  end
  return tasks
end

-- Cancel every unsettled task of the list, then wait until each has unwound
-- (join waits even when the caller is itself being cancelled).
local function settle_all(tasks, reason)
  if cancel_all(tasks, reason) == 0 then return end
  for i = 1, #tasks do join(tasks[i]) end
end

-- A <close> guard that settles the tasks however the combinator exits.
local Guard = { __close = function(g) settle_all(g.tasks, g.reason) end }
local function guard(tasks, reason)
  return setmetatable({ tasks = tasks, reason = reason }, Guard)
end

local function watch(tasks)
  local port = port_new()
  for i = 1, #tasks do
    if i & 1023 == 0 then breathe() end
    t_watch(tasks[i], port, i)
  end
  return port
end

function M.fn(f)
  if type(f) ~= "function" then errorf(2, "async.fn: function expected, got %s", type(f)) end
  return function(...) return spawn(f, ...) end
end

-- Wait for the tasks one by one, in the order they settle, calling
-- on(i, ok, value_or_err) for each; when `on` returns true, stop and
-- return true and its (up to three) other results.
local function each_settled(tasks, on)
  local port = watch(tasks)
  for n = 1, #tasks do
    if n & 1023 == 0 then breathe() end
    local i = port:wait()
    local ok, v = t_result(tasks[i])
    local stop, a, b, c = on(i, ok, v)
    if stop then return true, a, b, c end
  end
  return false
end

function M.all(list)
  local tasks = {}
  local g <close> = guard(tasks, "a sibling in all() failed")
  start("all", list, tasks)
  local results = {}
  local failed, err = each_settled(tasks, function(i, ok, v)
    if not ok then return true, with_index(v, i) end
    results[i] = v
  end)
  if failed then return nil, err end
  return results
end

function M.all_settled(list)
  local tasks = {}
  local g <close> = guard(tasks, "all_settled() was cancelled")
  start("all_settled", list, tasks)
  local settled = {}
  each_settled(tasks, function(i, ok, v)
    settled[i] = ok and { ok = true, value = v } or { ok = false, err = v }
  end)
  return settled
end

function M.race(list)
  local tasks = {}
  local g <close> = guard(tasks, "lost a race")
  start("race", list, tasks)
  if #tasks == 0 then return nil, M.error("invalid", "async.race: empty list"), nil end
  local _, i, ok, v = each_settled(tasks, function(i, ok, v) return true, i, ok, v end)
  if ok then return v, nil, i end
  return nil, with_index(v, i), i
end

function M.any(list)
  local tasks = {}
  local g <close> = guard(tasks, "another item of any() succeeded")
  start("any", list, tasks)
  local errors = {}
  local won, v, i = each_settled(tasks, function(i, ok, v)
    if ok then return true, v, i end
    errors[i] = with_index(v, i)
  end)
  if won then return v, i end
  return nil, M.error("all_failed", string.format("all %d items failed", #tasks), { errors = errors })
end

-- The timeout of a task: its result if it settles within ms; else it is
-- cancelled, and has unwound when this returns.
local function timeout_task(ms, t)
  local g <close> = guard({ t }, "timed out")
  if t_wait(t, ms) then return t_await(t) end
  t:cancel(string.format("timed out after %g ms", ms))
  join(t) -- let it unwind before we report
  return nil, M.error("timeout", string.format("timed out after %g ms", ms))
end

-- What _scope answered (async-scope.c), once the work's leftover tasks have unwound.
local function scope_answer(ms, kind, joins, ...)
  if joins then
    for i = 1, #joins do join(joins[i]) end
  end
  if kind == "ok" then return ... end
  if kind == "timeout" then
    return nil, M.error("timeout", string.format("timed out after %g ms", ms))
  end
  if kind == "up" then error((...), 0) end
  return nil, (...)
end

local function check_timeout_ms(ms)
  if type(ms) ~= "number" or ms < 0 or ms ~= ms then
    errorf(3, "async.timeout: milliseconds must be a number >= 0, got %s", tostring(ms))
  end
end

-- A function runs in the calling task, inside a timeout scope: no task of
-- its own (outside a task, e.g. in a plain coroutine, it gets one).
function M.timeout(ms, f, ...)
  check_timeout_ms(ms)
  if type(f) == "function" then
    if current() then return scope_answer(ms, scope(ms, f, ...)) end
    return timeout_task(ms, spawn_within(ms, f, ...))
  elseif is_task(f) then
    return timeout_task(ms, f)
  end
  errorf(2, "async.timeout: function or task expected, got %s", type(f))
end

-- timeout(ms, fn, ...) with fn in a task of its own, for the job and test
-- runners (C passes it to them): a job's run is a task of its own, with
-- its span in the trace, the tree a park unwinds, and its own db handle use.
function P.timeout_task(ms, f, ...)
  check_timeout_ms(ms)
  return timeout_task(ms, spawn_within(ms, f, ...))
end

-- try never raises, except to let the task's own cancellation through:
-- a cancelled task must not keep running (SPEC: cancellation is sticky).
-- Like pcall (coro.c): a try entered before the cancellation was raised
-- hands on what it catches after it; one inside a <close> handler does not.
-- (The same holds for a timeout scope's expiry inside the scope.)
local catch_mark, hands_on = P.catch_mark, P.hands_on

function M.try(f, ...)
  if type(f) ~= "function" then return nil, M.error("invalid", "async.try: function expected") end
  local me = current()
  local mark = me and catch_mark(me)
  local function pack(ok, ...)
    if not ok then
      local err = wrap_error((...))
      if me and hands_on(me, mark) then error(err, 0) end
      return nil, err
    end
    if select("#", ...) >= 2 and (...) == nil and select(2, ...) ~= nil then
      local err = select(2, ...)
      if getmetatable(err) ~= Error then
        err = M.error("error", tostring(err), { value = err })
      end
      return nil, err
    end
    return ...
  end
  return pack(xpcall(f, msgh, ...))
end

-- ---- FIFO of waiters -----------------------------------------------------
-- A ticket is {task = t, granted = false}; a cancelled waiter marks its
-- ticket dead, and pop skips dead tickets.
local Fifo = {}
Fifo.__index = Fifo
local function fifo() return setmetatable({ head = 1, tail = 0 }, Fifo) end
function Fifo:push(ticket) self.tail = self.tail + 1; self[self.tail] = ticket end
function Fifo:pop()
  while self.head <= self.tail do
    local ticket = self[self.head]
    self[self.head] = nil
    self.head = self.head + 1
    if not ticket.dead then return ticket end
  end
end
function Fifo:empty()
  while self.head <= self.tail and self[self.head].dead do
    self[self.head] = nil
    self.head = self.head + 1
  end
  return self.head > self.tail
end

-- Park the current task on a ticket until granted. `on_cancel(ticket)` runs
-- if the wait is cancelled (or times out), before the error propagates.
local function wait_ticket(q, ticket, on_cancel, ms)
  ticket.task = current()
  q:push(ticket)
  local ok, woke = pcall(park, ms)
  if ok and (woke or ticket.granted) then return true end
  ticket.dead = true
  if ticket.granted then on_cancel(ticket) end
  if not ok then error(woke, 0) end
  return false
end

local function grant(ticket, value)
  ticket.granted, ticket.value = true, value
  unpark(ticket.task)
end

-- ---- semaphore -----------------------------------------------------------
local Semaphore = {}
Semaphore.__index = Semaphore

local Permit = {}
Permit.__index = Permit
Permit.__close = function(p) p:release() end
function Permit:release()
  if not self.released then
    self.released = true
    self.sem:release()
  end
end

function M.semaphore(n)
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    errorf(2, "async.semaphore: permits must be an integer >= 1, got %s", tostring(n))
  end
  return setmetatable({ permits = n, waiters = fifo() }, Semaphore)
end

function Semaphore:acquire()
  if self.permits > 0 and self.waiters:empty() then
    self.permits = self.permits - 1
  else
    wait_ticket(self.waiters, {}, function() self:release() end)
  end
  return setmetatable({ sem = self }, Permit)
end

function Semaphore:release()
  local ticket = self.waiters:pop()
  if ticket then grant(ticket) else self.permits = self.permits + 1 end
end

function Semaphore:with(f, ...)
  local p <close> = self:acquire()
  return f(...)
end

function Semaphore:available() return self.permits end

-- ---- channel -------------------------------------------------------------
local Channel = {}
Channel.__index = Channel

function M.channel(capacity)
  capacity = capacity or 0
  if type(capacity) ~= "number" or capacity < 0 or capacity ~= math.floor(capacity) then
    errorf(2, "async.channel: capacity must be an integer >= 0, got %s", tostring(capacity))
  end
  return setmetatable({ cap = capacity, buf = fifo(), senders = fifo(), receivers = fifo(),
                        closed = false }, Channel)
end

local function closed_error() return M.error("closed", "channel is closed") end

function Channel:send(v)
  if v == nil then errorf(2, "channel:send: value expected (nil cannot be sent)") end
  if self.closed then return nil, closed_error() end
  local r = self.receivers:pop()
  if r then grant(r, v); return true end
  if self.buf.tail - self.buf.head + 1 < self.cap then
    self.buf:push({ value = v })
    return true
  end
  local ticket = { value = v }
  wait_ticket(self.senders, ticket, function() end)
  if ticket.closed then return nil, closed_error() end
  return true
end

function Channel:recv()
  local item = self.buf:pop()
  if item then
    local s = self.senders:pop()
    if s then self.buf:push({ value = s.value }); grant(s) end
    return item.value
  end
  local s = self.senders:pop()
  if s then
    local v = s.value
    grant(s)
    return v
  end
  if self.closed then return nil, closed_error() end
  local ticket = {}
  wait_ticket(self.receivers, ticket, function(t)
    -- cancelled after a value was handed over: pass it on
    if t.value ~= nil then
      local r = self.receivers:pop()
      if r then grant(r, t.value) else
        self.buf.head = self.buf.head - 1
        self.buf[self.buf.head] = { value = t.value }
      end
    end
  end)
  if ticket.closed then return nil, closed_error() end
  return ticket.value
end

function Channel:close()
  if self.closed then return end
  self.closed = true
  for _, q in ipairs({ self.receivers, self.senders }) do
    local t = q:pop()
    while t do t.closed = true; grant(t); t = q:pop() end
  end
end

-- ---- queue ---------------------------------------------------------------
-- An item that cannot start at once is a deferred task: it has no thread
-- (no coroutine, no stack) until pump gives it a slot, so 100,000 pending
-- items cost a table entry each, not a parked coroutine.
local Queue = {}
Queue.__index = Queue
local defer, start_deferred, waiting_start = P.defer, P.start_deferred, P.waiting_start

function M.queue(opts)
  opts = opts or {}
  if type(opts) ~= "table" then errorf(2, "async.queue: options table expected") end
  local function posint(k, v)
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math.floor(v)) then
      errorf(3, "async.queue: %s must be an integer >= 1, got %s", k, tostring(v))
    end
    return v
  end
  local q = setmetatable({
    concurrency = posint("concurrency", opts.concurrency) or huge,
    rate = posint("rate", opts.rate), per = opts.per or 1000,
    max_pending = posint("max_pending", opts.max_pending),
    running = 0, pending = 0, done = 0, failed = 0, paused = false,
    waiting = { head = 1, tail = 0 }, -- deferred items, FIFO
    granted = {},                      -- items pump started: task -> true
    space = fifo(), idle = fifo(),
  }, Queue)
  if q.rate then
    if type(q.per) ~= "number" or q.per <= 0 then errorf(2, "async.queue: per must be > 0 ms") end
    q.tokens, q.refilled = q.rate, now()
  end
  return q
end

-- Token bucket: true when a start is allowed now (and takes the token).
local function take_token(q)
  if not q.rate then return true end
  local t = now()
  q.tokens = math.min(q.rate, q.tokens + (t - q.refilled) * q.rate / q.per)
  q.refilled = t
  if q.tokens >= 1 then q.tokens = q.tokens - 1; return true end
  return false
end

local pump

-- Wake the queue again when the next token is due (one ticker at a time).
local function tick_later(q)
  if q.ticker then return end
  local wait = (1 - q.tokens) * q.per / q.rate
  q.ticker = M.detach(function()
    M.sleep(math.max(wait, 1))
    q.ticker = nil
    pump(q)
  end)
end

-- The first deferred item still waiting to start (cancelled ones are dropped:
-- they start themselves to account for their cancellation).
local function first_waiting(q)
  local w = q.waiting
  while w.head <= w.tail do
    local t = w[w.head]
    if waiting_start(t) then return t end
    w[w.head] = nil
    w.head = w.head + 1
  end
end

local function can_start(q)
  return not q.paused and q.running < q.concurrency
end

-- Start as many waiting items as slots and tokens allow.
function pump(q)
  while can_start(q) do
    local t = first_waiting(q)
    if not t then return end
    if not take_token(q) then tick_later(q); return end
    local w = q.waiting
    w[w.head] = nil
    w.head = w.head + 1
    q.running = q.running + 1
    q.pending = q.pending - 1
    q.granted[t] = true
    start_deferred(t)
  end
end

local function wake_idle(q)
  if q.running == 0 and q.pending == 0 then
    local t = q.idle:pop()
    while t do grant(t); t = q.idle:pop() end
  end
end

local function make_room(q)
  local t = q.space:pop()
  if t then grant(t) end
end

-- The slot of a running item: released when the item has fully unwound.
local Slot = { __close = function(s, err)
  local q = s.q
  q.running = q.running - 1
  if err ~= nil or s.failed then q.failed = q.failed + 1 else q.done = q.done + 1 end
  pump(q)
  wake_idle(q)
end }

local function finish(slot, ...)
  if select("#", ...) >= 2 and (...) == nil and select(2, ...) ~= nil then slot.failed = true end
  return ...
end

-- The body of every item. `deferred`: it waited in q.waiting; it runs
-- either because pump granted it a slot or because it was cancelled while
-- pending (then it only accounts for that, and fails as cancelled).
local function run_item(q, deferred, f, ...)
  if deferred then
    local me = current()
    if not q.granted[me] then
      q.pending = q.pending - 1
      q.failed = q.failed + 1
      make_room(q)
      pump(q)
      wake_idle(q)
      M.sleep(0) -- raises its cancellation
    end
    q.granted[me] = nil
  end
  make_room(q)
  local slot <close> = setmetatable({ q = q }, Slot)
  return finish(slot, f(...))
end

function Queue:push(f, ...)
  if type(f) ~= "function" then errorf(2, "queue:push: function expected, got %s", type(f)) end
  -- a caller pushing 100,000 items in a loop yields to the loop now and then
  self.pushes = (self.pushes or 0) + 1
  if self.pushes & 1023 == 0 then breathe() end
  while self.max_pending and self.pending >= self.max_pending do
    wait_ticket(self.space, {}, function() make_room(self) end)
  end
  self.pending = self.pending + 1
  if can_start(self) and not first_waiting(self) and take_token(self) then
    self.running = self.running + 1
    self.pending = self.pending - 1
    return spawn(run_item, self, false, f, ...)
  end
  -- only tokens are missing: make sure someone refills them
  if self.rate and can_start(self) then tick_later(self) end
  local t = defer(run_item, self, true, f, ...)
  local w = self.waiting
  w.tail = w.tail + 1
  w[w.tail] = t
  return t
end

function Queue:wait()
  if self.running == 0 and self.pending == 0 then return true end
  wait_ticket(self.idle, {}, function() end)
  return true
end

function Queue:stats()
  return { running = self.running, pending = self.pending, done = self.done, failed = self.failed }
end

function Queue:pause() self.paused = true end
function Queue:resume() self.paused = false; pump(self) end

-- ---- map -----------------------------------------------------------------
function M.map(list, f, opts)
  if type(list) ~= "table" then errorf(2, "async.map: list expected, got %s", type(list)) end
  if type(f) ~= "function" then errorf(2, "async.map: function expected, got %s", type(f)) end
  local n = opts and opts.concurrency or huge
  if type(n) ~= "number" or n < 1 then errorf(2, "async.map: concurrency must be >= 1") end
  local tasks, results, port = {}, {}, port_new()
  local g <close> = guard(tasks, "a sibling in map() failed")
  local total, started, finished = #list, 0, 0
  local function launch()
    started = started + 1
    local t = spawn(f, list[started], started)
    tasks[started] = t
    t_watch(t, port, started)
  end
  while started < total and started < n do
    launch()
    if started & 1023 == 0 then breathe() end -- 100,000 at once: yield between chunks
  end
  while finished < total do
    if finished & 1023 == 1023 then breathe() end
    local i = port:wait()
    finished = finished + 1
    local ok, v = t_result(tasks[i])
    if not ok then return nil, with_index(v, i) end
    results[i] = v
    if started < total then launch() end
  end
  return results
end

return M
