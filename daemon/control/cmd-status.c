/* cmd-status.c: `status`: version, uptime, pid, scripts, tasks, clients, jobs by state,
 * workers. */
#include <unistd.h>

#include "cmd.h"
#include "sched.h"
#include "scripts.h"
#include "server.h"
#include "store.h"

static void status_reply(struct cmd_later *l, struct store_req *r)
{
	const struct cmd_env *e = l->env;
	size_t failed = 0;
	json_t *jobs = json_object(), *w = e->workers ? e->workers(e->svc) : NULL;
	json_t *out;

	for (size_t i = 0; i < e->scripts->n; i++)
		failed += e->scripts->v[i]->error != NULL;
	for (int i = 0; jobs && r->rc == 0 && i < STORE_NSTATES; i++)
		json_object_set_new(jobs, store_state_name((enum store_state)i),
		                    json_integer(r->counts[i]));
	if (jobs && r->rc)
		json_object_set_new(jobs, "error", json_string(r->err.msg));
	out = json_pack("{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:o, s:s, s:I, s:b}", "version",
	                  AWAITD_VERSION, "pid", (json_int_t)getpid(), "uptime_s",
	                  (sched_now() - e->started_mono) / 1e3, "scripts",
	                  (json_int_t)e->scripts->n, "scripts_failed", (json_int_t)failed,
	                  "tasks_running", (json_int_t)e->s->stats.live, "clients",
	                  (json_int_t)server_nclients(e->srv), "jobs", jobs ? jobs : json_null(),
	                  "database", e->db_path, "epoch", (json_int_t)store_epoch(e->st),
	                  "draining", *e->draining);
	if (out && w) {
		/* async.worker's threads: how many, how many busy, calls waiting for one */
		json_object_set(out, "workers", json_object_get(w, "size"));
		json_object_set(out, "workers_busy", json_object_get(w, "busy"));
		json_object_set(out, "workers_queued", json_object_get(w, "queued"));
	}
	json_decref(w);
	conn_ok(l->c, l->id, l->has_id, out);
}

static void cmd_status(struct cmd_ctx *ctx)
{
	struct store_req *r = store_req_new(STORE_COUNTS);

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	cmd_store(ctx, r, status_reply);
}

const struct cmd_entry cmd_status_entry = {"status", cmd_status};
