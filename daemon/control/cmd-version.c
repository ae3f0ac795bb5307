/* cmd-version.c: `version`: the daemon's version and protocol version. */
#include "cmd.h"
#include "proto.h"
#include "server.h"

static void cmd_version(struct cmd_ctx *ctx)
{
	conn_ok(ctx->c, ctx->id, ctx->has_id,
	        json_pack("{s:s, s:i}", "version", AWAITD_VERSION, "protocol", PROTO_VERSION));
}

const struct cmd_entry cmd_version_entry = {"version", cmd_version};
