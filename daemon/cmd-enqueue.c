/*
 * cmd-enqueue.c: `enqueue NAME [ARGS] [--key K] [--delay MS] [--priority N]`:
 * queue a durable job; the answer {id, created} comes once it is committed.
 * With a key that names a job already, that job's id (created false).
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "daemon.h"
#include "jobs.h"
#include "server.h"
#include "store.h"

static void enqueued(struct cmd_later *l, struct store_req *r)
{
	if (r->rc)
		cmd_later_error(l, r);
	else
		conn_ok(l->c, l->id, l->has_id,
		        json_pack("{sI sb}", "id", (json_int_t)r->out_id, "created", r->created));
}

static int enqueue_args(struct cmd_ctx *ctx, struct store_req *r)
{
	const char *name = json_string_value(json_object_get(ctx->args, "name"));
	json_t *args = json_object_get(ctx->args, "args");
	json_t *key = json_object_get(ctx->args, "key");
	json_t *delay = json_object_get(ctx->args, "delay");
	json_t *at = json_object_get(ctx->args, "at");
	json_t *prio = json_object_get(ctx->args, "priority");
	json_t *timeout = json_object_get(ctx->args, "timeout");
	const char *bad = NULL;

	if (!name)
		bad = "args.name must be the script's name";
	else if (key && !json_is_string(key))
		bad = "args.key must be a string";
	else if (delay && (!json_is_number(delay) || json_number_value(delay) < 0))
		bad = "args.delay must be a number of ms >= 0";
	else if (at && !json_is_integer(at))
		bad = "args.at must be a time in unix epoch ms";
	else if (prio && !json_is_integer(prio))
		bad = "args.priority must be an integer";
	else if (timeout && (!json_is_number(timeout) || json_number_value(timeout) <= 0))
		bad = "args.timeout must be a number of ms > 0";
	if (bad) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request", "%s", bad);
		return -1;
	}
	r->name = strdup(name);
	r->text =
	    args && !json_is_null(args) ? json_dumps(args, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	r->key = key ? strdup(json_string_value(key)) : NULL;
	if (!r->name || (args && !json_is_null(args) && !r->text) || (key && !r->key)) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return -1;
	}
	r->run_at = at      ? json_integer_value(at)
	            : delay ? store_now() + (int64_t)json_number_value(delay)
	                    : 0;
	r->priority = prio ? json_integer_value(prio) : 0;
	r->timeout_ms = timeout ? (int64_t)json_number_value(timeout) : 0;
	return 0;
}

void cmd_enqueue_start(struct cmd_ctx *ctx, int64_t priority,
                       void (*answer)(struct cmd_later *l, struct store_req *r))
{
	struct store_req *r = store_req_new(STORE_ENQUEUE);
	struct store_err err;
	struct cmd_later *l;

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	if (enqueue_args(ctx, r) < 0 || !(l = cmd_later_new(ctx))) {
		store_req_free(r);
		return;
	}
	if (priority)
		r->priority = priority;
	l->answer = answer;
	r->done = cmd_store_answered;
	r->arg = l;
	if (jobs_enqueue(ctx->d->jobs, r, &err) < 0) {
		conn_error(ctx->c, ctx->id, ctx->has_id, err.code, "%s", err.msg);
		store_req_free(r);
		cmd_later_free(l);
	}
}

static void cmd_enqueue(struct cmd_ctx *ctx)
{
	cmd_enqueue_start(ctx, 0, enqueued);
}

const struct cmd_entry cmd_enqueue_entry = {"enqueue", cmd_enqueue};
