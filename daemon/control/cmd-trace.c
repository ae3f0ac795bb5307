/*
 * cmd-trace.c: `trace ID`: the recorded spans of every attempt of a job
 * (tasks, steps, transactions), for awaitctl to draw as a waterfall.
 * Times are ms from the start of the first recorded attempt.
 */
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void traced(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *job = cmd_later_job(l, r);
	json_t *spans;

	if (!job)
		return;
	spans = json_array();
	for (const char *p = r->out_text; spans && p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		json_t *arr = json_loadb(p, len, 0, NULL);
		json_array_extend(spans, arr);
		json_decref(arr);
		p += len + (nl != NULL);
	}
	conn_ok(l->c, l->id, l->has_id,
	        json_pack("{so so}", "job", jobs_job_json(job, cmd_value_max(l->env)), "spans",
	                  spans ? spans : json_array()));
}

static void cmd_trace(struct cmd_ctx *ctx)
{
	cmd_store_job(ctx, STORE_SPANS, 0, traced);
}

const struct cmd_entry cmd_trace_entry = {"trace", cmd_trace};
