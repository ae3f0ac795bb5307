/*
 * pg.c: the PostgreSQL store (see store.h): several daemons share one
 * database. The life of struct pgstore, the queue of job operations and
 * their group commit on the main connection, the answers, the node's
 * heartbeat and the reaping of dead nodes, reconnecting.
 *
 * Group commit: the job operations submitted in a loop turn go out at its
 * end as one pipeline, BEGIN, each operation's statements, COMMIT and a
 * sync point, with no wait in between; the answers leave when the COMMIT
 * has answered (PostgreSQL made it durable). A statement that fails aborts
 * the transaction: that request is answered with PostgreSQL's message and
 * the others of the batch go again, in a new batch, so one bad request
 * never fails its neighbours. If the connection breaks, every request in
 * flight fails with code "db" (a COMMIT whose answer was lost may or may
 * not have happened: idempotency keys and lease fences make a retry
 * safe), and so does every request until the connection is back.
 *
 * Nodes: each daemon registers a row in awaitd_nodes and holds the session
 * advisory lock (PG_LOCK_SPACE, its id) on its main connection for as long
 * as the connection lives; its leases carry the id in their high half.
 * Once a second it beats (awaitd_beat): its row's seen_at, and every other
 * node whose lock can be taken is dead, its running jobs requeued at once,
 * its row deleted. After a reconnect the daemon registers as a new node:
 * the old one is reaped like any dead node and its other jobs run again, fenced
 * by lease (their db:tx steps are journaled, so they are not done twice).
 * The jobs this daemon still runs move to its new node (awaitd_rejoin): a
 * blip does not run them twice unless another daemon reaped them first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errbuf.h"
#include "pg-int.h"

#define CLOSE_WAIT_MS 10000.0 /* how long closing waits for the batch in flight */

static void run_batch(struct pgstore *st);

/* ---- answers ------------------------------------------------------------------------- */

static void on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct pgstore *st = arg;
	struct store_req *r, *next;

	(void)fd;
	(void)what;
	r = st->answers;
	st->answers = st->answers_tail = NULL;
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		st->pending--;
		st->stats.requests++;
		if (r->done)
			r->done(r);
		else
			store_req_free(r);
	}
}

void pg_answer(struct pgstore *st, struct store_req *r)
{
	r->next = NULL;
	store_list_append(&st->answers, &st->answers_tail, r);
	event_active(st->answer_ev, EV_TIMEOUT, 0);
}

/* ---- the batch on the main connection --------------------------------------------------- */

static void fail_list(struct pgstore *st, struct store_req *head, const char *msg)
{
	struct store_req *r, *next;

	for (r = head; r; r = next) {
		next = r->next;
		if (r->rc == 0)
			store_fail(r, "db", "%s", msg);
		pg_answer(st, r);
	}
}

static void batch_end(struct pgstore *st, int committed, const char *why)
{
	struct store_req *head = st->batch, *r, *next;

	st->batch = st->batch_tail = NULL;
	st->stats.commits += committed;
	if (committed) {
		histo_observe(&st->stats.batch, (double)st->batch_n);
		for (r = head; r; r = next) {
			next = r->next;
			/* the jobs a claim took are this daemon's now, and only now: a claim
			 * whose COMMIT is in doubt must not be taken along by a rejoin (its
			 * jobs would stay running on a live node that never started them) */
			for (size_t i = 0; r->op == STORE_CLAIM && r->rc == 0 && i < r->njobs; i++)
				pg_live_add(st, r->jobs[i].lease);
			pg_answer(st, r);
		}
	} else if (st->culprit || st->group_failed) {
		/* one statement failed the transaction: it is answered, the others go again (a
		 * group's statement names no one: all go again, each alone, to find whose it was)
		 */
		st->solo_next = st->group_failed;
		struct store_req *again = NULL, *again_tail = NULL;
		st->stats.failed_commits++;
		for (r = head; r; r = next) {
			next = r->next;
			r->next = NULL;
			if (r == st->culprit) {
				pg_answer(st, r);
				continue;
			}
			store_req_reset(r);
			store_list_append(&again, &again_tail, r);
		}
		if (again) {
			again_tail->next = st->inq;
			if (!st->inq)
				st->inq_tail = again_tail;
			st->inq = again;
		}
	} else {
		st->stats.failed_commits++;
		fail_list(st, head, why);
	}
	if (!committed) /* an aborted pipeline skipped some Parse messages, maybe not all */
		pg_conn_forget_prepared(&st->main);
	st->culprit = NULL;
	st->group_failed = 0;
	st->batch_n = 0;
	pg_many_clear(st);
	run_batch(st);
}

