/*
 * async-scope.c: _scope(ms, fn, ...), what async.timeout(ms, fn, ...) runs
 * fn with (async.lua): fn runs in the calling task, inside a timeout scope
 * (task.h), instead of in a task of its own, so a timeout costs no thread,
 * no task and no second timer.
 *
 * _scope returns how fn ended, the scope's children to join, then values:
 *   "ok", joins, results...  fn returned in time
 *   "err", joins, err        fn raised, or returned nil, err (err wrapped)
 *   "timeout", joins         the scope's own deadline passed and was raised
 *   "up", joins, err         an outer scope's deadline or the task's own
 *                            cancellation was raised in fn: raise err on
 * joins is false, or the list of the tasks fn spawned that were still
 * running: they are cancelled, and the caller joins them before it returns
 * (nothing outlives its combinator). A normal end warns about them, as a
 * task that ends with unawaited children does.
 */
#include <lauxlib.h>

#include "async-int.h"
#include "errval.h"
#include "task.h"

/* the stack of _scope: ms, the mark (9 values), the message handler, fn, args... */
#define MARK 2
#define MSGH (MARK + 9)
#define FN   (MSGH + 1)

static void push_mark(lua_State *L, const struct task_scope_mark *m, int cancelled)
{
	lua_pushnumber(L, m->at);
	lua_pushnumber(L, m->ms);
	lua_pushnumber(L, m->deadline);
	lua_pushnumber(L, m->grace);
	lua_pushinteger(L, m->def);
	lua_pushinteger(L, m->hit);
	lua_pushinteger(L, (lua_Integer)m->first);
	lua_pushinteger(L, (lua_Integer)m->hits);
	lua_pushboolean(L, cancelled);
}

static int read_mark(lua_State *L, struct task_scope_mark *m)
{
	m->at = lua_tonumber(L, MARK);
	m->ms = lua_tonumber(L, MARK + 1);
	m->deadline = lua_tonumber(L, MARK + 2);
	m->grace = lua_tonumber(L, MARK + 3);
	m->def = (int)lua_tointeger(L, MARK + 4);
	m->hit = (int)lua_tointeger(L, MARK + 5);
	m->first = (int64_t)lua_tointeger(L, MARK + 6);
	m->hits = (uint64_t)lua_tointeger(L, MARK + 7);
	return lua_toboolean(L, MARK + 8);
}

static int scope_end(lua_State *L, int status)
{
	struct task *t = task_current(L);
	struct task_scope_mark m;
	int cancelled_before = read_mark(L, &m), n = lua_gettop(L) - MSGH;
	enum task_scope_end end = task_scope_close(t, &m);
	const char *kind = "ok", *reason = "the timeout's work finished without awaiting it";
	int warn = 1;

	luaL_checkstack(L, 4, NULL);
	if (status == LUA_OK || status == LUA_YIELD) {
		if (end == TASK_SCOPE_EXPIRED) {
			kind = "timeout"; /* (its error was caught, and the work returned anyway) */
		} else if (n >= 2 && lua_isnil(L, FN) && !lua_isnil(L, FN + 1)) {
			kind = "err"; /* return nil, err: a failure, as for a task */
			lua_settop(L, FN + 1);
			lua_remove(L, FN);
			errval_wrap(L, FN);
			n = 1;
		}
	} else if ((t->cancel_sent && !cancelled_before) || end == TASK_SCOPE_OUTER) {
		kind = "up"; /* the error on top (at FN) goes on unwinding */
		reason = "parent cancelled";
		warn = 0;
	} else if (end == TASK_SCOPE_EXPIRED) {
		kind = "timeout";
	} else {
		kind = "err";
		errval_wrap(L, FN);
	}
	if (kind[0] == 't') {
		lua_settop(L, MSGH);
		n = 0;
		reason = "timed out";
		warn = 0;
	}
	lua_pushstring(L, kind);
	task_scope_reap(L, t, m.first, reason, warn);
	lua_rotate(L, FN, 2); /* kind, joins before the values */
	return n + 2;
}

static int scope_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)ctx;
	return scope_end(L, status);
}

/* _scope(ms, fn, ...) -> kind, joins, values... (above) */
static int async_scope(lua_State *L)
{
	struct task *t = async_need_task(L, "timeout");
	double ms = async_check_ms(L, 1);
	struct task_scope_mark m;
	int nargs = lua_gettop(L) - 2;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_checkstack(L, FN, NULL);
	if (task_scope_open(t, ms, &m) < 0)
		return luaL_error(L, "not enough memory");
	/* nothing below raises before the call: the scope is open */
	push_mark(L, &m, t->cancel_sent);
	lua_pushcfunction(L, errval_msgh);
	lua_rotate(L, MARK, FN - MARK); /* ms, mark, msgh, fn, args... */
	return scope_end(L, lua_pcallk(L, nargs, LUA_MULTRET, MSGH, 0, scope_k));
}

/* _catch_mark(t) -> where a catch (async.try) is entered in t (task_catch_mark) */
static int async_catch_mark(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)task_catch_mark(task_check(L, 1)));
	return 1;
}

/* _hands_on(t, mark) -> true when what that catch caught must go on unwinding */
static int async_hands_on(lua_State *L)
{
	lua_pushboolean(L, task_catch_hands_on(task_check(L, 1), (int64_t)luaL_checkinteger(L, 2)));
	return 1;
}

void async_scope_register(lua_State *L)
{
	static const luaL_Reg fns[] = {
	    {"scope", async_scope},
	    {"catch_mark", async_catch_mark},
	    {"hands_on", async_hands_on},
	    {NULL, NULL},
	};

	luaL_setfuncs(L, fns, 0);
}
