-- orphan.lua: a child still running when the root finishes is cancelled
-- and a WARN names it (its id and where it waits).
local child = async.spawn(function()
  async.sleep(10000) -- ORPHAN_SLEEP
end)
print("orphan-id=" .. child.id)
async.sleep(1)
return true
