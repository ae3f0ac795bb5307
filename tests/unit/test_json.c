/*
 * test_json.c: unit tests for bindings/json.c, the Lua <-> JSON mapping.
 *
 * Each test gets a fresh Lua state with the standard libraries and the
 * json module as a global, runs Lua snippets and asserts on what they
 * return, and calls json_from_lua / json_push directly. The fault
 * injection test runs encode and decode under a Lua allocator that fails
 * at every possible point, and counts jansson's live allocations to prove
 * that a Lua memory error raised mid-push leaks no json_t.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "errval.h"
#include "json.h"

/* A Lua allocator with a byte budget, for fault injection. */
struct limit {
	size_t used; /* bytes held by the state */
	size_t max;  /* bytes it may hold; SIZE_MAX for no limit */
};

struct fixture {
	lua_State *L;
	lua_State *limited; /* optional second state on a struct limit */
	struct limit lim;
};

/* Live jansson allocations while the counting allocator is installed. */
static long jansson_live;

static void *count_malloc(size_t n)
{
	void *p = malloc(n);

	if (p)
		jansson_live++;
	return p;
}

static void count_free(void *p)
{
	if (p) {
		jansson_live--;
		free(p);
	}
}

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limit *lim = ud;
	size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
	void *p;

	if (nsize == 0) {
		free(ptr);
		lim->used -= old;
		return NULL;
	}
	if (nsize > old && lim->used - old + nsize > lim->max)
		return NULL;
	p = realloc(ptr, nsize);
	if (p)
		lim->used = lim->used - old + nsize;
	return p;
}

/*
 * fails(v, err) -> err.code, err.message: asserts the `nil, err` shape
 * and that err is a proper error value (tostring gives "code: message").
 */
static const char *lua_prelude =
    "function fails(v, err)\n"
    "  if v ~= nil then error('expected nil, got ' .. tostring(v), 2) end\n"
    "  if type(err) ~= 'table' then error('expected an error value, got ' .. tostring(err), 2) "
    "end\n"
    "  if tostring(err) ~= err.code .. ': ' .. err.message then\n"
    "    error('not an async.Error: ' .. tostring(err), 2)\n"
    "  end\n"
    "  return err.code, err.message\n"
    "end\n";

static void open_state(lua_State *L)
{
	luaL_openlibs(L);
	errval_register(L);
	luaL_requiref(L, "json", luaopen_json, 1);
	lua_pop(L, 1);
	if (luaL_dostring(L, lua_prelude) != LUA_OK)
		fail_msg("prelude: %s", lua_tostring(L, -1));
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (!fx)
		return -1;
	fx->L = luaL_newstate();
	if (!fx->L) {
		free(fx);
		return -1;
	}
	open_state(fx->L);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->limited) {
		fx->lim.max = SIZE_MAX;
		lua_close(fx->limited);
	}
	lua_close(fx->L);
	json_set_alloc_funcs(malloc, free);
	free(fx);
	return 0;
}

/* Run code; fail the test with Lua's message if it raises. Results from 1. */
static void run(lua_State *L, const char *code)
{
	lua_settop(L, 0);
	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("Lua error: %s\nin: %s", lua_tostring(L, -1), code);
}

