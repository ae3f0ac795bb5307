/*
 * cmd-retry.c: `retry ID`: a dead, cancelled or retry-waiting job is
 * queued to run now, with one more attempt if it had spent them all.
 */
#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void retried(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *job = cmd_later_job(l, r);

	if (!job)
		return;
	if (!r->changed)
		conn_error(l->c, l->id, l->has_id, "invalid",
		           "job %lld is %s: only dead, cancelled or failed jobs can be retried",
		           (long long)job->id, job->state);
	else {
		jobs_kick(l->env->jobs);
		conn_ok(l->c, l->id, l->has_id, jobs_job_json(job, cmd_value_max(l->env)));
	}
}

static void cmd_retry(struct cmd_ctx *ctx)
{
	cmd_store_job(ctx, STORE_RETRY, 0, retried);
}

const struct cmd_entry cmd_retry_entry = {"retry", cmd_retry};
