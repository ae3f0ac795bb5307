-- testrun.lua: the runner of `awaitd test` (daemon/service/test.c).
--
-- Loaded once per test file with (db, chunk, file, first): db is the
-- internal db module (db.c), chunk the test file loaded as a function, file
-- its name, first the TAP number of its first test. Returns the root task's
-- function, which runs the chunk (it registers tests with test(name, fn)),
-- then each test as a task of its own, in order, printing a TAP line each;
-- it returns the number of tests and the number that failed.
--
-- A test fails when it raises, returns nil, err, or is still running after
-- its timeout (virtual time: default one day), which is how a test that
-- waits for something nothing will do ends instead of hanging.
local db, chunk, file, first, timeout = ...
local pack, tostring, type, pairs, ipairs =
  table.pack, tostring, type, pairs, ipairs
local aerror, now = async.error, async.now
local jencode = json.encode
local DAY = 86400000

local tests = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, s = pcall(jencode, v)
    if ok then return s end
  end
  return tostring(v)
end

local function fail(what, fmt, ...)
  error(aerror("assertion", (what and (what .. ": ") or "") .. string.format(fmt, ...)), 3)
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local api = {}

-- test.eq(got, want [, what]): got == want
function api.eq(got, want, what)
  if got ~= want then fail(what, "expected %s, got %s", show(want), show(got)) end
  return got
end

-- test.ok(v [, what]): v is true-ish
function api.ok(v, what)
  if not v then fail(what, "expected a true value, got %s", show(v)) end
  return v
end

-- test.same(got, want [, what]): equal tables, deeply
function api.same(got, want, what)
  if not same(got, want) then fail(what, "expected %s, got %s", show(want), show(got)) end
  return got
end

-- test.err(err, code [, what]): an error value with that code
function api.err(err, code, what)
  if type(err) ~= "table" or err.code ~= code then
    fail(what, "expected an error %q, got %s", code, show(err))
  end
  return err
end

-- test.contains(s, sub [, what]): s holds sub (plain text)
function api.contains(s, sub, what)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    fail(what, "expected text containing %q, got %s", sub, show(s))
  end
  return s
end

-- test.db: the database, as ctx.db is (outside any job): query, one, exec
local h = db.handle(0)
api.db = setmetatable({}, { __index = {
  query = function(_, ...) return h:query(...) end,
  one = function(_, ...) return h:one(...) end,
  exec = function(_, ...) return h:exec(...) end,
  tx = function() error("test.db:tx: transactions are jobs' (ctx.db:tx); use test.db:exec", 2) end,
} })

-- test(name, fn [, {timeout = ms}])
setmetatable(api, { __call = function(_, name, fn, opts)
  if type(name) ~= "string" or type(fn) ~= "function" then
    error("test(name, fn [, opts]): a name and a function", 2)
  end
  tests[#tests + 1] = { name = name, fn = fn, timeout = opts and opts.timeout or DAY }
end })

local function diagnostic(err)
  local text = type(err) == "table" and (tostring(err.code or "error") .. ": "
    .. tostring(err.message)) or tostring(err)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = "# " .. line end
  if type(err) == "table" and type(err.traceback) == "string" then
    for line in err.traceback:gmatch("[^\n]+") do out[#out + 1] = "#   " .. line end
  end
  return table.concat(out, "\n")
end

-- The error of code that ran into its timeout of ms.
local function stuck(ms)
  return aerror("timeout", string.format("still running after %d ms of virtual time"
    .. " (does it wait for something nothing will do?)", ms))
end

return function()
  _G.test = api
  -- the file's own code too has a (virtual) day at most
  local t0 = now()
  local _, err = timeout(DAY, function() chunk() end)
  if err and type(err) == "table" and err.code == "timeout" and now() - t0 >= DAY then
    err = stuck(DAY)
  end
  if err then
    print(string.format("not ok %d - %s: the file failed to load", first, file))
    print(diagnostic(err))
    return 1, 1
  end
  local failed = 0
  for i, t in ipairs(tests) do
    local t0 = now()
    local r = pack(timeout(t.timeout, function() return t.fn() end))
    local e
    if r[1] == nil and r.n >= 2 and r[2] ~= nil then e = r[2] end
    if e and type(e) == "table" and e.code == "timeout" and now() - t0 >= t.timeout then
      e = stuck(t.timeout)
    end
    if e then
      failed = failed + 1
      print(string.format("not ok %d - %s", first + i - 1, t.name))
      print(diagnostic(e))
    else
      print(string.format("ok %d - %s", first + i - 1, t.name))
    end
  end
  return #tests, failed
end
