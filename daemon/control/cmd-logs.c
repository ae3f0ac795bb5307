/*
 * cmd-logs.c: `logs [-f] [-n N]`: the recent log lines as events; with
 * follow, every new line too, until the client goes away.
 */
#include <stdlib.h>

#include "cmd.h"
#include "daemon.h"
#include "server.h"

static void unfollow(struct conn *c, void *arg)
{
	struct daemon *d = arg;
	struct daemon_follower **pp = &d->followers;

	while (*pp) {
		struct daemon_follower *f = *pp;
		if (f->conn == c) {
			*pp = f->next;
			conn_release(f->conn);
			free(f);
			return;
		}
		pp = &f->next;
	}
}

static void cmd_logs(struct cmd_ctx *ctx)
{
	struct daemon *d = ctx->d;
	json_t *n_v = json_object_get(ctx->args, "lines");
	size_t n = d->log_count, first;

	if (json_is_integer(n_v) && json_integer_value(n_v) >= 0 &&
	    (size_t)json_integer_value(n_v) < n)
		n = (size_t)json_integer_value(n_v);
	first = (d->log_head + DAEMON_LOG_LINES - n) % DAEMON_LOG_LINES;
	for (size_t i = 0; i < n; i++)
		conn_event(ctx->c, ctx->id,
		           json_pack("{s:s}", "line", d->logs[(first + i) % DAEMON_LOG_LINES]));
	if (!json_is_true(json_object_get(ctx->args, "follow"))) {
		conn_ok(ctx->c, ctx->id, ctx->has_id, json_pack("{s:I}", "lines", (json_int_t)n));
		return;
	}
	struct daemon_follower *f = malloc(sizeof *f);
	if (!f) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	f->conn = conn_hold(ctx->c);
	f->id = ctx->id;
	f->next = d->followers;
	d->followers = f;
	conn_on_close(ctx->c, unfollow, d);
}

const struct cmd_entry cmd_logs_entry = {"logs", cmd_logs};
