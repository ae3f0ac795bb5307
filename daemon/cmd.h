/*
 * cmd.h: the control commands, one per file (cmd-<name>.c, tmux style),
 * found by name in the table of cmd.c.
 *
 * A command answers with conn_ok/conn_error on ctx->c, now or later (it
 * then holds the connection with conn_hold and releases it after its
 * reply). ctx is valid only during the call; args is borrowed.
 */
#ifndef AWAITD_CMD_H
#define AWAITD_CMD_H

#include <jansson.h>

struct conn;
struct daemon;
struct proto_request;

struct cmd_ctx {
	struct daemon *d;
	struct conn *c;
	json_int_t id;
	int has_id;
	json_t *args; /* an object, possibly empty */
};

struct cmd_entry {
	const char *name;
	void (*fn)(struct cmd_ctx *ctx);
};

extern const struct cmd_entry cmd_ping_entry, cmd_version_entry, cmd_status_entry,
    cmd_scripts_entry, cmd_run_entry, cmd_reload_entry, cmd_logs_entry, cmd_stats_entry,
    cmd_shutdown_entry;

/* The command named name, or NULL. */
const struct cmd_entry *cmd_find(const char *name);

/* server_request_fn: dispatch a request to its command (arg: the daemon). */
void cmd_dispatch(struct conn *c, const struct proto_request *req, void *arg);

#endif
