/*
 * jobs.c: the job engine (see jobs.h): its life (new, start, reload,
 * drain, close, free), enqueues, pauses, signals and the pruning of old
 * jobs.
 *
 * Claiming is jobs-claim.c's, running an attempt and recording its outcome
 * jobs-run.c's, the schedules jobs-schedule.c's, waiters jobs-wait.c's,
 * the JSON views jobs-json.c's, the figures jobs-stats.c's; what the files
 * share is in jobs-int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "db.h"
#include "enqueue-opts.h"
#include "jobs.h"
#include "jobs-int.h"
#include "log.h"
#include "humanfmt.h"
#include "sched.h"
#include "scripts.h"
#include "store.h"
#include "vclock.h"

#define PRUNE_EVERY_MS 3600000.0

/* ---- helpers ----------------------------------------------------------------------- */

/*
 * A script's backoff as the int64 ms a job row keeps. scripts-validate.c
 * accepts any number >= 0 (1e300, inf): bounded here, where it becomes an
 * integer, since a double out of int64's range cast to it is undefined.
 */
int64_t jobs_backoff_ms(const struct script *s)
{
	return s->backoff_ms < (double)ENQUEUE_MAX_DELAY_MS ? (int64_t)s->backoff_ms
	                                                    : ENQUEUE_MAX_DELAY_MS;
}

struct timeval jobs_tv_ms(double ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1000) * 1000);
	return tv;
}

struct slot *jobs_slot_get(struct jobs *j, const char *name)
{
	struct slot *ns;

	for (size_t i = 0; i < j->nslots; i++)
		if (strcmp(j->slots[i].name, name) == 0)
			return &j->slots[i];
	ns = realloc(j->slots, (j->nslots + 1) * sizeof *ns);
	if (!ns)
		return NULL;
	j->slots = ns;
	ns = &j->slots[j->nslots];
	memset(ns, 0, sizeof *ns);
	ns->name = strdup(name);
	if (!ns->name)
		return NULL;
	histo_init(&ns->duration, histo_le_seconds, HISTO_LE_SECONDS_N);
	j->nslots++;
	return ns;
}

int jobs_final_state(const char *state)
{
	return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "dead") == 0 ||
	                 strcmp(state, "cancelled") == 0);
}

/* ---- enqueue ------------------------------------------------------------------------------- */

int jobs_enqueue(struct jobs *j, struct store_req *r, struct store_err *err)
{
	const struct script *s = scripts_find(j->env.scripts, r->name);

	if (j->draining) {
		snprintf(err->code, sizeof err->code, "stopping");
		snprintf(err->msg, sizeof err->msg, "the daemon is stopping");
		return -1;
	}
	if (!s) {
		snprintf(err->code, sizeof err->code, "no_such_script");
		snprintf(err->msg, sizeof err->msg, "no script '%s' in %s", r->name,
		         j->env.scripts->dir);
		return -1;
	}
	if (!s->version) {
		snprintf(err->code, sizeof err->code, "invalid");
		snprintf(err->msg, sizeof err->msg, "script '%s' did not load: %s", r->name,
		         s->error ? s->error : "unknown error");
		return -1;
	}
	if (r->text && strlen(r->text) > j->env.max_args_bytes) {
		char size[32];
		size_t n = strlen(r->text);
		snprintf(err->code, sizeof err->code, "too_large");
		snprintf(err->msg, sizeof err->msg,
		         "the args of '%s' are %zu bytes (%s) of JSON, over max_args_bytes = %zu",
		         r->name, n, humanfmt_bytes(n, size, sizeof size), j->env.max_args_bytes);
		return -1;
	}
	if ((s->nlimits || s->fair_by[0]) && jobs_job_keys(j, s, r, err) < 0)
		return -1;
	r->op = STORE_ENQUEUE;
	r->max_attempts = 1 + s->retries;
	r->backoff_ms = jobs_backoff_ms(s);
	r->now = store_now();
	store_submit(j->st, r);
	/* a claim made from now on queues behind the enqueue in the store: it sees the job */
	jobs_wake_name(j, r->name);
	return 0;
}

