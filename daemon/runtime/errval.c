/*
 * errval.c: construction and inspection of error values.
 *
 * Everything that fails in awaitd fails with one of these, so that Lua code
 * can branch on err.code whatever raised it: a plain error("text") inside a
 * task, a cancellation, a timeout or a database error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "errval.h"
#include "sched.h"

static const char *memerr = "not enough memory"; /* Lua's fixed ERRMEM text */

/*
 * Push "code: message" for the value at idx without running any
 * metamethod: the runtime formats errors outside protected calls (when
 * it reports a failure), where a user's __tostring could raise or spin.
 */
static const char *describe(lua_State *L, int idx)
{
	const char *code = NULL, *msg = NULL;
	int type;

	idx = lua_absindex(L, idx);
	type = lua_type(L, idx);
	if (type == LUA_TTABLE) {
		lua_pushliteral(L, "code");
		if (lua_rawget(L, idx) == LUA_TSTRING)
			code = lua_tostring(L, -1);
		else if (errval_is(L, idx))
			code = "error";
		lua_pushliteral(L, "message");
		if (lua_rawget(L, idx) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
			msg = lua_tostring(L, -1);
		if (code) { /* an error value, or shaped like one */
			lua_pushfstring(L, "%s: %s", code, msg ? msg : "(no message)");
			lua_replace(L, -3);
			lua_pop(L, 1);
			return lua_tostring(L, -1);
		}
		lua_pop(L, 2);
	}
	if (type == LUA_TSTRING || type == LUA_TNUMBER) {
		lua_pushvalue(L, idx);
		lua_tostring(L, -1);
	} else if (type == LUA_TNIL || type == LUA_TBOOLEAN) {
		lua_pushstring(L, type == LUA_TNIL        ? "nil"
		                  : lua_toboolean(L, idx) ? "true"
		                                          : "false");
	} else {
		lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
	}
	return lua_tostring(L, -1);
}

static int errval_tostr(lua_State *L)
{
	describe(L, 1);
	return 1;
}

void errval_register(lua_State *L)
{
	if (luaL_newmetatable(L, ERRVAL_MT)) {
		lua_pushcfunction(L, errval_tostr);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
}

void errval_push(lua_State *L, const char *code, const char *fmt, ...)
{
	char buf[1024];
	const char *msg = buf;
	va_list ap;

	va_start(ap, fmt);
	if (strcmp(fmt, "%s") == 0) /* a message as it is, of any length */
		msg = va_arg(ap, const char *);
	else /* printf formats, not lua_pushfstring's */
		vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, ERRVAL_MT);
}

int errval_is(lua_State *L, int idx)
{
	int is;

	if (!lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, ERRVAL_MT);
	is = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return is;
}

void errval_wrap(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (errval_is(L, idx))
		return;
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tostring(L, idx);
		if (strcmp(s, memerr) == 0) {
			char msg[256];
			errval_push(L, "out_of_memory", "%s",
			            sched_oom_describe(L, msg, sizeof msg));
		} else
			errval_push(L, "error", "%s", s);
	} else {
		errval_push(L, "error", "%s", describe(L, idx));
		lua_remove(L, -2); /* the description */
		lua_pushvalue(L, idx);
		lua_setfield(L, -2, "value");
	}
	lua_replace(L, idx);
}

/*
 * Push a traceback of co from `level` in luaL_traceback's format, but
 * without its search of package.loaded for a global name for each
 * function: that search costs tens of microseconds per error, and every
 * cancellation and timeout makes an error value.
 */
static void push_traceback(lua_State *L, lua_State *co, int level)
{
	char buf[4096];
	size_t n = 0;
	lua_Debug ar;
	int frames = 0;

	n = (size_t)snprintf(buf, sizeof buf, "stack traceback:");
	while (n < sizeof buf - 1 && lua_getstack(co, level++, &ar)) {
		int w;
		if (frames++ == 20) {
			w = snprintf(buf + n, sizeof buf - n, "\n\t...");
			n += w > 0 ? (size_t)w : 0;
			break;
		}
		lua_getinfo(co, "Sln", &ar);
		if (ar.currentline > 0)
			w = snprintf(buf + n, sizeof buf - n, "\n\t%s:%d: in ", ar.short_src,
			             ar.currentline);
		else
			w = snprintf(buf + n, sizeof buf - n, "\n\t%s: in ", ar.short_src);
		n += w > 0 ? (size_t)w : 0;
		if (n >= sizeof buf - 1)
			break;
		if (*ar.namewhat)
			w = snprintf(buf + n, sizeof buf - n, "%s '%s'", ar.namewhat, ar.name);
		else if (*ar.what == 'm')
			w = snprintf(buf + n, sizeof buf - n, "main chunk");
		else if (*ar.what == 'C')
			w = snprintf(buf + n, sizeof buf - n, "?");
		else
			w = snprintf(buf + n, sizeof buf - n, "function <%s:%d>", ar.short_src,
			             ar.linedefined);
		n += w > 0 ? (size_t)w : 0;
	}
	if (n > sizeof buf - 1)
		n = sizeof buf - 1;
	lua_pushlstring(L, buf, n);
}

void errval_traceback(lua_State *L, int idx, lua_State *co, int level)
{
	idx = lua_absindex(L, idx);
	if (lua_getfield(L, idx, "traceback") != LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 1);
	push_traceback(L, co, level);
	lua_setfield(L, idx, "traceback");
}

const char *errval_code(lua_State *L, int idx)
{
	const char *code = "error";

	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_getfield(L, idx, "code");
		if (lua_type(L, -1) == LUA_TSTRING)
			code = lua_tostring(L, -1); /* anchored by the table */
		lua_pop(L, 1);
	}
	return code;
}

/*
 * The message handler runs at the raise point, before the stack unwinds,
 * so the traceback shows where the error happened. It lifts the memory
 * cap while it allocates: reporting an out-of-memory error must not fail.
 */
int errval_msgh(lua_State *L)
{
	struct sched *s = sched_of(L);
	int in_task = s->in_task;

	s->in_task = 0;
	errval_wrap(L, 1);
	errval_traceback(L, 1, L, 1);
	s->in_task = in_task;
	return 1;
}

const char *errval_tostring(lua_State *L, int idx)
{
	return describe(L, idx);
}
