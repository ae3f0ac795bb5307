/*
 * coro.c: the base functions whose behaviour a task needs changed:
 * coroutine.resume and coroutine.wrap, made visible to the loop
 * protection, and pcall/xpcall, which let a task's own cancellation pass.
 *
 * Cancellation is sticky (SPEC section 2): once a task's cancellation error
 * has been raised, a pcall that catches it raises it again when it
 * returns, after the <close> handlers inside it ran. So the task unwinds
 * to its end whatever its code catches, and cannot keep running.
 *
 * The slice tick hooks the thread that is executing (sched->running). A
 * plain coroutine that a task resumes is such a thread, so these versions
 * of resume and wrap record it for the duration of the resume. Behaviour
 * is otherwise Lua's own (lcorolib.c): resume returns true, ... or false,
 * err; a wrapped function raises the coroutine's error, with position
 * information added to string errors, after closing the coroutine.
 */
#include <string.h>

#include <lauxlib.h>

#include "errval.h"
#include "modules.h"
#include "sched.h"
#include "task.h"

/*
 * Sticky cancellation: a pcall entered before its task's cancellation was
 * raised, and which catches an error after it, hands that error on (it is
 * the cancellation, or an error a <close> handler raised while unwinding
 * from it). A pcall entered afterwards, inside a <close> handler doing a
 * rollback, catches errors as usual. The same holds inside a timeout
 * scope for its expiry (task.h, task_catch_mark). The context records
 * where the pcall was entered.
 */
_Static_assert(sizeof(lua_KContext) >= 8, "a pcall's context holds a 55-bit mark");

static lua_KContext pcall_ctx(lua_State *L, int extra)
{
	struct task *t = task_current(L);

	/* the mark above the count of extra values (low 8 bits) */
	return (lua_KContext)extra | (t ? (lua_KContext)(task_catch_mark(t) << 8) : 0);
}

static int finish_pcall(lua_State *L, int status, lua_KContext ctx)
{
	if (status != LUA_OK && status != LUA_YIELD) {
		struct task *t = task_current(L);
		if (t && task_catch_hands_on(t, (int64_t)ctx >> 8))
			return lua_error(L); /* sticky: let it go on unwinding */
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)(ctx & 0xff);
}

static int coro_pcall(lua_State *L)
{
	lua_KContext ctx = pcall_ctx(L, 0);

	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	return finish_pcall(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, ctx, finish_pcall),
	                    ctx);
}

static int coro_xpcall(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);
	lua_KContext ctx = pcall_ctx(L, 2);

	return finish_pcall(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, ctx, finish_pcall), ctx);
}

/* Resume co with nargs values from L; moves results to L. Returns count or -1 (error on L). */
static int coro_resume_on(lua_State *L, lua_State *co, int nargs)
{
	struct sched *s = sched_of(L);
	lua_State *prev = s->running;
	int status, nres;

	if (!lua_checkstack(co, nargs)) {
		lua_pushliteral(L, "too many arguments to resume");
		return -1;
	}
	status = lua_status(co);
	if (status == LUA_OK && lua_gettop(co) == 0) {
		lua_pushliteral(L, "cannot resume dead coroutine");
		return -1;
	}
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushliteral(L, "cannot resume dead coroutine");
		return -1;
	}
	lua_xmove(L, co, nargs);
	s->running = co;
	status = lua_resume(co, L, nargs, &nres);
	s->running = prev;
	if (status == LUA_OK || status == LUA_YIELD) {
		if (!lua_checkstack(L, nres + 1)) {
			lua_pop(co, nres);
			lua_pushliteral(L, "too many results to resume");
			return -1;
		}
		lua_xmove(co, L, nres);
		return nres;
	}
	lua_xmove(co, L, 1); /* the error */
	return -1;
}

/* A task's thread belongs to the scheduler: resuming or closing it from
 * Lua would run or kill the task behind its back. */
static lua_State *check_plain(lua_State *L, int idx)
{
	lua_State *co = lua_tothread(L, idx);

	luaL_argexpected(L, co, idx, "coroutine");
	if (task_current(co))
		luaL_argerror(L, idx, "a task's coroutine (use task:await or task:cancel)");
	return co;
}

static int coro_close(lua_State *L)
{
	check_plain(L, 1);
	lua_pushvalue(L, lua_upvalueindex(1)); /* Lua's own coroutine.close */
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static int coro_resume(lua_State *L)
{
	lua_State *co = check_plain(L, 1);
	int r;

	if (co == L) {
		lua_pushboolean(L, 0);
		lua_pushliteral(L, "cannot resume non-suspended coroutine");
		return 2;
	}
	r = coro_resume_on(L, co, lua_gettop(L) - 1);
	if (r < 0) {
		lua_pushboolean(L, 0);
		lua_insert(L, -2);
		return 2;
	}
	lua_pushboolean(L, 1);
	lua_insert(L, -(r + 1));
	return r + 1;
}

static int coro_auxwrap(lua_State *L)
{
	lua_State *co = lua_tothread(L, lua_upvalueindex(1));
	int r = coro_resume_on(L, co, lua_gettop(L));

	if (r < 0) {
		int stat = lua_status(co);
		if (stat != LUA_OK && stat != LUA_YIELD) {
			stat = sched_closethread(co, L); /* close its variables */
			if (stat != LUA_OK) {
				lua_pop(L, 1);
				lua_xmove(co, L, 1);
			}
		}
		if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
			luaL_where(L, 1);
			lua_insert(L, -2);
			lua_concat(L, 2);
		}
		return lua_error(L);
	}
	return r;
}

static int coro_wrap(lua_State *L)
{
	lua_State *co;

	luaL_checktype(L, 1, LUA_TFUNCTION);
	co = lua_newthread(L);
	lua_pushvalue(L, 1);
	lua_xmove(L, co, 1);
	lua_pushcclosure(L, coro_auxwrap, 1);
	return 1;
}

void coro_patch(lua_State *L)
{
	lua_pushcfunction(L, coro_pcall);
	lua_setglobal(L, "pcall");
	lua_pushcfunction(L, coro_xpcall);
	lua_setglobal(L, "xpcall");
	lua_getglobal(L, "coroutine");
	if (lua_istable(L, -1)) {
		lua_pushcfunction(L, coro_resume);
		lua_setfield(L, -2, "resume");
		lua_pushcfunction(L, coro_wrap);
		lua_setfield(L, -2, "wrap");
		lua_getfield(L, -1, "close");
		lua_pushcclosure(L, coro_close, 1);
		lua_setfield(L, -2, "close");
	}
	lua_pop(L, 1);
}
