/*
 * worker.c: the worker pool and async.worker (worker.h).
 *
 * A call is shared by the loop and one worker thread, and freed by the
 * last of its two holders, both on the loop: the guard on the caller's
 * stack (to-be-closed: cancellation, an error, the task's end) and the
 * pool (until the call has come back to the loop, or the pool is freed).
 * A thread holds a call between taking it from the queue and putting it
 * on the done list; the loop does not touch it meanwhile but to set
 * `abandoned`.
 *
 * A worker thread and its state are worker-state.c's.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "async-int.h"
#include "errval.h"
#include "guard.h"
#include "json.h"
#include "sched.h"
#include "task.h"
#include "trace.h"
#include "worker-int.h"

static const char pool_key = 'w'; /* registry: light userdata, the pool */

#define CALL_MT "awaitd.worker.call"

void worker_config_defaults(struct worker_config *cfg)
{
	cfg->workers = 0;
	cfg->timeout_ms = 30000;
	cfg->max_memory = 0;
}

/* ---- calls (loop thread) --------------------------------------------------------------- */

static void call_unref(struct call *c)
{
	if (--c->refs > 0)
		return;
	free(c->module);
	free(c->fn);
	json_decref(c->args);
	json_decref(c->results);
	free(c->message);
	free(c->traceback);
	trace_unref(c->trace);
	free(c);
}

/* ---- the loop's side ------------------------------------------------------------------- */

static void watch(struct worker_pool *p, int on)
{
	if (on && !p->ev_on)
		event_add(p->ev, NULL);
	else if (!on && p->ev_on)
		event_del(p->ev);
	p->ev_on = on;
}

/* A call came back: wake its task, or free it when nobody waits. */
static void call_back(struct worker_pool *p, struct call *c)
{
	c->back = 1;
	p->out--;
	if (!__atomic_load_n(&c->abandoned, __ATOMIC_RELAXED) && c->t)
		task_wake(c->t, TASK_WAKE_SIGNAL);
	call_unref(c); /* the pool's reference */
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool *p = arg;
	struct call *c, *next;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&p->mu);
	c = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; c; c = next) {
		next = c->next;
		call_back(p, c);
	}
	watch(p, p->out > 0);
}

struct worker_pool *worker_pool_new(struct event_base *base, const struct worker_config *cfg,
                                    worker_init_fn *init, void *ud, char *err, size_t errlen)
{
	struct worker_pool *p = calloc(1, sizeof *p);
	long ncores = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = *cfg;
	p->init = init;
	p->ud = ud;
	p->gen = 1;
	p->efd = -1;
	p->nthreads = cfg->workers > 0 ? cfg->workers : ncores > 0 ? (int)ncores : 1;
	if (worker_signal_install() < 0) {
		snprintf(err, errlen, "cannot install the worker signal: %s", strerror(errno));
		free(p);
		return NULL;
	}
	if (p->nthreads > WORKERS_MAX)
		p->nthreads = WORKERS_MAX;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->ev = p->efd >= 0 ? event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p) : NULL;
	p->threads = calloc((size_t)p->nthreads, sizeof *p->threads);
	if (!p->ev || !p->threads) {
		snprintf(err, errlen, "cannot create the worker pool: %s", strerror(errno));
		worker_pool_free(p);
		return NULL;
	}
	for (i = 0; i < p->nthreads; i++) {
		struct wthread *w = &p->threads[i];
		w->p = p;
		if (pthread_create(&w->th, NULL, worker_thread_main, w) != 0) {
			snprintf(err, errlen, "cannot start worker thread %d: %s", i + 1,
			         strerror(errno));
			worker_pool_free(p);
			return NULL;
		}
		w->started = 1;
	}
	return p;
}

void worker_pool_reload(struct worker_pool *p)
{
	if (p)
		__atomic_add_fetch(&p->gen, 1, __ATOMIC_RELEASE);
}

void worker_pool_free(struct worker_pool *p)
{
	struct call *c, *next;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->cv);
	for (int i = 0; p->threads && i < p->nthreads; i++)
		if (p->threads[i].c)
			worker_poke(&p->threads[i]);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; p->threads && i < p->nthreads; i++)
		if (p->threads[i].started)
			pthread_join(p->threads[i].th, NULL);
	/* what is left is the loop's now: answered "stopping", or run and back */
	for (c = p->queue; c; c = next) {
		next = c->next;
		snprintf(c->code, sizeof c->code, "stopping");
		call_back(p, c);
	}
	for (c = p->done; c; c = next) {
		next = c->next;
		call_back(p, c);
	}
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void worker_pool_stats(struct worker_pool *p, struct worker_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	out->size = p->nthreads;
	out->busy = p->busy;
	out->queued = p->nqueued;
	out->calls = p->calls;
	out->failed = p->failed;
	out->stopped = p->stopped;
	out->replaced = p->replaced;
	pthread_mutex_unlock(&p->mu);
}

json_t *worker_pool_json(struct worker_pool *p)
{
	struct worker_stats ws;

	worker_pool_stats(p, &ws);
	return json_pack("{sI sI sI sI sI sI sI}", "size", (json_int_t)ws.size, "busy",
	                 (json_int_t)ws.busy, "queued", (json_int_t)ws.queued, "calls",
	                 (json_int_t)ws.calls, "failed", (json_int_t)ws.failed, "stopped",
	                 (json_int_t)ws.stopped, "replaced", (json_int_t)ws.replaced);
}

size_t worker_pool_out(const struct worker_pool *p)
{
	return p ? p->out : 0;
}

void worker_pool_register(lua_State *L, struct worker_pool *p)
{
	lua_pushlightuserdata(L, p);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_key);
}

