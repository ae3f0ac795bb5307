/* cmd-status.c: `status`: version, uptime, pid, scripts, tasks, clients, jobs by state,
 * workers; with args.by_script, jobs by script and state too (`jobs_by_script`); on
 * PostgreSQL the daemons sharing the database (`nodes`). */
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
	out = json_pack(
	    "{s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:o, s:s, s:I, s:b}", "version", AWAITD_VERSION,
	    "pid", (json_int_t)getpid(), "uptime_s", (sched_now() - e->started_mono) / 1e3,
	    "scripts", (json_int_t)e->scripts->n, "scripts_failed", (json_int_t)failed,
	    "tasks_running", (json_int_t)e->s->stats.live, "clients",
	    (json_int_t)server_nclients(e->srv), "jobs", jobs ? jobs : json_null(), "database",
	    e->db_path, "epoch", (json_int_t)store_epoch(e->st), "draining", *e->draining);
	if (out && w) {
		/* async.worker's threads: how many, how many busy, calls waiting for one */
		json_object_set(out, "workers", json_object_get(w, "size"));
		json_object_set(out, "workers_busy", json_object_get(w, "busy"));
		json_object_set(out, "workers_queued", json_object_get(w, "queued"));
	}
	json_decref(w);
	if (out && r->rc == 0 && r->out_text) {
		/* PostgreSQL: the daemons sharing the database */
		json_t *nodes = json_loads(r->out_text, 0, NULL);
		if (json_is_array(nodes))
			json_object_set(out, "nodes", nodes);
		json_decref(nodes);
	}
	if (out && r->rc == 0 && r->rows.ncols == 3) {
		json_t *by = json_object();
		for (size_t i = 0; by && i < r->rows.nrows; i++) {
			const struct store_val *v = &r->rows.vals[i * 3];
			json_t *o = json_object_get(by, v[0].p);
			if (!o)
				json_object_set_new(by, v[0].p, o = json_object());
			json_object_set_new(o, v[1].p, json_integer(v[2].i));
		}
		json_object_set_new(out, "jobs_by_script", by ? by : json_null());
	}
	conn_ok(l->c, l->id, l->has_id, out);
}

static void cmd_status(struct cmd_ctx *ctx)
{
	struct store_req *r = store_req_new(STORE_COUNTS);

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	r->flag = json_is_true(json_object_get(ctx->args, "by_script"));
	cmd_store(ctx, r, status_reply);
}

const struct cmd_entry cmd_status_entry = {"status", cmd_status};
