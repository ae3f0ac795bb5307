/*
 * json-encode.c: json_from_lua, a Lua value turned into a jansson value
 * (the mapping is in json.h), for json.encode and every other JSON user.
 *
 * It never raises: it only reads the Lua state (raw access, lua_next,
 * lua_checkstack, which returns 0 instead of raising) and keeps its cycle
 * check and error path in fixed C arrays, so it never allocates Lua memory
 * while it holds a half-built jansson value. A value it cannot encode is
 * named in the message by its path from the root (".a[2][\"odd key\"]").
 *
 * Invariant: the Lua stack is balanced on every return path of the
 * recursive helpers.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "json-int.h"
#include "json.h"

#define JSON_KEYSHOW   48 /* bytes of a key shown in a path */
#define JSON_PATH_ENDS 3  /* steps shown at each end of a deep path */

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