/* ---- async.worker ------------------------------------------------------------------------- */

struct guard {
	struct call *c;
};

/* The caller lets go: a call still out is abandoned (its worker stops it). */
static void guard_release(struct guard *g)
{
	struct call *c = g->c;

	if (!c)
		return;
	g->c = NULL;
	if (!c->back) {
		struct worker_pool *p = c->p;
		__atomic_store_n(&c->abandoned, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&p->mu);
		for (int i = 0; i < p->nthreads; i++)
			if (p->threads[i].c == c) /* running: stop it now */
				worker_poke(&p->threads[i]);
		pthread_mutex_unlock(&p->mu);
	}
	c->t = NULL;
	call_unref(c);
}

static int guard_close(lua_State *L)
{
	guard_release(luaL_checkudata(L, 1, CALL_MT));
	return 0;
}

/* nil, an error value {code, message[, traceback]} */
static int push_failure(lua_State *L, const char *code, const char *msg, const char *traceback)
{
	lua_pushnil(L);
	errval_push(L, code, "%s", msg);
	if (traceback) {
		lua_pushstring(L, traceback);
		lua_setfield(L, -2, "traceback");
	}
	return 2;
}

static int worker_k(lua_State *L, int status, lua_KContext ctx)
{
	struct task *t = task_current(L);
	struct guard *g = lua_touserdata(L, (int)ctx);
	struct call *c = g->c;
	char msg[256];
	size_t i, n;
	int outcome_ok;

	(void)status;
	if (t->wake == TASK_WAKE_CANCEL) {
		if (c && c->trace)
			trace_close(c->trace, c->span, "cancelled", sched_now());
		guard_release(g);
		task_resumed(L, t); /* raises */
	}
	task_resumed(L, t);
	if (!c->back) /* woken by someone else: wait on */
		return task_suspend(L, t, TASK_WAIT_PARK, c, -1, ctx, worker_k);
	outcome_ok = !c->code[0] && c->results;
	if (c->trace)
		trace_close(c->trace, c->span, outcome_ok ? "done" : "failed", sched_now());
	if (!outcome_ok) {
		n = (size_t)push_failure(L, c->code[0] ? c->code : "error",
		                         c->message ? c->message : "the worker failed", c->traceback);
		guard_release(g);
		return (int)n;
	}
	n = json_array_size(c->results);
	luaL_checkstack(L, (int)n + 2, "async.worker: too many results");
	for (i = 0; i < n; i++)
		if (json_is_null(json_array_get(c->results, i))) /* nil, err stays so */
			lua_pushnil(L);
		else if (json_push(L, json_array_get(c->results, i), msg, sizeof msg) < 0) {
			lua_settop(L, (int)ctx);
			guard_release(g);
			return push_failure(L, "invalid", msg, NULL);
		}
	guard_release(g);
	return (int)n;
}

/* A name argument: a non-empty string of at most NAME_MAX_LEN bytes, else NULL. */
static const char *name_arg(lua_State *L, int idx)
{
	size_t n;
	const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;

	return s && n > 0 && n <= NAME_MAX_LEN && strlen(s) == n ? s : NULL;
}

int async_worker(lua_State *L)
{
	struct task *t = async_need_task(L, "worker");
	struct worker_pool *p;
	const char *module = name_arg(L, 1), *fn = name_arg(L, 2);
	int top = lua_gettop(L), gi;
	struct guard *g;
	struct call *c;
	json_t *args;
	char msg[256], where[80] = "";
	lua_Debug ar;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_key);
	p = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (!module || !fn)
		return push_failure(L, "invalid",
		                    "async.worker(module, fn_name, ...): module and fn_name must be "
		                    "names (strings of 1 to 200 bytes)",
		                    NULL);
	if (!p)
		return push_failure(L, "not_available", "async.worker: no worker pool here", NULL);
	if (__atomic_load_n(&p->stopping, __ATOMIC_RELAXED))
		return push_failure(L, "stopping", "the daemon is stopping", NULL);
	if (!(args = json_array()))
		return luaL_error(L, "out of memory");
	for (int i = 3; i <= top; i++) {
		json_t *v = lua_isnil(L, i) ? json_null() : json_from_lua(L, i, msg, sizeof msg);
		if (!v) {
			json_decref(args);
			lua_pushnil(L);
			errval_push(L, "invalid", "async.worker: argument %d: %s", i - 2, msg);
			return 2;
		}
		json_array_append_new(args, v);
	}
	g = guard_push(L, sizeof *g, CALL_MT, guard_close);
	gi = lua_gettop(L);
	c = calloc(1, sizeof *c);
	if (!c || !(c->module = strdup(module)) || !(c->fn = strdup(fn))) {
		if (c)
			free(c->module);
		free(c);
		json_decref(args);
		return luaL_error(L, "out of memory");
	}
	c->refs = 2;
	c->t = t;
	c->p = p;
	c->args = args;
	c->span = -1;
	g->c = c;
	if (t->trace) {
		if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
			snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
		snprintf(msg, sizeof msg, "worker %s.%s", module, fn);
		c->trace = t->trace;
		trace_ref(c->trace);
		c->span = trace_open(c->trace, ++t->s->next_id, t->id, msg, where, sched_now());
	}
	pthread_mutex_lock(&p->mu);
	if (p->queue_tail)
		p->queue_tail->next = c;
	else
		p->queue = c;
	p->queue_tail = c;
	p->nqueued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	p->out++;
	watch(p, 1);
	return task_suspend(L, t, TASK_WAIT_PARK, c, -1, gi, worker_k);
}
