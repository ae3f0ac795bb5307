/*
 * task.h: a task is a Lua coroutine scheduled by the sched, with a parent,
 * children, awaiters and a settled outcome.
 *
 * A struct task is the payload of a full userdata (metatable TASK_MT), so
 * Lua handles and C share one object. Its first user value is the thread.
 * The task is anchored by a registry ref (task->ref) while it is unsettled
 * or still linked in its parent's child list; the ref is released exactly
 * once, after which only Lua handles keep the userdata alive.
 *
 * Outcome: once settled, user value 1 holds the result (one value), a
 * table of results (several) or the error value (failed, cancelled), and
 * the thread has gone back to the scheduler's pool. User value 2 holds the
 * cancellation reason.
 *
 * Suspension: a task waits on at most one thing at a time (a task it
 * awaits, a port, a park), optionally with a timer. Every wake-up goes
 * through task_wake, which records why (signal, timeout, cancel) and puts
 * the task on the run queue; the primitive's continuation reads the reason.
 */
#ifndef AWAITD_TASK_H
#define AWAITD_TASK_H

#include <stdint.h>

#include <event2/event_struct.h>
#include <lauxlib.h>
#include <lua.h>

#include "vclock.h"

#define TASK_MT "async.Task"

struct sched;
struct port;
struct task_scope;

enum task_state {
	TASK_RUNNING,
	TASK_SUSPENDED,
	TASK_DONE,
	TASK_FAILED,
	TASK_CANCELLED,
};

enum task_wake {
	TASK_WAKE_NONE,
	TASK_WAKE_SIGNAL,  /* what it waited for happened */
	TASK_WAKE_TIMEOUT, /* its timer fired first */
	TASK_WAKE_CANCEL,  /* it was cancelled: the primitive raises */
};

enum task_wait {
	TASK_WAIT_NONE,
	TASK_WAIT_SLEEP, /* timer only */
	TASK_WAIT_TASK,  /* on task->wait_obj's awaiter list */
	TASK_WAIT_PORT,  /* the waiter of port task->wait_obj */
	TASK_WAIT_PARK,  /* parked until task_unpark */
	TASK_WAIT_START, /* deferred: not started, no thread yet */
	TASK_WAIT_JOIN,  /* like TASK, but shielded from cancellation: a
	                  * combinator waiting for items it cancelled to
	                  * finish unwinding (they settle within their grace) */
};

/* A timeout this long (or infinite) means no timer at all. */
#define TASK_FOREVER_MS 1e15

/* One watch: when the task settles, post `index` to `port`. */
struct watch {
	struct port *port;
	lua_Integer index;
	struct watch *next;
};

#define TASK_MAGIC 0x7461736bu /* "task" */

struct task {
	uint32_t magic; /* TASK_MAGIC: task_check's proof of type */
	struct sched *s;
	lua_State *co; /* the coroutine (user value 1) until settled, then NULL */
	int ref;       /* registry ref anchoring the userdata, or LUA_NOREF */
	int64_t id;
	enum task_state state;
	unsigned cancel_req : 1;  /* cancel() was called */
	unsigned cancel_sent : 1; /* a cancellation error was raised in it */
	unsigned observed : 1;    /* someone awaited or watched its outcome */
	unsigned detached : 1;    /* owned by the runtime, not a parent */
	unsigned queued : 1;      /* on the run queue */
	unsigned timer_on : 1;    /* timer armed */
	unsigned blocked : 1;     /* killed by the slice hook */
	unsigned oom : 1;         /* an allocation for it was refused */
	unsigned reported : 1;    /* its unobserved failure was logged */
	unsigned parked : 1;      /* cancelled because its job parked (task_park) */
	unsigned timer_scope : 1; /* the armed timer is its timeout scope's deadline */
	unsigned wake_scope : 1;  /* woken (as for a cancel) because that deadline passed */

