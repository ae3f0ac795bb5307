/*
 * async.c: the Lua face of the scheduler, module "async".
 *
 * The primitives that touch tasks, timers and suspension live here in C:
 * spawn, detach, await, cancel, sleep, now, error, plus the internal
 * building blocks for the combinators written in async.lua: timed waits
 * on a task (task:_wait), and parking (_park/_unpark), on which queues,
 * semaphores and channels keep their own FIFO of waiters. Completion
 * ports (async.Port, _port, task:_watch) are in async-port.c.
 *
 * Caller bugs (a number where a function is due) raise; runtime failures
 * come back as nil, err.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "async-int.h"
#include "async_lua.h"
#include "errval.h"
#include "modules.h"
#include "sched.h"
#include "task.h"
#include "worker.h"

/* The running task, or raise: suspending needs one. */
struct task *async_need_task(lua_State *L, const char *what)
{
	struct task *t = task_current(L);

	if (!t)
		luaL_error(L, "async.%s must be called inside a task", what);
	return t;
}

/* Milliseconds >= 0; math.huge (or anything past TASK_FOREVER_MS) is "for ever". */
double async_check_ms(lua_State *L, int idx)
{
	double ms = luaL_checknumber(L, idx);

	luaL_argcheck(L, ms >= 0 && !isnan(ms), idx, "milliseconds must be >= 0");
	return ms;
}

/*
 * The parent of a task spawned from L: the task whose thread L is, or,
 * from a plain coroutine inside a task, the task being resumed, so that
 * no task escapes the tree through coroutine.wrap.
 */
static struct task *spawner(lua_State *L)
{
	struct task *t = task_current(L);

	return t ? t : sched_of(L)->current;
}

/* ---- tasks ------------------------------------------------------------- */

static int async_spawn(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	task_spawn(L, lua_gettop(L) - 1, spawner(L), HUGE_VAL, 0);
	return 1;
}

/* _spawn_within(ms, fn, ...): spawn with a deadline ms from now. */
static int async_spawn_within(lua_State *L)
{
	double ms = async_check_ms(L, 1);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_remove(L, 1);
	task_spawn(L, lua_gettop(L) - 1, spawner(L), sched_now() + ms, 0);
	return 1;
}

/* _defer(fn, ...) -> a task that starts only when _start_deferred(t) is called */
static int async_defer(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	task_spawn(L, lua_gettop(L) - 1, spawner(L), HUGE_VAL, TASK_SPAWN_DEFERRED);
	return 1;
}

/* _start_deferred(t) -> true when t was waiting to start and now will */
static int async_start_deferred(lua_State *L)
{
	lua_pushboolean(L, task_start(task_check(L, 1)));
	return 1;
}

/* _waiting_start(t) -> true while t waits to be started and nobody cancelled it */
static int async_waiting_start(lua_State *L)
{
	struct task *t = task_check(L, 1);

	lua_pushboolean(L, !t->co && t->wait == TASK_WAIT_START && !t->queued && !t->cancel_req);
	return 1;
}

/*
 * async.name(str): name the calling task in its job's trace ("fetch user
 * 42"), in place of the name found at spawn. Works however the task was
 * started (spawn, all, map, a queue), unlike an option of one spawning
 * call. Outside a traced task it does nothing.
 */
static int async_name(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	struct task *t = task_current(L);

	if (t)
		task_set_name(t, name);
	return 0;
}

static int async_detach(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	task_spawn(L, lua_gettop(L) - 1, NULL, HUGE_VAL, 0);
	return 1;
}

static int await_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	(void)ctx;
	task_resumed(L, task_current(L));
	task_check(L, 1);
	return task_push_outcome(L, 1);
}

static int task_await(lua_State *L)
{
	struct task *t = task_check(L, 1);
	struct task *me;

	lua_settop(L, 1);
	if (task_settled(t))
		return task_push_outcome(L, 1);
	me = async_need_task(L, "await");
	if (me == t)
		return luaL_error(L, "a task cannot await itself");
	t->observed = 1;
	return task_suspend(L, me, TASK_WAIT_TASK, t, -1, 0, await_k);
}