static void on_main_result(struct pg_conn *c, const struct pg_slot *slot, PGresult *res)
{
	struct pgstore *st = c->st;
	ExecStatusType s = PQresultStatus(res);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	double now = clock_mono_ms();
	int sync = slot->kind == PG_SLOT_SYNC; /* (the slot may be reused once it is handled) */

	switch (slot->kind) {
	case PG_SLOT_REQ:
		if (ok)
			pg_op_collect(slot->r, slot->step, res);
		else if (s != PGRES_PIPELINE_ABORTED && !st->culprit) {
			st->culprit = slot->r;
			pg_fail(slot->r, NULL, res, c);
		}
		break;
	case PG_SLOT_MANY:
		if (ok)
			pg_many_collect(st, slot->step, res);
		else if (s != PGRES_PIPELINE_ABORTED && !st->culprit)
			st->group_failed = 1; /* whose was it? the batch goes again, one by one */
		break;
	case PG_SLOT_BEGIN:
		if (!ok && s != PGRES_PIPELINE_ABORTED)
			snprintf(c->err, sizeof c->err, "BEGIN: %s", PQresultErrorMessage(res));
		break;
	case PG_SLOT_COMMIT:
		/* a COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK */
		st->committed = ok && strcmp(PQcmdStatus(res), "COMMIT") == 0;
		if (st->committed) { /* its own time: PostgreSQL's WAL flush, in the sync metrics */
			st->stats.syncs++;
			histo_observe(&st->stats.fsync, (now - st->last_result_ms) / 1000.0);
		}
		if (ok && !st->committed)
			snprintf(c->err, sizeof c->err, "the transaction was rolled back");
		else if (!ok && s != PGRES_PIPELINE_ABORTED)
			snprintf(c->err, sizeof c->err, "COMMIT: %s", PQresultErrorMessage(res));
		break;
	case PG_SLOT_OWN:
		if (slot->own)
			slot->own(st, res);
		break;
	case PG_SLOT_SYNC:
		st->last_result_ms = now; /* (before batch_end sends the next batch) */
		if (st->in_unit == PG_UNIT_BATCH) {
			st->in_unit = PG_UNIT_NONE;
			batch_end(st, st->committed, c->err);
		} else {
			st->in_unit = PG_UNIT_NONE;
			run_batch(st);
		}
		break;
	}
	if (!sync)
		st->last_result_ms = now;
}

/* A failed batch leaves its transaction aborted (a sync does not end it): end it first. */
static int end_aborted(struct pg_conn *c)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN};

	if (PQtransactionStatus(c->pq) == PQTRANS_IDLE)
		return 0;
	return pg_conn_send(c, "ROLLBACK", NULL, own);
}

