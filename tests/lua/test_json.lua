-- test_json.lua: the json module as a script sees it (run by `awaitd run`).
local T = require "testlib"

-- Expect json.encode/decode to have failed with an "invalid" error value;
-- returns its message.
local function invalid(v, err, what)
  T.eq(v, nil, what)
  T.err(err, "invalid", what)
  T.eq(tostring(err), "invalid: " .. err.message, "tostring(err)")
  return err.message
end

T.test("json is a global and a module", function()
  T.eq(require "json", json)
  T.eq(type(json.encode), "function")
  T.eq(type(json.decode), "function")
  T.eq(type(json.null), "userdata")
end)

T.test("64-bit integers round trip exactly", function()
  for _, s in ipairs { "9007199254740993", "9223372036854775807", "-9223372036854775808" } do
    local v = json.decode(s)
    T.eq(math.type(v), "integer", s)
    T.eq(json.encode(v), s)
  end
  T.eq(json.decode("9007199254740993"), 9007199254740993)
  T.eq(json.encode { math.maxinteger, math.mininteger },
    "[9223372036854775807,-9223372036854775808]")
end)

T.test("floats round trip and stay floats", function()
  T.eq(json.encode(0.1), "0.10000000000000001")
  T.eq(json.decode(json.encode(0.1)), 0.1)
  T.eq(json.decode(json.encode(1e300)), 1e300)
  T.eq(json.encode(-0.0), "-0.0")
  T.eq(1 / json.decode("-0.0"), -math.huge, "sign of -0.0")
  T.eq(json.encode(2.0), "2.0")
  T.eq(math.type(json.decode("2.0")), "float")
  T.eq(math.type(json.decode("2")), "integer")
end)

