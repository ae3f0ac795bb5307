-- worker_fns.lua: the module test_worker.lua and test_worker_oom.lua run in
-- async.worker's states (found on package.path: this directory).
local M = {}

function M.add(a, b) return a + b, "sum" end

function M.echo(...) return ... end

-- n rounds of string hashing: CPU work that never yields
function M.hash(n)
  local h = 0
  for i = 1, n do
    for j = 1, 16 do h = (h * 31 + string.byte("abcdefghijklmnop", j) + i) % 4294967296 end
  end
  return h
end

function M.forever() while true do end end

-- a loop that tries to swallow its stop with pcall
function M.stubborn()
  while true do pcall(function() while true do end end) end
end

-- endless loops inside coroutines (hooks are per thread)
function M.cospin() coroutine.wrap(function() while true do end end)() end
function M.coresume()
  local co = coroutine.create(function() while true do end end)
  return coroutine.resume(co)
end
-- coroutines that end still work as Lua's do
function M.coworks()
  local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
  local first = co(1)
  return first, co(5), select(2, coroutine.resume(coroutine.create(function() error("x", 0) end)))
end

function M.raise(x) return x.field end -- x is nil: "attempt to index a nil value"

function M.fail() error("worker says no", 0) end

function M.bomb()
  local t = {}
  for i = 1, math.huge do t[i] = string.rep("x", 64) .. i end
end

function M.returns_function() return function() end end

-- what a worker state can see
function M.env()
  return { json = json ~= nil and json.encode({ 1 }) or false, async = async ~= nil,
           jobs = jobs ~= nil, db = db ~= nil }
end

M.not_a_function = 42

return M
