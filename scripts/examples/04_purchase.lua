-- 04_purchase.lua: return early on a business failure, else do the two
-- independent writes in parallel.
--
-- The same thing in Node.js:
--
--   async function purchase({ user, amount }) {
--     const balance = await getBalance(user);
--     if (balance < amount) {
--       return [null, { code: "insufficient_funds", balance, amount }];
--     }
--     const [debit, order] = await Promise.all([debit(user, amount), createOrder(user, amount)]);
--     return [{ order: order.id, balance: debit.balance }, null];
--   }
--
-- Run:  awaitd run scripts/examples/04_purchase.lua                              (succeeds)
--       awaitd run scripts/examples/04_purchase.lua '{"user":"ann","amount":30}'  (succeeds)
--       awaitd run scripts/examples/04_purchase.lua '{"user":"bob","amount":30}'  (exits 1)
--
-- (In a real job the debit would be a durable step, ctx.db:tx(fn, {step =
-- "debit"}), so a retry never charges twice; see SPEC section 4.)

local args = ... or { user = "ann", amount = 30 }
local user, amount = args.user or "ann", args.amount or 30

-- No db module yet: an in-memory table plays the accounts database and
-- async.sleep plays each query's latency.
local balances = { ann = 50, bob = 10 }
local next_order = 1000

local function get_balance(name)
  async.sleep(40)
  local b = balances[name]
  if not b then return nil, async.error("not_found", "no account for " .. name) end
  return b
end

local function debit(name, n)
  async.sleep(60)
  balances[name] = balances[name] - n
  return { balance = balances[name] }
end

local function create_order(name, n)
  async.sleep(60)
  next_order = next_order + 1
  return { id = next_order, user = name, amount = n }
end

local function purchase(name, n)
  local t0 = async.now()

  -- Every step that can fail returns nil, err: check and return early.
  local balance, err = get_balance(name)
  if not balance then return nil, err end

  if balance < n then
    print(string.format("%s has %d, needs %d: returning early", name, balance, n))
    return nil, async.error("insufficient_funds",
      string.format("%s has %d, needs %d", name, balance, n),
      { balance = balance, amount = n })
  end

  -- Debit and order do not depend on each other: run them together.
  local done, perr = async.all({
    function() return debit(name, n) end,
    function() return create_order(name, n) end,
  })
  if not done then return nil, perr end

  local elapsed = async.now() - t0
  print(string.format("order %d for %s: %d charged, balance now %d", done[2].id, name, n,
    done[1].balance))
  print(string.format("purchase took %.0f ms (check 40 + max(debit 60, order 60); sequential ~160)",
    elapsed))
  return { order = done[2].id, balance = done[1].balance }
end

local result, err = purchase(user, amount)
if not result then
  print("purchase failed: " .. tostring(err))
  -- The root task fails with nil, err: `awaitd run` prints the error on
  -- stderr and exits 1 (like an unhandled rejection ending `node`).
  return nil, err
end
print("result: " .. json.encode(result))
return result
