-- test_orphans.lua: "No orphans" and async.detach (SPEC 2). The warnings
-- and unobserved-failure logs on stderr are checked by run_cli.sh.
local T = require "testlib"
local recorder = T.recorder

T.test("a child still running when its parent returns is cancelled", function()
  local rec, log = recorder()
  local child
  local parent = async.spawn(function()
    child = async.spawn(function()
      local c <close> = setmetatable({}, { __close = function() log "child closed" end })
      async.sleep(10000)
      log "child finished (not expected)"
    end)
    async.sleep(1)
    return "parent done"
  end)
  T.eq(parent:await(), "parent done")
  local t0 = async.now()
  local v, err = child:await()
  T.between(async.now() - t0, 0, 500, "the orphan was cancelled promptly")
  T.eq(v, nil)
  T.err(err, "cancelled")
  T.eq(child:status(), "cancelled")
  T.eq(table.concat(rec, " "), "child closed")
end)

T.test("a parent that fails cancels its running children too", function()
  local child
  local parent = async.spawn(function()
    child = async.spawn(function() async.sleep(10000) end)
    async.sleep(1)
    error("parent broke", 0)
  end)
  local _, perr = parent:await()
  T.err(perr, "error")
  local _, cerr = child:await()
  T.err(cerr, "cancelled")
end)

T.test("orphans' own children are cancelled as well", function()
  local grandchild
  local parent = async.spawn(function()
    async.spawn(function()
      grandchild = async.spawn(function() async.sleep(10000) end)
      async.sleep(10000)
    end)
    return "p"
  end)
  parent:await()
  local _, err = grandchild:await()
  T.err(err, "cancelled")
end)

T.test("children that finished or were awaited are left alone", function()
  local a, b
  local parent = async.spawn(function()
    a = async.spawn(function() async.sleep(1); return "a" end)
    b = async.spawn(function() return "b" end)
    return a:await()
  end)
  T.eq(parent:await(), "a")
  T.eq(a:status(), "done")
  T.eq(b:status(), "done")
  T.eq(b:await(), "b")
end)

T.test("a detached task outlives its spawner", function()
  local rec, log = recorder()
  local d
  local parent = async.spawn(function()
    d = async.detach(function(x)
      async.sleep(30)
      log "detached finished"
      return x * 2
    end, 21)
    return "parent done"
  end)
  T.eq(parent:await(), "parent done")
  T.eq(d:status(), "suspended", "still running after its spawner finished")
  T.eq(d:await(), 42)
  T.eq(table.concat(rec, " "), "detached finished")
end)

T.test("detach runs the function until its first suspension, like spawn", function()
  local rec, log = recorder()
  local d = async.detach(function()
    log "A"
    async.sleep(0)
    log "B"
  end)
  log "C"
  d:await()
  T.eq(table.concat(rec, " "), "A C B")
end)

T.test("cancelling the spawner does not cancel a detached task", function()
  local d
  local parent = async.spawn(function()
    d = async.detach(function()
      async.sleep(20)
      return "survived"
    end)
    async.sleep(10000)
  end)
  parent:cancel()
  local _, err = parent:await()
  T.err(err, "cancelled")
  T.eq(d:await(), "survived")
end)

T.test("a detached task can still be cancelled directly", function()
  local d = async.detach(function() async.sleep(10000) end)
  d:cancel("explicit")
  local _, err = d:await()
  T.err(err, "cancelled")
  T.eq(err.message, "explicit")
end)

T.test("a task spawned inside a detached one belongs to it", function()
  local inner
  local d = async.detach(function()
    inner = async.spawn(function() async.sleep(10000) end)
    async.sleep(1)
    return "d"
  end)
  T.eq(d:await(), "d")
  local _, err = inner:await()
  T.err(err, "cancelled", "the detached task's orphan was cancelled")
end)

T.test("a task spawned inside a plain coroutine belongs to the enclosing task", function()
  -- spawn called from a coroutine.wrap generator running in a task: the
  -- new task is still that task's child, cancelled when it finishes (only
  -- async.detach makes a task owned by nobody).
  local inner
  local parent = async.spawn(function()
    coroutine.wrap(function()
      inner = async.spawn(function() async.sleep(10000); return "lived on" end)
    end)()
    return "parent done"
  end)
  T.eq(parent:await(), "parent done")
  local v, err = async.timeout(1000, inner)
  T.eq(v, nil, "the inner task did not live on")
  T.err(err, "cancelled")
end)

T.test("detach rejects a non-function", function()
  T.eq(pcall(async.detach, 42), false)
end)

return T.run()
