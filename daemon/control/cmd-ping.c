/* cmd-ping.c: `ping` answers "pong": the daemon's loop is alive. */
#include "cmd.h"
#include "server.h"

static void cmd_ping(struct cmd_ctx *ctx)
{
	conn_ok(ctx->c, ctx->id, ctx->has_id, json_string("pong"));
}

const struct cmd_entry cmd_ping_entry = {"ping", cmd_ping};
