/*
 * scripts-validate.c: checking the table a job script returns. It must
 * have a run function and nothing but the known fields (run, description,
 * concurrency, timeout, retries, backoff, schedule, limits, fair_by); each setting is
 * checked for its type and range, and a schedule must parse as cron
 * (cron.h).
 *
 * Fields are read raw (the script owns any metatable). A failure is
 * recorded through scripts_load_fail as "DIR/x.lua: FIELD must be ...,
 * got VALUE", with the value rendered short; the first failure wins.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "cron.h"
#include "scripts-int.h"

static const char *const field_names[] = {"run",     "description", "concurrency", "timeout",
                                          "retries", "backoff",     "schedule",    "limits",
                                          "fair_by", NULL};

/* A short rendering of the value at idx for messages: "ten", 5, nil, a table. */
static void render(lua_State *L, int idx, char *buf, size_t len)
{
	lua_Integer i;
	int isint;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		snprintf(buf, len, "nil");
		break;
	case LUA_TBOOLEAN:
		snprintf(buf, len, "%s", lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		i = lua_tointegerx(L, idx, &isint);
		if (lua_isinteger(L, idx) && isint)
			snprintf(buf, len, "%lld", (long long)i);
		else
			snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
		break;
	case LUA_TSTRING: {
		size_t n, k, o = 0;
		const char *s = lua_tolstring(L, idx, &n);
		if (len < 8)
			break;
		buf[o++] = '"';
		for (k = 0; k < n && k < 40 && o < len - 5; k++)
			buf[o++] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
		if (k < n && o < len - 5) {
			memcpy(buf + o, "...", 3);
			o += 3;
		}
		buf[o++] = '"';
		buf[o] = 0;
		break;
	}
	default:
		snprintf(buf, len, "a %s", luaL_typename(L, idx));
		break;
	}
}

/*
 * An integer setting at idx (absolute) >= min: 0 and *v, or -1 after
 * recording the failure.
 */
static int check_int(lua_State *L, int idx, const char *path, const char *field, int min, int *v,
                     struct script_load *out)
{
	char got[64];
	lua_Integer i = 0;
	int isint = 0;

	if (lua_type(L, idx) == LUA_TNUMBER)
		i = lua_tointegerx(L, idx, &isint);
	if (!isint || i < min) {
		render(L, idx, got, sizeof got);
		scripts_load_fail(out, "%s: %s must be an integer >= %d, got %s", path, field, min,
		                  got);
		return -1;
	}
	if (i > INT_MAX) {
		scripts_load_fail(out, "%s: %s must be at most %d, got %lld", path, field, INT_MAX,
		                  (long long)i);
		return -1;
	}
	*v = (int)i;
	return 0;
}

/* A number of ms at idx: > 0 (strict) or >= 0. */
static int check_ms(lua_State *L, int idx, const char *path, const char *field, int strict,
                    double *v, struct script_load *out)
{
	char got[64];
	double d = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : -1;

	if (lua_type(L, idx) != LUA_TNUMBER || (strict ? !(d > 0) : !(d >= 0))) {
		render(L, idx, got, sizeof got);
		scripts_load_fail(out, "%s: %s must be a number %s 0 (ms), got %s", path, field,
		                  strict ? ">" : ">=", got);
		return -1;
	}
	*v = d;
	return 0;
}

static int check_string(lua_State *L, int idx, const char *path, const char *field, char **v,
                        struct script_load *out)
{
	char got[64];

	if (lua_type(L, idx) != LUA_TSTRING) {
		render(L, idx, got, sizeof got);
		scripts_load_fail(out, "%s: %s must be a string, got %s", path, field, got);
		return -1;
	}
	*v = scripts_strdup(lua_tostring(L, idx));
	if (!*v) {
		scripts_load_fail(out, "%s: out of memory", path);
		return -1;
	}
	return 0;
}

/* Push t[k] (t at the absolute idx) without metamethods: the script owns them. */
static int rawfield(lua_State *L, int idx, const char *k)
{
	lua_pushstring(L, k);
	return lua_rawget(L, idx);
}

/*
 * limits at idx (absolute): an array of 1 to SCRIPTS_MAX_LIMITS tables
 * {by = FIELD, concurrency = N, rate = N, per = MS}, FIELD the name of a
 * field of the job's args, with concurrency, or rate and per, or all
 * three. 0, or -1 after recording the failure.
 */
