/*
 * json.c: the `json` Lua module, on jansson (see json.h for the mapping).
 *
 * One mapping serves every JSON user in awaitd: json_from_lua (in
 * json-encode.c) turns a Lua value into a jansson value, json_push (here)
 * does the reverse, and the module's encode and decode are thin wrappers
 * that add jansson's text codec.
 * Output is deterministic: compact, keys sorted, reals with 17 digits.
 *
 * Ownership, and why no json_t can leak through a Lua error (longjmp):
 *  - json_from_lua never raises. It only reads the Lua state (raw access,
 *    lua_next, lua_checkstack, which returns 0 instead of raising) and
 *    keeps its cycle check and error path in fixed C arrays, so it never
 *    allocates Lua memory while it holds a half-built jansson value.
 *  - json_push only allocates Lua memory and holds nothing of its own.
 *  - json.encode and json.decode hold their jansson value (and the dumped
 *    text) in a "guard": a userdata created before anything is built and
 *    marked to-be-closed. A memory error raised while the result is pushed
 *    unwinds through the guard's __close, which frees what it holds; a
 *    normal return frees explicitly and leaves the guard empty. __gc does
 *    the same as a last resort, and freeing is idempotent.
 *
 * Invariant: the Lua stack is balanced on every return path of the
 * recursive helpers; json_push leaves nothing pushed when it fails.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "errval.h"
#include "json-int.h"
#include "json.h"

_Static_assert(sizeof(json_int_t) == sizeof(lua_Integer),
               "jansson integers must be 64-bit like Lua integers");

#define JSON_GUARD_MT   "awaitd.json.guard"
#define JSON_ERRLEN     512 /* bytes for messages, path included */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))
#define JSON_LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

char json_null_tag; /* its address is json.null */

/* What json.encode and json.decode hold while they push into Lua. */
struct json_guard {
	json_t *v;  /* owned reference, or NULL */
	char *text; /* owned, from jansson's allocator, or NULL */
};

/* ---- message buffers (json-int.h) ---- */

void json_buf_init(struct json_buf *b, char *p, size_t cap)
{
	b->p = p;
	b->cap = p ? cap : 0;
	b->len = 0;
	if (b->cap > 0)
		b->p[0] = '\0';
}

void json_buf_add(struct json_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->cap == 0 || b->len + 1 >= b->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->len += (size_t)n;
	if (b->len >= b->cap)
		b->len = b->cap - 1;
}

void json_buf_add_escaped(struct json_buf *b, const char *s, size_t len, int quoted)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (quoted && (c == '"' || c == '\\'))
			json_buf_add(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			json_buf_add(b, "\\x%02x", c);
		else
			json_buf_add(b, "%c", c);
	}
}

void json_push_null(lua_State *L)
{
	lua_pushlightuserdata(L, &json_null_tag);
}

/* Push v nested in depth containers; 0, or -1 with err set (stack dirty). */
static int json_push_value(lua_State *L, const json_t *v, int depth, char *err, size_t errlen)
{
	struct json_buf b;

	if ((json_is_object(v) || json_is_array(v)) && depth >= JSON_MAX_DEPTH) {
		json_buf_init(&b, err, errlen);
		json_buf_add(&b, "nesting deeper than %d", JSON_MAX_DEPTH);
		return -1;
	}
	if (!lua_checkstack(L, 3)) {
		json_buf_init(&b, err, errlen);
		json_buf_add(&b, "Lua stack overflow");
		return -1;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		size_t keylen;
		json_t *child;

		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_keylen_foreach((json_t *)v, key, keylen, child)
		{
			lua_pushlstring(L, key, keylen);
			if (json_push_value(L, child, depth + 1, err, errlen) != 0)
				return -1;
			lua_rawset(L, -3);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);

		lua_createtable(L, n <= INT_MAX ? (int)n : 0, 0);
		for (size_t i = 0; i < n; i++) {
			if (json_push_value(L, json_array_get(v, i), depth + 1, err, errlen) != 0)
				return -1;
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, (lua_Number)json_real_value(v));
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	case JSON_NULL:
		json_push_null(L);
		break;
	}
	return 0;
}

