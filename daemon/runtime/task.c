/*
 * task.c: spawning, resuming, suspending, cancelling and settling tasks.
 *
 * Life of a task: task_spawn creates the thread, links the task under its
 * parent and resumes it at once (it runs until its first suspension).
 * task_suspend records what it waits for and yields; task_wake, called by
 * whatever it waited for (or its timer, or a cancel), puts it on the run
 * queue; its continuation then calls task_resumed, which raises the
 * cancellation error if that is why it woke. When the thread returns or
 * dies, settle() fixes the outcome on the thread's stack, wakes awaiters,
 * posts to watching ports, cancels children it left running (orphans),
 * reports failures nobody observed, and releases the anchor.
 *
 * Cancellation is cooperative and sticky: the first suspension after a
 * cancel raises; later suspensions are allowed only until the grace
 * deadline (so <close> handlers can await an async rollback), after which
 * they raise at once. A cancelled task settles as cancelled however its
 * function ends.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "errval.h"
#include "log.h"
#include "port.h"
#include "sched.h"
#include "task.h"
#include "tasklabel.h"
#include "trace.h"
#include "trace.h"

static void settle(struct task *t, enum task_state st);
static int attach_thread(struct task *t);

static const char *const status_names[] = {"running", "suspended", "done", "failed", "cancelled"};

const char *task_status_name(const struct task *t)
{
	return status_names[t->state];
}

int task_settled(const struct task *t)
{
	return t->state >= TASK_DONE;
}

struct task *task_current(lua_State *L)
{
	return *(struct task **)lua_getextraspace(L);
}

struct task *task_check(lua_State *L, int idx)
{
	struct task *t = lua_touserdata(L, idx);

	/* only C makes full userdata of this exact size; the magic confirms it */
	if (!t || lua_rawlen(L, idx) != sizeof *t || t->magic != TASK_MAGIC)
		luaL_typeerror(L, idx, "task");
	return t;
}

/* Push the task's userdata (it must still be anchored). */
static void push_self(lua_State *L, struct task *t)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct task *t = arg;

	(void)fd;
	(void)what;
	t->timer_on = 0;
	/* a timer that ends the cancellation grace delivers the cancel */
	if (t->cancel_sent && sched_now() >= t->grace_until - 1)
		task_wake(t, TASK_WAKE_CANCEL);
	else
		task_wake(t, TASK_WAKE_TIMEOUT);
}

/* ---- the tree ---------------------------------------------------------- */

static void link_child(struct task *parent, struct task *t)
{
	t->parent = parent;
	t->sib_prev = NULL;
	t->sib_next = parent->child;
	if (parent->child)
		parent->child->sib_prev = t;
	parent->child = t;
}

static void unlink_child(struct task *t)
{
	struct task *p = t->parent;

	if (!p)
		return;
	if (t->sib_prev)
		t->sib_prev->sib_next = t->sib_next;
	else
		p->child = t->sib_next;
	if (t->sib_next)
		t->sib_next->sib_prev = t->sib_prev;
	t->parent = t->sib_prev = t->sib_next = NULL;
}

static void live_link(struct sched *s, struct task *t)
{
	t->live_prev = NULL;
	t->live_next = s->live_head;
	if (s->live_head)
		s->live_head->live_prev = t;
	s->live_head = t;
}

static void live_unlink(struct sched *s, struct task *t)
{
	if (t->live_prev)
		t->live_prev->live_next = t->live_next;
	else
		s->live_head = t->live_next;
	if (t->live_next)
		t->live_next->live_prev = t->live_prev;
	t->live_prev = t->live_next = NULL;
}