	/* the tree */
	struct task *parent; /* NULL once detached or the parent is gone */
	struct task *child;  /* first child still linked */
	struct task *sib_prev;
	struct task *sib_next;

	/* who waits for this task */
	struct task *aw_head; /* tasks suspended in await on this one */
	struct task *aw_tail;
	struct watch watch0;   /* first watch inline (port NULL if unused) */
	struct watch *watches; /* further watches, malloc'd */

	/* what this task waits for */
	enum task_wait wait;
	void *wait_obj;
	struct task *aw_prev; /* links in wait_obj's awaiter list */
	struct task *aw_next;
	enum task_wake wake;
	struct event timer; /* sleep and timed waits */
	struct sched_vt vt; /* ... in virtual time (vclock.h) */

	struct task *rq_next;   /* run queue link */
	struct task *live_prev; /* sched's list of unsettled tasks */
	struct task *live_next;

	double started;           /* ms, monotonic, at its first resume */
	double slice_start;       /* ms, monotonic, at the current resume */
	double deadline;          /* ms, monotonic; HUGE_VAL when none */
	double grace_until;       /* ms, monotonic; end of cancellation grace */
	int nres;                 /* results or error left on co's stack */
	struct trace *trace;      /* the job attempt it belongs to (a reference), or NULL */
	int64_t db_tx;            /* token of the db:tx it holds open (bindings/db.c), 0 none */
	int span;                 /* its span in trace */
	struct task_scope *scope; /* its timeout scopes (task-scope.c), from the first on */
};

/* task_spawn flags */
#define TASK_SPAWN_OBSERVED 1 /* its outcome is read by C: never report it */
#define TASK_SPAWN_DEFERRED                                                                        \
	2 /* do not run it: it waits, without a thread,                                            \
	   * for task_start (a queue's pending item) */

/*
 * Spawn fn(args...) (the function and nargs arguments on top of L) as a
 * child of `parent` (NULL for a detached task) with an absolute deadline
 * (ms, HUGE_VAL for none; a child never outlives its parent's), and run it
 * until its first suspension. Pops them and pushes the task userdata.
 * Raises on memory errors.
 */
struct task *task_spawn(lua_State *L, int nargs, struct task *parent, double deadline,
                        unsigned flags);

/*
 * Start a deferred task (on the next loop turn). Returns 1, or 0 when it
 * is not a deferred task waiting to start.
 */
int task_start(struct task *t);

/* Name t in its job's trace (async.name); a task without a trace is left as it is. */
void task_set_name(struct task *t, const char *name);

/* The task whose thread is L, or NULL when L is not a task thread. */
struct task *task_current(lua_State *L);

/* luaL_checkudata for tasks. */
struct task *task_check(lua_State *L, int idx);

/*
 * Resume the suspended task t with what task_wake recorded (sched's run
 * queue only). Never raises: whatever the task does, it ends suspended
 * again or settled, and errors become its outcome.
 */
void task_resume(struct task *t);

/*
 * Suspend the running task t on `wait` (with wait_obj) for at most
 * timeout_ms (negative: no timer), then yield to the scheduler. The
 * continuation k runs when it is woken; it must start with task_resumed.
 * Never returns normally: it yields (or raises when t is cancelled).
 */
int task_suspend(lua_State *L, struct task *t, enum task_wait wait, void *wait_obj,
                 double timeout_ms, lua_KContext ctx, lua_KFunction k);

/*
 * First call in a continuation: raises the cancellation error when the
 * task was woken for cancellation, else returns the wake reason.
 */
enum task_wake task_resumed(lua_State *L, struct task *t);

/* Wake a suspended task for `why`; no-op unless suspended and not yet woken. */
void task_wake(struct task *t, enum task_wake why);

/*
 * task_wake(t, TASK_WAKE_SIGNAL), but t is resumed before the tasks
 * already queued (sched_enqueue_front).
 */
void task_wake_first(struct task *t);

/* Request cancellation (idempotent); children are cancelled too. */
void task_cancel(lua_State *L, struct task *t, const char *reason);

