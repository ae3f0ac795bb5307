-- scripts/lib/fake.lua: simulated slow services for the example jobs (until
-- the http module lands). `require "fake"` from any job script.
local M = {}

-- A service call that takes `ms` and returns `value`.
function M.call(ms, value)
  async.sleep(ms)
  return value
end

return M
