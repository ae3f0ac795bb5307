-- tests/scripts/test_examples.lua: the example job scripts (scripts/), tested
-- with `awaitd test` on a virtual clock: their sleeps, timeouts, waits for
-- approval and webhooks, retries and cron fires take no real time.
--
--   build/awaitd test --scripts scripts --migrations migrations tests/scripts/test_examples.lua

local function run(name, args, opts)
  local id = assert(jobs.enqueue(name, args, opts))
  return id, jobs.wait(id)
end

-- a fresh account with money enough for any test: its id
local function account(balance)
  return assert(test.db:exec("INSERT INTO accounts (owner, balance) VALUES ('test', ?)",
    balance or 100000)).last_id
end

local function balance(account)
  return test.db:one("SELECT balance FROM accounts WHERE id = ?", account).balance
end

-- wait until job id waits for the signal name (the job parks at its wait)
local function waits_for(id, name)
  for _ = 1, 1000 do
    local j = jobs.get(id)
    if j.state == "waiting" and j.wait and j.wait.signal == name then return j end
    async.sleep(10)
  end
  error("job " .. id .. " never waited for " .. name)
end

test("hello greets", function()
  local _, r = run("hello", { name = "ann" })
  test.eq(r.greeting, "hello, ann")
end)

test("dashboard: three services in parallel, the slow weather cut at 150 ms", function()
  local _, r = run("dashboard", { user = 7 })
  test.eq(r.user.id, 7)
  test.eq(r.weather, "unknown")
  -- virtual time: 100 ms for the three in parallel, then the 150 ms timeout (plus the
  -- real time the work itself took, a few ms, more under valgrind)
  test.ok(r.ms >= 250 and r.ms < 1250, "took " .. r.ms .. " ms")
end)

test("slow: nine seconds' sleep, within its 10 s timeout", function()
  local t0 = async.now()
  local _, r = run("slow", { ms = 9000 })
  test.eq(r.slept, 9000)
  test.ok(async.now() - t0 >= 9000)
  local _, r2, err = run("slow", { ms = 60000 })
  test.eq(r2, nil)
  test.err(err, "timeout")
end)

test("purchase charges once, even when enqueued twice with one key", function()
  local before = balance(1)
  local id1, r = run("purchase", { account = 1, item = "lamp", price = 1200 }, { key = "order-1" })
  test.eq(r.charged, true)
  local id2, r2 = run("purchase", { account = 1, item = "lamp", price = 1200 }, { key = "order-1" })
  test.eq(id2, id1)
  test.eq(r2.order, r.order)
  test.eq(balance(1), before - 1200)
  test.eq(test.db:one("SELECT count(*) AS n FROM receipts WHERE order_id = ?", r.order).n, 1)
end)

test("purchase: short of funds charges nothing", function()
  local before = balance(3)
  local _, r = run("purchase", { account = 3, item = "sofa", price = before + 1 })
  test.eq(r.charged, false)
  test.eq(r.reason, "insufficient funds")
  test.eq(balance(3), before)
end)

test("purchase: bad args fail with invalid", function()
  local _, r, err = run("purchase", { account = "x", price = 1 })
  test.eq(r, nil)
  test.err(err, "invalid")
end)

test("checkout over the limit: approved, then paid by webhook", function()
  local acc = account()
  local before = balance(acc)
  local id = assert(jobs.enqueue("checkout", { account = acc, item = "sofa", price = 6000 }))
  waits_for(id, "approve")
  test.eq(balance(acc), before - 6000, "debited while it waits")
  assert(jobs.signal(id, "approve", { by = "ada" }))
  waits_for(id, "paid")
  assert(jobs.signal(id, "paid", { ref = "pay-9" }))
  local r = assert(jobs.wait(id))
  test.eq(r.charged, true)
  test.eq(test.db:one("SELECT provider FROM receipts WHERE order_id = ?", r.order).provider,
    "pay-9")
end)

test("checkout: refused approval refunds", function()
  local acc = account()
  local before = balance(acc)
  local id = assert(jobs.enqueue("checkout", { account = acc, price = 7000 }))
  waits_for(id, "approve")
  assert(jobs.signal(id, "approve", { ok = false }))
  local r = assert(jobs.wait(id))
  test.eq(r.refunded, true)
  test.eq(r.reason, "refused")
  test.eq(balance(acc), before)
end)

test("checkout: nobody approves within a day, the money goes back", function()
  local acc = account()
  local before = balance(acc)
  local t0 = async.now()
  local id = assert(jobs.enqueue("checkout", { account = acc, price = 5500 }))
  local r = assert(jobs.wait(id))
  test.eq(r.refunded, true)
  test.eq(r.reason, "not approved: timeout")
  test.ok(async.now() - t0 >= 86400000, "a day passed (virtually)")
  test.eq(balance(acc), before)
end, { timeout = 2 * 86400000 })

test("checkout: the provider's webhook never comes, refunded after 15 minutes", function()
  local before = balance(2)
  local id, r = run("checkout", { account = 2, price = 100 })
  test.eq(r.refunded, true)
  test.eq(r.reason, "not paid: timeout")
  test.eq(balance(2), before)
  test.eq(test.db:one("SELECT count(*) AS n FROM refunds r JOIN orders o ON o.id = r.order_id"
    .. " WHERE o.job_id = ?", id).n, 1)
end)

test("nightly_report fires at 02:00 UTC on its own", function()
  local n0 = test.db:one("SELECT count(*) AS n FROM reports").n
  async.sleep(26 * 3600 * 1000) -- more than a day: 02:00 UTC comes once at least
  local n1 = test.db:one("SELECT count(*) AS n FROM reports").n
  test.ok(n1 > n0, "a report was written by the schedule: " .. n0 .. " -> " .. n1)
end, { timeout = 2 * 86400000 })
