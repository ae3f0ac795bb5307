/*
 * task-wait.c: suspending and waking tasks, and cancellation, which is
 * delivered when a task suspends or wakes.
 *
 * A task waits on at most one thing (a task's awaiter list, a port, a
 * park), optionally with a timer; task_wait_undo takes back everything
 * task_suspend registered, so a woken or settling task is on no list and
 * has no timer armed.
 *
 * Cancellation is cooperative and sticky: the first suspension after a
 * cancel raises; later suspensions are allowed only until the grace
 * deadline (so <close> handlers can await an async rollback), after which
 * they raise at once. A cancelled task settles as cancelled however its
 * function ends (task-settle.c).
 */
#include <math.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "errval.h"
#include "port.h"
#include "sched.h"
#include "task-int.h"
#include "task.h"

void task_timer_stop(struct task *t)
{
	t->timer_scope = 0;
	if (!t->timer_on)
		return;
	if (t->s->vclock)
		sched_vt_del(t->s, &t->vt);
	else
		evtimer_del(&t->timer);
	t->timer_on = 0;
}

void task_wait_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct task *t = arg;

	(void)fd;
	(void)what;
	t->timer_on = 0;
	/* a timer that ends the cancellation grace delivers the cancel */
	if (t->cancel_sent && sched_now() >= t->grace_until - 1) {
		task_wake(t, TASK_WAKE_CANCEL);
	} else if (t->timer_scope) {
		/* its timeout scope's deadline: woken as for a cancel (primitives
		 * release what they hold), task_resumed raises the scope's error */
		task_wake(t, TASK_WAKE_CANCEL);
		/* (a cancellation not raised yet goes first; one raised already does not) */
		if (t->queued && t->wake == TASK_WAKE_CANCEL && (!t->cancel_req || t->cancel_sent))
			t->wake_scope = 1;
	} else {
		task_wake(t, TASK_WAKE_TIMEOUT);
	}
}

/* ---- waiting ----------------------------------------------------------- */

static void aw_append(struct task *target, struct task *t)
{
	t->aw_next = NULL;
	t->aw_prev = target->aw_tail;
	if (target->aw_tail)
		target->aw_tail->aw_next = t;
	else
		target->aw_head = t;
	target->aw_tail = t;
}

void task_wait_aw_remove(struct task *target, struct task *t)
{
	if (t->aw_prev)
		t->aw_prev->aw_next = t->aw_next;
	else
		target->aw_head = t->aw_next;
	if (t->aw_next)
		t->aw_next->aw_prev = t->aw_prev;
	else
		target->aw_tail = t->aw_prev;
	t->aw_prev = t->aw_next = NULL;
}

/* Undo what task_suspend registered: lists and timer. */
void task_wait_undo(struct task *t)
{
	switch (t->wait) {
	case TASK_WAIT_TASK:
	case TASK_WAIT_JOIN:
		task_wait_aw_remove(t->wait_obj, t);
		break;
	case TASK_WAIT_PORT: {
		struct port *p = t->wait_obj;
		if (p->waiter == t)
			p->waiter = NULL;
		break;
	}
	default:
		break;
	}
	t->wait = TASK_WAIT_NONE;
	t->wait_obj = NULL;
	task_timer_stop(t);
}

void task_wake(struct task *t, enum task_wake why)
{
	if (t->state != TASK_SUSPENDED)
		return;
	if (why == TASK_WAKE_CANCEL && t->wait == TASK_WAIT_JOIN)
		return; /* shielded: it waits for a cancelled task to unwind */
	if (why == TASK_WAKE_CANCEL)
		t->wake_scope = 0; /* a real cancel (the scope's timer sets it after) */
	if (t->queued) {
		/* already woken: a cancel still overrides the reason */
		if (why == TASK_WAKE_CANCEL)
			t->wake = TASK_WAKE_CANCEL;
		return;
	}
	task_wait_undo(t);
	t->wake = why;
	sched_enqueue(t->s, t);
}

void task_wake_first(struct task *t)
{
	if (t->state != TASK_SUSPENDED || t->queued)
		return;
	task_wait_undo(t);
	t->wake = TASK_WAKE_SIGNAL;
	sched_enqueue_front(t->s, t);
}

void task_push_cancel_error(lua_State *L, struct task *t)
{
	task_push_self(L, t);
	lua_getiuservalue(L, -1, 2);
	errval_push(L, "cancelled", "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "cancelled");
	lua_replace(L, -3);
	lua_pop(L, 1);
	if (t->parked) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "parked");
	}
}

/* Raise the cancellation error in t's own thread L. */
static int raise_cancel(lua_State *L, struct task *t)
{
	struct sched *s = t->s;
	int in_task = s->in_task;

	if (!t->cancel_sent) {
		t->cancel_sent = 1;
		t->grace_until = sched_now() + s->cfg.cancel_grace_ms;
		task_scope_cancelled(t);
	}
	s->in_task = 0; /* building the error must not hit the memory cap */
	task_push_cancel_error(L, t);
	errval_traceback(L, -1, L, 1);
	s->in_task = in_task;
	return lua_error(L);
}

