/*
 * jobs-wait.c: waiters (jobs.wait, `awaitctl wait`/`run`) until a job is
 * finished, told of its progress on the way if they ask.
 *
 * A waiter holds a GET request; it is submitted when the job reaches a
 * final state here (jobs_wait_wake, jobs_finished), and re-parked if the
 * job turned out not to be final. While parked, the request's done and
 * arg are the waiter's (struct waiter keeps the caller's), so every way
 * out (answered, withdrawn, failed at shutdown) puts the caller's back
 * before it runs or returns the request.
 */
#include <stdint.h>
#include <stdlib.h>

#include "jobs.h"
#include "jobs-int.h"
#include "store.h"

struct waiter {
	struct store_req *r;
	uint64_t seen;       /* j->done_seen when its read was sent */
	store_done_fn *done; /* the waiter's own completion */
	void *arg;
	jobs_progress_fn *progress; /* NULL: not told of progress */
	void *parg;
	struct waiter *next;
};

static void waiter_answered(struct store_req *r);

static void waiter_park(struct jobs *j, struct store_req *r)
{
	struct waiter *w = r->arg; /* waiter_answered left it here */

	w->next = j->waiters;
	j->waiters = w;
}

static void waiter_answered(struct store_req *r)
{
	struct waiter *w = r->arg;
	struct jobs *j = (struct jobs *)r->now; /* stashed by jobs_wait */
	int final = r->rc != 0 || r->njobs == 0 || jobs_final_state(r->jobs[0].state);

	if (!final && !j->closing && w->seen != j->done_seen) {
		/* a job reached its end while this read was out: read again */
		for (size_t i = 0; i < r->njobs; i++)
			store_job_fini(&r->jobs[i]);
		free(r->jobs);
		r->jobs = NULL;
		r->njobs = 0;
		w->seen = j->done_seen;
		store_submit(j->st, r);
		return;
	}
	if (!final && !j->closing) {
		/* not finished yet: wait for its final state; its progress so far first */
		if (w->progress && r->jobs[0].has_progress)
			w->progress(w->parg, r->jobs[0].progress, r->jobs[0].progress_msg);
		for (size_t i = 0; i < r->njobs; i++)
			store_job_fini(&r->jobs[i]);
		free(r->jobs);
		r->jobs = NULL;
		r->njobs = 0;
		waiter_park(j, r);
		return;
	}
	r->done = w->done;
	r->arg = w->arg;
	free(w);
	r->done(r);
}

void jobs_wait(struct store_req *r, void *ud)
{
	jobs_wait_watch(r, ud, NULL, NULL);
}

void jobs_wait_watch(struct store_req *r, void *ud, jobs_progress_fn *fn, void *arg)
{
	struct jobs *j = ud;
	struct waiter *w = calloc(1, sizeof *w);

	if (!w) {
		store_fail(r, "out_of_memory", "out of memory");
		r->done(r);
		return;
	}
	w->r = r;
	w->seen = j->done_seen;
	w->progress = fn;
	w->parg = arg;
	w->done = r->done;
	w->arg = r->arg;
	r->op = STORE_GET;
	r->done = waiter_answered;
	r->arg = w;
	r->now = (int64_t)(intptr_t)j;
	store_submit(j->st, r);
}

int jobs_withdraw(struct store_req *r, void *ud)
{
	struct jobs *j = ud;

	for (struct waiter **pw = &j->waiters; *pw; pw = &(*pw)->next) {
		struct waiter *w = *pw;
		if (w->r == r) {
			*pw = w->next;
			r->done = w->done;
			r->arg = w->arg;
			free(w);
			return 1;
		}
	}
	return 0;
}

void jobs_wait_wake(struct jobs *j, int64_t id)
{
	struct waiter **pw = &j->waiters;

	/* a waiter whose read is out re-reads: it may have read the job before this outcome
	 * (on PostgreSQL a read and a FINISH can be answered in either order) */
	j->done_seen++;

	while (*pw) {
		struct waiter *w = *pw;
		if (w->r->id == id) {
			*pw = w->next;
			w->next = NULL;
			w->seen = j->done_seen;
			store_submit(j->st, w->r);
		} else {
			pw = &w->next;
		}
	}
}

void jobs_wait_progressed(struct jobs *j, int64_t id, double fraction, const char *message)
{
	for (struct waiter *w = j->waiters; w; w = w->next)
		if (w->progress && w->r->id == id)
			w->progress(w->parg, fraction, message);
}

void jobs_finished(struct jobs *j, const struct store_req *r)
{
	jobs_wait_wake(j, r->id);
	jobs_deps_changed(j, r);
}

void jobs_deps_changed(struct jobs *j, const struct store_req *r)
{
	if (r->rc || r->deps == 0)
		return;
	/* blocked jobs were queued (claim them) or cancelled (answer their waiters) */
	jobs_kick(j);
	for (size_t i = 0; i < r->nsettled; i++)
		jobs_wait_wake(j, r->settled[i]);
}

void jobs_fail_waiters(struct jobs *j)
{
	while (j && j->waiters) {
		struct waiter *w = j->waiters;
		struct store_req *r = w->r;
		j->waiters = w->next;
		r->done = w->done;
		r->arg = w->arg;
		free(w);
		store_fail(r, "stopping", "the daemon stopped before the job finished");
		r->done(r);
	}
}
