/*
 * jobs-run.c: running one attempt of a job and recording its outcome.
 *
 * An attempt: jobrun.lua's runner in a detached task with the job's trace;
 * finish() (called exactly once by the runner) turns the outcome into a
 * FINISH fenced by the lease: succeeded, failed (retry at now + backoff *
 * 2^(attempt-1), +-25% jitter), dead (attempts spent) or cancelled (by
 * request); a shutdown cancellation REQUEUEs instead. A result over
 * max_result_bytes is not stored: the attempt fails with too_large. If the
 * store cannot record the outcome (a full disk), the same request is tried
 * again every second; the run stays in `runs` until it is durable, while
 * its slot is freed as soon as the attempt has ended.
 *
 * The runner is loaded once per engine (jobs_run_load) with its C
 * primitives: finish, make_log, db, trace.open/close, park and cancel.
 *
 * A durable wait that must wait parks the run (CANCEL_PARK): its tree is
 * unwound and finish() records the job as waiting instead of an outcome.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "clip.h"
#include "db.h"
#include "enqueue-opts.h"
#include "errval.h"
#include "jobs.h"
#include "jobs-int.h"
#include "json.h"
#include "log.h"
#include "humanfmt.h"
#include "modules.h"
#include "sched.h"
#include "scripts.h"
#include "store.h"
#include "task.h"
#include "trace.h"
#include "vclock.h"

static double jitter(struct jobs *j)
{
	/* xorshift64: the spread of retries, not security */
	j->rng ^= j->rng << 13;
	j->rng ^= j->rng >> 7;
	j->rng ^= j->rng << 17;
	return 0.75 + 0.5 * (double)(j->rng >> 11) / 9007199254740992.0;
}

void jobs_run_free(struct run *run)
{
	struct jobs *j = run->j;

	if (run->prev)
		run->prev->next = run->next;
	else if (j->runs == run)
		j->runs = run->next;
	if (run->next)
		run->next->prev = run->prev;
	j->nruns--;
	trace_unref(run->trace);
	jobs_progress_free(run);
	sched_timer_free(run->retry);
	store_req_free(run->pending);
	free(run->park_for);
	free(run->name);
	free(run);
}

static void finish_answered(struct store_req *r);

static void cancel_parked_answered(struct store_req *r)
{
	if (r->rc)
		log_error("job %lld: cancelling it once parked failed: %s", (long long)r->id,
		          r->err.msg);
	else if (r->changed)
		jobs_kick(r->arg); /* it wakes, to be cancelled at its wait */
	store_req_free(r);
}

/* `cancel` came while job id parked: now that it waits, cancel it (STORE_CANCEL). */
static void cancel_parked(struct jobs *j, int64_t id)
{
	struct store_req *r = store_req_new(STORE_CANCEL);

	if (!r) {
		log_error("job %lld: out of memory; cancel it again", (long long)id);
		return;
	}
	r->id = id;
	r->now = store_now();
	r->done = cancel_parked_answered;
	r->arg = j;
	store_submit(j->st, r);
}

static void retry_cb(void *arg)
{
	struct run *run = arg;
	struct store_req *r = run->pending;

	run->pending = NULL;
	r->rc = 0;
	memset(&r->err, 0, sizeof r->err);
	store_submit(run->j->st, r);
}

static void finish_answered(struct store_req *r)
{
	struct run *run = r->arg;
	struct jobs *j = run->j;
	struct slot *sl;

	if (r->rc && !j->closing && strcmp(r->err.code, "stopping") != 0) {
		/* not durable: keep the outcome and try again */
		log_error("job %lld: recording its outcome failed, trying again in %d ms: %s",
		          (long long)run->id, RETRY_STORE_MS, r->err.msg);
		run->pending = r;
		if (!run->retry)
			run->retry = sched_timer_new(j->env.s, retry_cb, run);
		if (run->retry)
			sched_timer_add(run->retry, RETRY_STORE_MS);
		return;
	}
	if (r->rc == 0 && !r->changed)
		log_warn("job %lld: its lease was taken over; this outcome was not recorded",
		         (long long)run->id);
	if (r->rc == 0 && r->changed && r->op == STORE_FINISH && strcmp(r->name, "waiting") == 0) {
		j->parked++;
		if (run->cancel_parked)
			cancel_parked(j, run->id);
		/* ready already (a signal came while it ran) or soon: its claim sees it */
		jobs_wake_name(j, run->name);
	} else if (r->rc == 0 && r->changed && r->op == STORE_FINISH) {
		if (strcmp(r->name, "succeeded") == 0)
			j->completed++;
		else if (strcmp(r->name, "failed") == 0)
			j->retried++;
		else if (strcmp(r->name, "dead") == 0)
			j->dead++;
		else
			j->cancelled++;
		if (strcmp(r->name, "failed") == 0 || strcmp(r->name, "dead") == 0)
			j->failed++;
		jobs_record_latency(j, run);
	} else if (r->rc == 0 && r->changed) {
		j->requeued++;
	}
	sl = jobs_slot_get(j, run->name);
	if (sl && r->rc == 0 && r->changed)
		jobs_slot_count(sl, r, sched_now() - run->started);
	/* a retry: its claim finds the retry's time and arms the timer */
	if (sl && r->rc == 0 && r->changed && strcmp(r->name, "failed") == 0)
		jobs_wake_name(j, run->name);
	if (r->rc == 0 && r->changed && r->op == STORE_FINISH && jobs_final_state(r->name))
		jobs_wait_wake(j, run->id);
	jobs_deps_changed(j, r);
	store_req_free(r);
	jobs_run_free(run);
}