/* Send the queued job operations as one transaction, unless one is in flight. */
static void run_batch(struct pgstore *st)
{
	struct pg_conn *c = &st->main;
	struct pg_slot begin = {.kind = PG_SLOT_BEGIN}, commit = {.kind = PG_SLOT_COMMIT};
	struct store_req *r;

	if (st->in_unit != PG_UNIT_NONE)
		return;
	if (c->state != PGC_READY || !st->registered) {
		/* down: no wait for a server that may be gone for minutes */
		struct store_req *head = st->inq;
		st->inq = st->inq_tail = NULL;
		if (head)
			fail_list(st, head,
			          st->down_why[0] ? st->down_why : "PostgreSQL is not connected");
		return;
	}
	if (!st->inq)
		return;
	c->err[0] = '\0';
	st->committed = 0;
	/* (read committed whatever the server's default: a limited claim counts after its
	 * lock, pg_claim.sql) */
	if (end_aborted(c) < 0 ||
	    pg_conn_send(c, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, begin) < 0)
		goto lost;
	st->in_unit = PG_UNIT_BATCH;
	while (st->batch_n < st->cfg.max_batch && (r = store_list_pop(&st->inq, &st->inq_tail))) {
		size_t sent = c->nslots;
		if (!st->solo_next &&
		    pg_many_take(st, r)) { /* one statement for its group, below */
			store_list_append(&st->batch, &st->batch_tail, r);
			st->batch_n++;
			continue;
		}
		if (pg_op_send(st, c, r) < 0) {
			if (c->state != PGC_READY || c->nslots != sent || !r->rc) {
				/* part of it went out (its results would name a request answered),
				 * or libpq refused to send: the connection is in doubt */
				if (!r->rc)
					store_fail(r, "db", "PostgreSQL: %s", c->err);
				store_list_append(&st->batch, &st->batch_tail, r);
				goto lost;
			}
			pg_answer(st, r); /* refused before anything was sent (invalid input) */
			continue;
		}
		store_list_append(&st->batch, &st->batch_tail, r);
		st->batch_n++;
	}
	st->solo_next = 0;
	/* the results so far leave the server before COMMIT runs, so the COMMIT's own
	 * answer times its WAL flush (the sync metrics) */
	if (pg_many_send(st, c) < 0 || PQsendFlushRequest(c->pq) != 1 ||
	    pg_conn_send(c, "COMMIT", NULL, commit) < 0 || pg_conn_sync(c) < 0)
		goto lost;
	return;
lost:
	pg_conn_close(c);
	pg_main_state(c, 0);
}

/* A unit of the driver's own statements (heartbeat, registration) on the main connection. */
int pg_own_send(struct pgstore *st, const char *sql, const struct pg_params *p, pg_own_fn *own)
{
	struct pg_conn *c = &st->main;
	struct pg_slot slot = {.kind = PG_SLOT_OWN, .own = own};

	if (st->in_unit != PG_UNIT_NONE || c->state != PGC_READY)
		return -1;
	if (end_aborted(c) < 0 || pg_conn_send(c, sql, p, slot) < 0 || pg_conn_sync(c) < 0) {
		pg_conn_close(c);
		pg_main_state(c, 0);
		return -1;
	}
	st->in_unit = PG_UNIT_OWN;
	return 0;
}

void pg_batch_lost(struct pgstore *st)
{
	if (st->in_unit == PG_UNIT_BATCH) {
		struct store_req *head = st->batch;
		st->batch = st->batch_tail = NULL;
		st->batch_n = 0;
		st->culprit = NULL;
		st->group_failed = 0;
		pg_many_clear(st);
		fail_list(st, head, st->down_why);
	}
	st->in_unit = PG_UNIT_NONE;
	run_batch(st); /* fails what is queued */
}

static void on_run(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_batch(arg);
}

/* ---- the driver's calls -------------------------------------------------------------- */

static void pg_submit(struct store *b, struct store_req *r)
{
	struct pgstore *st = (struct pgstore *)b;

	st->pending++;
	if (r->op == STORE_REQUEUE || (r->op == STORE_FINISH && !r->tx))
		pg_live_del(st, r->lease); /* the run is over here, whatever the answer */
	if (st->stopping) {
		store_fail(r, "stopping", "the store is closing");
		pg_answer(st, r);
		return;
	}
	if (r->op == STORE_SQL || r->op == STORE_TX_BEGIN || r->op == STORE_TX_END || r->tx) {
		/* (a job operation inside db:tx, jobs.enqueue say, joins that transaction) */
		pg_tx_submit(st, r);
		return;
	}
	r->next = NULL;
	store_list_append(&st->inq, &st->inq_tail, r);
	event_active(st->run_ev, EV_TIMEOUT, 0);
}

static void pg_poll(struct store *b)
{
	(void)b; /* everything happens in the connections' callbacks */
}

static int64_t pg_epoch(const struct store *b)
{
	return ((const struct pgstore *)b)->node;
}

static size_t pg_pending(const struct store *b)
{
	return ((const struct pgstore *)b)->pending;
}

static size_t pg_held(const struct store *b)
{
	(void)b;
	return 0; /* a user transaction holds a pool connection, never the others' requests */
}

static void pg_get_stats(struct store *b, struct store_stats *out)
{
	*out = ((struct pgstore *)b)->stats;
}

