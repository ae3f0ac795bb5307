/*
 * json.c: the `json` Lua module, on jansson (see json.h for the mapping).
 *
 * One mapping serves every JSON user in awaitd: json_from_lua turns a Lua
 * value into a jansson value, json_push does the reverse, and the module's
 * encode and decode are thin wrappers that add jansson's text codec.
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
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "errval.h"
#include "json.h"

_Static_assert(sizeof(json_int_t) == sizeof(lua_Integer),
               "jansson integers must be 64-bit like Lua integers");

#define JSON_GUARD_MT   "awaitd.json.guard"
#define JSON_ERRLEN     512 /* bytes for messages, path included */
#define JSON_KEYSHOW    48  /* bytes of a key shown in a path */
#define JSON_PATH_ENDS  3   /* steps shown at each end of a deep path */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))
#define JSON_LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

static char json_null_tag; /* its address is json.null */

/* What json.encode and json.decode hold while they push into Lua. */
struct json_guard {
	json_t *v;  /* owned reference, or NULL */
	char *text; /* owned, from jansson's allocator, or NULL */
};

/* One step of the path from the encoded root down to the current value. */
struct json_step {
	const char *key;   /* object key, borrowed from the Lua stack; NULL: index */
	size_t keylen;     /* bytes of key */
	lua_Integer index; /* array index (1-based) or integer object key */
};

/*
 * The state of one json_from_lua call. Entries 0..depth-1 describe the
 * tables being encoded, outermost first: tables[d] is the table and
 * steps[d] the key under which its child currently being encoded sits.
 */
struct json_enc {
	lua_State *L;
	int depth;                          /* tables entered */
	const void *tables[JSON_MAX_DEPTH]; /* for the cycle check */
	struct json_step steps[JSON_MAX_DEPTH];
	char *err;
	size_t errlen;
};

/* A bounded string builder: output past cap is dropped, always terminated. */
struct json_buf {
	char *p;
	size_t cap; /* bytes of p, 0 when there is nowhere to write */
	size_t len; /* bytes written, < cap */
};

static void json_buf_init(struct json_buf *b, char *p, size_t cap)
{
	b->p = p;
	b->cap = p ? cap : 0;
	b->len = 0;
	if (b->cap > 0)
		b->p[0] = '\0';
}

static void json_buf_add(struct json_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void json_buf_add(struct json_buf *b, const char *fmt, ...)
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

/*
 * Append bytes so that the result is printable ASCII: messages end up in
 * error values that are themselves sent as JSON, which must be UTF-8.
 * With quoted set, '"' and '\\' are escaped too (the text is in quotes).
 */
static void json_buf_add_escaped(struct json_buf *b, const char *s, size_t len, int quoted)
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

static int json_is_identifier(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return 1;
}

/* Append one step of a path: ".name", "[3]" or ["odd key"]. */
static void json_step_add(struct json_buf *b, const struct json_step *st)
{
	if (!st->key) {
		json_buf_add(b, "[%lld]", (long long)st->index);
	} else if (json_is_identifier(st->key, st->keylen)) {
		json_buf_add(b, ".%.*s", (int)st->keylen, st->key);
	} else {
		size_t n = st->keylen < JSON_KEYSHOW ? st->keylen : JSON_KEYSHOW;

		json_buf_add(b, "[\"");
		json_buf_add_escaped(b, st->key, n, 1);
		json_buf_add(b, "%s\"]", n < st->keylen ? "..." : "");
	}
}

/*
 * Fill e->err with "<what> at <path of the value being encoded>". A deep
 * path shows its first and last JSON_PATH_ENDS steps around the depth:
 * ".a[1][1]...(200 levels)...[1][1].b", not 200 steps cut off mid-way.
 */
static void json_enc_fail(struct json_enc *e, const char *what)
{
	struct json_buf b;

	json_buf_init(&b, e->err, e->errlen);
	json_buf_add(&b, "%s at ", what);
	if (e->depth == 0)
		json_buf_add(&b, "top level");
	for (int d = 0; d < e->depth; d++) {
		if (e->depth > 2 * JSON_PATH_ENDS + 1 && d == JSON_PATH_ENDS) {
			json_buf_add(&b, "...(%d levels)...", e->depth);
			d = e->depth - JSON_PATH_ENDS - 1;
			continue;
		}
		json_step_add(&b, &e->steps[d]);
	}
}

static json_t *json_enc_value(struct json_enc *e, int idx);

/*
 * Classify the table at idx: return n > 0 when its keys are exactly 1..n
 * (an array), 0 otherwise (an object). One raw traversal; balanced stack.
 */
static lua_Integer json_array_length(lua_State *L, int idx)
{
	lua_Integer n = 0, max = 0;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Integer k;

		lua_pop(L, 1); /* the value */
		k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
		if (k < 1) {
			lua_pop(L, 1); /* the key: traversal stops */
			return 0;
		}
		if (k > max)
			max = k;
		n++;
	}
	return max == n ? n : 0;
}

static json_t *json_enc_array(struct json_enc *e, int idx, lua_Integer n)
{
	lua_State *L = e->L;
	struct json_step *st = &e->steps[e->depth - 1];
	json_t *arr = json_array();

	if (!arr) {
		json_enc_fail(e, "out of memory");
		return NULL;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		json_t *child;

		st->key = NULL;
		st->index = i;
		lua_rawgeti(L, idx, i);
		child = json_enc_value(e, lua_gettop(L));
		lua_pop(L, 1);
		if (!child)
			goto err;
		if (json_array_append_new(arr, child) != 0) { /* consumes child */
			json_enc_fail(e, "out of memory");
			goto err;
		}
	}
	return arr;
err:
	json_decref(arr);
	return NULL;
}