/*
 * task:_wait(ms) -> true when t settled within ms, false on timeout. The
 * timer and t may both fire in one loop turn: t having settled wins.
 */
static int wait_k(lua_State *L, int status, lua_KContext ctx)
{
	enum task_wake w;

	(void)status;
	(void)ctx;
	w = task_resumed(L, task_current(L));
	lua_pushboolean(L, w != TASK_WAKE_TIMEOUT || task_settled(task_check(L, 1)));
	return 1;
}

static int task_wait(lua_State *L)
{
	struct task *t = task_check(L, 1);
	double ms = async_check_ms(L, 2);
	struct task *me;

	lua_settop(L, 1);
	if (task_settled(t)) {
		lua_pushboolean(L, 1);
		return 1;
	}
	me = async_need_task(L, "timeout");
	if (me == t)
		return luaL_error(L, "a task cannot await itself");
	t->observed = 1;
	return task_suspend(L, me, TASK_WAIT_TASK, t, ms, 0, wait_k);
}

/*
 * _join(t): wait until t (which the caller has cancelled) has settled,
 * even when the caller itself is being cancelled: a combinator must not
 * return while an item it started is still unwinding. Bounded, because a
 * cancelled task settles within its own grace.
 */
static int join_k(lua_State *L, int status, lua_KContext ctx)
{
	struct task *t = task_check(L, 1);
	struct task *me = task_current(L);

	(void)status;
	(void)ctx;
	if (task_settled(t))
		return 0;
	return task_suspend(L, me, TASK_WAIT_JOIN, t, -1, 0, join_k);
}

static int async_join(lua_State *L)
{
	struct task *t = task_check(L, 1);
	struct task *me;

	lua_settop(L, 1);
	if (task_settled(t))
		return 0;
	me = async_need_task(L, "join");
	if (me == t)
		return luaL_error(L, "a task cannot await itself");
	t->observed = 1;
	return task_suspend(L, me, TASK_WAIT_JOIN, t, -1, 0, join_k);
}

/* task:_result() -> true, first value | false, err (t must be settled). */
static int task_result(lua_State *L)
{
	struct task *t = task_check(L, 1);
	int n;

	luaL_argcheck(L, task_settled(t), 1, "task has not settled");
	lua_settop(L, 1);
	n = task_push_outcome(L, 1);
	if (t->state == TASK_DONE) {
		lua_settop(L, 1 + (n > 0 ? 1 : 0));
		if (n == 0)
			lua_pushnil(L);
		lua_pushboolean(L, 1);
		lua_replace(L, 1);
		return 2;
	}
	lua_pushboolean(L, 0);
	lua_replace(L, 1);
	lua_remove(L, 2); /* the nil */
	return 2;
}

static int task_cancel_m(lua_State *L)
{
	struct task *t = task_check(L, 1);

	task_cancel(L, t, luaL_optstring(L, 2, NULL));
	return 0;
}

static int task_status(lua_State *L)
{
	lua_pushstring(L, task_status_name(task_check(L, 1)));
	return 1;
}

static int task_tostring(lua_State *L)
{
	struct task *t = task_check(L, 1);

	lua_pushfstring(L, "task %I (%s)", (lua_Integer)t->id, task_status_name(t));
	return 1;
}

/*
 * __index: methods from the method table (upvalue 1), and task.id.
 */
static int task_index(lua_State *L)
{
	struct task *t = task_check(L, 1); /* the metatable is public: check */
	const char *k;

	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	k = lua_tostring(L, 2);
	if (k && strcmp(k, "id") == 0) {
		lua_pushinteger(L, t->id);
		return 1;
	}
	return 1; /* nil */
}

/*
 * _cancel_all(tasks, reason) -> number of tasks in the list not yet
 * settled after cancelling each (the caller then awaits them).
 */
static int async_cancel_all(lua_State *L)
{
	lua_Integer n, i, left = 0;
	const char *reason = luaL_optstring(L, 2, NULL);

	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		struct task *t = task_check(L, -1);
		task_cancel(L, t, reason);
		left += !task_settled(t);
		lua_pop(L, 1);
	}
	lua_pushinteger(L, left);
	return 1;
}

