/* cmd-scripts.c: `scripts`: each job script, its settings (limits too), version, load
 * error and the pauses in force (a store read, for they are durable). */
#include <string.h>

#include "cmd.h"
#include "scripts.h"
#include "server.h"
#include "store.h"

static json_t *nullable(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The pauses of name in force, from a STORE_PAUSES answer: [{key, until}] (key null: all). */
static json_t *pauses_of(const struct store_req *r, const char *name)
{
	json_t *a = json_array();

	for (size_t i = 0; a && r->rc == 0 && r->rows.ncols == 3 && i < r->rows.nrows; i++) {
		const struct store_val *v = &r->rows.vals[i * 3];
		if (strcmp(v[0].p, name) != 0)
			continue;
		json_array_append_new(
		    a, json_pack("{s:o, s:o}", "key", v[1].p[0] ? json_string(v[1].p) : json_null(),
		                 "until",
		                 v[2].type == STORE_INT ? json_integer(v[2].i) : json_null()));
	}
	return a ? a : json_null();
}

static void scripts_answer(struct cmd_later *l, struct store_req *r)
{
	struct scripts *ss = l->env->scripts;
	json_t *list = json_array();

	for (size_t i = 0; list && i < ss->n; i++) {
		const struct script *s = ss->v[i];
		json_t *limits = json_array(), *o;
		for (int k = 0; limits && k < s->nlimits; k++) {
			const struct script_limit *lim = &s->limits[k];
			/* a `by` function shows as by: null, function: true */
			json_t *x = lim->by_fn ? json_pack("{s:n, s:b}", "by", "function", 1)
			                       : json_pack("{s:s}", "by", lim->by);
			if (lim->concurrency)
				json_object_set_new(x, "concurrency",
				                    json_integer(lim->concurrency));
			if (lim->rate) {
				json_object_set_new(x, "rate", json_integer(lim->rate));
				json_object_set_new(x, "per", json_real(lim->per_ms));
			}
			json_array_append_new(limits, x);
		}
		o = json_pack("{s:s, s:o, s:i, s:f, s:i, s:f, s:o, s:I, s:f, s:o}", "name", s->name,
		              "description", nullable(s->description), "concurrency",
		              s->concurrency, "timeout", s->timeout_ms, "retries", s->retries,
		              "backoff", s->backoff_ms, "schedule", nullable(s->schedule),
		              "version", (json_int_t)s->version, "loaded_at", s->loaded_at, "error",
		              nullable(s->error));
		json_object_set_new(o, "limits", limits ? limits : json_null());
		json_object_set_new(o, "paused", pauses_of(r, s->name));
		json_array_append_new(list, o);
	}
	conn_ok(l->c, l->id, l->has_id, list);
}

static void cmd_scripts(struct cmd_ctx *ctx)
{
	struct store_req *r = store_req_new(STORE_PAUSES);

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	r->now = store_now();
	cmd_store(ctx, r, scripts_answer);
}

const struct cmd_entry cmd_scripts_entry = {"scripts", cmd_scripts};