/* ---- pauses ------------------------------------------------------------------------------- */

int jobs_pause(struct jobs *j, struct store_req *r, struct store_err *err)
{
	if (!r->name || !scripts_find(j->env.scripts, r->name)) {
		snprintf(err->code, sizeof err->code, "no_such_script");
		snprintf(err->msg, sizeof err->msg, "no script '%s' in %s", r->name ? r->name : "",
		         j->env.scripts->dir);
		return -1;
	}
	if (r->key && (r->key[0] == 0 || strlen(r->key) > JOBS_PAUSE_KEY_MAX)) {
		snprintf(err->code, sizeof err->code, "invalid");
		snprintf(err->msg, sizeof err->msg, "a pause's key is 1 to %d bytes",
		         JOBS_PAUSE_KEY_MAX);
		return -1;
	}
	r->op = STORE_PAUSE;
	r->now = store_now();
	store_submit(j->st, r);
	return 0;
}

void jobs_paused(struct jobs *j, const struct store_req *r)
{
	if (r->rc == 0) {
		log_info("%s %s%s%s", r->flag ? "paused" : "resumed", r->name,
		         r->key ? " key " : "", r->key ? r->key : "");
		jobs_wake_name(j,
		               r->name); /* resumed: claim; paused: the claim sees it and waits */
	}
}

/* ---- signals ------------------------------------------------------------------------------ */

int jobs_signal(struct jobs *j, struct store_req *r, struct store_err *err)
{
	size_t n = r->name ? strlen(r->name) : 0;

	if (j->closing) {
		snprintf(err->code, sizeof err->code, "stopping");
		snprintf(err->msg, sizeof err->msg, "the daemon is stopping");
		return -1;
	}
	if (n == 0 || n > JOBS_SIGNAL_NAME_MAX) {
		snprintf(err->code, sizeof err->code, "invalid");
		snprintf(err->msg, sizeof err->msg,
		         "a signal's name must be a string of 1 to %d bytes, not %zu bytes",
		         JOBS_SIGNAL_NAME_MAX, n);
		return -1;
	}
	if (r->text && strlen(r->text) > j->env.max_args_bytes) {
		char size[32];
		n = strlen(r->text);
		snprintf(err->code, sizeof err->code, "too_large");
		snprintf(err->msg, sizeof err->msg,
		         "the payload of signal '%s' is %zu bytes (%s) of JSON, over "
		         "max_args_bytes = %zu",
		         r->name, n, humanfmt_bytes(n, size, sizeof size), j->env.max_args_bytes);
		return -1;
	}
	r->op = STORE_SIGNAL;
	r->now = store_now();
	store_submit(j->st, r);
	return 0;
}

void jobs_signalled(struct jobs *j, const struct store_req *r)
{
	if (r->rc == 0 && r->changed && r->njobs && strcmp(r->jobs[0].state, "waiting") == 0)
		jobs_wake_name(j, r->jobs[0].name);
}

int jobs_signal_refused(const struct store_req *r, char *code, size_t codelen, char *msg,
                        size_t msglen)
{
	if (!r->njobs) {
		snprintf(code, codelen, "no_such_job");
		snprintf(msg, msglen, "no job %lld", (long long)r->id);
		return 1;
	}
	if (!r->changed) {
		snprintf(code, codelen, "finished");
		snprintf(msg, msglen,
		         "job %lld is %s: a signal reaches only a job that has not finished",
		         (long long)r->id, r->jobs[0].state);
		return 1;
	}
	return 0;
}

/* ---- pruning ------------------------------------------------------------------------------ */

static void prune_answered(struct store_req *r)
{
	if (r->rc)
		log_error("pruning old jobs: %s", r->err.msg);
	else if (r->changed)
		log_info("pruned %d finished jobs", r->changed);
	store_req_free(r);
}

