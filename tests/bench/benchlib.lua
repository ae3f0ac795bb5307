-- benchlib.lua: helpers shared by the benchmark scripts.
local B = {}

-- A field of /proc/self/status in KiB ("VmHWM", "VmRSS"), or nil.
function B.vm(key)
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a"); f:close()
  local kb = s:match(key .. ":%s*(%d+)")
  return kb and tonumber(kb) or nil
end

return B