static json_t *json_enc_object(struct json_enc *e, int idx)
{
	lua_State *L = e->L;
	struct json_step *st = &e->steps[e->depth - 1];
	json_t *obj = json_object();
	char what[256];

	if (!obj) {
		json_enc_fail(e, "out of memory");
		return NULL;
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		char num[32];
		json_t *child;

		/* Stack: key at -2, value at -1. The key is never converted in
		 * place (lua_tolstring on a number would break lua_next). */
		if (lua_type(L, -2) == LUA_TSTRING) {
			st->key = lua_tolstring(L, -2, &st->keylen);
		} else if (lua_isinteger(L, -2)) {
			st->index = lua_tointeger(L, -2);
			st->keylen =
			    (size_t)snprintf(num, sizeof num, "%lld", (long long)st->index);
			st->key = NULL; /* shown as [n] in paths */
		} else {
			st->key = NULL;
			st->index = 0;
			e->depth--; /* the key belongs to this table, not to a child */
			snprintf(what, sizeof what,
			         "cannot encode %s key (keys must be strings or integers)",
			         lua_type(L, -2) == LUA_TNUMBER ? "float" : luaL_typename(L, -2));
			json_enc_fail(e, what);
			e->depth++;
			lua_pop(L, 2);
			goto err;
		}
		const char *key = st->key ? st->key : num;

		if (memchr(key, '\0', st->keylen)) {
			json_enc_fail(e, "NUL byte in object key");
			lua_pop(L, 2);
			goto err;
		}
		if (json_object_getn(obj, key, st->keylen)) {
			/* 1 and "1": which one comes second depends on the traversal
			 * order, so name the table rather than either key. */
			struct json_buf b;
			size_t n = st->keylen < JSON_KEYSHOW ? st->keylen : JSON_KEYSHOW;

			json_buf_init(&b, what, sizeof what);
			json_buf_add(&b, "duplicate key \"");
			json_buf_add_escaped(&b, key, n, 1);
			json_buf_add(&b, "%s\" (an integer key and a string key)",
			             n < st->keylen ? "..." : "");
			e->depth--;
			json_enc_fail(e, what);
			e->depth++;
			lua_pop(L, 2);
			goto err;
		}
		child = json_enc_value(e, lua_gettop(L));
		lua_pop(L, 1); /* the value; the key stays for lua_next */
		if (!child) {
			lua_pop(L, 1);
			goto err;
		}
		/* json_object_setn takes its own reference, so on failure we still
		 * hold child and can tell a bad key from a failed allocation. */
		if (json_object_setn(obj, key, st->keylen, child) != 0) {
			int rc = json_object_setn_new_nocheck(obj, key, st->keylen, child);

			json_enc_fail(e, rc == 0 ? "invalid UTF-8 in object key" : "out of memory");
			lua_pop(L, 1);
			goto err;
		}
		json_decref(child);
	}
	return obj;
err:
	json_decref(obj);
	return NULL;
}

static json_t *json_enc_table(struct json_enc *e, int idx)
{
	lua_State *L = e->L;
	const void *p = lua_topointer(L, idx);
	lua_Integer n;
	json_t *v;
	char what[64];

	for (int d = 0; d < e->depth; d++) {
		if (e->tables[d] == p) {
			json_enc_fail(e, "table cycle");
			return NULL;
		}
	}
	if (e->depth >= JSON_MAX_DEPTH) {
		snprintf(what, sizeof what, "nesting deeper than %d", JSON_MAX_DEPTH);
		json_enc_fail(e, what);
		return NULL;
	}
	if (!lua_checkstack(L, 4)) {
		json_enc_fail(e, "Lua stack overflow");
		return NULL;
	}
	e->tables[e->depth] = p;
	e->steps[e->depth] = (struct json_step){0};
	e->depth++;
	n = json_array_length(L, idx);
	v = n > 0 ? json_enc_array(e, idx, n) : json_enc_object(e, idx);
	e->depth--;
	return v;
}

static json_t *json_enc_string(struct json_enc *e, int idx)
{
	size_t len;
	const char *s = lua_tolstring(e->L, idx, &len); /* a string: no conversion */
	json_t *v = json_stringn(s, len);

	if (!v) {
		/* NULL is bad UTF-8 or no memory; only the former passes here. */
		v = json_stringn_nocheck(s, len);
		json_enc_fail(e, v ? "invalid UTF-8 in string" : "out of memory");
		json_decref(v);
		return NULL;
	}
	return v;
}

static json_t *json_enc_value(struct json_enc *e, int idx)
{
	lua_State *L = e->L;
	json_t *v = NULL;
	char what[64];

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			v = json_integer((json_int_t)lua_tointeger(L, idx));
		} else {
			double d = lua_tonumber(L, idx);

			if (!isfinite(d)) {
				json_enc_fail(e, "cannot encode NaN or infinity");
				return NULL;
			}
			v = json_real(d);
		}
		if (!v)
			json_enc_fail(e, "out of memory");
		return v;
	case LUA_TSTRING:
		return json_enc_string(e, idx);
	case LUA_TTABLE:
		return json_enc_table(e, idx);
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == &json_null_tag)
			return json_null();
		break;
	default:
		break;
	}
	snprintf(what, sizeof what, "cannot encode %s", luaL_typename(L, idx));
	json_enc_fail(e, what);
	return NULL;
}

json_t *json_from_lua(lua_State *L, int idx, char *err, size_t errlen)
{
	struct json_enc e;

	e.L = L;
	e.depth = 0;
	e.err = err;
	e.errlen = errlen;
	return json_enc_value(&e, lua_absindex(L, idx));
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