int task_suspend(lua_State *L, struct task *t, enum task_wait wait, void *wait_obj,
                 double timeout_ms, lua_KContext ctx, lua_KFunction k)
{
	int scope_timer = 0;

	/* every check that can raise comes before anything is registered */
	if (L != t->co)
		return luaL_error(L, "async: cannot suspend a task from a plain coroutine "
		                     "(use async.spawn, not coroutine.wrap, around async calls)");
	if (!lua_isyieldable(L))
		return luaL_error(L, "async: cannot suspend here: a C function is in between "
		                     "(a table.sort comparator, a gsub callback, require, a "
		                     "finalizer, or the <close> handler of a killed task)");
	if (t->s->closing)
		return luaL_error(L, "async: the runtime is shutting down");
	if (t->cancel_req && wait != TASK_WAIT_JOIN) {
		double left = t->grace_until - sched_now();
		if (!t->cancel_sent || left <= 0)
			return raise_cancel(L, t);
		if (timeout_ms < 0 || timeout_ms > left)
			timeout_ms = left;
	}
	if (t->scope && wait != TASK_WAIT_JOIN) {
		/* a timeout scope bounds the wait (task-scope.c) */
		double left = task_scope_left(t);
		if (left <= 0)
			return task_scope_raise(L, t);
		if (left < TASK_FOREVER_MS && (timeout_ms < 0 || timeout_ms > left)) {
			timeout_ms = left;
			scope_timer = 1;
		}
	}
	t->wake = TASK_WAKE_NONE;
	if (timeout_ms == 0) {
		/* already timed out (or sleep(0)): wake on the next turn, and
		 * register with nothing, so nothing has to be undone */
		t->wait = TASK_WAIT_NONE;
		t->wake = TASK_WAKE_TIMEOUT;
		sched_enqueue(t->s, t);
		return lua_yieldk(L, 0, ctx, k);
	}
	/* the virtual timer first: it is the one step that can fail, and then
	 * nothing is registered yet */
	if (timeout_ms > 0 && timeout_ms < TASK_FOREVER_MS && t->s->vclock) {
		if (sched_vt_add(t->s, &t->vt, timeout_ms) < 0)
			return luaL_error(L, "out of memory");
		t->timer_on = 1;
		t->timer_scope = scope_timer;
	}
	t->wait = wait;
	t->wait_obj = wait_obj;
	if (wait == TASK_WAIT_TASK || wait == TASK_WAIT_JOIN)
		aw_append(wait_obj, t);
	else if (wait == TASK_WAIT_PORT)
		((struct port *)wait_obj)->waiter = t;
	if (timeout_ms > 0 && timeout_ms < TASK_FOREVER_MS && !t->s->vclock) {
		struct timeval tv;
		tv.tv_sec = (time_t)(timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)fmod(timeout_ms * 1000, 1e6);
		/* libevent measures from the time cached when this loop turn
		 * began; a long turn would make the timer fire early */
		event_base_update_cache_time(t->s->base);
		evtimer_add(&t->timer, &tv);
		t->timer_on = 1;
		t->timer_scope = scope_timer;
	}
	return lua_yieldk(L, 0, ctx, k);
}

enum task_wake task_resumed(lua_State *L, struct task *t)
{
	enum task_wake w = t->wake;

	t->wake = TASK_WAKE_NONE;
	if (w == TASK_WAKE_CANCEL && t->wake_scope) {
		t->wake_scope = 0;
		task_scope_raise(L, t);
	}
	if (w == TASK_WAKE_CANCEL)
		raise_cancel(L, t);
	return w;
}

/* ---- cancellation ------------------------------------------------------ */

/* Mark one task cancelled and wake it if it waits. */
static void cancel_one(lua_State *L, struct task *t, const char *reason, int parked)
{
	t->cancel_req = 1;
	t->parked = parked != 0;
	if (reason) {
		task_push_self(L, t);
		lua_pushstring(L, reason);
		lua_setiuservalue(L, -2, 2);
		lua_pop(L, 1);
	}
	if (t->state == TASK_SUSPENDED)
		task_wake(t, TASK_WAKE_CANCEL);
}

static int cancel_pending(const struct task *t)
{
	return !task_settled(t) && !t->cancel_req;
}

/*
 * Cancel t and its whole subtree, depth first, without recursion (an
 * await chain can be hundreds of thousands of tasks deep).
 */
static void cancel_tree(lua_State *L, struct task *t, const char *reason, int parked)
{
	struct task *at = t, *c;

	if (!cancel_pending(t))
		return;
	cancel_one(L, t, reason, parked);
	c = t->child;
	for (;;) {
		while (c && !cancel_pending(c))
			c = c->sib_next;
		if (c) {
			cancel_one(L, c, "parent cancelled", parked);
			at = c;
			c = c->child;
			continue;
		}
		if (at == t)
			break;
		c = at->sib_next;
		at = at->parent;
	}
}

void task_cancel(lua_State *L, struct task *t, const char *reason)
{
	cancel_tree(L, t, reason, 0);
}

void task_park(lua_State *L, struct task *t, const char *reason)
{
	cancel_tree(L, t, reason, 1);
}
