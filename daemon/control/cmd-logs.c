/*
 * cmd-logs.c: `logs [-f] [-n N]`: the recent log lines as events; with
 * follow, every new line too, until the client goes away (logbook.h).
 */
#include "cmd.h"
#include "logbook.h"
#include "server.h"

static void cmd_logs(struct cmd_ctx *ctx)
{
	struct logbook *lb = ctx->env->logs;
	json_t *n_v = json_object_get(ctx->args, "lines");
	size_t n = lb->count;

	if (json_is_integer(n_v) && json_integer_value(n_v) >= 0 &&
	    (size_t)json_integer_value(n_v) < n)
		n = (size_t)json_integer_value(n_v);
	for (size_t i = 0; i < n; i++)
		conn_event(ctx->c, ctx->id, json_pack("{s:s}", "line", logbook_line(lb, n, i)));
	if (!json_is_true(json_object_get(ctx->args, "follow"))) {
		conn_ok(ctx->c, ctx->id, ctx->has_id, json_pack("{s:I}", "lines", (json_int_t)n));
		return;
	}
	if (logbook_follow(lb, ctx->c, ctx->id) < 0)
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
}

const struct cmd_entry cmd_logs_entry = {"logs", cmd_logs};
