-- observed_later.lua: a child fails, the root awaits it later and handles
-- the error: nothing is reported as unobserved, no orphan warning.
local child = async.spawn(function()
  async.sleep(1)
  error("handled failure")
end)
async.sleep(20)
local v, err = child:await()
print("handled: " .. tostring(err and err.code))
return true