/* "WHAT is N bytes (H), over LIMIT_NAME = L" into buf. */
static const char *too_large_msg(char *buf, size_t len, const char *what, size_t n, size_t limit)
{
	char size[32];

	snprintf(buf, len, "%s is %zu bytes (%s) of JSON, over max_result_bytes = %zu", what, n,
	         humanfmt_bytes(n, size, sizeof size), limit);
	return buf;
}

/* Lua: finish(token, value, err), exactly once per attempt (jobrun.lua). */
static int run_finish(lua_State *L)
{
	struct run *run = lua_touserdata(L, 1);
	struct jobs *j = run->j;
	struct store_req *r;
	struct slot *sl;
	char msg[256];
	const char *state;
	char *text = NULL;

	jobs_progress_flush(run); /* submitted first: the outcome follows it */
	run->ended = 1;
	r = store_req_new(run->cancel == CANCEL_SHUTDOWN ? STORE_REQUEUE : STORE_FINISH);
	if (!r)
		return luaL_error(L, "out of memory");
	r->flag = run->resumed; /* a REQUEUE of a resumed run leaves it waiting */
	if (run->cancel == CANCEL_PARK) {
		/* parked at a durable wait: the job waits, whatever the unwinding returned */
		state = "waiting";
		r->seq = run->park_seq;
		r->key = run->park_for;
		run->park_for = NULL;
		r->run_at = run->park_until;
	} else if (lua_isnoneornil(L, 3)) {
		json_t *v =
		    lua_isnoneornil(L, 2) ? json_null() : json_from_lua(L, 2, msg, sizeof msg);
		if (v) {
			state = "succeeded";
			text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			json_decref(v);
			if (text && strlen(text) > j->env.max_result_bytes) {
				/* stored, it would be in every view of the job for a week */
				char size[32];
				size_t len = strlen(text);
				json_t *e =
				    json_pack("{ss ss}", "code", "too_large", "message",
				              too_large_msg(msg, sizeof msg, "the job's result",
				                            len, j->env.max_result_bytes));
				free(text);
				text = e ? json_dumps(e, JSON_COMPACT) : NULL;
				json_decref(e);
				state = run->attempt < run->max_attempts ? "failed" : "dead";
				log_warn("job %lld %s attempt %lld/%lld failed (%s): too_large: "
				         "result of %s",
				         (long long)run->id, run->name, (long long)run->attempt,
				         (long long)run->max_attempts, state,
				         humanfmt_bytes(len, size, sizeof size));
			}
		} else {
			json_t *e = json_pack("{ss ss+}", "code", "invalid", "message",
			                      "the job's result is not JSON: ", msg);
			state = run->attempt < run->max_attempts ? "failed" : "dead";
			text = e ? json_dumps(e, JSON_COMPACT) : NULL;
			json_decref(e);
		}
	} else {
		const char *code;
		json_t *e;
		size_t mlen = 0;
		const char *m;
		errval_wrap(L, 3);
		code = errval_code(L, 3);
		lua_getfield(L, 3, "message");
		m = lua_isstring(L, -1) ? lua_tolstring(L, -1, &mlen) : "failed";
		if (mlen > JOBS_ERROR_MESSAGE_MAX) {
			/* error(string.rep("x", 1e8)) must not be stored whole either */
			json_t *cut = clip_preview(m, mlen, JOBS_ERROR_MESSAGE_MAX);
			e = json_pack("{ss ss+ sI}", "code", code, "message",
			              cut ? json_string_value(cut) : "", " [message truncated]",
			              "message_bytes", (json_int_t)mlen);
			json_decref(cut);
		} else {
			e = json_pack("{ss ss}", "code", code, "message", m);
		}
		lua_pop(L, 1);
		if (run->cancel == CANCEL_REQUEST && strcmp(code, "cancelled") == 0)
			state = "cancelled";
		else if (run->attempt < run->max_attempts)
			state = "failed";
		else
			state = "dead";
		text = e ? json_dumps(e, JSON_COMPACT) : NULL;
		json_decref(e);
		if (strcmp(state, "cancelled") != 0 && run->cancel != CANCEL_SHUTDOWN)
			log_warn("job %lld %s attempt %lld/%lld failed (%s): %s",
			         (long long)run->id, run->name, (long long)run->attempt,
			         (long long)run->max_attempts, state, errval_tostring(L, 3));
	}
	r->id = run->id;
	r->lease = run->lease;
	r->now = store_now();
	r->n = run->attempt;
	r->text = text;
	r->name = strdup(state);
	if (strcmp(state, "failed") == 0) {
		double delay = (double)run->backoff_ms * pow(2.0, (double)(run->attempt - 1));

		/* doubling outgrows int64 after ~50 attempts: no retry waits over 10 years */
		delay *= jitter(j);
		r->run_at = r->now + (delay < (double)ENQUEUE_MAX_DELAY_MS ? (int64_t)delay
		                                                           : ENQUEUE_MAX_DELAY_MS);
	}
	if (run->trace) {
		/* the root span ends with the attempt (its task is still unwinding) */
		trace_close(run->trace, 0,
		            strcmp(state, "succeeded") == 0   ? "done"
		            : strcmp(state, "cancelled") == 0 ? "cancelled"
		            : strcmp(state, "waiting") == 0   ? "waiting"
		                                              : "failed",
		            sched_now());
		r->text2 = trace_json(run->trace, run->t0_offset, run->attempt, sched_now());
	}
	r->done = finish_answered;
	r->arg = run;
	if (run->root_ref != LUA_NOREF) {
		luaL_unref(L, LUA_REGISTRYINDEX, run->root_ref);
		run->root_ref = LUA_NOREF;
	}
	run->root = NULL;
	store_submit(j->st, r);
	/*
	 * The attempt has ended: its slot is free now, not when the outcome is
	 * durable, so the next claim travels with this FINISH (the store runs
	 * them in order) instead of waiting a commit for it. The run stays in
	 * `runs` until the outcome is durable (jobs_running, the drain).
	 */
	sl = jobs_slot_get(j, run->name);
	if (sl)
		sl->running--;
	if (scripts_find(j->env.scripts, run->name) &&
	    scripts_find(j->env.scripts, run->name)->nlimits)
		jobs_wake_name(j,
		               run->name); /* its keys have room again: claim past an idle slot */
	else
		jobs_dispatch_soon(j);
	return 0;
}

