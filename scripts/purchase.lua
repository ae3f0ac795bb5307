-- scripts/purchase.lua: charge an account for an item, exactly once.
--
--   awaitctl enqueue purchase '{"account":1,"item":"lamp","price":1200}' --key order-17
--
-- 1. in ONE exactly-once step: read the balance, return early (no charge)
--    if it is short, else debit and create the order; the journal row
--    commits in the same transaction, so a retry or a crash never charges
--    twice and always takes the same branch;
-- 2. ask the (simulated, slow) payment provider for a reference, with a
--    stable idempotency key: if the daemon dies during the call, the retry
--    sends the same key and the provider does not charge again;
-- 3. write the receipt as a second exactly-once step.
local fake = require "fake"
local shop = require "shop"

return {
  description = "Charge an account for an item, exactly once",
  concurrency = 50,
  timeout = 10000,
  retries = 3,
  backoff = 500,
  run = function(ctx, args)
    local sale, err = shop.charge(ctx, args)
    if sale == nil then return nil, err end
    if not sale then return err end -- short of funds: nothing charged
    local account, price, order = sale.account, sale.price, sale.order

    local ref, perr = ctx.step("provider", function()
      -- a payment provider call; ctx.step_key("provider") is its idempotency key
      return fake.call(args.provider_ms or 20, "pay-" .. ctx.step_key("provider"))
    end)
    if not ref then return nil, perr end

    local _, rerr = ctx.db:tx(function(tx)
      assert(tx:exec("INSERT INTO receipts (order_id, provider, created_at) VALUES (?, ?, ?)",
        order, ref, os.time() * 1000))
      return true
    end, { step = "receipt" })
    if rerr then return nil, rerr end
    ctx.log.info("order %d: %d charged to account %d", order, price, account)
    return { charged = true, order = order, provider = ref }
  end,
}
