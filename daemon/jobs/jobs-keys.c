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

/* A `by` call: its inputs, and its key or why it failed. */
struct by_call {
	struct jobs *j;
	const struct script *s;
	int i;
	json_t *args;
	char *out; /* malloc'd; NULL: no value */
	int failed;
	char msg[256];
};

/*
 * Lua (protected, on the daemon's state): limit c->i's `by` function of
 * c->s called with the job's args on a thread of its own (the caller may be
 * a task), within BY_FN_MAX_INSNS instructions; every allocation that may
 * raise is in here.
 */
static int by_call_l(lua_State *L)
{
	struct by_call *c = lua_touserdata(L, 1);
	lua_State *T = lua_newthread(L);

	scripts_push_job(c->j->env.scripts, c->s); /* job.limits[i + 1].by, read raw */
	if (lua_type(L, -1) == LUA_TTABLE) {
		lua_pushliteral(L, "limits");
		if (lua_rawget(L, -2) == LUA_TTABLE && lua_rawgeti(L, -1, c->i + 1) == LUA_TTABLE) {
			lua_pushliteral(L, "by");
			lua_rawget(L, -2);
		}
	}
	c->failed = 1;
	if (lua_type(L, -1) != LUA_TFUNCTION) {
		snprintf(c->msg, sizeof c->msg, "the script no longer has this function");
		return 0;
	}
	lua_xmove(L, T, 1);
	if (!c->args || json_is_null(c->args))
		lua_pushnil(T);
	else if (json_push(T, c->args, c->msg, sizeof c->msg) < 0)
		return 0;
	lua_sethook(T, by_fn_hook, LUA_MASKCOUNT, BY_FN_MAX_INSNS);
	if (lua_pcall(T, 1, 1, 0) != LUA_OK) {
		snprintf(c->msg, sizeof c->msg, "%s",
		         lua_tostring(T, -1) ? lua_tostring(T, -1) : "error");
		return 0;
	}
	c->failed = 0;
	if (lua_type(T, -1) == LUA_TNUMBER) {
		char num[64];
		if (lua_isinteger(T, -1))
			snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(T, -1));
		else
			snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(T, -1));
		c->out = strdup(num);
	} else if (lua_type(T, -1) == LUA_TSTRING) {
		c->out = strdup(lua_tostring(T, -1));
	} else if (!lua_isnil(T, -1)) {
		snprintf(c->msg, sizeof c->msg, "it must return a string, a number or nil, not %s",
		         luaL_typename(T, -1));
		c->failed = 1;
		return 0;
	}
	if (!lua_isnil(T, -1) && !c->out) {
		snprintf(c->msg, sizeof c->msg, "out of memory");
		c->failed = 1;
	}
	return 0;
}

/* Limit i's `by` function of s for the job's args: its value into *out (malloc'd, or none). */
static int key_by_fn(struct jobs *j, const struct script *s, int i, json_t *args, char **out,
                     struct store_err *err)
{
	lua_State *L = j->env.s->L;
	struct by_call c = {j, s, i, args, NULL, 0, ""};
	int top = lua_gettop(L);

	if (!lua_checkstack(L, 4))
		return by_fn_fail(err, s, i, "out of memory");
	lua_pushcfunction(L, by_call_l);
	lua_pushlightuserdata(L, &c);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		/* an allocation refused (the memory cap): nothing is left on the stack */
		snprintf(c.msg, sizeof c.msg, "%s",
		         lua_tostring(L, -1) ? lua_tostring(L, -1) : "out of memory");
		c.failed = 1;
	}
	lua_settop(L, top);
	if (c.failed) {
		free(c.out);
		return by_fn_fail(err, s, i, c.msg);
	}
	*out = c.out;
	return 0;
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
