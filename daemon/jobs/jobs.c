/*
 * jobs.c: the job engine (see jobs.h).
 *
 * Claiming: one slot per script name counts the attempts running and the
 * claim in flight. dispatch() asks the store for at most the free slots of
 * each loaded script (one CLAIM per name at a time); a full answer asks
 * again, a short one means nothing more is ready: NEXT_DUE then arms the
 * due timer for the earliest future run_at. Enqueues, finished attempts,
 * reloads and a 1 s safety poll call dispatch again.
 *
 * It also owns the engine's life (new, start, reload, drain, close, free),
 * enqueues, the pruning of old jobs and the stats.
 *
 * Running an attempt and recording its outcome is jobs-run.c's, the
 * schedules are jobs-schedule.c's, waiters jobs-wait.c's, the JSON views
 * jobs-json.c's; what the files share is in jobs-int.h.
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

#define POLL_MS         1000      /* safety poll for ready jobs */
#define POLL_VIRTUAL_MS 3600000.0 /* ... in virtual time, where the due timer is exact */
#define PRUNE_EVERY_MS  3600000.0

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

/* ---- dispatch -------------------------------------------------------------------------- */

static void dispatch(struct jobs *j);

void jobs_dispatch_soon(struct jobs *j)
{
	struct timeval zero = {0, 0};

	if (!j->started || j->draining || j->kicked)
		return;
	j->kicked = 1;
	event_add(j->kick_ev, &zero);
}

/* Any name may have ready jobs again. */
static void wake_all(struct jobs *j)
{
	for (size_t i = 0; i < j->nslots; i++) {
		j->slots[i].idle = 0;
		j->slots[i].wakes++;
	}
}

/* Jobs of name may be ready. */
void jobs_wake_name(struct jobs *j, const char *name)
{
	struct slot *sl = jobs_slot_get(j, name);

	if (sl) {
		sl->idle = 0;
		sl->wakes++;
	}
	jobs_dispatch_soon(j);
}

void jobs_kick(struct jobs *j)
{
	wake_all(j);
	jobs_dispatch_soon(j);
}

/* Another daemon sharing the database announced work or an outcome (PostgreSQL). */
static void woken(void *arg, enum store_wake what, const char *payload)
{
	if (what == STORE_WAKE_DONE) {
		/* ids joined by commas: waiters here read each */
		for (const char *p = payload; p && *p;) {
			char *end;
			long long id = strtoll(p, &end, 10);
			if (end == p)
				break;
			jobs_wait_wake_shared(arg, id);
			p = *end == ',' ? end + 1 : end;
		}
	} else if (payload && *payload)
		jobs_wake_name(arg, payload);
	else
		jobs_kick(arg);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jobs *j = arg;

	(void)fd;
	(void)what;
	j->kicked = 0;
	dispatch(j);
}

/*
 * The safety poll's period. Under `awaitd test`'s virtual time a poll every
 * second would turn an hour's sleep into 3600 rounds of claims: the due
 * timer (exact there) does the work, the poll is a rare safety net.
 */
static double poll_ms(const struct jobs *j)
{
	return sched_vclock(j->env.s) ? POLL_VIRTUAL_MS : POLL_MS;
}

/* Arm poll_ev (the safety poll, and the due timer of every name) to fire in ms. */
static void poll_arm(struct jobs *j, double ms)
{
	j->poll_at = sched_now() + ms;
	sched_timer_add(j->poll_ev, ms);
}

static void due_answered(struct store_req *r)
{
	struct jobs *j = r->arg;
	double ms = (double)(r->out_id - store_now()) + 1;

	/* one timer for every name: it may move earlier, never later */
	if (!j->closing && !j->draining && r->rc == 0 && r->out_id > 0 && ms < poll_ms(j) &&
	    sched_now() + ms < j->poll_at)
		poll_arm(j, ms);
	store_req_free(r);
}

static void claim_answered(struct store_req *r)
{
	struct jobs *j = r->arg;
	struct slot *sl = jobs_slot_get(j, r->name);
	int full = r->rc == 0 && (int64_t)r->njobs == r->n;

	if (sl)
		sl->claiming = 0;
	if (j->closing) {
		/* leased but never started: requeued as orphans at the next start */
		store_req_free(r);
		return;
	}
	if (r->rc)
		/* not durable: the rows it read are not ours; the poll claims again */
		log_error("claiming %s jobs: %s", r->name, r->err.msg);
	else
		for (size_t i = 0; i < r->njobs; i++)
			jobs_run_start(j, &r->jobs[i]);
	if (full) {
		jobs_dispatch_soon(j);
	} else if (r->rc == 0 && !j->closing) {
		double ms = (double)(r->out_id - store_now()) + 1;
		if (sl && sl->wakes == (uint64_t)r->seq)
			sl->idle = 1; /* nothing was woken since it was sent */
		/* a rate limit held jobs back: claim again when its window has room */
		if (r->out_id > 0 && ms < poll_ms(j) && sched_now() + ms < j->poll_at)
			poll_arm(j, ms);
		struct store_req *due = store_req_new(STORE_NEXT_DUE);
		if (due && !(due->name = strdup(r->name))) {
			store_req_free(due);
			due = NULL;
		}
		if (due) {
			due->done = due_answered;
			due->arg = j;
			store_submit(j->st, due);
		}
	}
	store_req_free(r);
}

void jobs_script_limits(const struct script *s, struct store_req *r)
{
	for (int k = 0; s && k < s->nlimits; k++) {
		r->limit_caps[k] = s->limits[k].concurrency;
		r->limit_rates[k] = s->limits[k].rate;
		r->limit_pers[k] = (int64_t)s->limits[k].per_ms;
	}
}

static void dispatch(struct jobs *j)
{
	struct scripts *ss = j->env.scripts;

	if (j->draining || j->closing)
		return;
	for (size_t i = 0; i < ss->n; i++) {
		const struct script *s = ss->v[i];
		struct slot *sl;
		struct store_req *r;

		if (!s->version)
			continue;
		sl = jobs_slot_get(j, s->name);
		if (!sl || sl->idle || sl->claiming || sl->running >= s->concurrency)
			continue;
		r = store_req_new(STORE_CLAIM);
		if (!r || !(r->name = strdup(s->name))) {
			store_req_free(r);
			continue;
		}
		r->n = s->concurrency - sl->running;
		r->flag = s->fair_by[0] != 0; /* claims rotate over the values of fair_key */
		jobs_script_limits(s, r);
		r->seq = (int64_t)sl->wakes; /* a CLAIM does not read seq: it carries this back */
		r->now = store_now();
		r->done = claim_answered;
		r->arg = j;
		sl->claiming = 1;
		store_submit(j->st, r);
	}
}

static void poll_cb(void *arg)
{
	struct jobs *j = arg;

	wake_all(j); /* delayed jobs and retries come due without an event */
	dispatch(j);
	if (!j->draining && !j->closing)
		poll_arm(j, poll_ms(j));
}

size_t jobs_running(const struct jobs *j)
{
	return j ? j->nruns : 0;
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
	store_set_wake(st, woken, j);
	j->kick_ev = evtimer_new(env->base, kick_cb, j);
	j->poll_ev = sched_timer_new(env->s, poll_cb, j);
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
	poll_arm(j, poll_ms(j));
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
