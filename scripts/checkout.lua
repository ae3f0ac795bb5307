-- scripts/checkout.lua: a purchase that waits for people and for webhooks,
-- for as long as they take, across restarts (durable waits).
--
--   awaitctl enqueue checkout '{"account":1,"item":"sofa","price":6000}'
--   awaitctl signal ID approve '{"by":"ada"}'        # or '{"ok":false}' to refuse
--   awaitctl signal ID paid '{"ref":"pay-123"}'       # the provider's webhook
--
-- 1. debit the account, exactly once (db:tx step);
-- 2. over the approval limit (args.limit, 5000 cents): wait for a person's
--    `approve` signal; refused, or none within args.approve_ms (one day),
--    the money is given back;
-- 3. start the payment at the (simulated) provider, with a stable
--    idempotency key, and wait for its `paid` webhook (args.pay_ms, 15
--    minutes); none in time: given back;
-- 4. write the receipt, exactly once.
--
-- While it waits the job holds no concurrency slot and no memory: it is
-- `waiting` in the database, and runs again from its journal when the
-- signal comes (steps already done return their journaled results).
local fake = require "fake"
local shop = require "shop"

local DAY, QUARTER = 86400000, 900000

-- Give the money back, exactly once, and say why.
local function refund(ctx, debit, price, account, reason)
  local _, err = ctx.db:tx(function(tx)
    assert(tx:exec("UPDATE accounts SET balance = balance + ? WHERE id = ?", price, account))
    assert(tx:exec("INSERT INTO refunds (order_id, reason, created_at) VALUES (?, ?, ?)",
      debit.order, reason, os.time() * 1000))
    return true
  end, { step = "refund" })
  if err then return nil, err end
  ctx.log.info("order %d: refunded (%s)", debit.order, reason)
  return { charged = false, refunded = true, order = debit.order, reason = reason }
end

return {
  description = "A purchase that waits for approval and for the provider's webhook",
  concurrency = 50,
  timeout = 10000, -- per run: the time spent waiting does not count
  run = function(ctx, args)
    local sale, err = shop.charge(ctx, args)
    if sale == nil then return nil, err end
    if not sale then return err end -- short of funds: nothing charged
    local account, price, debit = sale.account, sale.price, sale

    if price > (args.limit or 5000) then
      ctx.log.info("order %d: %d is over the limit, waiting for approve", debit.order, price)
      local ok, werr = ctx.wait_signal("approve", { timeout = args.approve_ms or DAY })
      if not ok then return refund(ctx, debit, price, account, "not approved: " .. werr.code) end
      if type(ok) == "table" and ok.ok == false then
        return refund(ctx, debit, price, account, "refused")
      end
    end

    local payment, perr = ctx.step("payment", function()
      -- start the payment; the provider calls back (the `paid` signal) when it is done
      return fake.call(args.provider_ms or 20, "pay-" .. ctx.step_key("payment"))
    end)
    if not payment then return nil, perr end
    local paid, terr = ctx.wait_signal("paid", { timeout = args.pay_ms or QUARTER })
    if not paid then return refund(ctx, debit, price, account, "not paid: " .. terr.code) end

    local _, rerr = ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO receipts (order_id, provider, created_at) VALUES (?, ?, ?)",
        debit.order, type(paid) == "table" and paid.ref or payment, os.time() * 1000))
      return true
    end, { step = "receipt" })
    if rerr then return nil, rerr end
    ctx.log.info("order %d: %d paid by account %d", debit.order, price, account)
    return { charged = true, order = debit.order, payment = payment }
  end,
}
