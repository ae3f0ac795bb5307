-- 09_http_dashboard.lua: 02_dashboard.lua against real HTTP endpoints.
-- Three required calls run in parallel under async.all (fail-fast); an
-- optional call is bounded by async.timeout and falls back to a default.
--
-- The same thing in Node.js:
--
--   const base = "http://127.0.0.1:PORT";
--   const getJson = async (path) => {
--     const r = await fetch(base + path);
--     if (!r.ok) throw new Error(`${path}: status ${r.status}`);
--     return r.json();
--   };
--   const t0 = performance.now();
--   const [user, orders, recs] = await Promise.all([
--     getJson("/json"), getJson("/echo?orders=2"), getJson("/slow?ms=100"),
--   ]);                                   // one rejection rejects the whole
--   const ac = new AbortController();     // ...and you abort the losers yourself
--   const weather = await Promise.race([
--     getJson("/slow?ms=1000", { signal: ac.signal }),
--     sleep(150).then(() => { ac.abort(); return "weather unavailable"; }),
--   ]);
--   console.log(user, orders, recs, weather, performance.now() - t0);
--
-- In awaitd a timed-out or cancelled http call is aborted for you (the
-- connection is released, the server sees the client go away), and a
-- failure says which item failed (err.index).
--
-- The endpoints are those of tests/lua/http/server.py:
--   python3 tests/lua/http/server.py &        (prints its port)
--   awaitd run scripts/examples/09_http_dashboard.lua '{"base":"http://127.0.0.1:PORT"}'
--   ... '{"base":"http://127.0.0.1:PORT","fail":"orders"}'   (exits 1)
-- Without a base URL it only says how to run it (and exits 0).

local args = ... or {}
local base = args.base
if not base then
  print("no base URL: run with '{\"base\":\"http://127.0.0.1:PORT\"}' " ..
    "against python3 tests/lua/http/server.py")
  return true
end

-- GET base..path and decode the JSON body. Transport failures come back as
-- nil, err from http.get; a non-2xx status is a response, so it is turned
-- into a failure here (as `if (!r.ok) throw` does in JS).
local function get_json(path, opts)
  local r, err = http.get(base .. path, opts)
  if not r then return nil, err end
  if r.status < 200 or r.status > 299 then
    return nil, async.error("http_status", path .. ": status " .. r.status, { status = r.status })
  end
  return json.decode(r.body)
end

-- args.fail names a required service that answers 503 instead
local function path_for(name, path)
  if args.fail == name then return "/status/503" end
  return path
end

local function get_user() return get_json(path_for("user", "/json")) end
local function get_orders() return get_json(path_for("orders", "/echo?orders=2")) end
local function get_recs() return get_json(path_for("recommendations", "/slow?ms=100&id=recs")) end

-- The optional widget never fails: bounded to 150 ms, with a default. On
-- expiry async.timeout cancels the task, which aborts the transfer.
local function weather_or_default()
  local w, err = async.timeout(150, function()
    return get_json("/slow?ms=1000&id=weather")
  end)
  if not w then
    print(string.format("weather: %s -> using the default", tostring(err)))
    return "weather unavailable"
  end
  return "sunny"
end

local function render_dashboard()
  local t0 = async.now()
  local names = { "user", "orders", "recommendations", "weather" }
  local parts, err = async.all({ get_user, get_orders, get_recs, weather_or_default })
  local elapsed = async.now() - t0
  if not parts then
    print(string.format("dashboard failed: item %d (%s) -> %s", err.index, names[err.index],
      tostring(err)))
    print(string.format("failed after %.0f ms: the other calls were cancelled, not awaited", elapsed))
    return nil, err
  end

  local user, orders, recs, weather = parts[1], parts[2], parts[3], parts[4]
  local combined = {
    user = { id = user.id, name = user.name },
    orders = { method = orders.method, path = orders.path },
    recommendations = recs,
    weather = weather,
  }
  print("combined: " .. json.encode(combined))
  print(string.format("user id intact (64-bit): %s", tostring(user.id == 9007199254740993)))
  print(string.format("weather: %s", weather))
  -- one after another: >= 100 (recs) + 150 (weather timeout) ms
  print(string.format("dashboard rendered in %.0f ms (one after another: >= %d ms)", elapsed, 100 + 150))
  print(string.format("parallel fan-out: %s", tostring(elapsed < 100 + 150)))
  return true
end

return render_dashboard()