static void prune_cb(void *arg)
{
	struct jobs *j = arg;
	struct store_req *r;

	if (j->draining || j->closing || j->env.keep_jobs_ms <= 0)
		return;
	r = store_req_new(STORE_PRUNE);
	if (r) {
		r->now = store_now() - (int64_t)j->env.keep_jobs_ms;
		r->done = prune_answered;
		store_submit(j->st, r);
	}
	sched_timer_add(j->prune_ev, PRUNE_EVERY_MS);
}

/* ---- life ---------------------------------------------------------------------------------- */

/* What the Lua jobs module calls (it may not include this part: bindings/db.h). */
static const struct db_jobs_ops lua_ops = {
    jobs_enqueue, jobs_job_json,  jobs_job_failure,    jobs_wait,  jobs_withdraw,
    jobs_signal,  jobs_signalled, jobs_signal_refused, jobs_pause, jobs_paused,
};

struct jobs *jobs_new(const struct jobs_env *env, struct store *st, char *err, size_t errlen)
{
	struct jobs *j = calloc(1, sizeof *j);
	lua_State *L = env->s->L;

	if (!j) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->env = *env;
	j->st = st;
	j->L = L;
	j->runner_ref = LUA_NOREF;
	j->rng = (uint64_t)store_now() * 2654435761u | 1;
	lua_pushcfunction(L, jobs_run_load);
	lua_pushlightuserdata(L, j);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		snprintf(err, errlen, "job runner: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		free(j);
		return NULL;
	}
	j->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	db_set_store(L, st, j, &lua_ops);
	store_set_wake(st, jobs_woken, j);
	j->kick_ev = evtimer_new(env->base, jobs_kick_cb, j);
	j->poll_ev = sched_timer_new(env->s, jobs_poll_cb, j);
	j->prune_ev = sched_timer_new(env->s, prune_cb, j);
	if (!j->kick_ev || !j->poll_ev || !j->prune_ev) {
		snprintf(err, errlen, "cannot create the job engine's timers");
		jobs_close_lua(j);
		jobs_free(j);
		return NULL;
	}
	return j;
}

void jobs_start(struct jobs *j)
{
	j->started = 1;
	jobs_schedule_load(j);
	jobs_poll_start(j);
	prune_cb(j);
	jobs_kick(j);
}

void jobs_reloaded(struct jobs *j)
{
	if (!j->started || j->draining)
		return;
	jobs_schedule_load(j);
	jobs_kick(j);
}

void jobs_drain(struct jobs *j)
{
	j->draining = 1;
	sched_timer_del(j->poll_ev);
	sched_timer_del(j->prune_ev);
	event_del(j->kick_ev);
	jobs_schedule_stop(j);
}

void jobs_close_lua(struct jobs *j)
{
	if (!j)
		return;
	j->closing = 1;
	if (j->runner_ref != LUA_NOREF)
		luaL_unref(j->L, LUA_REGISTRYINDEX, j->runner_ref);
	j->runner_ref = LUA_NOREF;
	for (struct run *run = j->runs; run; run = run->next) {
		if (run->root_ref != LUA_NOREF) {
			luaL_unref(j->L, LUA_REGISTRYINDEX, run->root_ref);
			run->root_ref = LUA_NOREF;
			run->root = NULL;
		}
		sched_timer_free(run->retry);
		run->retry = NULL;
		jobs_progress_free(run);
	}
	db_set_store(j->L, NULL, NULL, NULL);
	/* the timers are the scheduler's, which goes next; closing: none is armed again */
	jobs_schedule_free(j);
	sched_timer_free(j->poll_ev);
	sched_timer_free(j->prune_ev);
	j->poll_ev = j->prune_ev = NULL;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	j->closing = 1;
	jobs_schedule_free(j);
	json_decref(j->pct[0]);
	json_decref(j->pct[1]);
	while (j->runs)
		jobs_run_free(j->runs);
	jobs_fail_waiters(j);
	if (j->kick_ev)
		event_free(j->kick_ev);
	sched_timer_free(j->poll_ev);
	sched_timer_free(j->prune_ev);
	for (size_t i = 0; i < j->nslots; i++)
		free(j->slots[i].name);
	free(j->slots);
	free(j);
}
