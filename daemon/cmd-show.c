/* cmd-show.c: `show ID`: one job with its args, attempts, steps, result or error. */
#include <jansson.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static json_t *step_json(const struct store_rows *rows, size_t i)
{
	const struct store_val *v = rows->vals + i * (size_t)rows->ncols;
	json_t *res = v[3].type == STORE_TEXT ? json_loads(v[3].p, JSON_DECODE_ANY, NULL) : NULL;

	/* the journal holds {n, v}: show the values */
	if (json_is_object(res)) {
		json_t *vals = json_incref(json_object_get(res, "v"));
		json_decref(res);
		res = vals;
	}
	return json_pack("{sI ss ss sI so}", "seq", (json_int_t)v[0].i, "name",
	                 v[1].p ? v[1].p : "", "kind", v[2].p ? v[2].p : "", "at",
	                 (json_int_t)v[4].i, "result", res ? res : json_null());
}

static void shown(struct cmd_later *l, struct store_req *r)
{
	json_t *job, *steps;

	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	if (!r->njobs) {
		conn_error(l->c, l->id, l->has_id, "no_such_job", "no job %lld", (long long)r->id);
		return;
	}
	job = jobs_job_json(&r->jobs[0]);
	steps = json_array();
	for (size_t i = 0; steps && r->rows.ncols == 5 && i < r->rows.nrows; i++)
		json_array_append_new(steps, step_json(&r->rows, i));
	if (job && steps)
		json_object_set_new(job, "steps", steps);
	else
		json_decref(steps);
	conn_ok(l->c, l->id, l->has_id, job);
}

static void cmd_show(struct cmd_ctx *ctx)
{
	cmd_store_job(ctx, STORE_GET, 1, shown);
}

const struct cmd_entry cmd_show_entry = {"show", cmd_show};