/* Release the registry anchor once the task is settled and unlinked. */
static void maybe_release(struct task *t)
{
	if (task_settled(t) && !t->parent && t->ref != LUA_NOREF) {
		luaL_unref(t->s->L, LUA_REGISTRYINDEX, t->ref);
		t->ref = LUA_NOREF;
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

static void aw_remove(struct task *target, struct task *t)
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
static void unwait(struct task *t)
{
	switch (t->wait) {
	case TASK_WAIT_TASK:
	case TASK_WAIT_JOIN:
		aw_remove(t->wait_obj, t);
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
	if (t->timer_on) {
		evtimer_del(&t->timer);
		t->timer_on = 0;
	}
}

void task_wake(struct task *t, enum task_wake why)
{
	if (t->state != TASK_SUSPENDED)
		return;
	if (why == TASK_WAKE_CANCEL && t->wait == TASK_WAIT_JOIN)
		return; /* shielded: it waits for a cancelled task to unwind */
	if (t->queued) {
		/* already woken: a cancel still overrides the reason */
		if (why == TASK_WAKE_CANCEL)
			t->wake = TASK_WAKE_CANCEL;
		return;
	}
	unwait(t);
	t->wake = why;
	sched_enqueue(t->s, t);
}

void task_wake_first(struct task *t)
{
	if (t->state != TASK_SUSPENDED || t->queued)
		return;
	unwait(t);
	t->wake = TASK_WAKE_SIGNAL;
	sched_enqueue_front(t->s, t);
}

/* Raise the cancellation error in t's own thread L. */
static int raise_cancel(lua_State *L, struct task *t)
{
	struct sched *s = t->s;
	int in_task = s->in_task;

	if (!t->cancel_sent) {
		t->cancel_sent = 1;
		t->grace_until = sched_now() + s->cfg.cancel_grace_ms;
	}
	s->in_task = 0; /* building the error must not hit the memory cap */
	push_self(L, t);
	lua_getiuservalue(L, -1, 2);
	errval_push(L, "cancelled", "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "cancelled");
	lua_replace(L, -3);
	lua_pop(L, 1);
	errval_traceback(L, -1, L, 1);
	s->in_task = in_task;
	return lua_error(L);
}

int task_suspend(lua_State *L, struct task *t, enum task_wait wait, void *wait_obj,
                 double timeout_ms, lua_KContext ctx, lua_KFunction k)
{
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
	t->wake = TASK_WAKE_NONE;
	if (timeout_ms == 0) {
		/* already timed out (or sleep(0)): wake on the next turn, and
		 * register with nothing, so nothing has to be undone */
		t->wait = TASK_WAIT_NONE;
		t->wake = TASK_WAKE_TIMEOUT;
		sched_enqueue(t->s, t);
		return lua_yieldk(L, 0, ctx, k);
	}
	t->wait = wait;
	t->wait_obj = wait_obj;
	if (wait == TASK_WAIT_TASK || wait == TASK_WAIT_JOIN)
		aw_append(wait_obj, t);
	else if (wait == TASK_WAIT_PORT)
		((struct port *)wait_obj)->waiter = t;
	if (timeout_ms > 0 && timeout_ms < TASK_FOREVER_MS) {
		struct timeval tv;
		tv.tv_sec = (time_t)(timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)fmod(timeout_ms * 1000, 1e6);
		/* libevent measures from the time cached when this loop turn
		 * began; a long turn would make the timer fire early */
		event_base_update_cache_time(t->s->base);
		evtimer_add(&t->timer, &tv);
		t->timer_on = 1;
	}
	return lua_yieldk(L, 0, ctx, k);
}

enum task_wake task_resumed(lua_State *L, struct task *t)
{
	enum task_wake w = t->wake;

	t->wake = TASK_WAKE_NONE;
	if (w == TASK_WAKE_CANCEL)
		raise_cancel(L, t);
	return w;
}

/* ---- cancellation ------------------------------------------------------ */

/* Mark one task cancelled and wake it if it waits. */
static void cancel_one(lua_State *L, struct task *t, const char *reason)
{
	t->cancel_req = 1;
	if (reason) {
		push_self(L, t);
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
void task_cancel(lua_State *L, struct task *t, const char *reason)
{
	struct task *at = t, *c;

	if (!cancel_pending(t))
		return;
	cancel_one(L, t, reason);
	c = t->child;
	for (;;) {
		while (c && !cancel_pending(c))
			c = c->sib_next;
		if (c) {
			cancel_one(L, c, "parent cancelled");
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

/* ---- outcome ----------------------------------------------------------- */

void task_push_error(lua_State *L, int idx)
{
	struct task *t = lua_touserdata(L, idx);

	if (t->state == TASK_FAILED || t->state == TASK_CANCELLED)
		lua_getiuservalue(L, idx, 1);
	else
		lua_pushnil(L);
}

/* Mark t observed; a settled child kept only for reporting is let go. */
static void observe(struct task *t)
{
	t->observed = 1;
	if (task_settled(t) && t->parent) {
		unlink_child(t);
		maybe_release(t);
	}
}

int task_push_outcome(lua_State *L, int idx)
{
	struct task *t = lua_touserdata(L, idx);

	idx = lua_absindex(L, idx);
	observe(t);
	if (t->state != TASK_DONE) {
		lua_pushnil(L);
		lua_getiuservalue(L, idx, 1);
		return 2;
	}
	if (t->nres <= 1) {
		if (t->nres == 1)
			lua_getiuservalue(L, idx, 1);
		return t->nres;
	}
	luaL_checkstack(L, t->nres + 1, "too many results");
	lua_getiuservalue(L, idx, 1);
	for (int i = 1; i <= t->nres; i++)
		lua_rawgeti(L, -i, i);
	lua_remove(L, -(t->nres + 1));
	return t->nres;
}

int task_watch(struct task *t, struct port *port, lua_Integer index)
{
	struct watch *w;

	if (task_settled(t)) {
		observe(t);
		return port_post(port, index);
	}
	t->observed = 1;
	if (!t->watch0.port) {
		w = &t->watch0;
	} else {
		w = malloc(sizeof *w);
		if (!w)
			return -1;
		w->next = t->watches;
		t->watches = w;
	}
	w->port = port;
	w->index = index;
	port_ref(port);
	return 0;
}

static void post_watches(struct task *t)
{
	struct watch *w, *next;

	if (t->watch0.port) {
		if (port_post(t->watch0.port, t->watch0.index) < 0)
			log_error("task %lld: out of memory posting its completion",
			          (long long)t->id);
		port_unref(t->watch0.port);
		t->watch0.port = NULL;
	}
	for (w = t->watches; w; w = next) {
		next = w->next;
		if (port_post(w->port, w->index) < 0)
			log_error("task %lld: out of memory posting its completion",
			          (long long)t->id);
		port_unref(w->port);
		free(w);
	}
	t->watches = NULL;
	trace_unref(t->trace);
	t->trace = NULL;
}

/* Where a suspended task is, "file:line", for warnings. */
static void where(struct task *t, char *buf, size_t len)
{
	lua_Debug ar;

	snprintf(buf, len, t->co ? "?" : "not started");
	for (int level = 0; t->co && lua_getstack(t->co, level, &ar); level++) {
		if (lua_getinfo(t->co, "Sl", &ar) && ar.currentline > 0) {
			snprintf(buf, len, "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
}

static void report_failure(struct task *t, const char *why)
{
	lua_State *L = t->s->L;
	const char *msg, *tb;

	if (t->reported)
		return;
	t->reported = 1;
	push_self(L, t);
	task_push_error(L, -1);
	lua_remove(L, -2);
	lua_getfield(L, -1, "traceback");
	tb = lua_tostring(L, -1);
	msg = errval_tostring(L, -2);
	log_error("task %lld failed and %s: %s%s%s", (long long)t->id, why, msg, tb ? "\n" : "",
	          tb ? tb : "");
	lua_pop(L, 3);
}

/* The task finished: cancel children still running, report failed ones. */
static void reap_children(struct task *t)
{
	struct task *c, *next;
	char names[512], loc[128];
	size_t n = 0;
	int norphans = 0;

	names[0] = 0;
	for (c = t->child; c; c = next) {
		next = c->sib_next;
		if (!task_settled(c) && c->cancel_req) {
			/* cancelled on purpose and still unwinding: let it finish */
		} else if (!task_settled(c)) {
			norphans++;
			where(c, loc, sizeof loc);
			if (n < sizeof names - 1) {
				int w = snprintf(names + n, sizeof names - n, "%stask %lld (at %s)",
				                 norphans > 1 ? ", " : "", (long long)c->id, loc);
				if (w > 0)
					n += (size_t)w;
			}
			task_cancel(t->s->L, c, "parent finished without awaiting it");
		} else if (c->state == TASK_FAILED && !c->observed) {
			report_failure(c, "nobody awaited it");
		}
		unlink_child(c);
		maybe_release(c);
	}
	if (norphans)
		log_warn("task %lld finished with %d unawaited child task%s still running, "
		         "cancelled: %s",
		         (long long)t->id, norphans, norphans > 1 ? "s" : "", names);
}

/*
 * Move the outcome (t->nres values on the thread) into user value 1 of
 * the task (one value as it is, several in a table) and give the thread
 * back to the pool: a settled task keeps only what await needs.
 */
static void stash_outcome(struct task *t)
{
	struct sched *s = t->s;
	lua_State *L = s->L, *co = t->co;

	push_self(L, t);
	if (t->nres == 1) {
		lua_xmove(co, L, 1);
	} else if (t->nres == 0) {
		lua_pushnil(L);
	} else {
		lua_createtable(L, t->nres, 0);
		for (int i = t->nres; i >= 1; i--) {
			lua_xmove(co, L, 1);
			lua_rawseti(L, -2, i);
		}
	}
	lua_setiuservalue(L, -2, 1);
	lua_pop(L, 1);
	lua_settop(co, 0);
	t->co = NULL;
	sched_pool_put(s, co);
}

static void settle(struct task *t, enum task_state st)
{
	struct sched *s = t->s;
	struct task *a;

	if (t->cancel_req && st != TASK_CANCELLED) {
		/*
		 * However it ended, a cancelled task settles as cancelled. The
		 * error raised at its await point is kept (its traceback shows
		 * where it was waiting); a fresh one stands in otherwise.
		 */
		if (!(st == TASK_FAILED && strcmp(errval_code(t->co, 1), "cancelled") == 0)) {
			lua_settop(t->co, 0);
			push_self(t->co, t);
			lua_getiuservalue(t->co, -1, 2);
			errval_push(t->co, "cancelled", "%s",
			            lua_isstring(t->co, -1) ? lua_tostring(t->co, -1)
			                                    : "cancelled");
			lua_replace(t->co, 1);
			lua_settop(t->co, 1);
		}
		st = TASK_CANCELLED;
	}
	unwait(t); /* it can settle only while running: nothing should be registered */
	t->state = st;
	t->nres = lua_gettop(t->co);
	stash_outcome(t);
	s->stats.live--;
	if (st == TASK_DONE)
		s->stats.done++;
	else if (st == TASK_FAILED)
		s->stats.failed++;
	else
		s->stats.cancelled++;
	live_unlink(s, t);
	if (t->trace) {
		trace_close(t->trace, t->span,
		            st == TASK_DONE     ? "done"
		            : st == TASK_FAILED ? "failed"
		                                : "cancelled",
		            sched_now());
		trace_unref(t->trace);
		t->trace = NULL;
	}

	reap_children(t);
	while ((a = t->aw_head) != NULL) {
		t->observed = 1;
		task_wake(a, TASK_WAKE_SIGNAL);
		if (t->aw_head == a) /* not suspended: cannot happen, but never spin */
			aw_remove(t, a);
	}
	post_watches(t);

	if (st == TASK_FAILED && !t->observed) {
		if (!t->parent)
			report_failure(t, "nobody awaited it");
		else if (task_settled(t->parent))
			report_failure(t, "its parent had already finished");
	}
	/* keep an unobserved failure linked so the parent can report it */
	if (!(st == TASK_FAILED && !t->observed && t->parent && !task_settled(t->parent)))
		unlink_child(t);
	maybe_release(t);
}

/* The thread returned from task_body: [ok, results...] or [false, err]. */
static void settle_returned(struct task *t)
{
	lua_State *co = t->co;
	int n = lua_gettop(co);

	if (lua_toboolean(co, 1)) {
		lua_remove(co, 1);
		n--;
		if (n >= 2 && lua_isnil(co, 1) && !lua_isnil(co, 2)) {
			/* return nil, err: a failure */
			lua_settop(co, 2);
			lua_remove(co, 1);
			errval_wrap(co, 1);
			settle(t, TASK_FAILED);
			return;
		}
		settle(t, TASK_DONE);
		return;
	}
	lua_settop(co, 2);
	lua_remove(co, 1);
	errval_wrap(co, 1);
	settle(t, TASK_FAILED);
}

/*
 * End a thread that cannot continue (killed by the slice hook, an error
 * that escaped task_body, a bare coroutine.yield): close its pending
 * to-be-closed variables, then settle it failed with the error on top of
 * s->L.
 */
static void settle_killed(struct task *t)
{
	struct sched *s = t->s;
	lua_State *L = s->L;

	unwait(t);
	t->blocked = 0;
	t->oom = 0;
	lua_sethook(t->co, NULL, 0, 0);
	t->slice_start = sched_coarse_now(); /* a fresh slice for its close handlers */
	s->current = t;
	s->running = t->co;
	s->in_task = 1;
	sched_closethread(t->co, L);
	s->in_task = 0;
	s->current = NULL;
	s->running = NULL;
	lua_settop(t->co, 0);
	lua_xmove(L, t->co, 1);
	settle(t, TASK_FAILED);
}

static void resume(struct task *t, int nargs)
{
	struct sched *s = t->s;
	struct task *prev = s->current;
	lua_State *prev_running = s->running;
	int prev_in = s->in_task;
	int rc, nres;

	if (!prev)
		sched_tick(s);
	s->current = t;
	s->running = t->co;
	s->in_task = 1;
	t->state = TASK_RUNNING;
	t->slice_start = sched_coarse_now();
	if (!t->started)
		t->started = t->slice_start;
	s->stats.resumes++;
	rc = lua_resume(t->co, prev ? prev->co : NULL, nargs, &nres);
	s->in_task = 0;
	s->current = NULL;
	s->running = NULL;
	if (prev) /* the child's time is not the parent's: it was accounted to the child */
		prev->slice_start += sched_coarse_now() - t->slice_start;
	if (t->blocked || t->oom) {
		/* killed, or flagged and ended before the hook could stop it */
		char msg[256];
		if (t->oom)
			errval_push(s->L, "out_of_memory", "task %lld: %s", (long long)t->id,
			            sched_oom_message(s, msg, sizeof msg));
		else
			errval_push(s->L, "blocked_loop",
			            "task %lld ran for more than %g ms without suspending",
			            (long long)t->id, s->cfg.max_slice_ms);
		errval_traceback(s->L, -1, t->co, 0);
		if (rc != LUA_OK && rc != LUA_YIELD)
			lua_pop(t->co, 1); /* the error that escaped, replaced by ours */
		settle_killed(t);
	} else if (rc == LUA_YIELD && t->wait == TASK_WAIT_NONE && !t->queued) {
		errval_push(s->L, "invalid",
		            "task %lld yielded with coroutine.yield; "
		            "a task suspends only through async calls",
		            (long long)t->id);
		errval_traceback(s->L, -1, t->co, 0);
		settle_killed(t);
	} else if (rc == LUA_YIELD) {
		t->state = TASK_SUSPENDED;
	} else if (rc == LUA_OK) {
		settle_returned(t);
	} else {
		/* an error escaped task_body itself (memory, or in the handler) */
		lua_xmove(t->co, s->L, 1);
		errval_wrap(s->L, -1);
		settle_killed(t);
	}
	s->current = prev;
	s->running = prev_running;
	s->in_task = prev_in;
	if (!prev)
		sched_collect_soon(s); /* a refusal in this resume: give the memory back */
}

void task_resume(struct task *t)
{
	if (!t->co) {
		/* a deferred task starts (also when cancelled: it then fails at
		 * its first suspension, so its own code can account for it) */
		t->wake = TASK_WAKE_NONE;
		resume(t, attach_thread(t));
		return;
	}
	resume(t, 0);
}

struct task *task_spawn(lua_State *L, int nargs, struct task *parent, double deadline,
                        unsigned flags)
{
	struct sched *s = sched_of(L);
	int deferred = (flags & TASK_SPAWN_DEFERRED) != 0;
	struct trace *tr = parent ? parent->trace : s->spawn_trace;
	char where[80] = "", name[48] = "task";
	struct task *t;
	lua_State *co = NULL;

	luaL_checkstack(L, 4, NULL);
	if (s->closing)
		luaL_error(L, "async: the runtime is shutting down");
	if (nargs > 100000) /* a thread's stack is bounded (LUAI_MAXSTACK) */
		luaL_error(L, "async.spawn: too many arguments (%d)", nargs);
	if (tr && parent) /* a root span is the job's run function: "run" */
		tasklabel_of(L, -(nargs + 1), s->labels, name, sizeof name, where, sizeof where);
	else if (tr) {
		lua_Debug ar;
		lua_pushvalue(L, -(nargs + 1));
		if (lua_getinfo(L, ">S", &ar))
			snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.linedefined);
	}
	t = lua_newuserdatauv(L, sizeof *t, 2); /* fn args... ud */
	memset(t, 0, sizeof *t);
	t->magic = TASK_MAGIC;
	t->ref = LUA_NOREF;
	t->state = TASK_DONE; /* inert until fully built */
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->task_mt_ref);
	lua_setmetatable(L, -2);
	lua_rotate(L, -(nargs + 2), 1); /* ud fn args... */
	if (deferred) {
		/* no thread yet: fn and args wait in a table (user value 1) */
		int tbl;
		lua_createtable(L, nargs + 1, 0);
		lua_insert(L, -(nargs + 2)); /* ud tbl fn args... */
		tbl = lua_absindex(L, -(nargs + 2));
		for (int i = nargs + 1; i >= 1; i--)
			lua_rawseti(L, tbl, i);
		lua_setiuservalue(L, -2, 1); /* ud */
		lua_pushvalue(L, -1);
		t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	} else {
		co = sched_pool_get(s, L); /* ud fn args... co */
		if (!lua_checkstack(co, nargs + 2))
			luaL_error(L, "async.spawn: too many arguments (%d)", nargs);
		*(struct task **)lua_getextraspace(co) = t;
		lua_pushvalue(L, -(nargs + 3));
		lua_insert(L, -2);                       /* ud fn args... ud co */
		lua_setiuservalue(L, -2, 1);             /* ud fn args... ud */
		t->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* ud fn args... */
		lua_rawgeti(co, LUA_REGISTRYINDEX, s->body_ref);
		lua_xmove(L, co, nargs + 1); /* co: body fn args... */
	}

	/* from here on nothing raises */
	t->s = s;
	t->co = co;
	t->id = ++s->next_id;
	t->state = TASK_RUNNING;
	t->deadline = deadline;
	t->grace_until = HUGE_VAL;
	t->observed = (flags & TASK_SPAWN_OBSERVED) != 0;
	evtimer_assign(&t->timer, s->base, timer_cb, t);
	if (parent) {
		link_child(parent, t);
		if (parent->deadline < t->deadline)
			t->deadline = parent->deadline;
	}
	live_link(s, t);
	if (tr) {
		t->trace = tr;
		trace_ref(tr);
		t->span = trace_open(tr, t->id, parent ? parent->id : 0, parent ? name : "run", where,
		                     sched_now());
	}
	s->stats.spawned++;
	s->stats.live++;
	if (deferred) {
		t->nres = nargs + 1; /* until it starts: the count of fn and args */
		t->state = TASK_SUSPENDED;
		t->wait = TASK_WAIT_START;
	} else {
		resume(t, nargs + 1);
	}
	return t;
}

void task_set_name(struct task *t, const char *name)
{
	if (t->trace)
		trace_rename(t->trace, t->span, name);
}

int task_start(struct task *t)
{
	if (t->co || t->state != TASK_SUSPENDED || t->wait != TASK_WAIT_START || t->queued)
		return 0;
	task_wake(t, TASK_WAKE_SIGNAL);
	return 1;
}

/*
 * Give a deferred task its thread: body, fn and args from user value 1.
 * Returns the count of values for lua_resume.
 */
static int attach_thread(struct task *t)
{
	struct sched *s = t->s;
	lua_State *L = s->L, *co;
	int n = t->nres;

	push_self(L, t);
	co = sched_pool_get(s, L); /* ud co */
	lua_checkstack(co, n + 2); /* n was bounded when it was deferred */
	*(struct task **)lua_getextraspace(co) = t;
	lua_rawgeti(co, LUA_REGISTRYINDEX, s->body_ref);
	lua_getiuservalue(L, -2, 1); /* ud co tbl */
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		lua_xmove(L, co, 1);
	}
	lua_pop(L, 1);
	lua_setiuservalue(L, -2, 1); /* the thread replaces the table */
	lua_pop(L, 1);
	t->co = co;
	t->nres = 0;
	return n;
}

/*
 * Tasks have no __gc (a finalizer per task doubles what the collector does
 * for each one); a settled task holds nothing outside Lua's heap, and the
 * unsettled ones are released here by sched_free before the state closes.
 */
void task_release_resources(struct task *t)
{
	struct watch *w, *next;

	if (t->timer_on) {
		evtimer_del(&t->timer);
		t->timer_on = 0;
	}
	if (t->watch0.port)
		port_unref(t->watch0.port);
	t->watch0.port = NULL;
	for (w = t->watches; w; w = next) {
		next = w->next;
		port_unref(w->port);
		free(w);
	}
	t->watches = NULL;
	trace_unref(t->trace);
	t->trace = NULL;
}

void task_register(lua_State *L, const luaL_Reg *methods, lua_CFunction index)
{
	struct sched *s = sched_of(L);

	if (luaL_newmetatable(L, TASK_MT)) {
		lua_newtable(L);
		luaL_setfuncs(L, methods, 0);
		lua_pushcclosure(L, index, 1); /* methods table as upvalue */
		lua_setfield(L, -2, "__index");
	}
	if (s->task_mt_ref == LUA_NOREF)
		s->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	else
		lua_pop(L, 1);
}
