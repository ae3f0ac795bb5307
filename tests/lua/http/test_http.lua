-- test_http.lua: the http module (SPEC 4) against the local server of
-- server.py; run by run.sh as
--   awaitd run test_http.lua '{"base": URL, "closed": URL, "lib": DIR}'
-- (closed: a port nothing listens on; lib: tests/lua, for testlib).
local args = ...
package.path = args.lib .. "/?.lua;" .. package.path
local T = require "testlib"
local base, closed = args.base, args.closed

-- Poll /stats until the server records `want` for request id, for at most
-- ms; returns the last state seen.
local function wait_state(id, want, ms)
  local deadline = async.now() + (ms or 2000)
  local state
  repeat
    local r = assert(http.get(base .. "/stats?id=" .. id))
    state = json.decode(r.body).state
    if state == want then return state end
    async.sleep(20)
  until async.now() > deadline
  return state
end

T.test("get: status, headers, JSON body", function()
  local r, err = http.get(base .. "/json")
  T.eq(err, nil, "err")
  T.eq(r.status, 200, "status")
  T.eq(r.headers["content-type"], "application/json", "lower-cased header name")
  local doc = json.decode(r.body)
  T.eq(doc.name, "widget")
  T.eq(doc.ok, true)
end)

T.test("a 64-bit integer survives the body and json.decode", function()
  local r = assert(http.get(base .. "/json"))
  local id = json.decode(r.body).id
  T.eq(math.type(id), "integer", "type")
  T.eq(id, 9007199254740993, "exact value")
  T.ok(r.body:find("9007199254740993", 1, true), "as sent")
end)

T.test("post: method, body and request headers reach the server", function()
  local payload = json.encode { order = 42, big = 9007199254740993 }
  local r = assert(http.post(base .. "/echo", payload, {
    headers = { ["Content-Type"] = "application/json", ["X-Request-Id"] = "abc-1", ["X-Num"] = 7 },
  }))
  T.eq(r.status, 200)
  local echo = json.decode(r.body)
  T.eq(echo.method, "POST", "method")
  T.eq(echo.body, payload, "body")
  T.eq(echo.headers["content-type"], "application/json", "content-type")
  T.eq(echo.headers["x-request-id"], "abc-1", "custom header")
  T.eq(echo.headers["x-num"], "7", "number value")
  T.eq(echo.headers["expect"], nil, "no Expect: 100-continue")
  T.eq(json.decode(echo.body).big, 9007199254740993, "64-bit integer both ways")
  T.eq(r.headers["x-multi"], "a, b", "repeated response headers joined")
end)