/* Run code returning one string; compare it to want (length included). */
static void expect_str(lua_State *L, const char *code, const char *want, size_t wantlen)
{
	size_t len;
	const char *got;

	run(L, code);
	if (lua_type(L, 1) != LUA_TSTRING)
		fail_msg("%s: expected a string, got %s", code, luaL_typename(L, 1));
	got = lua_tolstring(L, 1, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(got, want, wantlen);
}

#define EXPECT(code, want) expect_str(L, code, want, sizeof(want) - 1)

/* Run `return fails(<expr>)`: expect code "invalid" and exactly message. */
static void expect_invalid(lua_State *L, const char *expr, const char *message)
{
	char code[1024];

	snprintf(code, sizeof code, "return fails(%s)", expr);
	run(L, code);
	assert_string_equal(lua_tostring(L, 1), "invalid");
	assert_string_equal(lua_tostring(L, 2), message);
}

/* Like expect_invalid, for messages that start with prefix. */
static void expect_invalid_prefix(lua_State *L, const char *expr, const char *prefix)
{
	char code[1024];
	const char *msg;

	snprintf(code, sizeof code, "return fails(%s)", expr);
	run(L, code);
	assert_string_equal(lua_tostring(L, 1), "invalid");
	msg = lua_tostring(L, 2);
	assert_non_null(msg);
	if (strncmp(msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", msg, prefix);
}

static void test_int64_roundtrip(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	EXPECT("local out = {}\n"
	       "for _, s in ipairs{'9007199254740993', '9223372036854775807',\n"
	       "                   '-9223372036854775808', '0', '-1'} do\n"
	       "  local v = assert(json.decode(s))\n"
	       "  assert(math.type(v) == 'integer', s)\n"
	       "  out[#out + 1] = assert(json.encode(v))\n"
	       "end\n"
	       "return table.concat(out, ' ')",
	       "9007199254740993 9223372036854775807 -9223372036854775808 0 -1");
	EXPECT("return json.encode{math.maxinteger, math.mininteger, 9007199254740993}",
	       "[9223372036854775807,-9223372036854775808,9007199254740993]");
	run(L, "local t = json.decode('[9007199254740993,9223372036854775807]')\n"
	       "return t[1] == 9007199254740993, t[2] == math.maxinteger");
	assert_true(lua_toboolean(L, 1));
	assert_true(lua_toboolean(L, 2));
}

static void test_float_roundtrip(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	EXPECT("return json.encode(0.1)", "0.10000000000000001");
	EXPECT("return json.encode{2.0, 1e300, -0.0, 0.5}",
	       "[2.0,1.0000000000000001e300,-0.0,0.5]");
	run(L, "local a = json.decode(json.encode(0.1))\n"
	       "local b = json.decode(json.encode(1e300))\n"
	       "local z = json.decode(json.encode(-0.0))\n"
	       "local two = json.decode('2.0')\n"
	       "return a == 0.1, b == 1e300, 1 / z, math.type(two), two");
	assert_true(lua_toboolean(L, 1));
	assert_true(lua_toboolean(L, 2));
	assert_true(lua_tonumber(L, 3) < 0); /* -inf: the sign of -0.0 survived */
	assert_string_equal(lua_tostring(L, 4), "float");
	assert_true(lua_tonumber(L, 5) == 2.0);
}

static void test_null_sentinel(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;
	json_t *v;
	char err[128];

	EXPECT("return json.encode(json.null)", "null");
	EXPECT("return json.encode(nil)", "null");
	EXPECT("return json.encode{a = json.null, b = {1, json.null, 3}}",
	       "{\"a\":null,\"b\":[1,null,3]}");
	run(L, "local t = json.decode('[1,null,3]')\n"
	       "return json.decode('null') == json.null, t[2] == json.null, #t,\n"
	       "  type(json.null)");
	assert_true(lua_toboolean(L, 1));
	assert_true(lua_toboolean(L, 2));
	assert_int_equal(lua_tointeger(L, 3), 3);
	assert_string_equal(lua_tostring(L, 4), "userdata");

	/* C side: json_push_null is json.null, and it maps to JSON null. */
	lua_settop(L, 0);
	lua_getglobal(L, "json");
	lua_getfield(L, 1, "null");
	json_push_null(L);
	assert_true(lua_rawequal(L, 2, 3));
	assert_int_equal(lua_type(L, 3), LUA_TLIGHTUSERDATA);
	v = json_from_lua(L, 3, err, sizeof err);
	assert_non_null(v);
	assert_true(json_is_null(v));
	json_decref(v);
	assert_int_equal(json_push(L, json_null(), err, sizeof err), 0);
	assert_true(lua_rawequal(L, 2, 4));

	/* Another light userdata is not null. */
	lua_pushlightuserdata(L, &v);
	assert_null(json_from_lua(L, -1, err, sizeof err));
	assert_string_equal(err, "cannot encode userdata at top level");
}

static void test_nested(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	EXPECT("return json.encode{b = 1, a = {1, 2, {c = 3, d = {true, false}}}, s = 'x'}",
	       "{\"a\":[1,2,{\"c\":3,\"d\":[true,false]}],\"b\":1,\"s\":\"x\"}");
	run(L, "local t = json.decode('{\"a\":[1,{\"b\":[true,false]}],\"c\":\"x\",\"d\":{}}')\n"
	       "return t.a[1], t.a[2].b[1], t.a[2].b[2], t.c, #t.a, next(t.d)");
	assert_int_equal(lua_tointeger(L, 1), 1);
	assert_int_equal(lua_type(L, 2), LUA_TBOOLEAN);
	assert_true(lua_toboolean(L, 2));
	assert_int_equal(lua_type(L, 3), LUA_TBOOLEAN);
	assert_false(lua_toboolean(L, 3));
	assert_string_equal(lua_tostring(L, 4), "x");
	assert_int_equal(lua_tointeger(L, 5), 2);
	assert_true(lua_isnil(L, 6));
	/* Decode then encode is the identity on canonical text. */
	EXPECT("return json.encode(json.decode('{\"a\":[1,2.5,\"x\",null,{\"k\":[]}],\"b\":{}}'))",
	       "{\"a\":[1,2.5,\"x\",null,{\"k\":{}}],\"b\":{}}");
	/* A table reached twice is not a cycle. */
	EXPECT("local s = {1} return json.encode{s, s, {s}}", "[[1],[1],[[1]]]");
}

static void test_empty_table(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	EXPECT("return json.encode{}", "{}");
	EXPECT("return json.encode{a = {}, b = {{}}}", "{\"a\":{},\"b\":[{}]}");
	run(L, "local a, o = json.decode('[]'), json.decode('{}')\n"
	       "return type(a), next(a), type(o), next(o)");
	assert_string_equal(lua_tostring(L, 1), "table");
	assert_true(lua_isnil(L, 2));
	assert_string_equal(lua_tostring(L, 3), "table");
	assert_true(lua_isnil(L, 4));
}

static void test_sparse_and_keys(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	EXPECT("return json.encode{[1] = 'a', [3] = 'c'}", "{\"1\":\"a\",\"3\":\"c\"}");
	EXPECT("return json.encode{[0] = 'z', [1] = 'a'}", "{\"0\":\"z\",\"1\":\"a\"}");
	EXPECT("return json.encode{[-5] = true}", "{\"-5\":true}");
	EXPECT("return json.encode{1, 2, x = 3}", "{\"1\":1,\"2\":2,\"x\":3}");
	EXPECT("return json.encode{[2] = 'b', [1] = 'a'}", "[\"a\",\"b\"]");
	run(L, "local t = json.decode(json.encode{[1] = 'a', [3] = 'c'})\n"
	       "return t['1'], t['3'], t[1]");
	assert_string_equal(lua_tostring(L, 1), "a");
	assert_string_equal(lua_tostring(L, 2), "c");
	assert_true(lua_isnil(L, 3));

	expect_invalid(L, "json.encode{[true] = 1}",
	               "cannot encode boolean key (keys must be strings or integers) at top level");
	expect_invalid(L, "json.encode{a = {[1.5] = 1}}",
	               "cannot encode float key (keys must be strings or integers) at .a");
	expect_invalid(L, "json.encode{[{}] = 1}",
	               "cannot encode table key (keys must be strings or integers) at top level");
	expect_invalid(L, "json.encode{[5] = 'a', ['5'] = 'b'}",
	               "duplicate key \"5\" (an integer key and a string key) at top level");
	expect_invalid(L, "json.encode{t = {[-1] = 'a', ['-1'] = 'b'}}",
	               "duplicate key \"-1\" (an integer key and a string key) at .t");
	expect_invalid(L, "json.encode{['a\\0b'] = 1}", "NUL byte in object key at [\"a\\x00b\"]");
}

static void test_embedded_nul(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;
	char err[128];
	json_t *v;
	size_t len;
	const char *s;

	EXPECT("return json.encode('a\\0b')", "\"a\\u0000b\"");
	EXPECT("return json.decode('\"a\\\\u0000b\"')", "a\0b");
	EXPECT("return json.decode(json.encode{'\\0\\0'})[1]", "\0\0");

	/* C side, both ways. */
	lua_settop(L, 0);
	lua_pushlstring(L, "x\0y", 3);
	v = json_from_lua(L, 1, err, sizeof err);
	assert_non_null(v);
	assert_true(json_is_string(v));
	assert_int_equal(json_string_length(v), 3);
	assert_memory_equal(json_string_value(v), "x\0y", 3);
	assert_int_equal(json_push(L, v, err, sizeof err), 0);
	json_decref(v);
	s = lua_tolstring(L, 2, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "x\0y", 3);
}

static void test_invalid_utf8(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	expect_invalid(L, "json.encode('\\xff')", "invalid UTF-8 in string at top level");
	expect_invalid(L, "json.encode{name = 'caf\\xc3'}", "invalid UTF-8 in string at .name");
	expect_invalid(L, "json.encode{list = {'ok', '\\xc0\\x80'}}",
	               "invalid UTF-8 in string at .list[2]");
	expect_invalid(L, "json.encode{['\\xfe'] = 1}",
	               "invalid UTF-8 in object key at [\"\\xfe\"]");
	/* Valid multibyte text passes. */
	EXPECT("return json.encode('caf\\xc3\\xa9 \\u{1F600}')",
	       "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
	/* Decoding bad UTF-8 fails, and the message itself stays ASCII. */
	expect_invalid(L, "json.decode('\"\\xff\"')",
	               "invalid JSON at line 1, column 1: unable to decode byte 0xff near '\"'");
	expect_invalid(L, "json.decode('[1, \\xff\\xfe]')",
	               "invalid JSON at line 1, column 4: unable to decode byte 0xff");
	/* jansson quotes the input near an error; non-ASCII bytes are escaped. */
	expect_invalid(
	    L, "json.decode('\"\\xc3\\xa9\\1\"')",
	    "invalid JSON at line 1, column 2: control character 0x1 near '\"\\xc3\\xa9'");
}

static void test_cycles(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	expect_invalid(L, "(function() local t = {a = {}} t.a.b = t return json.encode(t) end)()",
	               "table cycle at .a.b");
	expect_invalid(L, "(function() local t = {} t[1] = t return json.encode(t) end)()",
	               "table cycle at [1]");
	expect_invalid(L,
	               "(function() local t = {x = {y = {}}} t.x.y.z = t.x "
	               "return json.encode{t} end)()",
	               "table cycle at [1].x.y.z");
}

static void test_functions_rejected(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;
	char err[128];
	json_t *v;
	int top;

	expect_invalid(L, "json.encode{items = {1, 2, print}}",
	               "cannot encode function at .items[3]");
	expect_invalid(L, "json.encode(print)", "cannot encode function at top level");
	expect_invalid(L, "json.encode{co = coroutine.create(print)}",
	               "cannot encode thread at .co");
	expect_invalid(L, "json.encode{f = io.stdout}", "cannot encode userdata at .f");
	expect_invalid(L, "json.encode{['two words'] = {print}}",
	               "cannot encode function at [\"two words\"][1]");
	expect_invalid(L, "json.encode{[7] = print}", "cannot encode function at [7]");

	/* C side: the same message, and the stack is left as it was. */
	run(L, "return {items = {1, 2, print}}");
	top = lua_gettop(L);
	assert_null(json_from_lua(L, 1, err, sizeof err));
	assert_string_equal(err, "cannot encode function at .items[3]");
	assert_int_equal(lua_gettop(L), top);
	/* A short buffer truncates; no buffer at all is allowed. */
	assert_null(json_from_lua(L, -1, err, 8));
	assert_string_equal(err, "cannot ");
	assert_null(json_from_lua(L, -1, NULL, 0));
	assert_int_equal(lua_gettop(L), top);
	/* And a success, compared with jansson's own dump. */
	run(L, "return {k = {1, 'two', 3.5, false}}");
	v = json_from_lua(L, -1, err, sizeof err);
	assert_non_null(v);
	assert_int_equal(lua_gettop(L), 1);
	{
		char *text = json_dumps(v, JSON_COMPACT);

		assert_string_equal(text, "{\"k\":[1,\"two\",3.5,false]}");
		free(text);
	}
	json_decref(v);
}

static void test_nan_rejected(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	expect_invalid(L, "json.encode(0/0)", "cannot encode NaN or infinity at top level");
	expect_invalid(L, "json.encode{x = math.huge}", "cannot encode NaN or infinity at .x");
	expect_invalid(L, "json.encode{1, -math.huge}", "cannot encode NaN or infinity at [2]");
	expect_invalid_prefix(L, "json.decode('1.5e999')", "invalid JSON at line 1, column 7: ");
}

static void test_depth_limit(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;
	char err[128];
	json_t *root, *cur;
	int top;

	/* 200 nested tables encode; 201 do not. */
	run(L, "local function nest(n) local t = {1} for i = 2, n do t = {t} end return t end\n"
	       "local ok = json.encode(nest(200))\n"
	       "return #ok, ok:sub(1, 3), fails(json.encode(nest(201)))");
	assert_int_equal(lua_tointeger(L, 1), 401);
	assert_string_equal(lua_tostring(L, 2), "[[[");
	assert_string_equal(lua_tostring(L, 3), "invalid");
	assert_int_equal(strncmp(lua_tostring(L, 4), "nesting deeper than 200 at [1][1]", 33), 0);

	/* 200 nested arrays decode; 201 do not. */
	run(L,
	    "local ok = json.decode(('['):rep(200) .. (']'):rep(200))\n"
	    "local depth = 0 local t = ok while type(t) == 'table' do depth = depth + 1 t = t[1] "
	    "end\n"
	    "return depth, fails(json.decode(('['):rep(201) .. (']'):rep(201)))");
	assert_int_equal(lua_tointeger(L, 1), 200);
	assert_string_equal(lua_tostring(L, 2), "invalid");
	assert_string_equal(lua_tostring(L, 3), "invalid JSON: nesting deeper than 200");

	/* json_push directly: the error leaves nothing on the stack. */
	root = json_array();
	cur = root;
	for (int i = 1; i < JSON_MAX_DEPTH; i++) {
		json_t *next = json_array();

		json_array_append_new(cur, next);
		cur = next;
	}
	/* root holds 200 levels of arrays. */
	top = lua_gettop(L);
	assert_int_equal(json_push(L, root, err, sizeof err), 0);
	assert_int_equal(lua_gettop(L), top + 1);
	lua_settop(L, top);
	json_array_append_new(cur, json_array()); /* level 201 */
	assert_int_equal(json_push(L, root, err, sizeof err), -1);
	assert_string_equal(err, "nesting deeper than 200");
	assert_int_equal(lua_gettop(L), top);
	json_decref(root);
}

/* A deep path shows its ends and its depth, not every step cut off mid-way. */
static void test_path_collapse(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	run(L, "local function nest(n) local t = {1} for i = 2, n do t = {t} end return t end\n"
	       "return fails(json.encode(nest(201)))");
	assert_string_equal(lua_tostring(L, 2),
	                    "nesting deeper than 200 at [1][1][1]...(200 levels)...[1][1][1]");

	/* keys at both ends survive, the middle is counted */
	run(L, "local leaf = {f = print}\n"
	       "local t = leaf for i = 1, 20 do t = {x = t} end\n"
	       "return fails(json.encode({top = {['a b'] = t}}))");
	assert_string_equal(lua_tostring(L, 2),
	                    "cannot encode function at .top[\"a b\"].x...(23 levels)....x.x.f");

	/* at most 2 * 3 + 1 steps: shown whole */
	run(L, "local t = {f = print} for i = 1, 6 do t = {t} end return fails(json.encode(t))");
	assert_string_equal(lua_tostring(L, 2), "cannot encode function at [1][1][1][1][1][1].f");
	run(L, "local t = {f = print} for i = 1, 7 do t = {t} end return fails(json.encode(t))");
	assert_string_equal(lua_tostring(L, 2),
	                    "cannot encode function at [1][1][1]...(8 levels)...[1][1].f");
}

static void test_malformed(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	expect_invalid(L, "json.decode('[1,2')",
	               "invalid JSON at line 1, column 4: ']' expected near end of file");
	expect_invalid(L, "json.decode('[1] x')",
	               "invalid JSON at line 1, column 5: end of file expected near 'x'");
	expect_invalid(L, "json.decode('hello')",
	               "invalid JSON at line 1, column 5: invalid token near 'hello'");
	expect_invalid(L, "json.decode('')",
	               "invalid JSON at line 1, column 0: unexpected token near end of file");
	expect_invalid(L, "json.decode('  ')",
	               "invalid JSON at line 1, column 2: unexpected token near end of file");
	expect_invalid(L, "json.decode('\\n\\n  [1,\\n tru]')",
	               "invalid JSON at line 4, column 4: invalid token near 'tru'");
	expect_invalid_prefix(L, "json.decode('{\"a\":}')", "invalid JSON at line 1, column 6: ");
	expect_invalid_prefix(L, "json.decode('{\"a\\\\u0000b\":1}')",
	                      "invalid JSON at line 1, column 11: NUL byte in object key");

	/* Caller bugs raise. */
	run(L, "return pcall(json.decode, 5), pcall(json.decode, {}), pcall(json.decode),\n"
	       "  pcall(json.encode)");
	assert_false(lua_toboolean(L, 1));
	assert_false(lua_toboolean(L, 2));
	assert_false(lua_toboolean(L, 3));
	assert_false(lua_toboolean(L, 4));
}

static void test_big_integers(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;

	expect_invalid(L, "json.decode('99999999999999999999')",
	               "invalid JSON at line 1, column 20: too big integer near "
	               "'99999999999999999999'");
	expect_invalid(L, "json.decode('[-99999999999999999999]')",
	               "invalid JSON at line 1, column 22: too big negative integer");
	expect_invalid_prefix(L, "json.decode('{\"n\":9223372036854775808}')",
	                      "invalid JSON at line 1, column 24: too big integer");
	/* The edge itself is fine. */
	EXPECT("return json.encode(json.decode('[9223372036854775807,-9223372036854775808]'))",
	       "[9223372036854775807,-9223372036854775808]");
}

static void test_push_direct(void **state)
{
	lua_State *L = ((struct fixture *)*state)->L;
	char err[128];
	json_error_t jerr;
	json_t *v = json_loads("{\"a\":[1,2.5,null,\"x\\u0000y\",true],\"n\":-9223372036854775808}",
	                       JSON_ALLOW_NUL, &jerr);

	assert_non_null(v);
	lua_settop(L, 0);
	assert_int_equal(json_push(L, v, err, sizeof err), 0);
	json_decref(v);
	lua_setglobal(L, "v");
	run(L, "return math.type(v.a[1]), v.a[1], math.type(v.a[2]), v.a[2],\n"
	       "  v.a[3] == json.null, v.a[4] == 'x\\0y', v.a[5], #v.a, v.n == math.mininteger");
	assert_string_equal(lua_tostring(L, 1), "integer");
	assert_int_equal(lua_tointeger(L, 2), 1);
	assert_string_equal(lua_tostring(L, 3), "float");
	assert_true(lua_tonumber(L, 4) == 2.5);
	assert_true(lua_toboolean(L, 5));
	assert_true(lua_toboolean(L, 6));
	assert_true(lua_toboolean(L, 7));
	assert_int_equal(lua_tointeger(L, 8), 5);
	assert_true(lua_toboolean(L, 9));
}

/*
 * Run fn(arg) under every Lua memory budget from the current use upwards
 * until it succeeds; after each failed attempt no jansson allocation may
 * be live, before any garbage collection: the guard's __close freed it.
 * want_ok: the final call returns a value (1) or nil, err (0).
 * Returns the number of failed attempts.
 */
static int fault_loop(struct fixture *fx, const char *fn, const char *arg, int want_ok)
{
	lua_State *L = fx->limited;
	int nfail = 0;

	for (size_t extra = 0;; extra += 8) {
		int rc;

		lua_settop(L, 0);
		lua_gc(L, LUA_GCCOLLECT); /* else an emergency collection makes room */
		lua_getglobal(L, "json");
		lua_getfield(L, 1, fn);
		lua_getglobal(L, arg);
		fx->lim.max = fx->lim.used + extra;
		rc = lua_pcall(L, 1, 2, 0);
		fx->lim.max = SIZE_MAX;
		assert_int_equal(jansson_live, 0);
		if (rc == LUA_OK) {
			assert_int_equal(!lua_isnil(L, -2), want_ok);
			if (!want_ok)
				assert_string_equal(errval_code(L, -1), "invalid");
			break;
		}
		assert_int_equal(rc, LUA_ERRMEM);
		nfail++;
		if (nfail > 100000)
			fail_msg("%s never succeeded", fn);
	}
	lua_gc(L, LUA_GCCOLLECT);
	assert_int_equal(jansson_live, 0);
	return nfail;
}

static void test_no_leak_on_memory_error(void **state)
{
	struct fixture *fx = *state;
	lua_State *L;
	int nfail;

	json_set_alloc_funcs(count_malloc, count_free);
	jansson_live = 0;
	fx->lim.used = 0;
	fx->lim.max = SIZE_MAX;
	fx->limited = lua_newstate(limited_alloc, &fx->lim);
	assert_non_null(fx->limited);
	L = fx->limited;
	open_state(L);
	if (luaL_dostring(L, "local t = {}\n"
	                     "for i = 1, 20 do\n"
	                     "  t[i] = {id = i, name = 'item ' .. i, tags = {'a', 'b', i * 0.5},\n"
	                     "          nested = {deep = {deeper = {i, json.null, true}}}}\n"
	                     "end\n"
	                     "big = t\n"
	                     "doc = json.encode(t)\n"
	                     "bad = {1, 2, {x = print}}\n") != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	assert_int_equal(jansson_live, 0);

	nfail = fault_loop(fx, "decode", "doc", 1);
	assert_true(nfail > 50); /* failures all through the push */
	nfail = fault_loop(fx, "encode", "big", 1);
	assert_true(nfail > 100);                   /* the text (over 4 KiB) is pushed last */
	nfail = fault_loop(fx, "encode", "bad", 0); /* the error path */
	assert_true(nfail > 0);
	assert_int_equal(jansson_live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_int64_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_float_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_sentinel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sparse_and_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_embedded_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cycles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_functions_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nan_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_collapse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_integers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_push_direct, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_leak_on_memory_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
