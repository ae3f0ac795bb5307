/*
 * jobs-schedule.c: the scripts' schedules (a script's `schedule`, a cron
 * string: cron.h) enqueue their jobs.
 *
 * jobs_schedule_load builds one schedule per loaded script that has one,
 * at start and at each reload, and stores when each fires next
 * (SCHEDULE: a stored time of the same expression is kept, so it survives
 * restarts). A fire is one FIRE request, fenced by that stored time so
 * that it enqueues once; fires missed while the daemon was down give one
 * catch-up job, not one per missed time. After a failed FIRE the timer is
 * armed again RETRY_STORE_MS later.
 *
 * Invariant: answers find their schedule again by name (schedule_find),
 * never by a pointer kept in the request, since a reload frees and
 * rebuilds the schedules while requests are in flight.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cron.h"
#include "jobs.h"
#include "jobs-int.h"
#include "log.h"
#include "scripts.h"
#include "store.h"
#include "vclock.h"

struct schedule {
	char *name;
	char *expr;
	struct cron cron;
	int64_t next; /* ms, wall */
	struct sched_timer *timer;
	struct jobs *j;
	struct schedule *next_s;
};

static void schedule_arm(struct schedule *sc)
{
	sched_timer_add(sc->timer, (double)(sc->next - store_now()));
}

/* The schedule of name now (a reload may have replaced the one a request was for). */
static struct schedule *schedule_find(struct jobs *j, const char *name)
{
	for (struct schedule *sc = j->schedules; sc; sc = sc->next_s)
		if (strcmp(sc->name, name) == 0)
			return sc;
	return NULL;
}

static void fire_answered(struct store_req *r)
{
	struct jobs *j = r->arg;
	struct schedule *sc = j->closing ? NULL : schedule_find(j, r->name);

	if (r->rc)
		log_error("schedule %s: %s", r->name, r->err.msg);
	else if (r->created)
		log_info("schedule %s: job %lld queued", r->name, (long long)r->out_id);
	if (sc) {
		if (r->rc == 0)
			sc->next = r->n;
		else
			sc->next = store_now() + RETRY_STORE_MS;
		schedule_arm(sc);
	}
	if (!j->closing)
		jobs_wake_name(j, r->name);
	store_req_free(r);
}

static void schedule_fire(void *arg)
{
	struct schedule *sc = arg;
	const struct script *s = scripts_find(sc->j->env.scripts, sc->name);
	struct store_req *r;
	struct store_err err;
	int64_t now = store_now(), next;

	if (sc->j->draining || !s)
		return;
	if (now < sc->next) { /* the clock moved: not yet */
		schedule_arm(sc);
		return;
	}
	next = cron_next(&sc->cron, sc->next);
	if (next >= 0 && next <= now) /* missed fires (the daemon was down): one catch-up */
		next = cron_next(&sc->cron, now);
	r = store_req_new(STORE_FIRE);
	if (!r || !(r->name = strdup(sc->name)) || next < 0) {
		store_req_free(r);
		return;
	}
	r->run_at = sc->next;
	r->n = next;
	r->now = now;
	r->max_attempts = 1 + s->retries;
	r->backoff_ms = jobs_backoff_ms(s);
	/* a fired job (args null) is under its script's limits and fairness too */
	if ((s->nlimits || s->fair_by[0]) && jobs_job_keys(sc->j, s, r, &err) < 0)
		log_error("schedule %s: %s: this fire's job is not under that limit", sc->name,
		          err.msg);
	r->done = fire_answered;
	r->arg = sc->j;
	store_submit(sc->j->st, r);
}

static void schedule_answered(struct store_req *r)
{
	struct jobs *j = r->arg;
	struct schedule *sc = j->closing ? NULL : schedule_find(j, r->name);

	if (r->rc) {
		log_error("schedule %s: %s", r->name, r->err.msg);
	} else if (sc) {
		sc->next = r->out_id;
		schedule_arm(sc);
	}
	store_req_free(r);
}

void jobs_schedule_free(struct jobs *j)
{
	while (j->schedules) {
		struct schedule *sc = j->schedules;
		j->schedules = sc->next_s;
		sched_timer_free(sc->timer);
		free(sc->name);
		free(sc->expr);
		free(sc);
	}
}

void jobs_schedule_load(struct jobs *j)
{
	struct scripts *ss = j->env.scripts;
	int64_t now = store_now();

	jobs_schedule_free(j);
	for (size_t i = 0; i < ss->n; i++) {
		const struct script *s = ss->v[i];
		struct schedule *sc;
		struct store_req *r;
		char err[256];
		int64_t next;

		if (!s->version || !s->schedule)
			continue;
		sc = calloc(1, sizeof *sc);
		if (!sc)
			return;
		if (cron_parse(&sc->cron, s->schedule, err, sizeof err) < 0 ||
		    (next = cron_next(&sc->cron, now)) < 0) {
			log_error("script %s: schedule \"%s\": %s", s->name, s->schedule,
			          err[0] ? err : "never fires");
			free(sc);
			continue;
		}
		sc->j = j;
		sc->name = strdup(s->name);
		sc->expr = strdup(s->schedule);
		sc->timer = sched_timer_new(j->env.s, schedule_fire, sc);
		sc->next_s = j->schedules;
		j->schedules = sc;
		r = store_req_new(STORE_SCHEDULE);
		if (!sc->name || !sc->expr || !sc->timer || !r || !(r->name = strdup(s->name)) ||
		    !(r->text = strdup(s->schedule))) {
			store_req_free(r);
			continue;
		}
		r->run_at = next;
		r->flag = 1;
		r->done = schedule_answered;
		r->arg = j;
		store_submit(j->st, r);
	}
}

void jobs_schedule_stop(struct jobs *j)
{
	for (struct schedule *sc = j->schedules; sc; sc = sc->next_s)
		if (sc->timer)
			sched_timer_del(sc->timer);
}
