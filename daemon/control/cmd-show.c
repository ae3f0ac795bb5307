/*
 * cmd-show.c: `show ID`: one job with its args, attempts, steps, result or error,
 * and for one that may not start yet what it waits behind ("held": the jobs
 * it was enqueued after, a pause, a full per-key limit or rate).
 *
 * Every stored value goes through clip.h: one bigger than cmd_value_max
 * (a row written before max_result_bytes, or under a higher limit) is
 * shown as a preview with its real size, and the step journals share one
 * budget (output_cap / 4) after which they are previewed too, so no job
 * can make its own `show` fail.
 */
#include <string.h>

#include <jansson.h>

#include "clip.h"
#include "cmd.h"
#include "jobs.h"
#include "scripts.h"
#include "server.h"
#include "store.h"

/* One journal row; *budget is what the steps may still show whole (bytes). */
static json_t *step_json(const struct store_rows *rows, size_t i, size_t max, size_t *budget)
{
	const struct store_val *v = rows->vals + i * (size_t)rows->ncols;
	const char *text = v[3].type == STORE_TEXT ? v[3].p : NULL;
	size_t len = text ? strlen(text) : 0;
	int clipped = 0;
	json_t *res, *o;

	res = clip_json(text, len <= *budget ? max : CLIP_PREVIEW_MAX, &clipped);
	if (!clipped)
		*budget -= len <= *budget ? len : *budget;
	/* the journal holds {n, v}: show the values */
	if (!clipped && json_is_object(res)) {
		json_t *vals = json_incref(json_object_get(res, "v"));
		json_decref(res);
		res = vals;
	}
	o = json_pack("{sI ss ss sI so}", "seq", (json_int_t)v[0].i, "name", v[1].p ? v[1].p : "",
	              "kind", v[2].p ? v[2].p : "", "at", (json_int_t)v[4].i, "result",
	              res ? res : json_null());
	if (o && clipped) {
		json_object_set_new(o, "result_truncated", json_true());
		json_object_set_new(o, "result_bytes", json_integer((json_int_t)len));
	}
	return o;
}

/* STORE_WHY answered: the job (l->doc) with what it waits behind, as "held". */
static void held(struct cmd_later *l, struct store_req *r)
{
	json_t *job = l->doc,
	       *why = r->rc == 0 && r->out_text ? json_loads(r->out_text, 0, NULL) : NULL;
	json_t *lim = json_object_get(why, "limit");
	const struct script *s = scripts_find(l->env->scripts, r->name ? r->name : "");

	l->doc = NULL;
	/* a limit by its number: name the field it is by */
	if (json_is_integer(lim) && s && json_integer_value(lim) < s->nlimits)
		json_object_set_new(why, "by",
		                    s->limits[json_integer_value(lim)].by_fn
		                        ? json_string("(function)")
		                        : json_string(s->limits[json_integer_value(lim)].by));
	json_object_del(why, "limit");
	if (why)
		json_object_set_new(job, "held", why);
	conn_ok(l->c, l->id, l->has_id, job);
}

static void shown(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *found = cmd_later_job(l, r);
	size_t max = cmd_value_max(l->env), budget = l->env->output_cap / 4;
	json_t *job, *steps;

	if (!found)
		return;
	job = jobs_job_json(found, max);
	steps = json_array();
	for (size_t i = 0; steps && r->rows.ncols == 5 && i < r->rows.nrows; i++)
		json_array_append_new(steps, step_json(&r->rows, i, max, &budget));
	if (job && steps)
		json_object_set_new(job, "steps", steps);
	else
		json_decref(steps);
	if (job && (strcmp(found->state, "queued") == 0 || strcmp(found->state, "failed") == 0 ||
	            strcmp(found->state, "blocked") == 0)) {
		/* may not start yet: ask the store what it waits behind */
		struct cmd_later *w = cmd_later_again(l);
		struct store_req *q = store_req_new(STORE_WHY);
		if (w && q) {
			const struct script *s = scripts_find(l->env->scripts, found->name);
			q->id = found->id;
			q->now = store_now();
			jobs_script_limits(s, q);
			w->doc = job;
			w->answer = held;
			q->done = cmd_store_answered;
			q->arg = w;
			store_submit(l->env->st, q);
			return;
		}
		store_req_free(q);
		cmd_later_free(w);
	}
	conn_ok(l->c, l->id, l->has_id, job);
}

static void cmd_show(struct cmd_ctx *ctx)
{
	cmd_store_job(ctx, STORE_GET, 1, shown);
}

const struct cmd_entry cmd_show_entry = {"show", cmd_show};
