/* cmd-reload.c: `reload`: reload the scripts; a broken one keeps its previous version. */
#include "cmd.h"
#include "scripts.h"
#include "server.h"

static void cmd_reload(struct cmd_ctx *ctx)
{
	const struct cmd_env *e = ctx->env;
	int failed = e->reload(e->svc, "awaitctl reload");
	json_t *errors = json_array();

	for (size_t i = 0; i < e->scripts->n; i++)
		if (e->scripts->v[i]->error)
			json_array_append_new(errors,
			                      json_pack("{s:s, s:s}", "name", e->scripts->v[i]->name,
			                                "error", e->scripts->v[i]->error));
	if (failed < 0) {
		json_decref(errors);
		conn_error(ctx->c, ctx->id, ctx->has_id, "reload_failed", "%s",
		           e->scripts->error ? e->scripts->error
		                            : "cannot read the scripts directory");
		return;
	}
	conn_ok(ctx->c, ctx->id, ctx->has_id,
	        json_pack("{s:I, s:i, s:o}", "loaded", (json_int_t)e->scripts->n, "failed", failed,
	                  "errors", errors));
}

const struct cmd_entry cmd_reload_entry = {"reload", cmd_reload};
