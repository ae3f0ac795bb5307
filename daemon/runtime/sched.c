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
 * refused before anything is allocated or copied (a concat of two 1 GiB
 * strings asks for 2 GiB once, and is refused at once), which Lua raises
 * as a memory error in the allocating task. The runtime's own allocations
 * (settling, reporting) are never refused. Every refusal, by the cap or by
 * malloc, is remembered (oom_*) so the error names the real cause, and it
 * asks for a full collection and malloc_trim at the next loop turn, when
 * no task runs, so the garbage of the failed task is handed back to the
 * system instead of staying resident.
 *
 * Time: a periodic tick (see tick_handler) sets a count hook on the thread
 * that is running; the hook compares the time since the task's resume with
 * cfg.max_slice_ms; past it the task is marked blocked and yielded out of,
 * wherever it is, and the scheduler fails it.
 */
#define _GNU_SOURCE /* SIGEV_THREAD_ID's _tid */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#include "clock.h"
#include "errval.h"
#include "humanfmt.h"
#include "memcap.h"
#include "sched.h"
#include "task.h"

/* VM instructions between a tick and the hook's look at the clock. */
#define SLICE_HOOK_COUNT 1000

void sched_config_defaults(struct sched_config *cfg)
{
	cfg->max_slice_ms = 100;
	cfg->max_memory = memcap_default();
	cfg->cancel_grace_ms = 1000;
}

double sched_coarse_now(void)
{
	return clock_mono_coarse_ms();
}

double sched_now(void)
{
	return clock_mono_ms();
}

static void slice_hook(lua_State *co, lua_Debug *ar);

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
	/* mem >= old always; written so that a huge nsize cannot wrap around */
	if (nsize > old && s->in_task && s->cfg.max_memory &&
	    (nsize > s->cfg.max_memory || s->stats.mem - old > s->cfg.max_memory - nsize)) {
		/*
		 * The allocating task is marked, and the hook stops it at its
		 * next instruction even if it catches the memory error with
		 * pcall. Lua answers some refusals with a full collection and
		 * asks again with the same arguments: if that retry succeeds,
		 * the mark is lifted before any Lua code runs.
		 */
		if (s->current) {
			s->current->oom = 1;
			lua_sethook(s->current->co, slice_hook, LUA_MASKCOUNT, 1);
		}
		s->refused_ptr = ptr;
		s->refused_size = nsize;
		s->oom_size = nsize;
		s->oom_inuse = s->stats.mem;
		s->oom_system = 0;
		s->collect_pending = 1;
		return NULL;
	}
	if (s->refused_size && ptr == s->refused_ptr && nsize == s->refused_size && s->current)
		s->current->oom = 0; /* the retry after the emergency collection won */
	s->refused_size = 0;
	p = realloc(ptr, nsize);
	if (!p) {
		s->oom_size = nsize;
		s->oom_inuse = s->stats.mem;
		s->oom_system = 1;
		s->collect_pending = 1;
		return NULL;
	}
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

const char *sched_oom_message(const struct sched *s, char *buf, size_t len)
{
	char want[32], used[32];
	double cap_mb = (double)s->cfg.max_memory / (1024.0 * 1024.0);

	if (!s->oom_size) {
		snprintf(buf, len, "not enough memory");
		return buf;
	}
	humanfmt_bytes(s->oom_size, want, sizeof want);
	humanfmt_bytes(s->oom_inuse, used, sizeof used);
	if (!s->oom_system)
		snprintf(buf, len, "allocation of %s would pass max_memory_mb = %g (in use %s)",
		         want, cap_mb, used);
	else if (s->cfg.max_memory)
		snprintf(buf, len,
		         "allocation of %s failed: the system is out of memory (in use %s, under "
		         "max_memory_mb = %g)",
		         want, used, cap_mb);
	else
		snprintf(buf, len,
		         "allocation of %s failed: the system is out of memory (in use %s; "
		         "max_memory_mb = 0: no cap)",
		         want, used);
	return buf;
}

