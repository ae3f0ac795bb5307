-- unobserved_return.lua: a child fails by returning nil, err and nobody
-- awaits it: it is logged with the error and a traceback too.
local function refund(order)
  async.sleep(1)
  return nil, async.error("refund_failed", "order " .. order .. " not refundable")
end
async.spawn(refund, 1234)
async.sleep(20)
return true
