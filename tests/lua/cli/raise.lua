-- raise.lua: the root task raises: exit 1, message and traceback on stderr.
local function explode()
  async.sleep(1)
  error("kaboom from the root")
end
explode()