const char *sched_oom_describe(lua_State *L, char *buf, size_t len)
{
	void *ud;

	if (lua_getallocf(L, &ud) != sched_alloc || !ud) {
		snprintf(buf, len, "not enough memory");
		return buf;
	}
	return sched_oom_message(ud, buf, len);
}

void sched_collect_soon(struct sched *s)
{
	static const struct timeval zero = {0, 0};

	if (s->collect_pending && s->ready && !s->closing)
		evtimer_add(s->ready, &zero);
}

/*
 * After a refusal: a full collection frees what the failed task left, and
 * malloc_trim hands the freed pages back (chunks under glibc's mmap
 * threshold stay in the heap otherwise). Only on the loop, between tasks.
 */
static void collect_now(struct sched *s)
{
	if (!s->collect_pending || s->current || s->closing)
		return;
	s->collect_pending = 0;
	lua_gc(s->L, LUA_GCCOLLECT);
	malloc_trim(0);
}

static void slice_hook(lua_State *co, lua_Debug *ar)
{
	struct sched *s = sched_of(co);
	struct task *t = s->current;

	(void)ar;
	if (!t || !s->in_task) {
		lua_sethook(co, NULL, 0, 0);
		return;
	}
	if (!t->blocked && !t->oom) {
		if (sched_coarse_now() - t->slice_start <= s->cfg.max_slice_ms) {
			lua_sethook(co, NULL, 0,
			            0); /* within its slice: no cost until the next tick */
			return;
		}
		t->blocked = 1;
	}
	/* from now on every instruction of the task comes here until it is out */
	lua_sethook(t->co, slice_hook, LUA_MASKCOUNT, 1);
	/*
	 * Yielding from the hook leaves the task wherever it is, even inside
	 * pcall, so it cannot swallow the kill. In a plain coroutine nested in
	 * the task a yield would only return to the task: raise there instead;
	 * the hook set on the task's own thread yields out as soon as it runs.
	 */
	if (co == t->co && lua_isyieldable(co)) {
		lua_yield(co, 0); /* from a hook it returns; Lua yields after the hook */
		return;
	}
	s->in_task = 0;
	if (t->oom) {
		char msg[256];
		errval_push(co, "out_of_memory", "task %lld: %s", (long long)t->id,
		            sched_oom_message(s, msg, sizeof msg));
	} else
		errval_push(co, "blocked_loop",
		            "task %lld ran for more than %g ms without suspending",
		            (long long)t->id, s->cfg.max_slice_ms);
	s->in_task = 1;
	lua_error(co);
}

/*
 * The tick: a POSIX timer signals the loop thread every max_slice_ms / 4
 * while tasks run. The handler only sets a count hook on the running
 * thread (lua_sethook is safe in a signal handler; lua.c does the same for
 * Ctrl-C); the hook reads the clock and fails a task past its slice. Lua
 * code thus runs without a hook between ticks, and an idle loop stops the
 * timer after two quiet ticks so an idle daemon is never woken.
 */
static void tick_handler(int sig, siginfo_t *si, void *uc)
{
	struct sched *s = si->si_value.sival_ptr;
	int saved = errno;

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || !s || !s->tick_on)
		return;
	/* idle means no task is being resumed: in_task drops to 0 while the
	 * runtime builds an error in the middle of a task, which is not idle */
	if (s->current) {
		if (s->running)
			lua_sethook(s->running, slice_hook, LUA_MASKCOUNT, SLICE_HOOK_COUNT);
		s->idle_ticks = 0;
	} else if (++s->idle_ticks >= 2) {
		struct itimerspec off;
		memset(&off, 0, sizeof off);
		timer_settime(s->tick, 0, &off, NULL); /* async-signal-safe */
		s->tick_on = 0;
	}
	errno = saved;
}

