-- W8 http: N GETs of a small JSON document, at most C in flight, through
-- async.queue{concurrency = C}. Peer: node/http_fanout.mjs (fetch + p-limit).
-- Every response must be status 200 with exactly the expected body (and
-- decode as JSON); anything else counts in "errors".
-- Pushing 10,000 items can take tens of ms on a busy machine, near the
-- 100 ms default max slice, so the push loop yields (sleep(0)) whenever it
-- has run YIELD_MS (default 40) without suspending ("yields" counts them;
-- {"yield_ms":0} never yields). The queue is already running while the loop
-- pushes, so the yields barely change the result.
-- usage: awaitd run tests/bench/w8_http.lua '{"url":"http://127.0.0.1:18080/data.json",
--          "n":10000,"concurrency":50,"expect_file":"html/data.json"}'
local args = ... or {}
local URL = args.url or "http://127.0.0.1:18080/data.json"
local N = math.tointeger(args.n) or 10000
local C = math.tointeger(args.concurrency) or 50
-- the expected body: args.expect, or the file args.expect_file (the
-- document nginx serves), or else the warm-up response's body
local EXPECT = args.expect
if not EXPECT and args.expect_file then
  local f = assert(io.open(args.expect_file, "rb"))
  EXPECT = f:read("a"); f:close()
end
local YIELD_MS = args.yield_ms or 40

local get, now, sleep = http.get, async.now, async.sleep

-- a warm-up request (not timed): checks the server and learns the body
do
  local r, err = get(URL)
  if not r then error("warm-up GET " .. URL .. " failed: " .. tostring(err)) end
  if r.status ~= 200 then error("warm-up GET " .. URL .. ": status " .. r.status) end
  EXPECT = EXPECT or r.body
end

local errors, first_error, running, peak = 0, nil, 0, 0
local function fail(why)
  errors = errors + 1
  first_error = first_error or why
end

local function fetch_one()
  running = running + 1
  if running > peak then peak = running end
  local r, err = get(URL)
  running = running - 1
  if not r then
    fail(tostring(err))
  elseif r.status ~= 200 then
    fail("status " .. r.status)
  elseif r.body ~= EXPECT then
    fail("unexpected body: " .. r.body:sub(1, 80))
  elseif not json.decode(r.body) then
    fail("body is not JSON")
  end
end

local t0 = now()
local q = async.queue{ concurrency = C }
local yields, last = 0, t0
for i = 1, N do
  q:push(fetch_one)
  if YIELD_MS > 0 and i % 64 == 0 and i < N and now() - last >= YIELD_MS then
    sleep(0); yields = yields + 1; last = now()
  end
end
local push_ms = now() - t0
q:wait()
local ms = now() - t0
local st = q:stats()
if st.failed > 0 then errors = errors + st.failed; first_error = first_error or "a queue item raised" end

print(string.format('{"bench":"http","impl":"awaitd","n":%d,"concurrency":%d,"ms":%.1f,' ..
  '"per_s":%.0f,"ok":%d,"errors":%d,"peak":%d,"push_ms":%.1f,"yields":%d,' ..
  '"note":"async.queue{concurrency=%d}; push loop yields via async.sleep(0) every %s ms of running (max slice 100 ms)"%s}',
  N, C, ms, N / ms * 1000, N - errors, errors, peak, push_ms, yields, C, tostring(YIELD_MS),
  first_error and (',"first_error":' .. json.encode(first_error)) or ""))
if peak > C then error("peak " .. peak .. " exceeded the limit " .. C) end