static int async_current(lua_State *L)
{
	struct task *t = task_current(L);

	if (!t)
		return 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
	return 1;
}

/* async.deadline() -> ms left before the current task's deadline (math.huge: none). */
static int async_deadline(lua_State *L)
{
	struct task *t = task_current(L);

	lua_pushnumber(L, t && t->deadline != HUGE_VAL ? t->deadline - sched_now() : HUGE_VAL);
	return 1;
}

/* ---- time -------------------------------------------------------------- */

static int sleep_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	(void)ctx;
	task_resumed(L, task_current(L));
	return 0;
}

static int async_sleep(lua_State *L)
{
	double ms = async_check_ms(L, 1);

	return task_suspend(L, async_need_task(L, "sleep"), TASK_WAIT_SLEEP, NULL, ms, 0, sleep_k);
}

/*
 * _breathe(): sleep(0) when the current task has used a quarter of its
 * slice, so that a combinator walking a list of 100,000 items stays well
 * inside the loop protection. Otherwise returns at once.
 */
static int async_breathe(lua_State *L)
{
	struct task *t = task_current(L);
	struct sched *s = sched_of(L);

	if (!t || sched_coarse_now() - t->slice_start < s->cfg.max_slice_ms / 4)
		return 0;
	return task_suspend(L, t, TASK_WAIT_SLEEP, NULL, 0, 0, sleep_k);
}

static int async_now(lua_State *L)
{
	lua_pushnumber(L, sched_now());
	return 1;
}

/* ---- error values ------------------------------------------------------ */

/* async.error(code, message [, fields]) */
static int async_error(lua_State *L)
{
	const char *code = luaL_checkstring(L, 1);
	const char *msg = luaL_optstring(L, 2, code);

	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	errval_push(L, code, "%s", msg);
	errval_traceback(L, -1, L, 1); /* like a JS Error: where it was made */
	if (lua_istable(L, 3)) {
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -4);
		}
	}
	return 1;
}

/*
 * _wrap_error(v) -> v as an error value (see errval_wrap), with a
 * traceback from the caller's caller when it has none (memory errors skip
 * the message handler that would have added one).
 */
static int async_wrap_error(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	errval_wrap(L, 1);
	errval_traceback(L, 1, L, 2);
	return 1;
}

/* ---- combinator lists -------------------------------------------------- */

/*
 * _start(name, list, tasks, i) -> next | nil: the items of a combinator's
 * list, from i on, into tasks: functions spawned (children of the caller),
 * tasks taken as they are. Stops once the caller has used a quarter of its
 * slice and returns the index to go on from (the caller breathes, then
 * calls again); nil when every item is in. With i == 1 it first checks
 * every item and raises on a bad one before anything is spawned. Spawning
 * 100,000 items thus never trips the caller's own slice, and the caller's
 * guard holds every task started so far when it yields.
 */
