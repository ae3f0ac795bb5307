/*
 * task.c: spawning, starting and resuming tasks; the tree of parents and
 * children, the scheduler's list of live tasks, and the registry anchor.
 *
 * Life of a task: task_spawn creates the thread, links the task under its
 * parent and resumes it at once (it runs until its first suspension).
 * task_suspend records what it waits for and yields; task_wake, called by
 * whatever it waited for (or its timer, or a cancel), puts it on the run
 * queue; its continuation then calls task_resumed, which raises the
 * cancellation error if that is why it woke (task-wait.c). When the thread
 * returns or dies, resume hands it to task-settle.c, which fixes the
 * outcome, wakes awaiters, posts to watching ports, cancels orphans,
 * reports failures nobody observed, and releases the anchor.
 *
 * Invariants: a task is anchored (t->ref) while it is unsettled or still
 * linked under its parent, and the anchor is released once
 * (task_maybe_release); a deferred task has no thread until it starts, and
 * keeps its function and arguments in user value 1 meanwhile.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "errval.h"
#include "port.h"
#include "sched.h"
#include "task-int.h"
#include "task.h"
#include "tasklabel.h"
#include "trace.h"

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
void task_push_self(lua_State *L, struct task *t)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
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

void task_unlink_child(struct task *t)
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

void task_live_unlink(struct sched *s, struct task *t)
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
void task_maybe_release(struct task *t)
{
	if (task_settled(t) && !t->parent && t->ref != LUA_NOREF) {
		luaL_unref(t->s->L, LUA_REGISTRYINDEX, t->ref);
		t->ref = LUA_NOREF;
	}
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
		task_settle_killed(t);
	} else if (rc == LUA_YIELD && t->wait == TASK_WAIT_NONE && !t->queued) {
		errval_push(s->L, "invalid",
		            "task %lld yielded with coroutine.yield; "
		            "a task suspends only through async calls",
		            (long long)t->id);
		errval_traceback(s->L, -1, t->co, 0);
		task_settle_killed(t);
	} else if (rc == LUA_YIELD) {
		t->state = TASK_SUSPENDED;
	} else if (rc == LUA_OK) {
		task_settle_returned(t);
	} else {
		/* an error escaped task_body itself (memory, or in the handler) */
		lua_xmove(t->co, s->L, 1);
		errval_wrap(s->L, -1);
		task_settle_killed(t);
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

/* A task's timer in virtual time fired (vclock.h): as its libevent timer would. */
static void task_vt_fire(void *arg)
{
	task_wait_timer_cb(-1, 0, arg);
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
	evtimer_assign(&t->timer, s->base, task_wait_timer_cb, t);
	sched_vt_init(&t->vt, task_vt_fire, t);
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

	task_push_self(L, t);
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

	task_timer_stop(t);
	task_scope_free(t);
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
