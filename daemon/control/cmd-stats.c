/* cmd-stats.c: `stats`: scheduler, memory, request, job, store and worker counters, job
 * latency percentiles, the histograms of commits, fsyncs and the loop's lag. */
#include "cmd.h"
#include "sched.h"
#include "jobs.h"
#include "loopwatch.h"
#include "server.h"
#include "store.h"

static void cmd_stats(struct cmd_ctx *ctx)
{
	const struct cmd_env *e = ctx->env;
	const struct sched_stats *st = &e->s->stats;
	struct store_stats ss;

	json_t *out, *store;

	store_get_stats(e->st, &ss);
	out = json_pack(
	    "{s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, "
	    "s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:I}",
	    "tasks", "spawned", (json_int_t)st->spawned, "done", (json_int_t)st->done, "failed",
	    (json_int_t)st->failed, "cancelled", (json_int_t)st->cancelled, "live",
	    (json_int_t)st->live, "resumes", (json_int_t)st->resumes, "memory", "lua_bytes",
	    (json_int_t)st->mem, "lua_peak", (json_int_t)st->mem_peak, "requests", "total",
	    (json_int_t)server_nrequests(e->srv), "clients", (json_int_t)server_nclients(e->srv),
	    "jobs", jobs_stats_json(e->jobs), "store", "commits", (json_int_t)ss.commits, "syncs",
	    (json_int_t)ss.syncs, "checkpoints", (json_int_t)ss.checkpoints, "reads",
	    (json_int_t)ss.reads, "requests", (json_int_t)ss.requests, "failed_commits",
	    (json_int_t)ss.failed_commits, "workers", e->workers ? e->workers(e->svc) : json_null(),
	    "reloads", (json_int_t)*e->reloads);
	/* distributions: requests per group commit, seconds per fsync, the loop's lag */
	store = json_object_get(out, "store");
	json_object_set_new(store, "batch", histo_json(&ss.batch));
	json_object_set_new(store, "fsync_s", histo_json(&ss.fsync));
	json_object_set_new(out, "loop", loopwatch_json(e->loop));
	conn_ok(ctx->c, ctx->id, ctx->has_id, out);
}

const struct cmd_entry cmd_stats_entry = {"stats", cmd_stats};
