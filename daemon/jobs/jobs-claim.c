/*
 * jobs-claim.c: asking the store for ready jobs.
 *
 * One slot per script name counts the attempts running and the claim in
 * flight. dispatch() asks the store for at most the free slots of each
 * loaded script (one CLAIM per name at a time); a full answer asks again,
 * a short one means nothing more is ready: the slot goes idle until
 * something wakes it (an enqueue of its name, an attempt's end, another
 * daemon's NOTIFY, a reload), and NEXT_DUE says when its earliest delayed
 * job or retry comes due. One timer, poll_ev, wakes a slot at its due time
 * (also a rate window opening, or a limit lock another daemon held) and
 * every slot at the 1 s safety poll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "jobs-int.h"
#include "log.h"
#include "sched.h"
#include "scripts.h"
#include "store.h"
#include "vclock.h"

#define POLL_MS         1000      /* safety poll for ready jobs */
#define POLL_VIRTUAL_MS 3600000.0 /* ... in virtual time, where the due timer is exact */

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
void jobs_woken(void *arg, enum store_wake what, const char *payload)
{
	if (what == STORE_WAKE_DONE) {
		/* ids joined by commas: waiters here read each */
		for (const char *p = payload; p && *p;) {
			char *end;
			long long id = strtoll(p, &end, 10);
			if (end == p)
				break;
			jobs_wait_wake(arg, id);
			p = *end == ',' ? end + 1 : end;
		}
	} else if (payload && *payload)
		jobs_wake_name(arg, payload);
	else
		jobs_kick(arg);
}

void jobs_kick_cb(evutil_socket_t fd, short what, void *arg)
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

/*
 * poll_ev is one timer for two things: the safety poll, which wakes every
 * name (a lost NOTIFY, a claim that failed), and each name's due time (its
 * next delayed job or retry, a rate window opening, a limit lock another
 * daemon held), which wakes that name alone. It is armed for the sooner.
 */
static void poll_rearm(struct jobs *j)
{
	double at = j->safety_at;

	for (size_t i = 0; i < j->nslots; i++)
		if (j->slots[i].due_at > 0 && j->slots[i].due_at < at)
			at = j->slots[i].due_at;
	j->poll_at = at;
	sched_timer_add(j->poll_ev, at - sched_now());
}

/* Jobs of sl's name come due in ms: claim them then (the safety poll covers later ones). */
static void slot_due(struct jobs *j, struct slot *sl, double ms)
{
	double at = sched_now() + ms;

	if (j->closing || j->draining || !sl || ms >= poll_ms(j))
		return;
	if (sl->due_at == 0 || at < sl->due_at)
		sl->due_at = at;
	if (at < j->poll_at) {
		j->poll_at = at;
		sched_timer_add(j->poll_ev, ms);
	}
}

static void due_answered(struct store_req *r)
{
	struct jobs *j = r->arg;

	if (r->rc == 0 && r->out_id > 0)
		slot_due(j, jobs_slot_get(j, r->name), (double)(r->out_id - store_now()) + 1);
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
		if (sl && sl->wakes == (uint64_t)r->seq)
			sl->idle = 1; /* nothing was woken since it was sent */
		else if (sl)
			jobs_dispatch_soon(j); /* woken while it was in flight: look again */
		/* a limit held jobs back: claim again when its window has room */
		if (r->out_id > 0)
			slot_due(j, sl, (double)(r->out_id - store_now()) + 1);
		struct store_req *due = store_req_new(STORE_NEXT_DUE);
		if (due && !(due->name = strdup(r->name))) {
			store_req_free(due);
			due = NULL;
		}
		if (due) {
			due->now = r->now; /* what came due after the claim looked is due */
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
		sl->claims++;
		store_submit(j->st, r);
	}
}

void jobs_poll_start(struct jobs *j)
{
	j->safety_at = sched_now() + poll_ms(j);
	poll_rearm(j);
}

void jobs_poll_cb(void *arg)
{
	struct jobs *j = arg;

	double now = sched_now();

	if (now >= j->safety_at - 1) {
		wake_all(j); /* whatever came due without an event */
		j->safety_at = now + poll_ms(j);
	}
	for (size_t i = 0; i < j->nslots; i++) {
		struct slot *sl = &j->slots[i];
		if (sl->due_at > 0 && sl->due_at <= now + 1) {
			sl->due_at = 0;
			sl->idle = 0;
			sl->wakes++;
		}
	}
	dispatch(j);
	if (!j->draining && !j->closing)
		poll_rearm(j);
}

size_t jobs_running(const struct jobs *j)
{
	return j ? j->nruns : 0;
}
