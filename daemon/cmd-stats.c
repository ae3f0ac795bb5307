/* cmd-stats.c: `stats`: scheduler, memory, request and run counters. */
#include "cmd.h"
#include "daemon.h"
#include "sched.h"
#include "server.h"

static void cmd_stats(struct cmd_ctx *ctx)
{
	struct daemon *d = ctx->d;
	const struct sched_stats *st = &d->s->stats;

	conn_ok(ctx->c, ctx->id, ctx->has_id,
	        json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, "
	                  "s:{s:I, s:I, s:I}, s:I}",
	                  "tasks", "spawned", (json_int_t)st->spawned, "done", (json_int_t)st->done,
	                  "failed", (json_int_t)st->failed, "cancelled", (json_int_t)st->cancelled,
	                  "live", (json_int_t)st->live, "resumes", (json_int_t)st->resumes,
	                  "memory", "lua_bytes", (json_int_t)st->mem, "lua_peak",
	                  (json_int_t)st->mem_peak, "requests", "total",
	                  (json_int_t)server_nrequests(d->srv), "clients",
	                  (json_int_t)server_nclients(d->srv), "runs", "active",
	                  (json_int_t)d->runs_active, "done", (json_int_t)d->runs_done, "failed",
	                  (json_int_t)d->runs_failed, "reloads", (json_int_t)d->reloads));
}

const struct cmd_entry cmd_stats_entry = {"stats", cmd_stats};
