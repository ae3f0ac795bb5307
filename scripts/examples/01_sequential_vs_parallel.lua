-- 01_sequential_vs_parallel.lua: awaiting one call after another adds up
-- the latencies; awaiting them together costs only the slowest one.
--
-- The same thing in Node.js:
--
--   const fetchUser = async (id) => { await sleep(100); return { id } };
--   let t = performance.now();
--   const a = await fetchUser(1);            // 100 ms
--   const b = await fetchUser(2);            // another 100 ms
--   const c = await fetchUser(3);            // another 100 ms
--   console.log("sequential", performance.now() - t);     // ~300 ms
--   t = performance.now();
--   const [x, y, z] = await Promise.all([fetchUser(1), fetchUser(2), fetchUser(3)]);
--   console.log("parallel", performance.now() - t);       // ~100 ms
--
-- Run: awaitd run scripts/examples/01_sequential_vs_parallel.lua

-- There is no http module yet, so a "service call" is simulated with
-- async.sleep: it suspends this task for 100 ms, exactly like awaiting a
-- slow HTTP request would, and lets other tasks run meanwhile.
local function fetch_user(id)
  async.sleep(100)
  return { id = id, name = "user" .. id }
end

-- async.fn turns a plain function into an "async function": calling it
-- starts a task and returns it at once (a JS function returning a Promise).
local fetch_user_async = async.fn(fetch_user)

-- 1. Sequential: inside a task, a call that suspends simply returns its
--    value when done. No `await` keyword is needed: calling fetch_user()
--    directly is the equivalent of `await fetchUser()`.
local t0 = async.now()
local a = fetch_user(1)
local b = fetch_user(2)
local c = fetch_user(3)
local sequential = async.now() - t0
print(string.format("sequential: %s, %s, %s in %.0f ms", a.name, b.name, c.name, sequential))

-- 2. Parallel: start the three tasks first, then wait for all of them.
--    async.all takes tasks (or functions, which it spawns) and returns
--    results[i] = the first value returned by item i.
t0 = async.now()
local results, err = async.all({ fetch_user_async(1), fetch_user_async(2), fetch_user_async(3) })
assert(results, err)
local parallel = async.now() - t0
print(string.format("parallel:   %s, %s, %s in %.0f ms", results[1].name, results[2].name,
  results[3].name, parallel))

-- 3. The same, spawning by hand and awaiting each task: the tasks already
--    run concurrently, so the awaits overlap (like awaiting three Promises
--    created up front).
t0 = async.now()
local t1, t2, t3 = async.spawn(fetch_user, 1), async.spawn(fetch_user, 2), async.spawn(fetch_user, 3)
local u1, u2, u3 = t1:await(), t2:await(), t3:await()
local by_hand = async.now() - t0
print(string.format("spawn+await: %s, %s, %s in %.0f ms", u1.name, u2.name, u3.name, by_hand))

print(string.format("parallel faster: %s", tostring(parallel < sequential and by_hand < sequential)))
