/*
 * cmd-run.c: `run NAME [ARGS] [--timeout MS]`: run a job now and answer
 * with its result (or its error) when it ends.
 *
 * A run is a durable job like any other (enqueued with priority 1000, so
 * it goes before queued work, and with the timeout given), waited for
 * here: its steps are journaled and it survives a restart. If the client
 * goes away the job still finishes; its reply is dropped.
 */
#include <stdlib.h>

#include "cmd.h"
#include "jobs.h"
#include "daemon.h"
#include "server.h"
#include "store.h"

#define RUN_PRIORITY 1000

static void run_enqueued(struct cmd_later *l, struct store_req *r)
{
	struct cmd_later *w;

	if (r->rc) {
		cmd_later_error(l, r);
		return;
	}
	/* the wait takes over the connection with a fresh hold */
	w = calloc(1, sizeof *w);
	if (!w) {
		conn_error(l->c, l->id, l->has_id, "out_of_memory", "out of memory");
		return;
	}
	w->d = l->d;
	w->c = conn_hold(l->c);
	w->id = l->id;
	w->has_id = l->has_id;
	cmd_wait_job(w, r->out_id, 0, 1);
}

static void cmd_run(struct cmd_ctx *ctx)
{
	struct store_req *r = store_req_new(STORE_ENQUEUE);
	struct cmd_later *l;

	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	if (cmd_enqueue_args(ctx, r) < 0) {
		store_req_free(r);
		return;
	}
	r->priority = RUN_PRIORITY;
	l = cmd_later_new(ctx);
	if (!l) {
		store_req_free(r);
		return;
	}
	l->answer = run_enqueued;
	r->done = cmd_store_answered;
	r->arg = l;
	if (cmd_enqueue_submit(ctx, r) < 0)
		cmd_later_free(l);
}

const struct cmd_entry cmd_run_entry = {"run", cmd_run};
