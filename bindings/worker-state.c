/*
 * worker-state.c: a worker thread and its Lua state (worker-int.h).
 *
 * The thread takes calls from the pool's queue and runs each in its state:
 * require(module)[fn](args...) under a pcall, arguments and results
 * copied as JSON. The state has the memory cap of its own allocator. Its
 * code runs without a hook (no cost per instruction) until WORKER_SIGNAL
 * comes, from the thread's timer at the call's deadline or from the loop
 * (the call abandoned, the pool stopping): the handler sets a count hook
 * (lua_sethook is safe in a signal handler, as the scheduler's tick does),
 * which stops the call and from then on raises at every instruction, so a
 * pcall cannot keep it going. A state that was stopped, or passed its
 * cap, is closed and made anew for the next call; so is one made before
 * the scripts were reloaded.
 */
#define _GNU_SOURCE /* SIGEV_THREAD_ID's _tid */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "errval.h"
#include "humanfmt.h"
#include "json.h"
#include "worker-int.h"

static __thread struct wthread *tls_w; /* this thread's worker, for the signal handler */

double worker_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void worker_hook(lua_State *W, lua_Debug *ar);

/* WORKER_SIGNAL: look at the stop conditions at the next instruction. */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	struct wthread *w = tls_w;
	int saved = errno;

	(void)sig;
	(void)si;
	(void)uc;
	if (w && w->in_call && w->W) {
		lua_sethook(w->W, worker_hook, LUA_MASKCOUNT, 1);
		if (w->running) /* hooks are per thread: the coroutine running now too */
			lua_sethook(w->running, worker_hook, LUA_MASKCOUNT, 1);
	}
	errno = saved;
}

int worker_signal_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(WORKER_SIGNAL, &sa, NULL);
}

void worker_poke(struct wthread *w)
{
	pthread_kill(w->th, WORKER_SIGNAL);
}

/* Arm w's timer to fire in ms (0: disarm). */
static void arm(struct wthread *w, double ms)
{
	struct itimerspec its;

	if (!w->has_timer)
		return;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)((ms - (double)its.it_value.tv_sec * 1000) * 1e6);
	timer_settime(w->timer, 0, &its, NULL);
}

/* This thread's set-up: only WORKER_SIGNAL reaches it, from its own timer or the loop. */
static void thread_setup(struct wthread *w)
{
	struct sigevent sev;
	sigset_t all;

	tls_w = w;
	sigfillset(&all);
	sigdelset(&all, WORKER_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = WORKER_SIGNAL;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	w->has_timer = timer_create(CLOCK_MONOTONIC, &sev, &w->timer) == 0;
}

static void *worker_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct wthread *w = ud;
	size_t cap = w->p->cfg.max_memory;
	void *np;

	if (nsize == 0) {
		if (ptr)
			w->used -= osize;
		free(ptr);
		return NULL;
	}
	if (!ptr)
		osize = 0;
	if (cap && nsize > osize && w->used + (nsize - osize) > cap) {
		w->refused = 1;
		return NULL;
	}
	np = realloc(ptr, nsize);
	if (np)
		w->used = w->used - osize + nsize;
	else
		w->refused = 1;
	return np;
}

static void worker_hook(lua_State *W, lua_Debug *ar)
{
	struct wthread *w = *(struct wthread **)lua_getextraspace(W);

	(void)ar;
	if (w->stop == STOP_NONE) {
		if (__atomic_load_n(&w->p->stopping, __ATOMIC_RELAXED))
			w->stop = STOP_POOL;
		else if (w->c && __atomic_load_n(&w->c->abandoned, __ATOMIC_RELAXED))
			w->stop = STOP_CANCELLED;
		else if (w->deadline > 0 && worker_mono_ms() >= w->deadline)
			w->stop = STOP_TIMEOUT;
		if (w->stop == STOP_NONE) { /* a late signal: nothing to stop */
			lua_sethook(W, NULL, 0, 0);
			return;
		}
		/* from now on at every instruction: a pcall cannot keep it going */
		lua_sethook(W, worker_hook, LUA_MASKCOUNT, 1);
	}
	if (w->stop == STOP_TIMEOUT)
		errval_push(W, "timeout", "the worker ran past worker_timeout_ms = %.0f",
		            w->p->cfg.timeout_ms);
	else
		errval_push(W, "cancelled", "%s",
		            w->stop == STOP_POOL ? "the daemon is stopping" : "the call was cancelled");
	lua_error(W);
}

/*
 * pcall's message handler in a worker state: errval_msgh's work without its
 * scheduler (a worker state has none: its allocator's ud is its thread).
 */
static int worker_msgh(lua_State *W)
{
	errval_wrap(W, 1);
	errval_traceback(W, 1, W, 1);
	return 1;
}

/*
 * coroutine.resume in a worker state (upvalue 1: Lua's): the coroutine it
 * resumes is w->running meanwhile, so that a stop reaches it (hooks are
 * per thread), and a stop that came while it ran reaches the caller next.
 */
