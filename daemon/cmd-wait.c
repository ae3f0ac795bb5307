/* cmd-wait.c: `wait ID [--timeout MS]`: the job once it is final (succeeded, dead, cancelled). */
#include "cmd.h"
#include "server.h"

static void cmd_wait(struct cmd_ctx *ctx)
{
	json_t *timeout = json_object_get(ctx->args, "timeout");
	int64_t id = cmd_job_id(ctx);
	struct cmd_later *l;

	if (id < 0)
		return;
	if (timeout && (!json_is_number(timeout) || json_number_value(timeout) < 0)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.timeout must be a number of ms >= 0");
		return;
	}
	l = cmd_later_new(ctx);
	if (l)
		cmd_wait_job(l, id, timeout ? json_number_value(timeout) : 0, 0);
}

const struct cmd_entry cmd_wait_entry = {"wait", cmd_wait};