static void pg_set_wake(struct store *b, store_wake_fn *fn, void *arg)
{
	struct pgstore *st = (struct pgstore *)b;

	st->wake = fn;
	st->wake_arg = arg;
}

static void on_close_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void pg_close(struct store *b)
{
	struct pgstore *st = (struct pgstore *)b;

	/* what is queued goes out, and the batch in flight is answered, before the end */
	run_batch(st);
	if (st->main.state == PGC_READY && st->in_unit != PG_UNIT_NONE) {
		/* the loop has stopped: run it for this alone, for at most CLOSE_WAIT_MS */
		double until = clock_mono_ms() + CLOSE_WAIT_MS;
		struct timeval tick = {0, 100000};
		struct event *t = evtimer_new(st->base, on_close_tick, NULL);
		while (st->main.state == PGC_READY && st->in_unit != PG_UNIT_NONE &&
		       clock_mono_ms() < until) {
			if (t)
				evtimer_add(t, &tick); /* EVLOOP_ONCE returns at the latest then */
			if (event_base_loop(st->base, EVLOOP_ONCE) < 0)
				break;
		}
		if (t)
			event_free(t);
	}
	st->stopping = 1;
	pg_tx_close(st);
	if (st->main.state == PGC_READY) {
		struct pg_params p;
		PQexitPipelineMode(st->main.pq);
		PQsetnonblocking(st->main.pq, 0);
		pg_params_init(&p);
		pg_param_i64(&p, st->node);
		PQclear(PQexecParams(st->main.pq, "DELETE FROM awaitd_nodes WHERE id = $1", 1, NULL,
		                     p.v, NULL, NULL, 0));
	}
	pg_conn_close(&st->main);
	fail_list(st, st->batch,
	          "the store is closing: the batch in flight may or may not have"
	          " committed");
	st->batch = st->batch_tail = NULL;
	fail_list(st, st->inq, "the store is closing");
	st->inq = st->inq_tail = NULL;
	if (st->answers)
		on_answers(-1, 0, st);
	if (st->run_ev)
		event_free(st->run_ev);
	if (st->answer_ev)
		event_free(st->answer_ev);
	free(st->main.slots);
	pg_node_free(st);
	pg_many_free(st);
	free(st->conninfo);
	free(st->migrations_dir);
	free(st);
}

static const struct store_ops pg_ops = {
    .close = pg_close,
    .epoch = pg_epoch,
    .submit = pg_submit,
    .poll = pg_poll,
    .pending = pg_pending,
    .held = pg_held,
    .get_stats = pg_get_stats,
    .set_wake = pg_set_wake,
};

struct store *store_pg_open(struct event_base *base, const struct store_config *cfg,
                            int64_t *requeued, char *err, size_t errlen)
{
	struct pgstore *st = calloc(1, sizeof *st);

	if (!st) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	st->drv.ops = &pg_ops;
	st->cfg = *cfg;
	st->base = base;
	st->main.st = st;
	st->main.on_result = on_main_result;
	st->main.on_state = pg_main_state;
	histo_init(&st->stats.batch, histo_le_count, HISTO_LE_COUNT_N);
	histo_init(&st->stats.fsync, histo_le_fast, HISTO_LE_FAST_N);
	st->conninfo = strdup(cfg->path);
	st->migrations_dir = strdup(cfg->migrations_dir);
	st->run_ev = event_new(base, -1, 0, on_run, st);
	st->answer_ev = event_new(base, -1, 0, on_answers, st);
	if (!st->conninfo || !st->migrations_dir || !st->run_ev || !st->answer_ev ||
	    pg_node_init(st) < 0) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	if (pg_conn_open_blocking(&st->main, st->conninfo, err, errlen) < 0 ||
	    pg_migrate(st, &st->main, requeued, err, errlen) < 0)
		goto fail;
	if (pg_conn_attach(&st->main) < 0) {
		errbuf_set(err, errlen, "PostgreSQL: %s", st->main.err);
		goto fail;
	}
	if (pg_tx_open(st, err, errlen) < 0)
		goto fail;
	st->registered = 1;
	pg_node_beat_start(st);
	return &st->drv;
fail:
	pg_close(&st->drv);
	return NULL;
}
