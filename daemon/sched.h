/*
 * sched.h: the scheduler that runs Lua tasks on a libevent loop.
 *
 * One sched owns one Lua state (every task is a coroutine of it), the run
 * queue of tasks that are ready to be resumed, and the accounting that
 * protects the loop: a memory cap enforced by the Lua allocator and a
 * per-resume time slice enforced by a count hook.
 *
 * Invariants:
 *  - Tasks are resumed only from sched_turn (a later loop turn, FIFO) or
 *    synchronously by task_spawn; never from an arbitrary libevent callback.
 *  - The run queue holds each task at most once (task->queued).
 */
#ifndef AWAITD_SCHED_H
#define AWAITD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

struct event_base;
struct event;
struct task;

struct sched_config {
	double max_slice_ms;   /* ms a task may run without suspending */
	size_t max_memory;     /* bytes the Lua state may hold, 0 = no cap */
	double cancel_grace_ms; /* ms a cancelled task may still await */
};

struct sched_stats {
	uint64_t spawned;
	uint64_t done;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t resumes;
	size_t live;           /* tasks not yet settled */
	size_t mem;            /* bytes held by the Lua state */
	size_t mem_peak;
};

struct sched {
	lua_State *L;
	struct event_base *base;
	struct event *ready;   /* zero-timeout timer that drains the run queue */
	struct task *rq_head;  /* run queue, FIFO through task->rq_next */
	struct task *rq_tail;
	struct task *current;  /* task being resumed, NULL on the loop */
	struct task *live_head; /* every unsettled task */
	struct sched_config cfg;
	struct sched_stats stats;
	int in_task;           /* 1 while Lua code of a task runs: the memory cap applies */
	int64_t next_id;
	int body_ref;          /* registry ref: the C body every task runs */
};

/* Defaults: 100 ms slice, no memory cap, 1000 ms cancel grace. */
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

/* Put t at the tail of the run queue; it is resumed on a later loop turn. */
void sched_enqueue(struct sched *s, struct task *t);

/* Monotonic clock in milliseconds. */
double sched_now(void);

/* Install the slice hook on a task's thread. */
void sched_hook(lua_State *co);


#endif