/*
 * Timeout scopes: async.timeout(ms, fn) runs fn in the calling task, with
 * a deadline ms from now (never later than an open scope's). When the
 * deadline passes, the task's next suspension inside the scope (or the one
 * it is in) raises a cancellation error, "timed out after MS ms"; the
 * scope's cleanup may still suspend for cancel_grace_ms, then raises again.
 * Unlike a task's cancellation, this one ends with the scope: the task
 * goes on after it. The task's deadline (async.deadline, db statements)
 * is the scope's meanwhile.
 */
struct task_scope_mark {         /* what a scope's open replaced, for its close */
	double at, ms, deadline; /* the deadline in force, its ms, the task's deadline */
	double grace;            /* the grace of the expiry being raised, if any */
	int def, hit;            /* the depth that set `at`; the one being raised (0 none) */
	int64_t first;           /* the first task id spawned inside the scope */
	uint64_t hits;           /* expiries raised in the task before it opened */
};

/* Open a scope of ms in t (the running task). Returns -1 when out of memory. */
int task_scope_open(struct task *t, double ms, struct task_scope_mark *m);

enum task_scope_end {
	TASK_SCOPE_IN_TIME, /* its deadline was not raised */
	TASK_SCOPE_EXPIRED, /* its own deadline was raised: it timed out */
	TASK_SCOPE_OUTER,   /* an outer scope's deadline was raised inside it: let it through */
};

/* Close t's innermost scope (opened with m): how it ended. */
enum task_scope_end task_scope_close(struct task *t, const struct task_scope_mark *m);

/*
 * The children t spawned inside the scope (ids >= first) that are still
 * running are cancelled (with `reason`; when warn, a warning names them,
 * as for a task that ends with unawaited children); failed ones nobody
 * awaited are reported. Pushes a list of the unsettled ones, to be joined,
 * or false when there are none.
 */
void task_scope_reap(lua_State *L, struct task *t, int64_t first, const char *reason, int warn);

/* The depth of scopes open in t, the count of expiries raised in it, the one raised (0 none). */
int task_scope_depth(const struct task *t);
uint64_t task_scope_hits(const struct task *t);
int task_scope_hit(const struct task *t);

/*
 * Sticky cancellation (SPEC section 2): a catch (pcall, xpcall, async.try)
 * entered in t before its cancellation was raised, or inside a timeout
 * scope before the scope's expiry was raised, hands the error it catches
 * on. task_catch_mark says where a catch is entered (>= 0, < 2^55);
 * task_catch_hands_on whether what it caught must go on.
 */
int64_t task_catch_mark(const struct task *t);
int task_catch_hands_on(const struct task *t, int64_t mark);

/*
 * task_cancel for a durable job that parks at a wait (it will run again
 * from its journal): the cancellation error of t and its subtree carries
 * `parked = true`, so a <close> handler can tell a park, after which the
 * job goes on, from a real cancellation.
 */
void task_park(lua_State *L, struct task *t, const char *reason);

/* True once done, failed or cancelled. */
int task_settled(const struct task *t);

/*
 * Push the outcome of the settled task at stack index idx: its results
 * (done) or nil, err. Returns the count. Marks it observed.
 */
int task_push_outcome(lua_State *L, int idx);

/* Push the error value of the task at idx (failed or cancelled) or nil. */
void task_push_error(lua_State *L, int idx);

/* Add a watch: post `index` to `port` when t settles (at once if settled). */
int task_watch(struct task *t, struct port *port, lua_Integer index);

/* Stop t's timer and drop its watches (sched_free, before lua_close). */
void task_release_resources(struct task *t);

/* Status name as in the SPEC. */
const char *task_status_name(const struct task *t);

/*
 * Register the task metatable: `methods` become the method table, passed
 * as upvalue 1 to `index`, the __index function (which serves task.id).
 */
void task_register(lua_State *L, const luaL_Reg *methods, lua_CFunction index);

#endif