int json_push(lua_State *L, const json_t *v, char *err, size_t errlen)
{
	int top = lua_gettop(L);

	if (json_push_value(L, v, 0, err, errlen) != 0) {
		lua_settop(L, top);
		return -1;
	}
	return 0;
}

static void json_guard_release(struct json_guard *g)
{
	json_free_t free_fn;

	if (g->text) {
		json_get_alloc_funcs(NULL, &free_fn);
		free_fn(g->text);
		g->text = NULL;
	}
	json_decref(g->v);
	g->v = NULL;
}

/* __close and __gc of a guard. */
static int json_guard_close(lua_State *L)
{
	json_guard_release(lua_touserdata(L, 1));
	return 0;
}

/*
 * Push a new, empty, to-be-closed guard. Raises only before the caller
 * holds anything; from then on the guard owns what the caller stores in it.
 */
static struct json_guard *json_guard_new(lua_State *L)
{
	struct json_guard *g = lua_newuserdatauv(L, sizeof *g, 0);

	g->v = NULL;
	g->text = NULL;
	if (luaL_newmetatable(L, JSON_GUARD_MT)) {
		lua_pushcfunction(L, json_guard_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, json_guard_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return g;
}

/* json.encode(v) -> string | nil, err */
static int json_encode(lua_State *L)
{
	char msg[JSON_ERRLEN];
	struct json_guard *g;

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	g = json_guard_new(L);
	g->v = json_from_lua(L, 1, msg, sizeof msg);
	if (!g->v) {
		lua_pushnil(L);
		errval_push(L, "invalid", "%s", msg);
		return 2;
	}
	g->text = json_dumps(g->v, JSON_DUMP_FLAGS);
	if (!g->text) {
		json_guard_release(g);
		lua_pushnil(L);
		errval_push(L, "out_of_memory", "json.encode: out of memory");
		return 2;
	}
	/* May raise: the guard frees v and text. Not lua_pushstring, whose
	 * cache can return an old copy of the text without allocating. */
	lua_pushlstring(L, g->text, strlen(g->text));
	json_guard_release(g);
	return 1;
}

/* json.decode(s) -> value | nil, err */
static int json_decode(lua_State *L)
{
	char msg[JSON_ERRLEN];
	struct json_buf b;
	json_error_t jerr;
	struct json_guard *g;
	const char *s;
	size_t len;

	luaL_checktype(L, 1, LUA_TSTRING);
	s = lua_tolstring(L, 1, &len);
	lua_settop(L, 1);
	g = json_guard_new(L);
	g->v = json_loadb(s, len, JSON_LOAD_FLAGS, &jerr);
	if (!g->v) {
		/* jansson quotes the offending input, which may not be UTF-8. */
		json_buf_init(&b, msg, sizeof msg);
		json_buf_add(&b, "invalid JSON at line %d, column %d: ", jerr.line, jerr.column);
		json_buf_add_escaped(&b, jerr.text, strnlen(jerr.text, sizeof jerr.text - 1), 0);
		lua_pushnil(L);
		errval_push(L, "invalid", "%s", msg);
		return 2;
	}
	if (json_push(L, g->v, msg, sizeof msg) != 0) {
		json_guard_release(g);
		lua_pushnil(L);
		errval_push(L, "invalid", "invalid JSON: %s", msg);
		return 2;
	}
	json_guard_release(g);
	return 1;
}

static const luaL_Reg json_funcs[] = {
    {"encode", json_encode},
    {"decode", json_decode},
    {NULL, NULL},
};

int luaopen_json(lua_State *L)
{
	luaL_newlib(L, json_funcs);
	json_push_null(L);
	lua_setfield(L, -2, "null");
	return 1;
}