/*
 * Protected: spawn the runner for run. Stack: run (light), job args JSON
 * (light), script (light), timeout, journaled (does the job have steps?),
 * wait_seq (the step it parked at last, 0 none).
 */
static int spawn_run(lua_State *L)
{
	struct run *run = lua_touserdata(L, 1);
	const char *args = lua_touserdata(L, 2);
	const struct script *s = lua_touserdata(L, 3);
	double timeout = lua_tonumber(L, 4);
	int journaled = lua_toboolean(L, 5);
	lua_Integer wait_seq = lua_tointeger(L, 6);
	struct jobs *j = run->j;
	json_t *v = NULL;
	struct task *t;
	char msg[256];

	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, j->runner_ref);
	scripts_push_job(j->env.scripts, s);
	lua_pushstring(L, run->name);
	lua_pushinteger(L, run->id);
	lua_pushinteger(L, run->attempt);
	if (args && !(v = json_loads(args, JSON_DECODE_ANY, NULL)))
		return luaL_error(L, "the job's args are not valid JSON");
	if (!v || json_is_null(v))
		lua_pushnil(L);
	else if (json_push(L, v, msg, sizeof msg) < 0) {
		json_decref(v);
		return luaL_error(L, "args: %s", msg);
	}
	json_decref(v);
	lua_pushnumber(L, timeout);
	lua_pushlightuserdata(L, run);
	lua_pushboolean(L, journaled);
	lua_pushinteger(L, (lua_Integer)j->env.max_result_bytes); /* bound of a step's journal */
	lua_pushinteger(L, wait_seq); /* where it parked last: a step there is not its wait */
	lua_pushinteger(L, (lua_Integer)run->serial); /* how park() and cancel() name it */
	lua_pushinteger(L, run->lease);               /* a wait is fenced by it */
	j->env.s->spawn_trace = run->trace;
	t = task_spawn(L, 12, NULL, HUGE_VAL, TASK_SPAWN_OBSERVED);
	j->env.s->spawn_trace = NULL;
	if (run->trace && run->trace->n > 0)
		snprintf(run->trace->spans[0].where, sizeof run->trace->spans[0].where, "%s.lua",
		         run->name);
	if (!task_settled(t)) {
		run->root = t;
		run->root_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	return 0;
}