void sched_tick(struct sched *s)
{
	struct itimerspec its;
	long ns;

	if (s->tick_on || !s->has_tick)
		return;
	ns = (long)(s->cfg.max_slice_ms * 1e6 / 4);
	if (ns < 1000000)
		ns = 1000000;
	its.it_interval.tv_sec = ns / 1000000000;
	its.it_interval.tv_nsec = ns % 1000000000;
	its.it_value = its.it_interval;
	s->idle_ticks = 0;
	s->tick_on = 1;
	timer_settime(s->tick, 0, &its, NULL);
}

static int tick_open(struct sched *s)
{
	struct sigaction sa;
	struct sigevent sev;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = tick_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SCHED_TICK_SIGNAL, &sa, NULL) < 0)
		return -1;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID; /* the loop thread, never a worker */
	sev.sigev_signo = SCHED_TICK_SIGNAL;
	sev.sigev_value.sival_ptr = s;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &s->tick) < 0)
		return -1;
	s->has_tick = 1;
	return 0;
}

/* Delete the timer and drop a tick that may already be queued for us. */
static void tick_close(struct sched *s)
{
	sigset_t set, old;
	struct timespec zero = {0, 0};

	if (!s->has_tick)
		return;
	sigemptyset(&set);
	sigaddset(&set, SCHED_TICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	s->tick_on = 0;
	timer_delete(s->tick);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->has_tick = 0;
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct task *last = s->rq_tail;

	(void)fd;
	(void)what;
	sched_tick(s);
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
		if (s->between)
			s->between(s->between_arg);
	}
	collect_now(s);
	if (s->rq_head) {
		static const struct timeval zero = {0, 0};
		evtimer_add(s->ready, &zero);
	}
}

void sched_enqueue(struct sched *s, struct task *t)
{
	static const struct timeval zero = {0, 0};

	if (t->queued)
		return; /* at most once on the queue */
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

void sched_enqueue_front(struct sched *s, struct task *t)
{
	static const struct timeval zero = {0, 0};

	if (t->queued)
		return;
	t->queued = 1;
	t->rq_next = s->rq_head;
	if (!s->rq_head) {
		s->rq_tail = t;
		evtimer_add(s->ready, &zero);
	}
	s->rq_head = t;
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

/* Threads kept for reuse: enough for a burst of short tasks, about 1 KiB each. */
#define POOL_MAX 1024

lua_State *sched_pool_get(struct sched *s, lua_State *L)
{
	if (s->npool > 0) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->pool_ref);
		lua_rawgeti(L, -1, s->npool);
		lua_pushnil(L);
		lua_rawseti(L, -3, s->npool--);
		lua_remove(L, -2);
		return lua_tothread(L, -1);
	}
	return lua_newthread(L);
}

void sched_pool_put(struct sched *s, lua_State *co)
{
	lua_State *L = s->L;

	*(struct task **)lua_getextraspace(co) = NULL;
	if (s->npool >= POOL_MAX || lua_status(co) != LUA_OK)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->pool_ref);
	lua_pushthread(co);
	lua_xmove(co, L, 1);
	lua_rawseti(L, -2, ++s->npool);
	lua_pop(L, 1);
}

struct event_base *sched_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (!cfg)
		return NULL;
	/* CLOCK_MONOTONIC, not the coarse clock: a sleep(100) must not end at
	 * 96 ms by async.now() */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
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
	lua_createtable(s->L, POOL_MAX, 0);
	s->pool_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
	s->task_mt_ref = LUA_NOREF;
	if (tick_open(s) < 0) {
		lua_close(s->L);
		goto err;
	}
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
	/* tasks still waiting hold timers and watches outside Lua's heap */
	for (struct task *t = s->live_head; t; t = t->live_next)
		task_release_resources(t);
	tick_close(s);
	s->closing = 1; /* finalizers run by lua_close cannot start or suspend tasks */
	lua_close(s->L);
	event_free(s->ready);
	free(s->vheap);
	free(s);
}