static int async_start(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	lua_Integer n, i = luaL_checkinteger(L, 4);
	struct task *t = task_current(L);
	struct sched *s = sched_of(L);
	double budget = s->cfg.max_slice_ms / 4;

	if (!lua_istable(L, 2))
		return luaL_error(L, "async.%s: list expected, got %s", name, luaL_typename(L, 2));
	luaL_checktype(L, 3, LUA_TTABLE);
	n = luaL_len(L, 2);
	for (lua_Integer k = 1; i == 1 && k <= n; k++) { /* check every item before starting any */
		int type = lua_rawgeti(L, 2, k);
		if (type != LUA_TFUNCTION &&
		    (type != LUA_TUSERDATA || lua_rawlen(L, -1) != sizeof(struct task) ||
		     ((struct task *)lua_touserdata(L, -1))->magic != TASK_MAGIC))
			return luaL_error(L,
			                  "async.%s: item %d is a %s (function or task expected)",
			                  name, (int)k, luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	for (; i <= n; i++) {
		if (lua_rawgeti(L, 2, i) == LUA_TFUNCTION)
			task_spawn(L, 0, spawner(L), HUGE_VAL, 0);
		lua_rawseti(L, 3, i);
		if (t && (i & 63) == 0 && sched_coarse_now() - t->slice_start >= budget) {
			lua_pushinteger(L, i + 1);
			return 1;
		}
	}
	lua_pushnil(L);
	return 1;
}

/* ---- parking ----------------------------------------------------------- */

static int park_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	(void)ctx;
	lua_pushboolean(L, task_resumed(L, task_current(L)) != TASK_WAKE_TIMEOUT);
	return 1;
}

/* _park([ms]) -> true when unparked, false when ms passed first */
static int async_park(lua_State *L)
{
	double ms = lua_isnoneornil(L, 1) ? -1 : async_check_ms(L, 1);

	lua_settop(L, 0);
	return task_suspend(L, async_need_task(L, "park"), TASK_WAIT_PARK, NULL, ms, 0, park_k);
}

/* _unpark(task) -> true when the task was parked and is now scheduled */
static int async_unpark(lua_State *L)
{
	struct task *t = task_check(L, 1);
	int parked = t->state == TASK_SUSPENDED && t->wait == TASK_WAIT_PARK && !t->queued;

	if (parked)
		task_wake(t, TASK_WAKE_SIGNAL);
	lua_pushboolean(L, parked);
	return 1;
}

/* ---- registration ------------------------------------------------------ */

static const luaL_Reg task_methods[] = {
    {"await", task_await},
    {"cancel", task_cancel_m},
    {"status", task_status},
    {NULL, NULL},
};

/* The public module: what SPEC section 2 names, and nothing else. */
static const luaL_Reg async_funcs[] = {
    {"spawn", async_spawn},     {"detach", async_detach},     {"await", task_await},
    {"cancel", task_cancel_m},  {"status", task_status},      {"sleep", async_sleep},
    {"now", async_now},         {"error", async_error},       {"current", async_current},
    {"deadline", async_deadline}, {"name", async_name},           {"worker", async_worker},
    {NULL, NULL},
};

/*
 * The building blocks only async.lua gets (its second argument);
 * async_port_register adds _port and _watch.
 */
static const luaL_Reg async_private[] = {
    {"spawn_within", async_spawn_within},
    {"cancel_all", async_cancel_all},
    {"join", async_join},
    {"defer", async_defer},
    {"start_deferred", async_start_deferred},
    {"waiting_start", async_waiting_start},
    {"start", async_start},
    {"breathe", async_breathe},
    {"wrap_error", async_wrap_error},
    {"result", task_result},
    {"wait", task_wait},
    {"park", async_park},
    {"unpark", async_unpark},
    {"msgh", errval_msgh},
    {NULL, NULL},
};

/*
 * The module table. Its Error and Task are read-only views of the real
 * metatables, which answer getmetatable() with those views: no script can
 * reach the metatable every error value and task shares (readonly.c).
 */
int luaopen_async(lua_State *L)
{
	errval_register(L);
	task_register(L, task_methods, task_index);
	luaL_getmetatable(L, TASK_MT);
	lua_pushcfunction(L, task_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	readonly_protect_metatable(L, ERRVAL_MT, "async.Error");
	readonly_protect_metatable(L, TASK_MT, "async.Task");

	luaL_newlib(L, async_funcs); /* M */
	luaL_getmetatable(L, ERRVAL_MT);
	lua_getfield(L, -1, "__metatable");
	lua_setfield(L, -3, "Error");
	lua_pop(L, 1);
	luaL_getmetatable(L, TASK_MT);
	lua_getfield(L, -1, "__metatable");
	lua_setfield(L, -3, "Task");
	lua_pop(L, 1);
	/* the combinators, in Lua: async.lua receives the module table */
	if (luaL_loadbufferx(L, (const char *)async_lua, async_lua_len, "=async.lua", "t") !=
	    LUA_OK)
		return lua_error(L);
	lua_pushvalue(L, -2);
	luaL_newlib(L, async_private);
	async_port_register(L);
	async_scope_register(L);
	luaL_getmetatable(L, ERRVAL_MT);
	lua_setfield(L, -2, "Error_mt"); /* the real one, for setmetatable */
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, ASYNC_PRIVATE); /* for the unit tests */
	lua_call(L, 2, 0);
	return 1;
}
