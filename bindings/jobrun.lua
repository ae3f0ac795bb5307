-- jobrun.lua: runs one attempt of a durable job (daemon/jobs/jobs.c) and builds
-- its ctx: job, log, deadline, db (with db:tx), step, step_key, the durable
-- waits, progress.
--
-- Loaded once by the daemon with (finish, make_log, db, trace, park,
-- cancel, progress); returns
-- the runner, which jobs.c spawns as a detached task per attempt.
-- finish(token, value, err) is called exactly once per attempt, also when
-- the attempt is cancelled (timeout, `awaitctl cancel`, shutdown).
--
-- Steps are numbered in the order an attempt reaches them (seq 1, 2, ...);
-- the store checks each against the journal (same seq, same name) so a
-- later attempt that takes another path fails with "nondeterministic".
-- When the claim found no journal rows for the job (`journaled` false:
-- its first attempt, as a rule) there is nothing to replay, and steps and
-- transactions skip the check and its round trip to the store.
-- Journaled results are {n = count, v = {...}} with json.null for nil.
--
-- Durable waits (ctx.sleep, ctx.sleep_until, ctx.wait_signal) are steps
-- too. Reached, a wait asks the store (db.wait): ended already (journaled:
-- its result returns at once), a signal at hand or a deadline passed (the
-- store journals that now and it returns), or it must wait: park() unwinds
-- the run (a cancellation whose error has parked = true) and the job waits
-- in the store, to run again from the start when woken, its journaled
-- steps returning without running. cancel() instead when `cancel` reached
-- the job while it waited.
local finish, make_log, db, trace, park, cancel_run, progress, timeout = ...
-- private references, taken once: what a script can reach are read-only
-- views of these modules, and the runner never looks them up again
local pack, unpack, tostring, type, pcall, setmetatable =
  table.pack, table.unpack, tostring, type, pcall, setmetatable
local aerror, now, asleep = async.error, async.now, async.sleep
local floor, huge, mtype, ulen = math.floor, math.huge, math.type, utf8.len
local jencode, jdecode, null = json.encode, json.decode, json.null
local logs = {}
local runs = setmetatable({}, { __mode = "k" }) -- job handle -> {job_id, seq}

local function encode(r)
  local v = {}
  for i = 1, r.n do
    if r[i] == nil then v[i] = null else v[i] = r[i] end
  end
  return jencode({ n = r.n, v = v })
end

local function decode(text)
  local j = jdecode(text)
  local r = { n = j.n }
  for i = 1, j.n do
    if j.v[i] ~= null then r[i] = j.v[i] end
  end
  return unpack(r, 1, r.n)
end

