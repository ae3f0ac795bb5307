/*
 * cmd.c: the command table and dispatch. The persistence commands of
 * SPEC section 6 are in the table already and answer "not_available"
 * until the store exists, so clients get a clear answer today and the
 * real commands slot in by replacing their entry.
 */
#include <string.h>

#include "cmd.h"
#include "proto.h"
#include "server.h"

static void not_available(struct cmd_ctx *ctx)
{
	conn_error(ctx->c, ctx->id, ctx->has_id, "not_available",
	           "this command needs persistence (SQLite), which this build does not have yet");
}

static const struct cmd_entry persistence[] = {
    {"enqueue", not_available}, {"jobs", not_available},   {"show", not_available},
    {"wait", not_available},    {"cancel", not_available}, {"retry", not_available},
    {"trace", not_available},
};

static const struct cmd_entry *const table[] = {
    &cmd_ping_entry,   &cmd_version_entry, &cmd_status_entry, &cmd_scripts_entry,  &cmd_run_entry,
    &cmd_reload_entry, &cmd_logs_entry,    &cmd_stats_entry,  &cmd_shutdown_entry,
};

const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	for (size_t i = 0; i < sizeof persistence / sizeof persistence[0]; i++)
		if (strcmp(persistence[i].name, name) == 0)
			return &persistence[i];
	return NULL;
}

void cmd_dispatch(struct conn *c, const struct proto_request *req, void *arg)
{
	const struct cmd_entry *e = cmd_find(req->cmd);
	struct cmd_ctx ctx;

	if (!e) {
		conn_error(c, req->id, req->has_id, "unknown_command", "no command '%s'", req->cmd);
		return;
	}
	ctx.d = arg;
	ctx.c = c;
	ctx.id = req->id;
	ctx.has_id = req->has_id;
	ctx.args = req->args;
	e->fn(&ctx);
}
