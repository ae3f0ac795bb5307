-- unobserved.lua: a child fails and nobody awaits it: its error and
-- traceback are logged when its parent (the root) finishes.
local function failing_helper()
  async.sleep(1)
  error("unobserved failure xyzzy")
end
async.spawn(failing_helper)
async.sleep(20)
return true
