/*
 * jobs-keys.c: a job's keys, computed when it is enqueued and stored with
 * it: its value of each of its script's limits (a field of args, or what a
 * `by` function of args returns) and of its fair_by field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "jobs-int.h"
#include "json.h"
#include "sched.h"
#include "scripts.h"
#include "store.h"

#define BY_FN_MAX_INSNS 1000000 /* VM instructions a `by` function may run */

/*
 * The job's value of args[field] into *out (malloc'd): a string as it is,
 * a number as its shortest text, absent or null as none (NULL, or dflt
 * when given). 0, or -1 with err (what names the setting).
 */
static int key_of(const struct script *s, json_t *args, const char *field, const char *what,
                  const char *dflt, char **out, struct store_err *err)
{
	json_t *v = json_object_get(args, field);
	char num[64];
	const char *text = dflt;

	if (json_is_string(v))
		text = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(num, sizeof num, "%.17g", json_real_value(v));
	else if (v && !json_is_null(v)) {
		snprintf(err->code, sizeof err->code, "invalid");
		snprintf(err->msg, sizeof err->msg,
		         "%s %s args.%s: it must be a string or a number (or absent)", s->name,
		         what, field);
		return -1;
	}
	if (json_is_number(v))
		text = num;
	if (text && !(*out = strdup(text))) {
		snprintf(err->code, sizeof err->code, "out_of_memory");
		snprintf(err->msg, sizeof err->msg, "out of memory");
		return -1;
	}
	return 0;
}

/* The hook of a `by` function that runs too long. */
static void by_fn_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	luaL_error(L, "it ran past %d instructions", BY_FN_MAX_INSNS);
}

/* Set err to invalid: "NAME limits[I].by: why". Returns -1. */
static int by_fn_fail(struct store_err *err, const struct script *s, int i, const char *why)
{
	snprintf(err->code, sizeof err->code, "invalid");
	snprintf(err->msg, sizeof err->msg, "%s limits[%d].by: %s", s->name, i + 1, why);
	return -1;
}

/*
 * Limit i's `by` function of s called with the job's args: its string or
 * number into *out (malloc'd), nil as none. On a thread of its own (the
 * caller may be a task), within BY_FN_MAX_INSNS instructions.
 */
static int key_by_fn(struct jobs *j, const struct script *s, int i, json_t *args, char **out,
                     struct store_err *err)
{
	lua_State *L = j->env.s->L, *T;
	int top = lua_gettop(L), rc = 0;
	char msg[256];

	T = lua_newthread(L);                /* anchored on L's stack until the end */
	scripts_push_job(j->env.scripts, s); /* job.limits[i + 1].by, read raw */
	if (lua_type(L, -1) == LUA_TTABLE) {
		lua_pushliteral(L, "limits");
		if (lua_rawget(L, -2) == LUA_TTABLE && lua_rawgeti(L, -1, i + 1) == LUA_TTABLE) {
			lua_pushliteral(L, "by");
			lua_rawget(L, -2);
		}
	}
	if (lua_type(L, -1) != LUA_TFUNCTION) {
		lua_settop(L, top);
		return by_fn_fail(err, s, i, "the script no longer has this function");
	}
	lua_xmove(L, T, 1);
	if (!args || json_is_null(args))
		lua_pushnil(T);
	else if (json_push(T, args, msg, sizeof msg) < 0)
		rc = by_fn_fail(err, s, i, msg);
	lua_sethook(T, by_fn_hook, LUA_MASKCOUNT, BY_FN_MAX_INSNS);
	if (rc == 0 && lua_pcall(T, 1, 1, 0) != LUA_OK) {
		snprintf(msg, sizeof msg, "%s",
		         lua_tostring(T, -1) ? lua_tostring(T, -1) : "error");
		rc = by_fn_fail(err, s, i, msg);
	} else if (rc == 0 && lua_type(T, -1) == LUA_TNUMBER) {
		if (lua_isinteger(T, -1))
			snprintf(msg, sizeof msg, "%lld", (long long)lua_tointeger(T, -1));
		else
			snprintf(msg, sizeof msg, "%.17g", (double)lua_tonumber(T, -1));
		*out = strdup(msg);
	} else if (rc == 0 && lua_type(T, -1) == LUA_TSTRING) {
		*out = strdup(lua_tostring(T, -1));
	} else if (rc == 0 && !lua_isnil(T, -1)) {
		snprintf(msg, sizeof msg, "it must return a string, a number or nil, not %s",
		         luaL_typename(T, -1));
		rc = by_fn_fail(err, s, i, msg);
	}
	if (rc == 0 && !lua_isnil(T, -1) && !*out) {
		snprintf(err->code, sizeof err->code, "out_of_memory");
		snprintf(err->msg, sizeof err->msg, "out of memory");
		rc = -1;
	}
	lua_settop(L, top);
	return rc;
}

int jobs_job_keys(struct jobs *j, const struct script *s, struct store_req *r,
                  struct store_err *err)
{
	json_t *args = r->text ? json_loads(r->text, JSON_DECODE_ANY, NULL) : NULL;
	int rc = 0;

	for (int i = 0; rc == 0 && i < s->nlimits; i++)
		rc = s->limits[i].by_fn ? key_by_fn(j, s, i, args, &r->limit_keys[i], err)
		                        : key_of(s, args, s->limits[i].by, "limits by", NULL,
		                                 &r->limit_keys[i], err);
	/* without the field a job is in the round as "" (every value takes turns) */
	if (rc == 0 && s->fair_by[0])
		rc = key_of(s, args, s->fair_by, "is fair by", "", &r->fair_key, err);
	json_decref(args);
	return rc;
}
