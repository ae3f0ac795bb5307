/*
 * task-int.h: what the three files of the task runtime share, and nothing
 * outside daemon/runtime/ may include. task.c spawns, starts and resumes
 * tasks and keeps the tree and the anchor; task-wait.c suspends, wakes and
 * cancels them; task-settle.c settles them and reports what nobody saw.
 */
#ifndef AWAITD_TASK_INT_H
#define AWAITD_TASK_INT_H

#include <event2/util.h>
#include <lua.h>

struct sched;
struct task;

/* task.c */

/* Push the task's userdata (it must still be anchored). */
void task_push_self(lua_State *L, struct task *t);

/* Take t out of its parent's child list (no-op without a parent). */
void task_unlink_child(struct task *t);

/* Take t out of s's list of unsettled tasks. */
void task_live_unlink(struct sched *s, struct task *t);

/* Release the registry anchor once the task is settled and unlinked. */
void task_maybe_release(struct task *t);

/* task-wait.c */

/* libevent callback of t->timer (arg is t): wakes it for timeout or cancel. */
void task_wait_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Take t off target's awaiter list. */
void task_wait_aw_remove(struct task *target, struct task *t);

/* Push t's cancellation error (its reason; `parked` when task_park cancelled it). */
void task_push_cancel_error(lua_State *L, struct task *t);

/* Disarm t's timer (libevent's, or the virtual one), if armed. */
void task_timer_stop(struct task *t);

/* Undo what task_suspend registered: lists and timer. */
void task_wait_undo(struct task *t);

/* task-scope.c */

/*
 * The most t may wait, in ms, before its scope's deadline (or the end of
 * the grace of a deadline already raised); 0: raise now (task_scope_raise).
 * HUGE_VAL when no scope bounds it.
 */
double task_scope_left(struct task *t);

/* Raise the scope's expiry in t's own thread L (marks it raised, starts its grace). */
int task_scope_raise(lua_State *L, struct task *t);

/* Free t's scope state (it settled). */
void task_scope_free(struct task *t);

/*
 * t's own cancellation is raised: the scopes open now are bounded by its
 * grace, not by their deadlines (those opened later, in its cleanup, are).
 */
void task_scope_cancelled(struct task *t);

/* task-settle.c */

/* Log t's failure, once ("task N failed and WHY: ..."). */
void task_report_failure(struct task *t, const char *why);

/*
 * Append "task N (at file:line)" for c, the k-th (from 1) of a warning's
 * list, to names (len bytes, n used); returns the new n (truncated when full).
 */
size_t task_name_orphan(char *names, size_t len, size_t n, int k, struct task *c);

/* The thread returned from task_body ([ok, results...] or [false, err]): settle t. */
void task_settle_returned(struct task *t);

/*
 * End a thread that cannot continue: close its to-be-closed variables,
 * then settle it failed with the error on top of s->L (which it pops).
 */
void task_settle_killed(struct task *t);

#endif
