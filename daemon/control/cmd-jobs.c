/*
 * cmd-jobs.c: `jobs [--state S] [--name N] [--limit N]`: jobs, newest first;
 * args.before (a job id) pages: only older jobs than it.
 */
#include <string.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

#define JOBS_MAX_LIMIT 10000

static void listed(struct cmd_later *l, struct store_req *r)
{
	json_t *arr;

	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < r->njobs; i++)
		json_array_append_new(arr, jobs_job_json(&r->jobs[i], JOBS_LIST_PREVIEW));
	conn_ok(l->c, l->id, l->has_id, json_pack("{so}", "jobs", arr ? arr : json_array()));
}

static void cmd_jobs(struct cmd_ctx *ctx)
{
	json_t *state = json_object_get(ctx->args, "state");
	json_t *name = json_object_get(ctx->args, "name");
	json_t *limit = json_object_get(ctx->args, "limit");
	json_t *before = json_object_get(ctx->args, "before");
	struct store_req *r;

	if (state && (!json_is_string(state) || store_state_parse(json_string_value(state)) < 0)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.state must be one of queued, running, waiting, succeeded, failed, "
		           "dead, cancelled");
		return;
	}
	if (before && (!json_is_integer(before) || json_integer_value(before) < 1)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.before must be a job id (an integer > 0)");
		return;
	}
	if ((name && !json_is_string(name)) ||
	    (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
	               json_integer_value(limit) > JOBS_MAX_LIMIT))) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.name must be a string and args.limit an integer 1..%d",
		           JOBS_MAX_LIMIT);
		return;
	}
	r = store_req_new(STORE_LIST);
	if (!r || (state && !(r->text = strdup(json_string_value(state)))) ||
	    (name && !(r->name = strdup(json_string_value(name))))) {
		store_req_free(r);
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	r->n = limit ? json_integer_value(limit) : 20;
	r->id = before ? json_integer_value(before) : 0;
	cmd_store(ctx, r, listed);
}

const struct cmd_entry cmd_jobs_entry = {"jobs", cmd_jobs};
