/*
 * worker-int.h: what the two files of the worker pool share, and nothing
 * outside them includes: worker.c (the pool's life, the loop's side,
 * async.worker) and worker-state.c (a worker thread and its Lua state).
 * The rules of who touches what are worker.h's and worker.c's.
 */
#ifndef AWAITD_WORKER_INT_H
#define AWAITD_WORKER_INT_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>
#include <stdint.h>

#include <event2/util.h>
#include <jansson.h>
#include <lua.h>

#include "worker.h"

struct task;
struct trace;

#define WORKERS_MAX  256
/* The signal that sets a worker's stop hook: its own timer's, or the loop's pthread_kill. */
#define WORKER_SIGNAL (SIGRTMIN + 3)
#define NAME_MAX_LEN 200  /* bytes of a module's or a function's name */

enum stop_why { STOP_NONE, STOP_TIMEOUT, STOP_CANCELLED, STOP_POOL };

struct call {
	struct call *next;
	int refs;      /* the guard and the pool (loop thread only) */
	int back;      /* came back to the loop (answered) */
	int abandoned; /* atomic: nobody waits for it */
	struct task *t;
	struct worker_pool *p;
	char *module, *fn;
	json_t *args; /* an array; the worker releases it */
	/* the outcome, filled by the worker */
	json_t *results; /* an array on success */
	char code[32];
	char *message, *traceback;
	/* the caller's trace span */
	struct trace *trace;
	int span;
};

struct wthread {
	struct worker_pool *p;
	pthread_t th;
	lua_State *W;
	int require_ref;
	unsigned gen;   /* the pool's generation W was made in */
	size_t used;    /* bytes W holds */
	int refused;    /* W's allocator refused since the call began */
	struct call *c; /* the call running (set and cleared under the pool's mu) */
	double deadline;
	enum stop_why stop;
	int started;
	volatile sig_atomic_t in_call; /* W is inside a call: the signal may set its hook */
	lua_State *volatile running;   /* the coroutine W's call is resuming, or NULL */
	timer_t timer;                 /* fires WORKER_SIGNAL at the call's deadline */
	int has_timer;
};

struct worker_pool {
	struct worker_config cfg;
	worker_init_fn *init;
	void *ud;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct call *queue, *queue_tail; /* under mu */
	struct call *done;               /* under mu, any order */
	size_t nqueued;                  /* under mu */
	int busy;                        /* under mu */
	int stopping;                    /* under mu; read atomically by the hook */
	unsigned gen;                    /* atomic */
	uint64_t calls, failed, stopped, replaced; /* under mu */
	int efd;
	struct event *ev;
	int ev_on;       /* ev is added: calls are out */
	size_t out;      /* calls submitted, not yet back (loop thread) */
	int nthreads;
	struct wthread *threads;
};

/* Monotonic milliseconds. */
double worker_mono_ms(void);

/* A worker thread's body (arg: its struct wthread), until the pool stops. */
void *worker_thread_main(void *arg);

/* Install WORKER_SIGNAL's handler (process-wide, idempotent). 0 or -1. */
int worker_signal_install(void);

/*
 * Have w look at its stop conditions now (the call abandoned, the pool
 * stopping): signals its thread. Under the pool's mu, so w cannot go.
 */
void worker_poke(struct wthread *w);

#endif
