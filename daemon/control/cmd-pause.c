/*
 * cmd-pause.c: `pause` {name, key, ms} and `resume` {name, key}: no new
 * job of script name starts (or none of those one of whose limit values
 * is key) until resumed, or for ms; running ones finish. Durable: the
 * answer comes once it is stored, {name, key, paused, until, changed}
 * (changed: the state was not already so).
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void answered(struct cmd_later *l, struct store_req *r)
{
	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	jobs_paused(l->env->jobs, r);
	conn_ok(l->c, l->id, l->has_id,
	        json_pack("{s:s, s:s?, s:b, s:o, s:b}", "name", r->name, "key", r->key, "paused",
	                  r->flag, "until",
	                  r->flag && r->run_at ? json_integer(r->run_at) : json_null(), "changed",
	                  r->changed != 0));
}

static void pause_or_resume(struct cmd_ctx *ctx, int pause)
{
	json_t *name = json_object_get(ctx->args, "name"), *key = json_object_get(ctx->args, "key");
	json_t *ms = json_object_get(ctx->args, "ms");
	struct store_req *r;
	const char *k;
	json_t *v;

	json_object_foreach(ctx->args, k, v)
	{
		if (strcmp(k, "name") != 0 && strcmp(k, "key") != 0 &&
		    (!pause || strcmp(k, "ms") != 0)) {
			conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
			           "%s takes args name, key%s, not \"%s\"",
			           pause ? "pause" : "resume", pause ? " and ms" : "", k);
			return;
		}
	}
	if (!json_is_string(name) || (key && !json_is_string(key))) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.name must be a script's name and args.key a string");
		return;
	}
	if (ms && (!json_is_number(ms) || !(json_number_value(ms) >= 1) ||
	           json_number_value(ms) > STORE_PAUSE_MAX_MS)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.ms must be a number of ms from 1 to %.0f (a year)",
		           STORE_PAUSE_MAX_MS);
		return;
	}
	r = store_req_new(STORE_PAUSE);
	if (r) {
		r->name = strdup(json_string_value(name));
		r->key = key ? strdup(json_string_value(key)) : NULL;
		r->flag = pause;
		r->run_at = ms ? store_now() + (int64_t)json_number_value(ms) : 0;
	}
	if (!r || !r->name || (key && !r->key)) {
		store_req_free(r);
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	cmd_jobs_submit(ctx, r, jobs_pause, answered);
}

static void cmd_pause(struct cmd_ctx *ctx)
{
	pause_or_resume(ctx, 1);
}

static void cmd_resume(struct cmd_ctx *ctx)
{
	pause_or_resume(ctx, 0);
}

const struct cmd_entry cmd_pause_entry = {"pause", cmd_pause};
const struct cmd_entry cmd_resume_entry = {"resume", cmd_resume};
