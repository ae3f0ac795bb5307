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

return {
  description = "Charge an account for an item, exactly once",
  concurrency = 50,
  timeout = 10000,
  retries = 3,
  backoff = 500,
  run = function(ctx, args)
    local account, price = args.account, args.price
    if math.type(account) ~= "integer" or math.type(price) ~= "integer" or price <= 0 then
      return nil, async.error("invalid", "args need an integer account and a price > 0")
    end
    -- Read, check and debit in ONE exactly-once step. The early return for
    -- insufficient funds is decided inside it and journaled too: a retry
    -- after a crash gets the same answer instead of reading the balance its
    -- own debit already lowered.
    local debit, err = ctx.db:tx(function(tx)
      local acc = tx:one("SELECT balance FROM accounts WHERE id = ?", account)
      if not acc then return nil, async.error("invalid", "no account " .. account) end
      if acc.balance < price then return { short = true, balance = acc.balance } end
      assert(tx:exec("UPDATE accounts SET balance = balance - ? WHERE id = ?", price, account))
      local o = assert(tx:exec(
        "INSERT INTO orders (account_id, item, price, job_id, created_at) VALUES (?, ?, ?, ?, ?)",
        account, args.item or "item", price, ctx.job.id, os.time() * 1000))
      return { order = o.last_id }
    end, { step = "debit" })
    if not debit then return nil, err end
    if debit.short then
      return { charged = false, reason = "insufficient funds", balance = debit.balance }
    end
    local order = debit.order

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
