/*
 * cmd-run.c: `run NAME [ARGS] [--timeout MS]`: run a job now and answer
 * with its result (or its error) when it ends.
 *
 * A run is a durable job like any other (enqueued with priority 1000, so
 * it goes before queued work, and with the timeout given), waited for
 * here: its steps are journaled and it survives a restart. If the client
 * goes away the job still finishes; its reply is dropped.
 */
#include "cmd.h"
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
	w = cmd_later_again(l); /* the wait replies on the same connection */
	if (w)
		cmd_wait_job(w, r->out_id, 0, 1);
}

static void cmd_run(struct cmd_ctx *ctx)
{
	cmd_enqueue_start(ctx, RUN_PRIORITY, run_enqueued);
}

const struct cmd_entry cmd_run_entry = {"run", cmd_run};
