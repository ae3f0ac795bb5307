/* cmd-status.c: `status`: version, uptime, pid, scripts, tasks, clients. */
#include <unistd.h>

#include "cmd.h"
#include "daemon.h"
#include "sched.h"
#include "server.h"

static void cmd_status(struct cmd_ctx *ctx)
{
	struct daemon *d = ctx->d;
	size_t failed = 0;

	for (size_t i = 0; i < d->scripts.n; i++)
		failed += d->scripts.v[i]->error != NULL;
	conn_ok(ctx->c, ctx->id, ctx->has_id,
	        json_pack("{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:{s:I}, s:b}", "version",
	                  AWAITD_VERSION, "pid", (json_int_t)getpid(), "uptime_s",
	                  (sched_now() - d->started_mono) / 1e3, "scripts",
	                  (json_int_t)d->scripts.n, "scripts_failed", (json_int_t)failed,
	                  "tasks_running", (json_int_t)d->s->stats.live, "clients",
	                  (json_int_t)server_nclients(d->srv), "jobs", "running",
	                  (json_int_t)d->runs_active, "draining", d->draining));
}

const struct cmd_entry cmd_status_entry = {"status", cmd_status};