/* End an attempt that never started, with an error {code, message}. */
static void finish_now(lua_State *L, struct run *run, const char *code, const char *msg)
{
	lua_pushcfunction(L, run_finish);
	lua_pushlightuserdata(L, run);
	lua_pushnil(L);
	errval_push(L, code, "%s", msg);
	if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
		log_error("job %lld: %s", (long long)run->id, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

void jobs_run_start(struct jobs *j, const struct store_job *job)
{
	const struct script *s = scripts_find(j->env.scripts, job->name);
	struct slot *sl = jobs_slot_get(j, job->name);
	struct run *run = calloc(1, sizeof *run);
	lua_State *L = j->env.s->L;

	if (!run || !sl || !(run->name = strdup(job->name))) {
		free(run);
		log_error("job %lld: out of memory; it runs again after a restart",
		          (long long)job->id);
		return;
	}
	run->j = j;
	run->id = job->id;
	run->lease = job->lease;
	run->attempt = job->attempt;
	run->max_attempts = job->max_attempts;
	run->backoff_ms = job->backoff_ms;
	run->root_ref = LUA_NOREF;
	run->started = sched_now();
	run->started_at = job->started_at;
	run->run_at = job->run_at;
	run->resumed = job->resumed;
	run->serial = ++j->next_serial;
	run->trace = trace_new(run->started);
	run->t0_offset = (double)(job->started_at - job->created_at);
	run->next = j->runs;
	if (j->runs)
		j->runs->prev = run;
	j->runs = run;
	j->nruns++;
	sl->running++;
	if (j->draining || j->closing) {
		run->cancel = CANCEL_SHUTDOWN; /* claimed as the drain began: give it back */
		finish_now(L, run, "cancelled", "the daemon is stopping");
		return;
	}
	if (!s || !s->version) {
		finish_now(L, run, "no_such_script", "no loaded script");
		return;
	}
	lua_pushcfunction(L, spawn_run);
	lua_pushlightuserdata(L, run);
	lua_pushlightuserdata(L, job->args);
	lua_pushlightuserdata(L, (void *)s);
	lua_pushnumber(L, job->timeout_ms ? (double)job->timeout_ms : s->timeout_ms);
	lua_pushboolean(L, job->has_steps);
	lua_pushinteger(L, job->wait_seq);
	if (lua_pcall(L, 6, 0, 0) != LUA_OK) {
		/* it never ran: record the reason as a failed attempt */
		char msg[256];
		snprintf(msg, sizeof msg, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		finish_now(L, run, "invalid", msg);
	}
}

int jobs_cancel_running(struct jobs *j, int64_t id)
{
	for (struct run *run = j->runs; run; run = run->next)
		if (run->id == id && run->cancel == CANCEL_PARK) {
			/* it is parking: once it waits, the waiting job is cancelled */
			run->cancel_parked = 1;
			return 1;
		} else if (run->id == id && run->root) {
			if (run->cancel == CANCEL_NONE)
				run->cancel = CANCEL_REQUEST;
			task_cancel(j->env.s->L, run->root, "cancelled by request");
			return 1;
		} else if (run->id == id) {
			return 1; /* finishing: its outcome is being recorded */
		}
	return 0;
}

void jobs_cancel_all(struct jobs *j)
{
	for (struct run *run = j->runs; run; run = run->next) {
		if (run->cancel != CANCEL_PARK) /* parking is as good as a requeue */
			run->cancel = CANCEL_SHUTDOWN;
		if (run->root)
			task_cancel(j->env.s->L, run->root, "the daemon is stopping");
	}
}

/* ---- the runner ------------------------------------------------------------------------ */

struct run *jobs_run_of(struct jobs *j, uint64_t serial)
{
	for (struct run *run = j->runs; run; run = run->next)
		if (run->serial == serial)
			return run;
	return NULL;
}

/* The run serial names in j (upvalue 1), or NULL when it has ended. */
static struct run *run_of(lua_State *L, int idx)
{
	struct jobs *j = lua_touserdata(L, lua_upvalueindex(1));

	return jobs_run_of(j, (uint64_t)luaL_checkinteger(L, idx));
}

/*
 * Lua: park(serial, seq, signal_name|nil, deadline): the attempt parks at
 * the durable wait of step seq. Its tree is cancelled (task_park); the
 * runner's finish() then records the job as waiting, and the job runs
 * again from its journal when woken. A run cancelled already (by request,
 * by the shutdown), or over, keeps its outcome.
 */
static int run_park(lua_State *L)
{
	struct run *run = run_of(L, 1);
	lua_Integer seq = luaL_checkinteger(L, 2);
	const char *key = luaL_optstring(L, 3, NULL);
	lua_Integer until = luaL_checkinteger(L, 4);

	if (!run || !run->root || run->cancel != CANCEL_NONE)
		return 0;
	if (key && !(run->park_for = strdup(key)))
		return luaL_error(L, "out of memory");
	run->cancel = CANCEL_PARK;
	run->park_seq = seq;
	run->park_until = until;
	task_park(L, run->root, "the job parked at a durable wait; it runs again when woken");
	return 0;
}

/* Lua: cancel(serial): `cancel` reached the job while it waited: it is cancelled at the wait. */
static int run_cancel(lua_State *L)
{
	struct run *run = run_of(L, 1);

	if (!run || !run->root)
		return 0;
	if (run->cancel == CANCEL_NONE)
		run->cancel = CANCEL_REQUEST;
	task_cancel(L, run->root, "cancelled by request");
	return 0;
}

/* Lua: make_log(name) -> the log table tagged with the job's name. */
static int run_make_log(lua_State *L)
{
	luaL_checkstring(L, 1);
	lua_settop(L, 1);
	log_push_module(L);
	return 1;
}

/* Lua: trace.open(name, level) -> span index or -1 (outside a traced task). */
static int trace_open_l(lua_State *L)
{
	struct task *t = task_current(L);
	const char *name = luaL_checkstring(L, 1);
	lua_Debug ar;
	char where[80] = "";

	if (!t || !t->trace) {
		lua_pushinteger(L, -1);
		return 1;
	}
	if (lua_getstack(L, (int)luaL_optinteger(L, 2, 1), &ar) && lua_getinfo(L, "Sl", &ar))
		snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
	lua_pushinteger(L, trace_open(t->trace, ++t->s->next_id, t->id, name, where, sched_now()));
	return 1;
}

/* Lua: trace.close(span, outcome): "done", "waiting" (a durable wait parked), "cancelled", else
 * failed */
static int trace_close_l(lua_State *L)
{
	struct task *t = task_current(L);
	lua_Integer i = luaL_checkinteger(L, 1);
	const char *o = luaL_checkstring(L, 2);

	if (t && t->trace)
		trace_close(t->trace, (int)i,
		            strcmp(o, "done") == 0        ? "done"
		            : strcmp(o, "waiting") == 0   ? "waiting"
		            : strcmp(o, "cancelled") == 0 ? "cancelled"
		                                          : "failed",
		            sched_now());
	return 0;
}

#include "jobrun_lua.h"

int jobs_run_load(lua_State *L)
{
	struct jobs *j = lua_touserdata(L, 1);

	static const luaL_Reg tr[] = {
	    {"open", trace_open_l}, {"close", trace_close_l}, {NULL, NULL}};

	if (luaL_loadbufferx(L, (const char *)jobrun_lua, jobrun_lua_len, "=jobrun.lua", "t") !=
	    LUA_OK)
		return lua_error(L);
	lua_pushcfunction(L, run_finish);
	lua_pushcfunction(L, run_make_log);
	db_open_internal(L);
	luaL_newlib(L, tr);
	lua_pushlightuserdata(L, j);
	lua_pushcclosure(L, run_park, 1);
	lua_pushlightuserdata(L, j);
	lua_pushcclosure(L, run_cancel, 1);
	lua_pushlightuserdata(L, j);
	lua_pushcclosure(L, jobs_progress_l, 1);
	/* the run is a task of its own: timeout_task, not async.timeout's scope */
	lua_getfield(L, LUA_REGISTRYINDEX, ASYNC_PRIVATE);
	lua_getfield(L, -1, "timeout_task");
	lua_remove(L, -2);
	lua_call(L, 8, 1);
	return 1;
}
