-- testlib.lua: a tiny test harness for Lua API tests run by `awaitd run`.
--
--   local T = require "testlib"
--   T.test("name", function() T.eq(1 + 1, 2) end)
--   return T.run()
--
-- Each test runs as its own task, awaited in order. A test fails when it
-- raises or returns nil, err. T.run() prints one line per test and the
-- closing "N passed, N failed" line, and returns nil, err when any test
-- failed, so `awaitd run` exits 1.
local T = {}
local tests = {}

function T.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: expected %s, got %s", what or "value", show(want), show(got)), 2)
  end
  return got
end

function T.ok(v, what)
  if not v then error(what or "expected a true value", 2) end
  return v
end

-- Deep equality for plain tables.
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

function T.same(got, want, what)
  if not same(got, want) then
    local enc = json and json.encode or tostring
    error(string.format("%s: expected %s, got %s", what or "value",
      tostring(enc(want)), tostring(enc(got))), 2)
  end
  return got
end

-- Assert that an error value has the given code; returns it.
function T.err(err, code, what)
  if type(err) ~= "table" or err.code ~= code then
    error(string.format("%s: expected error %q, got %s", what or "error", code, show(err)), 2)
  end
  return err
end

-- Assert that a <= v <= b (generous bounds for timing).
function T.between(v, a, b, what)
  if type(v) ~= "number" or v < a or v > b then
    error(string.format("%s: expected between %s and %s, got %s", what or "value", a, b, show(v)), 2)
  end
  return v
end

-- Assert that the string s contains sub (plain text); returns s.
function T.contains(s, sub, what)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    error(string.format("%s: expected text containing %q, got %s", what or "text", sub, show(s)), 2)
  end
  return s
end

-- A log to record what happened, in order: local rec, log = T.recorder()
function T.recorder()
  local rec = {}
  return rec, function(s) rec[#rec + 1] = s end
end

-- True when the recorded list holds s.
function T.has(rec, s)
  for _, v in ipairs(rec) do if v == s then return true end end
  return false
end

function T.run()
  local passed, failed = 0, 0
  local only = os.getenv("TEST_ONLY")
  for _, t in ipairs(tests) do
    if not only or t.name:find(only, 1, true) then
      local task = async.spawn(t.fn)
      local _, err = task:await()
      if err == nil then
        passed = passed + 1
        print("ok   " .. t.name)
      else
        failed = failed + 1
        print("FAIL " .. t.name .. ": " .. tostring(err))
        if type(err) == "table" and err.traceback then print(err.traceback) end
      end
    end
  end
  print(string.format("%d passed, %d failed", passed, failed))
  if failed > 0 then return nil, async.error("error", failed .. " test(s) failed") end
  return true
end

return T
