/* cmd-scripts.c: `scripts`: each job script, its settings (limits too), version and load
 * error. */
#include "cmd.h"
#include "scripts.h"
#include "server.h"

static json_t *nullable(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void cmd_scripts(struct cmd_ctx *ctx)
{
	struct scripts *ss = ctx->env->scripts;
	json_t *list = json_array();

	for (size_t i = 0; list && i < ss->n; i++) {
		const struct script *s = ss->v[i];
		json_t *limits = json_array(), *o;
		for (int k = 0; limits && k < s->nlimits; k++)
			json_array_append_new(limits,
			                      json_pack("{s:s, s:i}", "by", s->limits[k].by,
			                                "concurrency", s->limits[k].concurrency));
		o = json_pack("{s:s, s:o, s:i, s:f, s:i, s:f, s:o, s:I, s:f, s:o}", "name", s->name,
		              "description", nullable(s->description), "concurrency",
		              s->concurrency, "timeout", s->timeout_ms, "retries", s->retries,
		              "backoff", s->backoff_ms, "schedule", nullable(s->schedule),
		              "version", (json_int_t)s->version, "loaded_at", s->loaded_at, "error",
		              nullable(s->error));
		json_object_set_new(o, "limits", limits ? limits : json_null());
		json_array_append_new(list, o);
	}
	conn_ok(ctx->c, ctx->id, ctx->has_id, list);
}

const struct cmd_entry cmd_scripts_entry = {"scripts", cmd_scripts};