static int check_limits(lua_State *L, int idx, const char *path, struct script_load *out)
{
	char got[64], what[48];
	lua_Integer n = lua_type(L, idx) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, idx) : 0;

	if (n < 1 || n > SCRIPTS_MAX_LIMITS) {
		render(L, idx, got, sizeof got);
		scripts_load_fail(out,
		                  "%s: limits must be a list of 1 to %d limits "
		                  "{ by = \"FIELD\", concurrency = N }, got %s",
		                  path, SCRIPTS_MAX_LIMITS, got);
		return -1;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		struct script_limit *lim = &out->limits[i - 1];
		int t = lua_rawgeti(L, idx, i), top = lua_gettop(L), bad = 0;
		snprintf(what, sizeof what, "limits[%lld]", (long long)i);
		if (t != LUA_TTABLE) {
			render(L, top, got, sizeof got);
			scripts_load_fail(out,
			                  "%s: %s must be a table { by = \"FIELD\", concurrency = "
			                  "N, rate = N, per = MS }, got %s",
			                  path, what, got);
			return -1;
		}
		lua_pushnil(L);
		while (!bad && lua_next(L, top)) {
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
			if (!k || (strcmp(k, "by") != 0 && strcmp(k, "concurrency") != 0 &&
			           strcmp(k, "rate") != 0 && strcmp(k, "per") != 0)) {
				render(L, -2, got, sizeof got);
				scripts_load_fail(
				    out,
				    "%s: %s has the unknown field %s (known: by, concurrency, "
				    "rate, per)",
				    path, what, got);
				bad = 1;
			}
			lua_pop(L, 1);
		}
		if (bad)
			return -1;
		if (rawfield(L, top, "by") == LUA_TFUNCTION) {
			lim->by_fn = 1; /* called at enqueue with args (jobs.c) */
		} else if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 ||
		           lua_rawlen(L, -1) >= SCRIPTS_LIMIT_BY) {
			render(L, -1, got, sizeof got);
			scripts_load_fail(out,
			                  "%s: %s.by must name a field of the job's args (1 to %d "
			                  "bytes) or be a function of args, got %s",
			                  path, what, SCRIPTS_LIMIT_BY - 1, got);
			return -1;
		} else {
			snprintf(lim->by, sizeof lim->by, "%s", lua_tostring(L, -1));
		}
		lua_pop(L, 1);
		snprintf(what, sizeof what, "limits[%lld].concurrency", (long long)i);
		if (rawfield(L, top, "concurrency") != LUA_TNIL &&
		    check_int(L, lua_gettop(L), path, what, 1, &lim->concurrency, out) < 0)
			return -1;
		lua_pop(L, 1);
		snprintf(what, sizeof what, "limits[%lld].rate", (long long)i);
		if (rawfield(L, top, "rate") != LUA_TNIL &&
		    check_int(L, lua_gettop(L), path, what, 1, &lim->rate, out) < 0)
			return -1;
		lua_pop(L, 1);
		snprintf(what, sizeof what, "limits[%lld].per", (long long)i);
		if (rawfield(L, top, "per") != LUA_TNIL &&
		    check_ms(L, lua_gettop(L), path, what, 1, &lim->per_ms, out) < 0)
			return -1;
		lua_pop(L, 2);
		if (!lim->concurrency && !lim->rate) {
			scripts_load_fail(
			    out,
			    "%s: limits[%lld] needs concurrency = N, or rate = N with per = "
			    "MS (or both)",
			    path, (long long)i);
			return -1;
		}
		if (!lim->rate != !(lim->per_ms > 0) || lim->per_ms > 86400000.0 * 366) {
			scripts_load_fail(
			    out,
			    "%s: limits[%lld]: rate and per go together (per: ms, at most "
			    "a year)",
			    path, (long long)i);
			return -1;
		}
	}
	out->nlimits = (int)n;
	return 0;
}

int scripts_validate(lua_State *L, int idx, const char *path, struct script_load *out)
{
	char got[64];
	int i, known, top = lua_gettop(L);

	if (lua_type(L, idx) != LUA_TTABLE) {
		render(L, idx, got, sizeof got);
		scripts_load_fail(out, "%s: must return a table with a run function, got %s", path,
		                  got);
		return -1;
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) { /* k v */
		known = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (i = 0; field_names[i] && !known; i++)
				known = strcmp(lua_tostring(L, -2), field_names[i]) == 0;
		if (!known) {
			render(L, -2, got, sizeof got);
			scripts_load_fail(
			    out,
			    "%s: unknown field %s%s%s (known: run, description, concurrency, "
			    "timeout, retries, backoff, schedule, limits, fair_by)",
			    path, lua_type(L, -2) == LUA_TSTRING ? "" : "[", got,
			    lua_type(L, -2) == LUA_TSTRING ? "" : "]");
			lua_settop(L, top);
			return -1;
		}
		lua_pop(L, 1);
	}
	if (rawfield(L, idx, "run") != LUA_TFUNCTION) {
		render(L, -1, got, sizeof got);
		scripts_load_fail(out, "%s: run must be a function, got %s", path, got);
		goto fail;
	}
	lua_pop(L, 1);
	if (rawfield(L, idx, "description") != LUA_TNIL &&
	    check_string(L, lua_gettop(L), path, "description", &out->description, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "concurrency") != LUA_TNIL &&
	    check_int(L, lua_gettop(L), path, "concurrency", 1, &out->concurrency, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "timeout") != LUA_TNIL &&
	    check_ms(L, lua_gettop(L), path, "timeout", 1, &out->timeout_ms, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "retries") != LUA_TNIL &&
	    check_int(L, lua_gettop(L), path, "retries", 0, &out->retries, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "backoff") != LUA_TNIL &&
	    check_ms(L, lua_gettop(L), path, "backoff", 0, &out->backoff_ms, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "schedule") != LUA_TNIL) {
		struct cron c;
		char why[256];
		if (check_string(L, lua_gettop(L), path, "schedule", &out->schedule, out) < 0)
			goto fail;
		if (cron_parse(&c, out->schedule, why, sizeof why) < 0) {
			scripts_load_fail(out, "%s: schedule \"%s\": %s", path, out->schedule, why);
			goto fail;
		}
	}
	lua_settop(L, top);
	if (rawfield(L, idx, "limits") != LUA_TNIL && check_limits(L, lua_gettop(L), path, out) < 0)
		goto fail;
	lua_settop(L, top);
	if (rawfield(L, idx, "fair_by") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 ||
		    lua_rawlen(L, -1) >= SCRIPTS_LIMIT_BY) {
			render(L, -1, got, sizeof got);
			scripts_load_fail(
			    out,
			    "%s: fair_by must name a field of the job's args (1 to %d "
			    "bytes), got %s",
			    path, SCRIPTS_LIMIT_BY - 1, got);
			goto fail;
		}
		snprintf(out->fair_by, sizeof out->fair_by, "%s", lua_tostring(L, -1));
	}
	lua_settop(L, top);
	return 0;
fail:
	lua_settop(L, top);
	return -1;
}
