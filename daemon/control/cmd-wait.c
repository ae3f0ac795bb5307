/*
 * cmd-wait.c: `wait ID [--timeout MS]`: the job once it is final (succeeded,
 * dead, cancelled); with args.progress, its progress as events meanwhile.
 */
#include "cmd.h"
#include "server.h"

#define WAIT_MAX_MS (3650 * 86400000.0) /* ms; 0 waits for ever */

static void cmd_wait(struct cmd_ctx *ctx)
{
	json_t *timeout = json_object_get(ctx->args, "timeout");
	int64_t id = cmd_job_id(ctx);
	struct cmd_later *l;

	if (id < 0)
		return;
	/* bounded before cmd_wait_job makes a timeval of it: 1e300 s is no time_t */
	if (timeout && (!json_is_number(timeout) || !(json_number_value(timeout) >= 0) ||
	                json_number_value(timeout) > WAIT_MAX_MS)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.timeout must be a number of ms from 0 to %.0f (10 years)",
		           WAIT_MAX_MS);
		return;
	}
	if (json_object_get(ctx->args, "progress") &&
	    !json_is_boolean(json_object_get(ctx->args, "progress"))) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.progress must be true or false");
		return;
	}
	l = cmd_later_new(ctx);
	if (l)
		l->progress = json_is_true(json_object_get(ctx->args, "progress"));
	if (l)
		cmd_wait_job(l, id, timeout ? json_number_value(timeout) : 0, 0);
}

const struct cmd_entry cmd_wait_entry = {"wait", cmd_wait};
