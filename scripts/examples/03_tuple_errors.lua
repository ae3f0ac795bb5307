-- 03_tuple_errors.lua: failures are values. A function that can fail
-- returns `value` or `nil, err`; nothing throws across the API.
--
-- The same idea in Node.js, the popular "[data, err]" tuple helper:
--
--   async function to(promise) {
--     try { return [await promise, null]; } catch (e) { return [null, e]; }
--   }
--   const [user, err] = await to(findUser("bob"));
--   if (err) { console.log(err.code, err.message, err.stack); return; }
--
--   // and a cause chain:
--   throw new Error("could not load profile", { cause: err });
--
-- Run: awaitd run scripts/examples/03_tuple_errors.lua

-- 1. A function that fails by returning nil, err (no http/db module yet:
--    async.sleep stands in for the lookup's latency).
--    async.error(code, message [, fields]) builds an error value: a table
--    with code, message and any extra fields you give it.
local users = { ann = { name = "Ann", balance = 50 } }

local function find_user(name)
  async.sleep(10)
  local u = users[name]
  if not u then
    return nil, async.error("not_found", "no user named " .. name, { user = name })
  end
  return u
end

local user, err = find_user("ann")
print(string.format("find_user(ann): %s, err = %s", user and user.name, tostring(err)))

user, err = find_user("bob")
print(string.format("find_user(bob): %s, err.code = %s, err.user = %s", tostring(user), err.code,
  err.user))
-- tostring(err) is "code: message", ready for a log line.
print("tostring(err) = " .. tostring(err))

-- 2. async.try turns a raise into nil, err. Here a bug (indexing nil)
--    raises a plain Lua error; try catches it as an error value with
--    code "error" and the traceback of where it was raised.
local function buggy_report(u)
  async.sleep(10)
  return "balance: " .. u.account.balance -- u.account is nil: raises
end

local report, rerr = async.try(buggy_report, users.ann)
print(string.format("async.try(buggy_report): %s, err.code = %s", tostring(report), rerr.code))
print("  message:   " .. rerr.message)
-- The traceback is a string captured at the raise point; show its first frame.
local first_frame = rerr.traceback:match("stack traceback:\n%s*([^\n]+)")
print("  traceback: " .. tostring(first_frame))
print(string.format("try caught the raise: %s", tostring(report == nil and rerr.code == "error"
  and rerr.traceback ~= nil)))

-- A raised error value keeps its own code: error(async.error(...)).
local _, verr = async.try(function() error(async.error("invalid", "amount must be > 0")) end)
print(string.format("raised error value: code = %s, tostring = %s", verr.code, tostring(verr)))

-- async.try also recognises the nil, err convention, and passes values
-- through untouched when nothing failed.
local ok_v = async.try(function() return 42 end)
local _, nerr = async.try(find_user, "carol")
print(string.format("try(return 42) = %s; try(find_user carol) -> %s", ok_v, tostring(nerr)))

-- 3. Wrapping with a cause: a higher layer adds context without losing
--    the original error (like `new Error(msg, { cause })`).
local function load_profile(name)
  local u, e = find_user(name)
  if not u then
    return nil, async.error("profile_failed", "could not load the profile of " .. name, { cause = e })
  end
  return { user = u }
end

local profile, perr = load_profile("bob")
print(string.format("load_profile(bob): %s", tostring(profile)))
local depth, e = 0, perr
while e do
  print(string.rep("  ", depth) .. (depth == 0 and "" or "caused by ") .. tostring(e))
  depth, e = depth + 1, e.cause
end
print(string.format("cause chain depth: %d", depth))

-- 4. Awaiting a task that failed gives the same nil, err tuple, whether
--    the task raised or returned nil, err.
local t = async.spawn(function() error("boom") end)
local v, terr = t:await()
print(string.format("awaited a task that raised: %s, %s", tostring(v), tostring(terr)))