T.test("request: other methods, default GET, large bodies", function()
  local r = assert(http.request { url = base .. "/echo" })
  T.eq(json.decode(r.body).method, "GET", "default method")
  local big = string.rep("0123456789", 20000)
  r = assert(http.request { method = "PUT", url = base .. "/echo?x=1", body = big })
  local echo = json.decode(r.body)
  T.eq(echo.method, "PUT")
  T.eq(echo.path, "/echo?x=1")
  T.eq(#echo.body, #big, "200 kB body")
  r = assert(http.request { method = "DELETE", url = base .. "/echo" })
  T.eq(json.decode(r.body).method, "DELETE")
  r = assert(http.request { method = "HEAD", url = base .. "/json" })
  T.eq(r.status, 200)
  T.eq(r.body, "", "HEAD has no body")
  r = assert(http.post(base .. "/echo", ""))
  T.eq(json.decode(r.body).body, "", "empty POST body")
end)

T.test("a 404 is a response, not an error", function()
  local r, err = http.get(base .. "/status/404")
  T.eq(err, nil)
  T.eq(r.status, 404)
  T.eq(json.decode(r.body).status, "as asked")
  r = assert(http.get(base .. "/status/503"))
  T.eq(r.status, 503)
end)

T.test("connections are reused", function()
  local a = json.decode(assert(http.get(base .. "/echo")).body).peer
  local b = json.decode(assert(http.get(base .. "/echo")).body).peer
  T.eq(b, a, "same client port for sequential requests")
end)

T.test("timeout: err.code timeout, quickly, and the server sees the client go", function()
  local t0 = async.now()
  local r, err = http.get(base .. "/slow?ms=2000&id=timeout", { timeout = 100 })
  local took = async.now() - t0
  T.eq(r, nil)
  T.err(err, "timeout")
  T.between(took, 50, 1000, "ms until the timeout")
  T.eq(wait_state("timeout", "gone"), "gone", "server saw the client go away")
end)

T.test("connection refused: err.code http with curl's message", function()
  local r, err = http.get(closed .. "/json")
  T.eq(r, nil)
  T.err(err, "http")
  T.ok(err.message:find("connect", 1, true), "message: " .. tostring(err.message))
  T.ok(tostring(err):find("^http: "), "tostring")
end)

T.test("20 concurrent requests through a queue of 5", function()
  local q = async.queue { concurrency = 5 }
  local tasks, running, peak = {}, 0, 0
  for i = 1, 20 do
    tasks[i] = q:push(function()
      running = running + 1
      if running > peak then peak = running end
      local r, err = http.get(base .. "/slow?ms=30&id=q" .. i)
      running = running - 1
      if not r then return nil, err end
      return { status = r.status, body = r.body, i = i }
    end)
  end
  q:wait()
  for i, t in ipairs(tasks) do
    local v, err = t:await()
    T.eq(err, nil, "request " .. i)
    T.eq(v.status, 200)
    T.eq(json.decode(v.body).slow, true)
    T.eq(wait_state("q" .. i, "finished", 0), "finished")
  end
  T.eq(peak, 5, "at most 5 in flight, and 5 reached")
end)

T.test("async.all: a failing sibling aborts the slow request", function()
  local t0 = async.now()
  local res, err = async.all {
    function() return http.get(base .. "/slow?ms=3000&id=all") end,
    function()
      async.sleep(50)
      return nil, async.error("boom", "fails fast")
    end,
  }
  T.eq(res, nil)
  T.err(err, "boom")
  T.eq(err.index, 2)
  T.between(async.now() - t0, 0, 1000, "ms until all returned")
  T.eq(wait_state("all", "gone"), "gone", "server saw the aborted request go away")
end)

T.test("async.race: the losing request is aborted", function()
  local v, err, i = async.race {
    function() return http.get(base .. "/slow?ms=3000&id=race") end,
    function() return (assert(http.get(base .. "/json"))) end,
  }
  T.eq(err, nil)
  T.eq(i, 2, "the fast request wins")
  T.eq(json.decode(v.body).id, 9007199254740993)
  T.eq(wait_state("race", "gone"), "gone", "server saw the loser go away")
end)

T.test("async.timeout around a request cancels it", function()
  local t0 = async.now()
  local v, err = async.timeout(100, function() return http.get(base .. "/slow?ms=3000&id=atimeout") end)
  T.eq(v, nil)
  T.err(err, "timeout")
  T.between(async.now() - t0, 50, 1000, "ms")
  T.eq(wait_state("atimeout", "gone"), "gone", "server saw the client go away")
end)

T.test("task:cancel during a request", function()
  local t = async.spawn(function() return http.get(base .. "/slow?ms=3000&id=cancel") end)
  async.sleep(50)
  t:cancel("not needed")
  local v, err = t:await()
  T.eq(v, nil)
  T.err(err, "cancelled")
  T.eq(wait_state("cancel", "gone"), "gone", "server saw the client go away")
  -- the runtime is still fine: a new request works
  T.eq(assert(http.get(base .. "/json")).status, 200)
end)

T.test("a request in the <close> handler of a cancelled task is aborted with the grace", function()
  local got
  local t = async.spawn(function()
    local rollback <close> = setmetatable({}, { __close = function()
      got = table.pack(pcall(http.get, base .. "/slow?ms=5000&id=grace"))
    end })
    async.sleep(10000)
  end)
  async.sleep(20)
  local t0 = async.now()
  t:cancel()
  local _, err = t:await()
  T.err(err, "cancelled")
  T.between(async.now() - t0, 500, 3000, "ms: about the 1 s grace")
  T.eq(got[1], false, "the request raised")
  T.err(got[2], "cancelled", "the request's error")
  T.eq(wait_state("grace", "gone"), "gone", "server saw the client go away")
end)

T.test("redirects: off by default, followed when asked", function()
  local r = assert(http.get(base .. "/redirect"))
  T.eq(r.status, 302, "not followed")
  T.eq(r.headers.location, "/json")
  r = assert(http.get(base .. "/redirect", { follow_redirects = true }))
  T.eq(r.status, 200, "followed")
  T.eq(r.headers.location, nil, "headers of the final response only")
  T.eq(json.decode(r.body).id, 9007199254740993)
end)

T.test("only http and https: other schemes are invalid", function()
  for _, url in ipairs { "ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://x", "127.0.0.1/json" } do
    local r, err = http.get(url)
    T.eq(r, nil, url)
    T.err(err, "invalid", url)
  end
end)

T.test("bad methods and header injection are invalid", function()
  local r, err = http.request { method = "GET /x HTTP/1.1\r\n", url = base .. "/echo" }
  T.eq(r, nil)
  T.err(err, "invalid", "method")
  r, err = http.get(base .. "/echo", { headers = { ["X-A"] = "v\r\nX-Injected: 1" } })
  T.eq(r, nil)
  T.err(err, "invalid", "header value")
  r, err = http.get(base .. "/echo", { headers = { ["Bad Name"] = "v" } })
  T.err(err, "invalid", "header name")
end)

T.test("wrong argument types raise", function()
  T.ok(not pcall(http.get), "no url")
  T.ok(not pcall(http.request, { url = 42 }), "url a number")
  T.ok(not pcall(http.request, { url = base, timeout = "soon" }), "timeout a string")
  T.ok(not pcall(http.request, { url = base, headers = "x" }), "headers a string")
end)

T.test("max_size: a larger response fails, a smaller one works", function()
  local r, err = http.get(base .. "/big?bytes=100000", { max_size = 1000 })
  T.eq(r, nil)
  T.err(err, "http", "with Content-Length")
  T.ok(err.message:find("max_size", 1, true), err.message)
  r, err = http.get(base .. "/big?bytes=100000&close=1", { max_size = 1000 })
  T.eq(r, nil)
  T.err(err, "http", "without Content-Length")
  T.ok(err.message:find("max_size", 1, true), err.message)
  r = assert(http.get(base .. "/big?bytes=1000000"))
  T.eq(#r.body, 1000000, "1 MB under the default limit")
  r, err = http.get(base .. "/big?bytes=17000000")
  T.err(err, "http", "over the 16 MiB default")
end)

T.test("https: a certificate the system CA store does not trust is refused", function()
  if not args.tls or args.tls == "" then
    print("skip: no openssl to make a test certificate")
    return
  end
  local r, err = http.get(args.tls .. "/json", { timeout = 5000 })
  T.eq(r, nil, "no response over an untrusted TLS connection")
  T.err(err, "http")
  T.ok(err.message:lower():find("certificate", 1, true) or err.message:find("SSL", 1, true),
    "curl's message names the TLS problem: " .. err.message)
end)

return T.run()
