/*
 * task-settle.c: how a task ends and who learns of it: its outcome,
 * settling (awaiters, watching ports, trace span, statistics), orphans
 * and failures nobody observed.
 *
 * When the thread returns or dies, settle() fixes the outcome on the
 * thread's stack, wakes awaiters, posts to watching ports, cancels
 * children it left running (orphans), reports failures nobody observed,
 * and releases the anchor.
 *
 * Invariants: a settled task keeps only what await needs (user value 1;
 * the thread goes back to the pool); an unobserved failure stays linked
 * under its unsettled parent so the parent reports it when it ends, and a
 * failure is logged at most once (t->reported).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "errval.h"
#include "log.h"
#include "port.h"
#include "sched.h"
#include "task-int.h"
#include "task.h"
#include "trace.h"

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
		task_unlink_child(t);
		task_maybe_release(t);
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

size_t task_name_orphan(char *names, size_t len, size_t n, int k, struct task *c)
{
	char loc[128];
	int w;

	if (n >= len - 1)
		return n;
	where(c, loc, sizeof loc);
	w = snprintf(names + n, len - n, "%stask %lld (at %s)", k > 1 ? ", " : "", (long long)c->id,
	             loc);
	return w > 0 ? n + (size_t)w : n;
}

void task_report_failure(struct task *t, const char *why)
{
	lua_State *L = t->s->L;
	const char *msg, *tb;

	if (t->reported)
		return;
	t->reported = 1;
	task_push_self(L, t);
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
	char names[512];
	size_t n = 0;
	int norphans = 0;

	names[0] = 0;
	for (c = t->child; c; c = next) {
		next = c->sib_next;
		if (!task_settled(c) && c->cancel_req) {
			/* cancelled on purpose and still unwinding: let it finish */
		} else if (!task_settled(c)) {
			n = task_name_orphan(names, sizeof names, n, ++norphans, c);
			task_cancel(t->s->L, c, "parent finished without awaiting it");
		} else if (c->state == TASK_FAILED && !c->observed) {
			task_report_failure(c, "nobody awaited it");
		}
		task_unlink_child(c);
		task_maybe_release(c);
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

	task_push_self(L, t);
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
			task_push_cancel_error(t->co, t);
		}
		st = TASK_CANCELLED;
	}
	task_wait_undo(t); /* it can settle only while running: nothing should be registered */
	task_scope_free(t);
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
	task_live_unlink(s, t);
	if (t->trace) {
		trace_close(t->trace, t->span,
		            st == TASK_DONE     ? "done"
		            : st == TASK_FAILED ? "failed"
		            : t->parked         ? "waiting" /* its job parked: it runs again */
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
			task_wait_aw_remove(t, a);
	}
	post_watches(t);

	if (st == TASK_FAILED && !t->observed) {
		if (!t->parent)
			task_report_failure(t, "nobody awaited it");
		else if (task_settled(t->parent))
			task_report_failure(t, "its parent had already finished");
	}
	/* keep an unobserved failure linked so the parent can report it */
	if (!(st == TASK_FAILED && !t->observed && t->parent && !task_settled(t->parent)))
		task_unlink_child(t);
	task_maybe_release(t);
}

/* The thread returned from task_body: [ok, results...] or [false, err]. */
void task_settle_returned(struct task *t)
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
void task_settle_killed(struct task *t)
{
	struct sched *s = t->s;
	lua_State *L = s->L;

	task_wait_undo(t);
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
