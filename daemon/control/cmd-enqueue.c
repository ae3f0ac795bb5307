/*
 * cmd-enqueue.c: `enqueue NAME [ARGS] [--key K] [--delay MS] [--priority N]`:
 * queue a durable job; the answer {id, created} comes once it is committed.
 * With a key that names a job already, that job's id (created false).
 * The options (also `run`'s) are checked by enqueue-opts.c; an unknown
 * key is refused rather than ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "enqueue-opts.h"
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

/* v as the shared checker sees it (enqueue-opts.h). */
static void enqueue_val_of(const json_t *v, struct enqueue_val *out)
{
	static const char *const names[] = {
	    [JSON_OBJECT] = "object", [JSON_ARRAY] = "array", [JSON_TRUE] = "boolean",
	    [JSON_FALSE] = "boolean", [JSON_NULL] = "null",
	};

	memset(out, 0, sizeof *out);
	if (json_is_integer(v)) {
		out->type = ENQUEUE_V_INTEGER;
		out->i = json_integer_value(v);
	} else if (json_is_real(v)) {
		out->type = ENQUEUE_V_REAL;
		out->d = json_real_value(v);
	} else if (json_is_string(v)) {
		out->type = ENQUEUE_V_STRING;
		out->s = json_string_value(v);
		out->len = json_string_length(v);
	} else {
		out->type = ENQUEUE_V_OTHER;
		out->tname = names[json_typeof(v)];
	}
}

/*
 * Fill r from the request's args: name and args are the command's own,
 * every other key is an option for enqueue_opts_set. 0, or -1 answered.
 */
static int enqueue_args(struct cmd_ctx *ctx, struct store_req *r)
{
	const char *name = json_string_value(json_object_get(ctx->args, "name"));
	json_t *args = json_object_get(ctx->args, "args");
	struct enqueue_opts o;
	struct enqueue_val v;
	const char *k;
	size_t klen;
	json_t *val;
	char msg[512];

	if (!name) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
		           "args.name must be the script's name");
		return -1;
	}
	enqueue_opts_init(&o, store_now());
	json_object_keylen_foreach(ctx->args, k, klen, val)
	{
		size_t n = 1, i;
		if ((klen == 4 && memcmp(k, "name", 4) == 0) ||
		    (klen == 4 && memcmp(k, "args", 4) == 0))
			continue;
		/* after: one id or a list of them, each checked as the option */
		if (klen == 5 && memcmp(k, "after", 5) == 0 && json_is_array(val))
			n = json_array_size(val);
		for (i = 0; i < n; i++) {
			enqueue_val_of(json_is_array(val) && n ? json_array_get(val, i) : val, &v);
			if (enqueue_opts_set(&o, k, klen, &v, msg, sizeof msg) < 0) {
				conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request", "%s",
				           msg);
				return -1;
			}
		}
	}
	if (enqueue_opts_check(&o, msg, sizeof msg) < 0) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request", "%s", msg);
		return -1;
	}
	r->name = strdup(name);
	r->text =
	    args && !json_is_null(args) ? json_dumps(args, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	if (!r->name || (args && !json_is_null(args) && !r->text) ||
	    enqueue_opts_apply(&o, r) < 0) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return -1;
	}
	return 0;
}

void cmd_enqueue_start(struct cmd_ctx *ctx, int64_t priority,
                       void (*answer)(struct cmd_later *l, struct store_req *r))
{
	struct store_req *r = store_req_new(STORE_ENQUEUE);

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	if (enqueue_args(ctx, r) < 0) {
		store_req_free(r);
		return;
	}
	if (priority)
		r->priority = priority;
	cmd_jobs_submit(ctx, r, jobs_enqueue, answer);
}

static void cmd_enqueue(struct cmd_ctx *ctx)
{
	cmd_enqueue_start(ctx, 0, enqueued);
}

const struct cmd_entry cmd_enqueue_entry = {"enqueue", cmd_enqueue};
