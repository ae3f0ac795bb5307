/*
 * cmd-cancel.c: `cancel ID`: a queued (or retry-waiting) job is cancelled
 * in the store at once; a running one is cancelled where it runs, and the
 * answer comes when its attempt has ended. Either way: the job object.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "daemon.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void cancelled(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *job = r->njobs ? &r->jobs[0] : NULL;
	struct cmd_later *w;

	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	if (!job) {
		conn_error(l->c, l->id, l->has_id, "no_such_job", "no job %lld", (long long)r->id);
		return;
	}
	if (r->changed) {
		jobs_kick(l->d->jobs);
		conn_ok(l->c, l->id, l->has_id, jobs_job_json(job));
		return;
	}
	if (strcmp(job->state, "running") == 0 && jobs_cancel_running(l->d->jobs, job->id) &&
	    (w = calloc(1, sizeof *w))) {
		w->d = l->d;
		w->c = conn_hold(l->c);
		w->id = l->id;
		w->has_id = l->has_id;
		cmd_wait_job(w, job->id, 0, 0);
		return;
	}
	conn_error(l->c, l->id, l->has_id, "invalid",
	           "job %lld is %s: only queued, failed or running jobs can be cancelled",
	           (long long)job->id, job->state);
}

static void cmd_cancel(struct cmd_ctx *ctx)
{
	int64_t id = cmd_job_id(ctx);
	struct store_req *r;

	if (id < 0)
		return;
	r = store_req_new(STORE_CANCEL);
	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	r->id = id;
	r->now = store_now();
	cmd_store(ctx, r, cancelled);
}

const struct cmd_entry cmd_cancel_entry = {"cancel", cmd_cancel};
