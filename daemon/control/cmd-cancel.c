/*
 * cmd-cancel.c: `cancel ID`: a queued (or retry-waiting) job is cancelled
 * in the store at once; a running one is cancelled where it runs, and a
 * waiting one (a durable wait) wakes and is cancelled at its wait; for
 * those two the answer comes when the attempt has ended. Either way: the
 * job object.
 */
#include <string.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void cancelled(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *job = cmd_later_job(l, r);
	struct cmd_later *w;

	if (!job)
		return;
	if (r->changed == 2) {
		/* waiting: it wakes, replays to its wait and is cancelled there */
		jobs_kick(l->env->jobs);
		w = cmd_later_again(l);
		if (w)
			cmd_wait_job(w, job->id, 0, 0);
		return;
	}
	if (r->changed) {
		jobs_finished(l->env->jobs, r);
		conn_ok(l->c, l->id, l->has_id, jobs_job_json(job, cmd_value_max(l->env)));
		return;
	}
	if (strcmp(job->state, "running") == 0 && jobs_cancel_running(l->env->jobs, job->id)) {
		w = cmd_later_again(l); /* the answer comes when the attempt has ended */
		if (w)
			cmd_wait_job(w, job->id, 0, 0);
		return;
	}
	conn_error(l->c, l->id, l->has_id, "invalid",
	           "job %lld is %s: only queued, failed, waiting or running jobs can be cancelled",
	           (long long)job->id, job->state);
}

static void cmd_cancel(struct cmd_ctx *ctx)
{
	cmd_store_job(ctx, STORE_CANCEL, 0, cancelled);
}

const struct cmd_entry cmd_cancel_entry = {"cancel", cmd_cancel};
