/* cmd-shutdown.c: `shutdown`: the graceful stop SIGTERM also starts. */
#include "cmd.h"
#include "server.h"

static void cmd_shutdown(struct cmd_ctx *ctx)
{
	conn_ok(ctx->c, ctx->id, ctx->has_id, json_pack("{s:b}", "stopping", 1));
	ctx->env->drain(ctx->env->svc, "awaitctl shutdown");
}

const struct cmd_entry cmd_shutdown_entry = {"shutdown", cmd_shutdown};
