/*
 * worker.h: CPU-bound work off the loop (SPEC section 3, async.worker).
 *
 * A pool of threads, each with a Lua state of its own, runs
 * `require(module)[fn](...)` for tasks of the loop. Arguments and results
 * are copied as JSON values (json.h's mapping): nothing is shared between
 * states. The calling task awaits the call like any other operation: a
 * cancelled call is stopped and its result discarded. A call that runs
 * past the pool's timeout is stopped by an instruction-count hook (the
 * slice's mechanism), and its state is discarded and replaced, as is one
 * that passed its memory cap: the pool keeps its size.
 *
 * Threads: the pool's queue and its list of finished calls are shared
 * under one mutex; a worker state is touched only by its thread; a call's
 * fields belong to whichever side holds it, but for `abandoned`, which the
 * loop sets and the worker reads (atomically). Finished calls reach the
 * loop through an eventfd, watched only while calls are out, so that an
 * idle pool does not keep `awaitd run`'s loop alive.
 */
#ifndef AWAITD_WORKER_H
#define AWAITD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lua.h>

struct event_base;
struct worker_pool;

struct worker_config {
	int workers;       /* threads and states; 0: the number of cores */
	double timeout_ms; /* a call running longer is stopped; 0: no limit */
	size_t max_memory; /* bytes each worker state may hold; 0: no cap */
};

/*
 * Prepare a new worker state W (on its own thread, protected): open what
 * the state may use and push one value, the function `require` that the
 * calls use to find their module.
 */
typedef int worker_init_fn(lua_State *W, void *ud);

/* Defaults: one worker per core, 30 s timeout, no memory cap. */
void worker_config_defaults(struct worker_config *cfg);

/*
 * Start the pool's threads (states are made on first use). NULL with err
 * on failure. init and ud are used from the worker threads: ud must stay
 * valid and unchanged until worker_pool_free.
 */
struct worker_pool *worker_pool_new(struct event_base *base, const struct worker_config *cfg,
                                    worker_init_fn *init, void *ud, char *err, size_t errlen);

/* The scripts changed: each state is made anew before its next call. */
void worker_pool_reload(struct worker_pool *p);

/*
 * Stop the threads (a running call is stopped), answer what is left with
 * "stopping", free. Calls whose task still waits are freed by its guard.
 * NULL is a no-op.
 */
void worker_pool_free(struct worker_pool *p);

struct worker_stats {
	int size;          /* threads */
	int busy;          /* running a call */
	size_t queued;     /* calls waiting for a thread */
	uint64_t calls;    /* calls finished */
	uint64_t failed;   /* ... that raised, or returned what is not JSON */
	uint64_t stopped;  /* ... stopped: timeout, memory, or cancelled */
	uint64_t replaced; /* states discarded and made anew */
};

void worker_pool_stats(struct worker_pool *p, struct worker_stats *out);

/* worker_pool_stats as a JSON object {size, busy, queued, calls, failed, stopped, replaced}. */
json_t *worker_pool_json(struct worker_pool *p);

/* Calls submitted and not yet back on the loop (loop thread; 0 for NULL). */
size_t worker_pool_out(const struct worker_pool *p);

/* Make p (NULL: none) the pool async.worker uses in L's state. */
void worker_pool_register(lua_State *L, struct worker_pool *p);

/*
 * Lua: async.worker(module, fn_name, ...) -> results | nil, err. err.code:
 * invalid (a bad name, an argument or result that is not JSON-able), the
 * code of what the function raised (with err.traceback from the worker),
 * timeout, out_of_memory, not_available (no pool), stopping.
 */
int async_worker(lua_State *L);

#endif