static int co_resume(lua_State *L)
{
	struct wthread *w = *(struct wthread **)lua_getextraspace(L);
	lua_State *co = lua_tothread(L, 1), *prev = w->running;
	int rc;

	luaL_argexpected(L, co, 1, "coroutine");
	if (w->stop != STOP_NONE)
		lua_sethook(co, worker_hook, LUA_MASKCOUNT, 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	w->running = co;
	rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	w->running = prev;
	if (w->stop != STOP_NONE)
		lua_sethook(L, worker_hook, LUA_MASKCOUNT, 1);
	if (rc != LUA_OK)
		return lua_error(L);
	return lua_gettop(L);
}

/* coroutine.wrap on co_resume: Lua's own resumes directly, out of its sight */
static const char co_wrap[] =
    "local create, resume, pack, unpack, error = coroutine.create, coroutine.resume,"
    " table.pack, table.unpack, error\n"
    "coroutine.wrap = function(f)\n"
    "  local co = create(f)\n"
    "  return function(...)\n"
    "    local r = pack(resume(co, ...))\n"
    "    if not r[1] then error(r[2], 0) end\n"
    "    return unpack(r, 2, r.n)\n"
    "  end\n"
    "end\n";

static int init_state(lua_State *W)
{
	struct wthread *w = lua_touserdata(W, 1);

	lua_settop(W, 0);
	luaL_openlibs(W);
	errval_register(W);
	lua_getglobal(W, "coroutine");
	lua_getfield(W, -1, "resume");
	lua_pushcclosure(W, co_resume, 1);
	lua_setfield(W, -2, "resume");
	lua_pop(W, 1);
	if (luaL_loadbufferx(W, co_wrap, sizeof co_wrap - 1, "=worker", "t") != LUA_OK)
		return lua_error(W);
	lua_call(W, 0, 0);
	return w->p->init(W, w->p->ud);
}

static void state_close(struct wthread *w)
{
	if (w->W)
		lua_close(w->W);
	w->W = NULL;
	w->used = 0;
}

/* A fresh state for w; 0, or -1 with c failed (its code and message). */
static int state_open(struct wthread *w, struct call *c)
{
	w->refused = 0;
	w->W = lua_newstate(worker_alloc, w);
	if (!w->W) {
		snprintf(c->code, sizeof c->code, "out_of_memory");
		c->message = strdup("cannot create a worker's Lua state");
		return -1;
	}
	*(struct wthread **)lua_getextraspace(w->W) = w;
	lua_pushcfunction(w->W, init_state);
	lua_pushlightuserdata(w->W, w);
	if (lua_pcall(w->W, 1, 1, 0) != LUA_OK) {
		snprintf(c->code, sizeof c->code, "invalid");
		c->message = strdup(lua_isstring(w->W, -1) ? lua_tostring(w->W, -1)
		                                           : "the worker state could not start");
		state_close(w);
		return -1;
	}
	w->require_ref = luaL_ref(w->W, LUA_REGISTRYINDEX);
	w->gen = __atomic_load_n(&w->p->gen, __ATOMIC_ACQUIRE);
	return 0;
}

/* Protected: require(module)[fn](args...), results as a JSON array (lightuserdata 1: c). */
static int run_protected(lua_State *W)
{
	struct call *c = lua_touserdata(W, 1);
	struct wthread *w = *(struct wthread **)lua_getextraspace(W);
	char msg[256];
	size_t i, nargs = json_array_size(c->args);
	int base, n;

	lua_settop(W, 0);
	lua_rawgeti(W, LUA_REGISTRYINDEX, w->require_ref);
	lua_pushstring(W, c->module);
	lua_call(W, 1, 1);
	if (!lua_istable(W, -1)) {
		errval_push(W, "invalid", "async.worker: module '%s' is a %s, not a table of functions",
		            c->module, luaL_typename(W, -1));
		return lua_error(W);
	}
	if (lua_getfield(W, -1, c->fn) != LUA_TFUNCTION) {
		errval_push(W, "invalid", "async.worker: module '%s' has no function '%s'", c->module,
		            c->fn);
		return lua_error(W);
	}
	base = lua_gettop(W);
	luaL_checkstack(W, (int)nargs + 4, "async.worker: too many arguments");
	for (i = 0; i < nargs; i++)
		if (json_is_null(json_array_get(c->args, i))) /* a nil argument stays nil */
			lua_pushnil(W);
		else if (json_push(W, json_array_get(c->args, i), msg, sizeof msg) < 0) {
			errval_push(W, "invalid", "async.worker: argument %zu: %s", i + 1, msg);
			return lua_error(W);
		}
	lua_call(W, (int)nargs, LUA_MULTRET);
	n = lua_gettop(W) - base + 1;
	c->results = json_array();
	for (int k = 0; c->results && k < n; k++) {
		json_t *v = lua_isnil(W, base + k) ? json_null()
		                                   : json_from_lua(W, base + k, msg, sizeof msg);
		if (!v) {
			json_decref(c->results);
			c->results = NULL;
			errval_push(W, "invalid", "async.worker: %s.%s's result %d: %s", c->module, c->fn,
			            k + 1, msg);
			return lua_error(W);
		}
		json_array_append_new(c->results, v);
	}
	return 0;
}

/* The error value at the top of W (a failed pcall) into c. */
static void take_error(lua_State *W, struct call *c)
{
	const char *m;

	snprintf(c->code, sizeof c->code, "%s", errval_code(W, -1));
	lua_getfield(W, -1, "message");
	m = lua_tostring(W, -1);
	c->message = strdup(m ? m : "the worker failed");
	lua_pop(W, 1);
	lua_getfield(W, -1, "traceback");
	if (lua_isstring(W, -1))
		c->traceback = strdup(lua_tostring(W, -1));
	lua_pop(W, 1);
}

/* Run c on w (a state made as needed); 1 when the state must be discarded after it. */
static int run_call(struct wthread *w, struct call *c)
{
	lua_State *W;
	int rc;

	if (w->W && w->gen != __atomic_load_n(&w->p->gen, __ATOMIC_ACQUIRE))
		state_close(w); /* the scripts were reloaded */
	if (!w->W && state_open(w, c) < 0)
		return 0;
	W = w->W;
	w->stop = STOP_NONE;
	w->refused = 0;
	w->deadline = w->p->cfg.timeout_ms > 0 ? worker_mono_ms() + w->p->cfg.timeout_ms : 0;
	arm(w, w->p->cfg.timeout_ms);
	w->in_call = 1;
	if (__atomic_load_n(&c->abandoned, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&w->p->stopping, __ATOMIC_RELAXED))
		lua_sethook(W, worker_hook, LUA_MASKCOUNT, 1); /* poked before in_call was set */
	else if (!w->has_timer && w->deadline > 0)
		lua_sethook(W, worker_hook, LUA_MASKCOUNT, 1000); /* no timer: look every 1000 */
	lua_settop(W, 0);
	lua_pushcfunction(W, worker_msgh);
	lua_pushcfunction(W, run_protected);
	lua_pushlightuserdata(W, c);
	w->running = NULL;
	rc = lua_pcall(W, 1, 0, 1);
	w->in_call = 0;
	w->running = NULL;
	arm(w, 0);
	lua_sethook(W, NULL, 0, 0);
	if (rc == LUA_ERRMEM || (rc != LUA_OK && w->refused)) {
		char cap[32];
		snprintf(c->code, sizeof c->code, "out_of_memory");
		humanfmt_bytes(w->p->cfg.max_memory, cap, sizeof cap);
		c->message = malloc(160);
		if (c->message)
			snprintf(c->message, 160,
			         "the worker's Lua state would pass its memory cap (max_memory_mb, %s)",
			         cap);
	} else if (w->stop != STOP_NONE) {
		/* stopped, whatever came back (a tail call of a resume that was stopped
		 * returns no error to here): the outcome is the stop */
		json_decref(c->results);
		c->results = NULL;
		snprintf(c->code, sizeof c->code, "%s",
		         w->stop == STOP_TIMEOUT ? "timeout" : "cancelled");
		c->message = malloc(96);
		if (c->message && w->stop == STOP_TIMEOUT)
			snprintf(c->message, 96, "the worker ran past worker_timeout_ms = %.0f",
			         w->p->cfg.timeout_ms);
		else if (c->message)
			snprintf(c->message, 96, "%s",
			         w->stop == STOP_POOL ? "the daemon is stopping" : "the call was cancelled");
	} else if (rc != LUA_OK) {
		take_error(W, c);
	}
	json_decref(c->args);
	c->args = NULL;
	lua_settop(W, 0);
	return w->stop != STOP_NONE || w->refused || rc == LUA_ERRMEM;
}

void *worker_thread_main(void *arg)
{
	struct wthread *w = arg;
	struct worker_pool *p = w->p;
	struct call *c;
	uint64_t one = 1;
	int discard, failed;

	thread_setup(w);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->queue && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		c = p->queue;
		p->queue = c->next;
		if (!p->queue)
			p->queue_tail = NULL;
		p->nqueued--;
		p->busy++;
		w->c = c; /* the loop may poke this thread for it from now on */
		pthread_mutex_unlock(&p->mu);

		discard = 0;
		w->stop = STOP_NONE;
		if (__atomic_load_n(&c->abandoned, __ATOMIC_RELAXED))
			snprintf(c->code, sizeof c->code, "cancelled"); /* never run: nobody waits */
		else
			discard = run_call(w, c);
		if (discard) {
			state_close(w);
			w->gen = 0;
		}
		failed = c->code[0] != 0;

		pthread_mutex_lock(&p->mu);
		w->c = NULL;
		c->next = p->done;
		p->done = c;
		p->busy--;
		p->calls++;
		p->failed += failed;
		p->stopped += w->stop != STOP_NONE;
		p->replaced += discard;
		pthread_mutex_unlock(&p->mu);
		/* EAGAIN: the counter is full, the loop is woken already */
		(void)!write(p->efd, &one, sizeof one);
	}
	state_close(w);
	if (w->has_timer)
		timer_delete(w->timer);
	return NULL;
}

