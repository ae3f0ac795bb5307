/*
 * log.c (bindings): the Lua "log" module, log.debug/info/warn/error(fmt, ...).
 *
 * The message is string.format(fmt, ...) when arguments follow, else fmt
 * as it is, tagged with the job (when the runtime set one, see
 * luaopen_log's caller) and the task that logged it.
 */
#include <lauxlib.h>

#include "log.h"
#include "task.h"

static int log_at(lua_State *L, enum log_level level)
{
	struct task *t = task_current(L);
	const char *job, *msg;

	if (lua_gettop(L) > 1) {
		lua_pushvalue(L, lua_upvalueindex(1)); /* string.format */
		lua_insert(L, 1);
		lua_call(L, lua_gettop(L) - 1, 1);
	}
	msg = luaL_tolstring(L, 1, NULL);
	job = lua_tostring(L, lua_upvalueindex(2));
	if (t)
		log_msg(level, "[%s%stask %lld] %s", job ? job : "", job ? " " : "",
		        (long long)t->id, msg);
	else
		log_msg(level, "[%s] %s", job ? job : "main", msg);
	return 0;
}

static int log_debug_l(lua_State *L)
{
	return log_at(L, LOG_LEVEL_DEBUG);
}

static int log_info_l(lua_State *L)
{
	return log_at(L, LOG_LEVEL_INFO);
}

static int log_warn_l(lua_State *L)
{
	return log_at(L, LOG_LEVEL_WARN);
}

static int log_error_l(lua_State *L)
{
	return log_at(L, LOG_LEVEL_ERROR);
}

/*
 * The log table for a job named by the string at the top of the stack
 * (popped), or for no job when nil. Pushes the table.
 */
void log_push_module(lua_State *L)
{
	static const luaL_Reg fns[] = {
	    {"debug", log_debug_l}, {"info", log_info_l}, {"warn", log_warn_l},
	    {"error", log_error_l}, {NULL, NULL},
	};
	int job = lua_gettop(L);

	lua_createtable(L, 0, 4);
	for (const luaL_Reg *r = fns; r->name; r++) {
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "format");
		lua_remove(L, -2);
		lua_pushvalue(L, job);
		lua_pushcclosure(L, r->func, 2);
		lua_setfield(L, -2, r->name);
	}
	lua_remove(L, job);
}

int luaopen_log(lua_State *L)
{
	lua_pushnil(L);
	log_push_module(L);
	return 1;
}