-- Journal text for r, or nil, err when a result is not JSON or its JSON
-- is over max_bytes (max_result_bytes: a journal row is shown and replayed
-- like a result, and must not be bigger than one).
local function journal(r, what, max_bytes)
  local ok, text = pcall(encode, r)
  if not ok then
    return nil, aerror("invalid", what .. ": its results must be JSON-serialisable: "
      .. tostring(text))
  end
  if max_bytes and #text > max_bytes then
    return nil, aerror("too_large", string.format(
      "%s: its results are %d bytes of JSON, over max_result_bytes = %d",
      what, #text, max_bytes), { bytes = #text, limit = max_bytes })
  end
  return text
end

local function next_seq(st, name, what)
  if type(name) ~= "string" or name == "" then
    error(what .. ": the step name must be a non-empty string", 3)
  end
  st.seq = st.seq + 1
  return st.seq
end

-- nil, err for a step that failed. A nondeterministic one also decides the
-- attempt's outcome: the run fails with it even if the script goes on
-- (the journal must not be mixed with another path's steps).
local function failed(st, err)
  if type(err) == "table" and err.code == "nondeterministic" then st.nondet = st.nondet or err end
  return nil, err
end

-- The job parked at step seq last time: a step there means the code changed.
local function parked_here(st, seq, what, name)
  if st.wait_seq ~= seq then return nil end
  return aerror("nondeterministic", string.format(
    "%s %s is step %d, where job %d waited the last time it ran;"
    .. " this run reached its steps in a different order", what, name, seq, st.job_id))
end

-- Rolls a transaction back unless it ended (committed, or found journaled).
local TxGuard = { __close = function(g) if not g.ended then db.rollback(g.token) end end }

-- db:tx(fn [, {step = name}])
function db.methods.tx(self, fn, opts)
  local st = runs[self]
  if not st then
    error("db:tx: transactions do not nest; use tx:query/one/exec inside fn", 2)
  end
  if type(fn) ~= "function" then error("db:tx: fn must be a function", 2) end
  local step = opts and opts.step
  local seq = step ~= nil and next_seq(st, step, "db:tx") or 0
  local perr = step ~= nil and parked_here(st, seq, "db:tx step", step)
  if perr then return failed(st, perr) end
  local span = trace.open(step and ("tx " .. step) or "tx", 2)
  local token = db.new_tx()
  -- whatever happens from here (cancellation included), the writer is given back
  local guard <close> = setmetatable({ token = token }, TxGuard)
  local ok, text
  if st.journaled then -- a step may be journaled: check before running fn
    ok, text = db.begin(st.job_id, seq, step, token)
  else -- nothing to replay: begin without waiting, fn's first request waits
    ok, text = db.open(token)
  end
  if not ok then
    trace.close(span, "failed")
    return failed(st, text)
  end
  if ok == "journaled" then
    guard.ended = true
    trace.close(span, "done")
    return decode(text)
  end
  local r = pack(pcall(fn, db.handle(st.job_id, token)))
  if not r[1] or r[2] == nil then
    trace.close(span, "failed")
    if not r[1] then
      local e = r[2]
      if type(e) ~= "table" then e = aerror("error", tostring(e)) end
      return nil, e
    end
    return nil, r[3]
  end
  r = pack(unpack(r, 2, r.n))
  local jtext, jerr
  if step then
    jtext, jerr = journal(r, "db:tx step " .. step, st.max_bytes)
    if not jtext then
      trace.close(span, "failed")
      return nil, jerr
    end
  end
  guard.ended = true -- the store owns the end now: commit, journal row included
  local cok, cerr = db.commit(st.job_id, seq, step, token, jtext)
  trace.close(span, cok and "done" or "failed")
  if not cok then return failed(st, cerr) end
  return unpack(r, 1, r.n)
end

local function make_step(st)
  return function(name, fn, ...)
    local seq = next_seq(st, name, "ctx.step")
    if type(fn) ~= "function" then error("ctx.step: fn must be a function", 2) end
    local perr = parked_here(st, seq, "ctx.step", name)
    if perr then return failed(st, perr) end
    local span = trace.open("step " .. name, 2)
    local found, text = false, nil
    if st.journaled then found, text = db.step_get(st.job_id, seq, name) end
    if found == nil then
      trace.close(span, "failed")
      return failed(st, text)
    end
    if found then
      trace.close(span, "done")
      return decode(text)
    end
    local r = pack(fn(...))
    if r[1] == nil then -- a failure is not journaled: the next attempt tries again
      trace.close(span, "failed")
      return unpack(r, 1, r.n)
    end
    local jtext, jerr = journal(r, "ctx.step " .. name, st.max_bytes)
    if not jtext then
      trace.close(span, "failed")
      return nil, jerr
    end
    local ok, err = db.step_put(st.job_id, seq, name, jtext)
    trace.close(span, ok and "done" or "failed")
    if not ok then return failed(st, err) end
    return unpack(r, 1, r.n)
  end
end

-- ---- durable waits ----------------------------------------------------------------

local MAX_WAIT_MS = 3650 * 86400000 -- ten years, as for an enqueue's delay
local MAX_SIGNAL_NAME = 200

local function invalid(msg) error(aerror("invalid", msg), 3) end

-- What an ended wait returns, from its journal text.
local function wait_result(text, signal)
  local j = jdecode(text)
  if j.n == 1 then return j.v[1] end -- a signal's payload (json.null when it had none)
  if j.n == 2 and type(j.v[2]) == "table" then
    return nil, aerror(j.v[2].code or "error", j.v[2].message or "the wait failed")
  end
  return signal == nil or nil
end

-- Reach the wait at the next step: return its result, or park the run.
-- at: the wall-clock deadline (epoch ms), or after: ms from now (-1: use at).
local function durable_wait(st, what, signal, at, after)
  if st.nondet then error(st.nondet, 0) end -- it must not park: the attempt has failed
  if st.ended then
    invalid(what .. ": the job's run has ended; a task it left behind cannot wait for it")
  end
  st.seq = st.seq + 1
  local seq = st.seq
  local span = trace.open(signal and ("wait " .. signal) or "sleep", 3)
  local how, v = db.wait(st.job_id, seq, signal or "sleep", signal, at, after, st.lease)
  if how == "done" then
    trace.close(span, "done")
    return wait_result(v, signal)
  elseif how == nil then -- the store failed it (nondeterministic, a full disk): raised,
    trace.close(span, "failed") -- since a sleep's result is seldom looked at
    failed(st, v)
    error(v, 0)
  end
  if how == "cancelled" then
    trace.close(span, "cancelled")
    cancel_run(st.serial)
  else
    trace.close(span, "waiting")
    park(st.serial, seq, signal, v)
  end
  asleep(0) -- raises: the run is cancelled now
  error(aerror("cancelled", "the job parked"), 0) -- not reached
end

local function check_ms(ms, what)
  if type(ms) ~= "number" or ms ~= ms or ms < 0 or ms > MAX_WAIT_MS then
    invalid(string.format("%s: ms must be a number of milliseconds from 0 to %d, not %s",
      what, MAX_WAIT_MS, type(ms) == "number" and tostring(ms) or type(ms)))
  end
  return mtype(ms) == "integer" and ms or floor(ms + 0.5)
end

local MAX_PROGRESS_MESSAGE = 256

-- ctx.progress(fraction [, message]): the C side keeps the latest and writes
-- it at most a few times a second; true, or false once the run is over.
local function make_progress(st)
  return function(fraction, message)
    if type(fraction) ~= "number" or not (fraction >= 0 and fraction <= 1) then
      invalid("ctx.progress: the fraction must be a number from 0 to 1, not "
        .. (type(fraction) == "number" and tostring(fraction) or type(fraction)))
    end
    if message ~= nil and (type(message) ~= "string" or #message > MAX_PROGRESS_MESSAGE
        or not ulen(message)) then
      invalid(string.format("ctx.progress: the message must be UTF-8 text of at most %d"
        .. " bytes, not %s", MAX_PROGRESS_MESSAGE,
        type(message) == "string" and (#message .. " bytes") or type(message)))
    end
    return progress(st.serial, fraction, message)
  end
end

local function make_waits(st)
  -- (no tail calls below: the trace names the caller's line, 3 frames up)
  local function sleep(ms)
    local ok, err = durable_wait(st, "ctx.sleep", nil, 0, check_ms(ms, "ctx.sleep"))
    return ok, err
  end
  local function sleep_until(at)
    if type(at) ~= "number" or at ~= at or at < 0 or at == huge then
      invalid("ctx.sleep_until: the time must be unix epoch milliseconds, not "
        .. (type(at) == "number" and tostring(at) or type(at)))
    end
    local ok, err = durable_wait(st, "ctx.sleep_until", nil, math.max(floor(at), 1), -1)
    return ok, err
  end
  local function wait_signal(name, opts)
    if type(name) ~= "string" or name == "" or #name > MAX_SIGNAL_NAME then
      invalid(string.format("ctx.wait_signal: the signal name must be a string of 1 to %d"
        .. " bytes, not %s", MAX_SIGNAL_NAME,
        type(name) == "string" and (#name .. " bytes") or type(name)))
    end
    if opts ~= nil and type(opts) ~= "table" then
      invalid("ctx.wait_signal: opts must be a table {timeout = ms}, not " .. type(opts))
    end
    local t = opts and opts.timeout
    local after = t == nil and -1 or check_ms(t, "ctx.wait_signal timeout")
    local v, err = durable_wait(st, "ctx.wait_signal", name, 0, after)
    return v, err
  end
  return sleep, sleep_until, wait_signal
end

return function(job, name, id, attempt, args, timeout_ms, token, journaled, max_bytes, wait_seq,
                serial, lease)
  local finished = false
  local st -- (below) its `ended` tells a task the run left behind that the run is over
  local guard <close> = setmetatable({}, { __close = function(_, e)
    if st then st.ended = true end
    if not finished then
      finished = true
      finish(token, nil, e or aerror("cancelled", "the run was cancelled"))
    end
  end })
  local log = logs[name]
  if not log then
    log = make_log(name)
    logs[name] = log
  end
  local h = db.handle(id)
  st = { job_id = id, seq = 0, journaled = journaled, max_bytes = max_bytes,
    serial = serial, lease = lease, wait_seq = wait_seq ~= 0 and wait_seq or nil }
  runs[h] = st
  local sleep, sleep_until, wait_signal = make_waits(st)
  local ctx = {
    job = { id = id, name = name, attempt = attempt, args = args },
    log = log,
    deadline = now() + timeout_ms,
    db = h,
    step = make_step(st),
    sleep = sleep,
    sleep_until = sleep_until,
    wait_signal = wait_signal,
    progress = make_progress(st),
    step_key = function(step)
      return "awaitd-" .. id .. "-" .. tostring(step)
    end,
  }
  local run = job.run -- a local: the trace names the task after it ("run purchase.lua:7")
  local v, err = timeout(timeout_ms, run, ctx, args)
  if st.nondet then v, err = nil, st.nondet end
  finished = true
  st.ended = true
  finish(token, v, err)
end
