/*
 * cmd-signal.c: `signal` {id, name, payload}: a durable signal to a job
 * (SPEC section 4), buffered until the job waits for it. The answer, once
 * the signal is durable, is the job object; an unknown job is
 * no_such_job, a finished one "finished", and nothing is stored for either.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void signalled(struct cmd_later *l, struct store_req *r)
{
	char code[32], msg[256];

	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	jobs_signalled(l->env->jobs, r);
	if (jobs_signal_refused(r, code, sizeof code, msg, sizeof msg)) {
		conn_error(l->c, l->id, l->has_id, code, "%s", msg);
		return;
	}
	conn_ok(l->c, l->id, l->has_id, jobs_job_json(&r->jobs[0], cmd_value_max(l->env)));
}

static void cmd_signal(struct cmd_ctx *ctx)
{
	json_t *name = json_object_get(ctx->args, "name");
	json_t *payload = json_object_get(ctx->args, "payload");
	struct store_req *r;
	const char *k;
	json_t *v;
	int64_t id;

	json_object_foreach(ctx->args, k, v)
	{
		if (strcmp(k, "id") != 0 && strcmp(k, "name") != 0 && strcmp(k, "payload") != 0) {
			conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
			           "signal takes args id, name and payload, not \"%s\"", k);
			return;
		}
	}
	if ((id = cmd_job_id(ctx)) < 0)
		return;
	if (!json_is_string(name)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.name must be the signal's name (a string)");
		return;
	}
	r = store_req_new(STORE_SIGNAL);
	if (r) {
		r->id = id;
		r->name = strdup(json_string_value(name));
		r->text = payload && !json_is_null(payload)
		              ? json_dumps(payload, JSON_ENCODE_ANY | JSON_COMPACT)
		              : NULL;
	}
	if (!r || !r->name || (payload && !json_is_null(payload) && !r->text)) {
		store_req_free(r);
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	cmd_jobs_submit(ctx, r, jobs_signal, signalled);
}

const struct cmd_entry cmd_signal_entry = {"signal", cmd_signal};
