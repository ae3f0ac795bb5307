/*
 * cmd-run.c: `run NAME [ARGS] [--timeout MS]`: run a job now, in memory,
 * and answer with its result (or its error) when it ends.
 *
 * Each run is a detached task running jobrun.lua's runner; the reply goes
 * back through a pending record that holds the connection. If the client
 * goes away the run still finishes (like a started HTTP request) and its
 * reply is dropped.
 */
#include <math.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "cmd.h"
#include "daemon.h"
#include "errval.h"
#include "json.h"
#include "log.h"
#include "modules.h"
#include "sched.h"
#include "server.h"
#include "task.h"

struct pending {
	struct daemon *d;
	struct conn *c;
	json_int_t id;
	int has_id;
};

/* Lua: reply(token, value, err), called once per run by jobrun.lua. */
static int run_reply(lua_State *L)
{
	struct pending *p = lua_touserdata(L, 1);
	struct daemon *d = p->d;
	char msg[256];

	if (!lua_isnoneornil(L, 3)) {
		errval_wrap(L, 3);
		lua_getfield(L, 3, "message");
		conn_error(p->c, p->id, p->has_id, errval_code(L, 3), "%s",
		           lua_isstring(L, -1) ? lua_tostring(L, -1) : "failed");
		d->runs_failed++;
	} else {
		json_t *v =
		    lua_isnoneornil(L, 2) ? json_null() : json_from_lua(L, 2, msg, sizeof msg);
		if (v) {
			conn_ok(p->c, p->id, p->has_id, v);
			d->runs_done++;
		} else {
			conn_error(p->c, p->id, p->has_id, "invalid",
			           "the job's result is not JSON: %s", msg);
			d->runs_failed++;
		}
	}
	d->runs_active--;
	conn_release(p->c);
	free(p);
	return 0;
}

/* Lua: make_log(name) -> the log table tagged with the job's name. */
static int run_make_log(lua_State *L)
{
	luaL_checkstring(L, 1);
	lua_settop(L, 1);
	log_push_module(L);
	return 1;
}

/* Load jobrun.lua (at start-up, on the loop). Raises on error. */
int cmd_run_setup(lua_State *L);

#include "jobrun_lua.h"

int cmd_run_setup(lua_State *L)
{
	if (luaL_loadbufferx(L, (const char *)jobrun_lua, jobrun_lua_len, "=jobrun.lua", "t") !=
	    LUA_OK)
		return lua_error(L);
	lua_pushcfunction(L, run_reply);
	lua_pushcfunction(L, run_make_log);
	lua_call(L, 2, 1);
	return 1;
}

/* Protected: spawn the runner. Stack: pending, json args (light), timeout. */
static int spawn_run(lua_State *L)
{
	struct pending *p = lua_touserdata(L, 1);
	const json_t *args = lua_touserdata(L, 2);
	double timeout = lua_tonumber(L, 3);
	const struct script *s = lua_touserdata(L, 4);
	struct daemon *d = p->d;
	char msg[256];

	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, d->run_ref);
	scripts_push_job(&d->scripts, s);
	lua_pushstring(L, s->name);
	lua_pushinteger(L, s->concurrency);
	lua_pushnumber(L, timeout);
	if (!args)
		lua_pushnil(L);
	else if (json_push(L, args, msg, sizeof msg) < 0)
		return luaL_error(L, "ARGS: %s", msg);
	lua_pushlightuserdata(L, p);
	lua_pushinteger(L, ++d->s->next_id); /* the run's id, unique in the daemon */
	task_spawn(L, 7, NULL, HUGE_VAL, 0);
	return 0;
}

static void cmd_run(struct cmd_ctx *ctx)
{
	struct daemon *d = ctx->d;
	const char *name = json_string_value(json_object_get(ctx->args, "name"));
	json_t *timeout_v = json_object_get(ctx->args, "timeout");
	const struct script *s;
	struct pending *p;
	lua_State *L = d->s->L;
	double timeout;

	if (!name) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "run needs args.name, the script's name");
		return;
	}
	if (d->draining) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "stopping", "the daemon is stopping");
		return;
	}
	s = scripts_find(&d->scripts, name);
	if (!s) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "no_such_script", "no script '%s' in %s",
		           name, d->scripts.dir);
		return;
	}
	if (!s->version) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid", "script '%s' did not load: %s",
		           name, s->error ? s->error : "unknown error");
		return;
	}
	timeout = s->timeout_ms;
	if (timeout_v) {
		if (!json_is_number(timeout_v) || json_number_value(timeout_v) <= 0) {
			conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
			           "args.timeout must be a number of ms > 0");
			return;
		}
		timeout = json_number_value(timeout_v);
	}
	p = malloc(sizeof *p);
	if (!p) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	p->d = d;
	p->c = conn_hold(ctx->c);
	p->id = ctx->id;
	p->has_id = ctx->has_id;
	d->runs_active++;
	lua_pushcfunction(L, spawn_run);
	lua_pushlightuserdata(L, p);
	lua_pushlightuserdata(L, json_object_get(ctx->args, "args"));
	lua_pushnumber(L, timeout);
	lua_pushlightuserdata(L, (void *)s);
	if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
		/* nothing started: the reply is ours to send */
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid", "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		d->runs_active--;
		conn_release(p->c);
		free(p);
	}
}

const struct cmd_entry cmd_run_entry = {"run", cmd_run};
