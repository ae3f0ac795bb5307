-- scripts/lib/shop.lua: what the example purchase scripts share
-- (purchase.lua, checkout.lua). `require "shop"`.
local M = {}

-- The args' account and price, or nil, invalid.
function M.check(args)
  local account, price = args and args.account, args and args.price
  if math.type(account) ~= "integer" or math.type(price) ~= "integer" or price <= 0 then
    return nil, async.error("invalid", "args need an integer account and a price > 0")
  end
  return account, price
end

-- Read, check and debit in ONE exactly-once step ("debit"). The early
-- return for insufficient funds is decided inside it and journaled too: a
-- retry after a crash gets the same answer instead of reading the balance
-- its own debit already lowered. {order = id} | {short = true, balance} |
-- nil, err.
function M.debit(ctx, account, price, item)
  return ctx.db:tx(function(tx)
    local acc, qerr = tx:one("SELECT balance FROM accounts WHERE id = ?", account)
    if qerr then return nil, qerr end
    if not acc then return nil, async.error("invalid", "no account " .. account) end
    if acc.balance < price then return { short = true, balance = acc.balance } end
    assert(tx:exec("UPDATE accounts SET balance = balance - ? WHERE id = ?", price, account))
    -- RETURNING id, not last_id: PostgreSQL has no rowid (the same SQL runs on both stores)
    local o = assert(tx:one(
      "INSERT INTO orders (account_id, item, price, job_id, created_at) VALUES (?, ?, ?, ?, ?)"
      .. " RETURNING id", account, item or "item", price, ctx.job.id, os.time() * 1000))
    return { order = o.id }
  end, { step = "debit" })
end

-- Check the args and debit (M.check, M.debit): {order, account, price} |
-- nil, err | false, result when the funds are short (the job's answer:
-- nothing was charged).
function M.charge(ctx, args)
  local account, price = M.check(args)
  if not account then return nil, price end
  local debit, err = M.debit(ctx, account, price, args.item)
  if not debit then return nil, err end
  if debit.short then
    return false, { charged = false, reason = "insufficient funds", balance = debit.balance }
  end
  return { order = debit.order, account = account, price = price }
end

return M