T.test("json.null both ways", function()
  T.eq(json.encode(json.null), "null")
  T.eq(json.decode("null"), json.null)
  local t = json.decode("[1,null,3]")
  T.eq(#t, 3)
  T.eq(t[2], json.null)
  T.eq(json.encode { a = json.null }, '{"a":null}')
end)

T.test("nested arrays and objects, keys sorted", function()
  T.eq(json.encode { b = 1, a = { 1, 2, { c = 3, d = { true, false } } }, s = "x" },
    '{"a":[1,2,{"c":3,"d":[true,false]}],"b":1,"s":"x"}')
  T.same(json.decode('{"a":[1,{"b":[true,false]}],"c":"x"}'),
    { a = { 1, { b = { true, false } } }, c = "x" })
  local shared = { 1 }
  T.eq(json.encode { shared, shared }, "[[1],[1]]", "a shared table is not a cycle")
end)

T.test("the empty table is an object", function()
  T.eq(json.encode {}, "{}")
  T.eq(json.encode { list = {} }, '{"list":{}}')
  T.eq(next(json.decode("[]")), nil)
  T.eq(next(json.decode("{}")), nil)
end)

T.test("sparse tables become objects with string keys", function()
  T.eq(json.encode { [1] = "a", [3] = "c" }, '{"1":"a","3":"c"}')
  T.eq(json.encode { 1, 2, x = 3 }, '{"1":1,"2":2,"x":3}')
  T.eq(json.encode { [2] = "b", [1] = "a" }, '["a","b"]')
  T.same(json.decode(json.encode { [1] = "a", [3] = "c" }), { ["1"] = "a", ["3"] = "c" })
  T.eq(invalid(json.encode { [true] = 1 }),
    "cannot encode boolean key (keys must be strings or integers) at top level")
  T.eq(invalid(json.encode { a = { [1.5] = 1 } }),
    "cannot encode float key (keys must be strings or integers) at .a")
  T.eq(invalid(json.encode { [5] = "a", ["5"] = "b" }),
    'duplicate key "5" (an integer key and a string key) at top level')
end)

T.test("strings with embedded NUL, both ways", function()
  T.eq(json.encode("a\0b"), '"a\\u0000b"')
  local s = json.decode('"a\\u0000b"')
  T.eq(#s, 3)
  T.eq(s, "a\0b")
  T.eq(json.decode(json.encode { "\0\0" })[1], "\0\0")
end)

T.test("invalid UTF-8 is rejected with its path", function()
  T.eq(invalid(json.encode("\xff")), "invalid UTF-8 in string at top level")
  T.eq(invalid(json.encode { name = "caf\xc3" }), "invalid UTF-8 in string at .name")
  T.eq(invalid(json.encode { list = { "ok", "\xc0\x80" } }), "invalid UTF-8 in string at .list[2]")
  T.eq(json.encode("caf\xc3\xa9"), '"caf\xc3\xa9"')
  invalid(json.decode('"\xff"'))
end)

T.test("cycles are rejected", function()
  local t = { a = {} }
  t.a.b = t
  T.eq(invalid(json.encode(t)), "table cycle at .a.b")
  local u = {}
  u[1] = u
  T.eq(invalid(json.encode(u)), "table cycle at [1]")
end)

T.test("functions and other values are rejected with the path", function()
  T.eq(invalid(json.encode { items = { 1, 2, print } }), "cannot encode function at .items[3]")
  T.eq(invalid(json.encode(print)), "cannot encode function at top level")
  T.eq(invalid(json.encode { co = coroutine.create(print) }), "cannot encode thread at .co")
  T.eq(invalid(json.encode { ["two words"] = { print } }),
    'cannot encode function at ["two words"][1]')
end)

T.test("NaN and infinity are rejected", function()
  T.eq(invalid(json.encode(0 / 0)), "cannot encode NaN or infinity at top level")
  T.eq(invalid(json.encode { x = math.huge }), "cannot encode NaN or infinity at .x")
  T.eq(invalid(json.encode { 1, -math.huge }), "cannot encode NaN or infinity at [2]")
end)

T.test("nesting is limited to 200", function()
  local function nest(n)
    local t = { 1 }
    for _ = 2, n do t = { t } end
    return t
  end
  T.eq(#json.encode(nest(200)), 401)
  local msg = invalid(json.encode(nest(201)))
  T.eq(msg:sub(1, 33), "nesting deeper than 200 at [1][1]")
  T.ok(json.decode(("["):rep(200) .. ("]"):rep(200)))
  T.eq(invalid(json.decode(("["):rep(201) .. ("]"):rep(201))),
    "invalid JSON: nesting deeper than 200")
end)

T.test("malformed JSON returns nil, err with line and column", function()
  T.eq(invalid(json.decode("[1,2")),
    "invalid JSON at line 1, column 4: ']' expected near end of file", "truncated")
  T.eq(invalid(json.decode("[1] x")),
    "invalid JSON at line 1, column 5: end of file expected near 'x'", "trailing garbage")
  T.eq(invalid(json.decode("hello")),
    "invalid JSON at line 1, column 5: invalid token near 'hello'", "bare word")
  T.eq(invalid(json.decode("")),
    "invalid JSON at line 1, column 0: unexpected token near end of file", "empty string")
  T.eq(invalid(json.decode("\n\n  [1,\n tru]")),
    "invalid JSON at line 4, column 4: invalid token near 'tru'", "line count")
  for _, s in ipairs { "{", '{"a":}', "[1,]", "'x'", "nul" } do
    local v, err = json.decode(s)
    T.ok(invalid(v, err, s):find("^invalid JSON at line %d+, column %d+: "), s)
  end
end)

T.test("integers too big for 64 bits are an error", function()
  T.eq(invalid(json.decode("99999999999999999999")),
    "invalid JSON at line 1, column 20: too big integer near '99999999999999999999'")
  T.eq(invalid(json.decode("[-99999999999999999999]")),
    "invalid JSON at line 1, column 22: too big negative integer")
  T.ok(invalid(json.decode('{"n":9223372036854775808}')):find("too big integer", 1, true))
end)

T.test("wrong argument types raise", function()
  T.eq((pcall(json.decode, 5)), false, "decode(5)")
  T.eq((pcall(json.decode, {})), false, "decode({})")
  T.eq((pcall(json.decode)), false, "decode()")
  T.eq((pcall(json.encode)), false, "encode()")
end)

return T.run()
