/*
 * sched.c: the run queue, the Lua state and the loop protections.
 *
 * Resumptions happen on a later loop turn, in FIFO order: a zero-timeout
 * timer drains the queue, and only the tasks that were queued when the
 * turn began run in it, so a task that keeps yielding (sleep(0) in a
 * loop) lets I/O and timers be polled between its slices.
 *
 * Memory: the Lua allocator counts every byte of the state. While task
 * code runs (in_task) an allocation that would cross cfg.max_memory is
 * refused, which Lua raises as a memory error in the allocating task.
 * The runtime's own allocations (settling, reporting) are never refused.
 *
 * Time: a count hook on every task thread compares the time since the
 * task's resume with cfg.max_slice_ms; past it the task is marked blocked
 * and yielded out of, wherever it is, and the scheduler fails it.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#include "errval.h"
#include "sched.h"
#include "task.h"

/* VM instructions between two checks of the slice clock. */
#define SLICE_HOOK_COUNT 10000

void sched_config_defaults(struct sched_config *cfg)
{
	cfg->max_slice_ms = 100;
	cfg->max_memory = 0;
	cfg->cancel_grace_ms = 1000;
}

double sched_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *sched_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sched *s = ud;
	size_t old = ptr ? osize : 0; /* osize is a type tag when ptr is NULL */
	void *p;

	if (nsize == 0) {
		free(ptr);
		s->stats.mem -= old;
		return NULL;
	}
	if (nsize > old && s->in_task && s->cfg.max_memory &&
	    s->stats.mem - old + nsize > s->cfg.max_memory) {
		if (s->current)
			s->current->oom = 1;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	s->stats.mem = s->stats.mem - old + nsize;
	if (s->stats.mem > s->stats.mem_peak)
		s->stats.mem_peak = s->stats.mem;
	return p;
}

struct sched *sched_of(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ud;
}

static void slice_hook(lua_State *co, lua_Debug *ar)
{
	struct sched *s = sched_of(co);
	struct task *t = s->current;

	(void)ar;
	if (!t || !s->in_task)
		return;
	if (!t->blocked) {
		if (sched_now() - t->slice_start <= s->cfg.max_slice_ms)
			return;
		t->blocked = 1;
	}
	/*
	 * Yielding from the hook leaves the task wherever it is, even inside
	 * pcall, so it cannot swallow the kill. In a plain coroutine nested in
	 * the task a yield would only return to the task: raise there instead,
	 * and the next hook tick in the task itself yields out.
	 */
	if (co == t->co && lua_isyieldable(co))
		lua_yield(co, 0);
	s->in_task = 0;
	errval_push(co, "blocked_loop", "task %lld ran for more than %g ms without suspending",
		    (long long)t->id, s->cfg.max_slice_ms);
	s->in_task = 1;
	lua_error(co);
}

void sched_hook(lua_State *co)
{
	lua_sethook(co, slice_hook, LUA_MASKCOUNT, SLICE_HOOK_COUNT);
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct task *last = s->rq_tail;

	(void)fd;
	(void)what;
	while (s->rq_head) {
		struct task *t = s->rq_head;
		int was_last = t == last;
		s->rq_head = t->rq_next;
		if (!s->rq_head)
			s->rq_tail = NULL;
		t->rq_next = NULL;
		t->queued = 0;
		task_resume(t);
		if (was_last)
			break;
	}
	if (s->rq_head) {
		static const struct timeval zero = {0, 0};
		evtimer_add(s->ready, &zero);
	}
}

void sched_enqueue(struct sched *s, struct task *t)
{
	static const struct timeval zero = {0, 0};

	t->queued = 1;
	t->rq_next = NULL;
	if (s->rq_tail) {
		s->rq_tail->rq_next = t;
	} else {
		s->rq_head = t;
		evtimer_add(s->ready, &zero);
	}
	s->rq_tail = t;
}

/* The function every task thread starts in: body(fn, ...). */
static int task_body_k(lua_State *co, int status, lua_KContext ctx)
{
	(void)ctx;
	lua_pushboolean(co, status == LUA_OK || status == LUA_YIELD);
	lua_replace(co, 1); /* the message handler's slot */
	return lua_gettop(co);
}

static int task_body(lua_State *co)
{
	int nargs = lua_gettop(co) - 1;

	lua_pushcfunction(co, errval_msgh);
	lua_insert(co, 1);
	return task_body_k(co, lua_pcallk(co, nargs, LUA_MULTRET, 1, 0, task_body_k), 0);
}

struct sched *sched_new(struct event_base *base, const struct sched_config *cfg)
{
	struct sched *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	if (cfg)
		s->cfg = *cfg;
	else
		sched_config_defaults(&s->cfg);
	s->base = base;
	s->ready = evtimer_new(base, ready_cb, s);
	if (!s->ready)
		goto err;
	s->L = lua_newstate(sched_alloc, s);
	if (!s->L)
		goto err;
	*(struct task **)lua_getextraspace(s->L) = NULL;
	luaL_openlibs(s->L);
	lua_pushcfunction(s->L, task_body);
	s->body_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
	return s;
err:
	if (s->ready)
		event_free(s->ready);
	free(s);
	return NULL;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	lua_close(s->L);
	event_free(s->ready);
	free(s);
}
