/*
 * sched.h: the scheduler that runs Lua tasks on a libevent loop.
 *
 * One sched owns one Lua state (every task is a coroutine of it), the run
 * queue of tasks that are ready to be resumed, and the accounting that
 * protects the loop: a memory cap enforced by the Lua allocator and a
 * per-resume time slice enforced by a count hook.
 *
 * Invariants:
 *  - Tasks are resumed only from the run queue (a later loop turn, FIFO) or
 *    synchronously by task_spawn; never from an arbitrary libevent callback.
 *  - The run queue holds each task at most once (task->queued, checked
 *    by sched_enqueue), and never a settled task.
 *
 * Part runtime (daemon/runtime/): the loop and the Lua tasks: the scheduler,
 * tasks, completion ports, error values, trace spans. It may call base only;
 * the Lua modules (bindings/) are built on it, never the reverse.
 */
#ifndef AWAITD_SCHED_H
#define AWAITD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include <signal.h>
#include <time.h>

#include <lua.h>

#include "tasklabel.h"

/* Lua 5.4.6 renamed lua_resetthread(co) to lua_closethread(co, from). */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define sched_closethread(co, from) lua_closethread((co), (from))
#else
#define sched_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

/* The signal of the slice tick (a real-time one nobody else uses). */
#define SCHED_TICK_SIGNAL (SIGRTMIN + 2)

struct event_base;
struct event;
struct task;
struct trace;

struct sched_config {
	double max_slice_ms;    /* ms a task may run without suspending */
	size_t max_memory;      /* bytes the Lua state may hold, 0 = no cap */
	double cancel_grace_ms; /* ms a cancelled task may still await */
};

struct sched_stats {
	uint64_t spawned;
	uint64_t done;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t resumes;
	size_t live; /* tasks not yet settled */
	size_t mem;  /* bytes held by the Lua state */
	size_t mem_peak;
};

struct sched {
	lua_State *L;
	struct event_base *base;
	struct event *ready;  /* zero-timeout timer that drains the run queue */
	struct task *rq_head; /* run queue, FIFO through task->rq_next */
	struct task *rq_tail;
	struct task *volatile current; /* task being resumed, NULL on the loop */
	int closing;                   /* sched_free has begun: no new tasks or waits */
	lua_State *volatile running;   /* thread executing now: the task's or a plain
	                                * coroutine inside it (see bindings/coro.c) */
	struct task *live_head;        /* every unsettled task */
	struct sched_config cfg;
	struct sched_stats stats;
	volatile sig_atomic_t in_task; /* 1 while task code runs: memory cap, slice */
	void *refused_ptr;             /* last allocation refused by the cap (see sched_alloc) */
	size_t refused_size;
	size_t oom_size;     /* bytes of the last refused allocation (cap or malloc), 0: none */
	size_t oom_inuse;    /* bytes the state held when it was refused */
	int oom_system;      /* 1: malloc failed, 0: the cap refused it */
	int collect_pending; /* a refusal happened: full GC + malloc_trim at the next turn */
	timer_t tick; /* the slice tick, see sched.c */
	int has_tick;
	volatile sig_atomic_t tick_on;
	volatile sig_atomic_t idle_ticks;
	int64_t next_id;
	int body_ref;               /* registry ref: the C body every task runs */
	int task_mt_ref;            /* registry ref: the task metatable */
	int pool_ref;               /* registry ref: array of idle threads */
	int npool;                  /* threads in the pool */
	struct trace *spawn_trace;  /* given to the next parentless task spawned (jobs.c) */
	struct tasklabel_slot labels[TASKLABEL_CACHE]; /* traced tasks' names, by definition site */
	void (*between)(void *arg); /* called between two resumes of a turn (the store's
	                             * answers, so a db:tx owner need not wait a turn) */
	void *between_arg;
	/* virtual time (vclock.h): `awaitd test` */
	int vclock;
	struct sched_vt **vheap;
	size_t nvheap, capvheap;
	uint64_t vseq;
};

/* An event_base with the precise monotonic timer the scheduler needs. */
struct event_base *sched_base_new(void);

/*
 * Defaults: 100 ms slice, the machine's default memory cap (memcap.h: a
 * quarter of RAM, 64 MiB to 4 GiB), 1000 ms cancel grace.
 */
void sched_config_defaults(struct sched_config *cfg);

/*
 * Create a scheduler with a fresh Lua state on `base`. Returns NULL when
 * memory or the Lua state cannot be had. The standard libraries are opened;
 * the caller opens awaitd's modules (bindings/modules.h).
 */
struct sched *sched_new(struct event_base *base, const struct sched_config *cfg);

/* Close the Lua state (finalizers run) and free. sched_free(NULL) is a no-op. */
void sched_free(struct sched *s);

/* The scheduler that owns L (any thread of the state). */
struct sched *sched_of(lua_State *L);

/*
 * The cause of the last refused allocation, in buf (len bytes), e.g.
 * "allocation of 2.0 GiB would pass max_memory_mb = 512 (in use 1.1 GiB)",
 * or that malloc failed (naming the cap only as what it is); "not enough
 * memory" when nothing was refused. Returns buf.
 */
const char *sched_oom_message(const struct sched *s, char *buf, size_t len);

/* sched_oom_message for the state of L, or "not enough memory" when no sched owns L. */
const char *sched_oom_describe(lua_State *L, char *buf, size_t len);

/* After a refusal: run the full collection and malloc_trim on the next loop turn. */
void sched_collect_soon(struct sched *s);

/* Put t at the tail of the run queue; it is resumed on a later loop turn. */
void sched_enqueue(struct sched *s, struct task *t);

/*
 * Put t at the head of the run queue: for a task whose wait holds up
 * others (a db:tx holding the store's single writer). Still a later turn.
 */
void sched_enqueue_front(struct sched *s, struct task *t);

/* Monotonic clock in milliseconds. */
double sched_now(void);

/*
 * The same clock read coarsely (a few ms of resolution, much cheaper):
 * for the slice accounting done on every resume, never for timers.
 */
double sched_coarse_now(void);

/*
 * An idle thread from the pool, or a new one; pushed on L. Raises on
 * memory errors.
 */
lua_State *sched_pool_get(struct sched *s, lua_State *L);

/* Give a finished thread (empty stack, status OK) back to the pool. */
void sched_pool_put(struct sched *s, lua_State *co);

/* Start the slice tick if it is not running (cheap when it is). */
void sched_tick(struct sched *s);

#endif
