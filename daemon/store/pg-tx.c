/*
 * pg-tx.c: application SQL on PostgreSQL, on the pool's connections.
 *
 * A statement outside a transaction takes any free connection and runs
 * alone (autocommit). A user transaction (db:tx) takes a connection for
 * its whole life: TX_BEGIN sends BEGIN (and, for a named step, reads the
 * journal: a step journaled already is not run again), its statements run
 * on that connection and answer at once, TX_END journals the step in the
 * same transaction and commits, or rolls back. Unlike SQLite, where one
 * transaction holds the writer, PostgreSQL runs the pool's transactions at
 * once; others wait for a free connection. Each statement of a
 * transaction runs under a savepoint, so a failed one (a constraint) is
 * undone alone, as in SQLite, and the transaction goes on.
 *
 * Every statement runs under statement_timeout: max_statement_ms, or the
 * task's deadline if sooner. A transaction open longer than tx_timeout_ms
 * is rolled back (checked at each of its requests and once a second).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errbuf.h"
#include "pg-int.h"

static void pump(struct pgstore *st);

static struct pg_conn *conn_of_tx(struct pgstore *st, int64_t tx)
{
	for (int i = 0; i < PG_POOL; i++)
		if (st->pool[i].tx == tx && st->pool[i].state == PGC_READY)
			return &st->pool[i];
	return NULL;
}

static struct pg_conn *free_conn(struct pgstore *st)
{
	for (int i = 0; i < PG_POOL; i++) {
		struct pg_conn *c = &st->pool[i];
		if (c->state == PGC_READY && !c->tx && !c->cur)
			return c;
	}
	return NULL;
}

/* The statement timeout for r, in ms (0: none). */
static long timeout_ms(struct pgstore *st, const struct store_req *r)
{
	double ms = st->cfg.max_statement_ms;

	if (r->deadline > 0) {
		double left = r->deadline - clock_mono_ms();
		if (left < 1)
			left = 1;
		if (ms <= 0 || left < ms)
			ms = left;
	}
	return ms > 0 ? (long)ceil(ms) : 0;
}

/* Send application SQL r on c: the timeout, [SAVEPOINT,] the statement [, RELEASE], sync. */
static int send_sql(struct pgstore *st, struct pg_conn *c, struct store_req *r)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN}, stmt = {.kind = PG_SLOT_REQ, .r = r, .step = 1};
	int n = 0, rc = -1;
	char *sql, tmo[32];
	const char **vals = NULL;
	int *lens = NULL, *fmts = NULL;
	Oid *types = NULL;
	char(*num)[32] = NULL;
	struct pg_params p;

	if (pg_sql_allowed(r) < 0)
		return -1;
	sql = pg_sql_translate(r->sql, &n);
	if (!sql)
		return store_fail(r, "out_of_memory", "out of memory");
	if (n != r->nparams) {
		free(sql);
		return store_fail(r, "invalid",
		                  "the statement has %d placeholders for %d parameters", n,
		                  r->nparams);
	}
	if (n > 0) {
		vals = calloc((size_t)n, sizeof *vals);
		lens = calloc((size_t)n, sizeof *lens);
		fmts = calloc((size_t)n, sizeof *fmts);
		types = calloc((size_t)n, sizeof *types);
		num = calloc((size_t)n, sizeof *num);
		if (!vals || !lens || !fmts || !types || !num) {
			store_fail(r, "out_of_memory", "out of memory");
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		const struct store_val *v = &r->params[i];
		switch (v->type) {
		case STORE_NULL:
			break;
		case STORE_INT:
			snprintf(num[i], sizeof num[i], "%lld", (long long)v->i);
			vals[i] = num[i];
			types[i] = 20; /* int8 */
			break;
		case STORE_REAL:
			snprintf(num[i], sizeof num[i], "%.17g", v->d);
			vals[i] = num[i];
			types[i] = 701; /* float8 */
			break;
		case STORE_TEXT:
			vals[i] = v->p;
			break;
		case STORE_BLOB:
			vals[i] = v->p ? v->p : "";
			lens[i] = (int)v->n;
			fmts[i] = 1;
			types[i] = 17; /* bytea, binary */
			break;
		}
	}
	snprintf(tmo, sizeof tmo, "%ld", timeout_ms(st, r));
	pg_params_init(&p);
	pg_param_text(&p, tmo);
	if (pg_conn_send(c, "SELECT set_config('statement_timeout', $1, false)", &p, own) < 0 ||
	    (r->tx && pg_conn_send(c, "SAVEPOINT s", NULL, own) < 0) ||
	    pg_conn_send_raw(c, sql, n, types, vals, lens, fmts, stmt) < 0 ||
	    (r->tx && pg_conn_send(c, "RELEASE s", NULL, own) < 0) || pg_conn_sync(c) < 0) {
		store_fail(r, "db", "PostgreSQL: %s", c->err);
		goto out;
	}
	rc = 0;
out:
	free(sql);
	free(vals);
	free(lens);
	free(fmts);
	free(types);
	free(num);
	return rc;
}

/* TX_BEGIN: BEGIN, and the journal's row when the transaction is a named step. */
static int send_begin(struct pg_conn *c, struct store_req *r)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN}, step = {.kind = PG_SLOT_REQ, .r = r, .step = 2};
	struct pg_params p;

	if (pg_conn_send(c, "BEGIN", NULL, own) < 0)
		return -1;
	if (r->name) {
		pg_params_init(&p);
		pg_param_i64(&p, r->job_id);
		pg_param_i64(&p, r->seq);
		pg_param_text(&p, r->name);
		if (pg_conn_send(
		        c,
		        "SELECT seq, name, result FROM steps WHERE job_id = $1 AND (seq = $2"
		        " OR (name = $3 AND kind IN ('tx', 'step')))",
		        &p, step) < 0)
			return -1;
	}
	return pg_conn_sync(c);
}

/* TX_END: [journal the step,] COMMIT; or ROLLBACK. */
static int send_end(struct pg_conn *c, struct store_req *r)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN}, put = {.kind = PG_SLOT_REQ, .r = r, .step = 3};
	struct pg_params p;
	char now[32];

	if (!r->flag)
		return pg_conn_send(c, "ROLLBACK", NULL, own) < 0 ? -1 : pg_conn_sync(c);
	if (r->name) {
		snprintf(now, sizeof now, "%lld", (long long)store_now());
		pg_params_init(&p);
		pg_param_i64(&p, r->job_id);
		pg_param_i64(&p, r->seq);
		pg_param_text(&p, r->name);
		pg_param_text(&p, r->text ? r->text : "[]");
		pg_param_text(&p, now);
		if (pg_conn_send(
		        c,
		        "INSERT INTO steps (job_id, seq, name, kind, result, at) VALUES ($1,"
		        " $2, $3, 'tx', $4, $5)",
		        &p, put) < 0)
			return -1;
	}
	if (pg_conn_send(c, "COMMIT", NULL, own) < 0)
		return -1;
	return pg_conn_sync(c);
}

/*
 * A job operation inside the user transaction (jobs.enqueue, jobs.signal,
 * jobs.get in db:tx): its statements under a savepoint, on c, so it commits
 * or rolls back with the transaction.
 */
static int send_job_op(struct pgstore *st, struct pg_conn *c, struct store_req *r)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN};
	size_t before = c->nslots;

	if (pg_conn_send(c, "SAVEPOINT s", NULL, own) < 0)
		return -1;
	if (pg_op_send(st, c, r) < 0) {
		if (c->nslots == before + 1 &&
		    r->rc) { /* refused (invalid): take the savepoint back */
			if (pg_conn_send(c, "RELEASE s", NULL, own) < 0 || pg_conn_sync(c) < 0)
				return -1;
			c->got = 1;
			return 0; /* answered at the unit's end, with r's error */
		}
		return -1;
	}
	if (pg_conn_send(c, "RELEASE s", NULL, own) < 0)
		return -1;
	return pg_conn_sync(c);
}

/* Start r on c. 0, or -1 with r failed and answered. */
static void start(struct pgstore *st, struct pg_conn *c, struct store_req *r)
{
	int rc;

	c->cur = r;
	c->got = 0;
	c->cleanup = 0;
	c->err[0] = '\0';
	if (r->op == STORE_TX_BEGIN) {
		c->tx = r->tx;
		c->tx_started = clock_mono_ms();
		rc = send_begin(c, r);
	} else if (r->op == STORE_TX_END) {
		rc = send_end(c, r);
	} else if (r->op != STORE_SQL) {
		rc = send_job_op(st, c, r);
		if (rc < 0 && c->state == PGC_READY && !c->nslots) {
			c->cur = NULL; /* refused before anything was sent */
			pg_answer(st, r);
			return;
		}
	} else {
		rc = send_sql(st, c, r);
		if (rc < 0 && c->state == PGC_READY && !c->nslots) {
			/* refused before anything was sent */
			c->cur = NULL;
			pg_answer(st, r);
			return;
		}
	}
	if (rc < 0) {
		if (!r->rc)
			store_fail(r, "db", "PostgreSQL: %s", c->err);
		pg_conn_close(c);
		if (c->tx) /* its owner's next request: "timeout", not "no such transaction" */
			store_dead_tx_add(&st->dead, c->tx);
		c->tx = 0;
		c->cur = NULL;
		pg_answer(st, r);
	}
}

/* A request that names a transaction no connection holds: failed at once. */
static int gone(struct pgstore *st, struct store_req *r)
{
	if (store_dead_tx_has(&st->dead, r->tx, r->op == STORE_TX_END)) {
		if (r->op != STORE_TX_END || r->flag)
			store_fail(
			    r, "timeout",
			    "the transaction was open longer than %.0f ms, or lost its connection,"
			    " and was rolled back",
			    st->cfg.tx_timeout_ms);
	} else {
		store_fail(r, "invalid", "no such open transaction");
	}
	pg_answer(st, r);
	return 1;
}

/* Whether the TX_BEGIN of tx waits in the list (for a free connection). */
static int begin_waits(const struct store_req *list, int64_t tx)
{
	for (; list; list = list->next)
		if (list->op == STORE_TX_BEGIN && list->tx == tx)
			return 1;
	return 0;
}

/* Give the waiting requests what connections there are, in order. */
static void pump(struct pgstore *st)
{
	struct store_req *keep = NULL, *keep_tail = NULL, *r;
	double now = clock_mono_ms();

	while ((r = store_list_pop(&st->txq, &st->txq_tail))) {
		struct pg_conn *c;
		if (r->tx && r->op != STORE_TX_BEGIN) {
			c = conn_of_tx(st, r->tx);
			if (!c && begin_waits(keep, r->tx)) {
				/* db:tx sends its first statement without awaiting its BEGIN */
				store_list_append(&keep, &keep_tail, r);
				continue;
			}
			if (!c) {
				gone(st, r);
				continue;
			}
			if (c->cur) {
				store_list_append(&keep, &keep_tail, r);
				continue;
			}
		} else if (!(c = free_conn(st))) {
			store_list_append(&keep, &keep_tail, r);
			continue;
		}
		start(st, c, r);
	}
	st->txq = keep;
	st->txq_tail = keep_tail;
	if (!st->txq)
		return;
	/* work waits: connections that are down try again (after their backoff) */
	for (int i = 0; i < PG_POOL; i++) {
		struct pg_conn *c = &st->pool[i];
		if (c->state == PGC_DOWN && !st->stopping && now >= c->retry_at)
			pg_conn_start(c, st->conninfo);
	}
	if (!free_conn(st) && st->pool_ev) {
		struct timeval tv = {0, 200000};
		evtimer_add(st->pool_ev, &tv);
	}
}

static void on_pool_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

/* The unit of c->cur is over: answer it, or first undo what its failure left. */
static void unit_end(struct pg_conn *c)
{
	struct pgstore *st = c->st;
	struct store_req *r = c->cur;
	PGTransactionStatusType ts = PQtransactionStatus(c->pq);
	struct pg_slot own = {.kind = PG_SLOT_OWN};
	const char *undo = NULL;

	if (!r->rc && !c->got && r->op == STORE_SQL)
		store_fail(r, "db", "PostgreSQL: %s",
		           c->err[0] ? c->err : "no answer to the statement");
	if (!c->cleanup) {
		if (r->op != STORE_TX_BEGIN && r->op != STORE_TX_END && r->tx &&
		    ts == PQTRANS_INERROR)
			undo = "ROLLBACK TO s"; /* the failed statement alone is undone */
		else if (r->op == STORE_TX_BEGIN && (r->rc || r->journaled) && ts != PQTRANS_IDLE)
			undo = "ROLLBACK"; /* journaled already, or failed: no transaction */
		else if (r->op != STORE_TX_BEGIN && !r->tx && ts != PQTRANS_IDLE)
			undo = "ROLLBACK";
		else if (r->op == STORE_TX_END && ts != PQTRANS_IDLE)
			undo = "ROLLBACK"; /* the COMMIT failed (the journal's row, a constraint) */
	}
	if (r->op == STORE_TX_BEGIN && (r->rc || r->journaled))
		c->tx = 0;
	if (r->op == STORE_TX_END)
		c->tx = 0;
	if (undo) {
		c->cleanup = 1;
		if (pg_conn_send(c, undo, NULL, own) == 0 &&
		    (strcmp(undo, "ROLLBACK TO s") != 0 ||
		     pg_conn_send(c, "RELEASE s", NULL, own) == 0) &&
		    pg_conn_sync(c) == 0)
			return; /* answered at the end of that unit */
		pg_conn_close(c);
		if (c->tx)
			store_dead_tx_add(&st->dead, c->tx);
		c->tx = 0;
	}
	c->cur = NULL;
	pg_answer(st, r);
	pump(st);
}

static void on_pool_result(struct pg_conn *c, const struct pg_slot *slot, PGresult *res)
{
	struct store_req *r = c->cur;
	ExecStatusType s = PQresultStatus(res);
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;

	if (!r)
		return;
	switch (slot->kind) {
	case PG_SLOT_REQ:
		c->got = 1;
		if (r->op != STORE_SQL && r->op != STORE_TX_BEGIN && r->op != STORE_TX_END) {
			if (ok)
				pg_op_collect(r, slot->step,
				              res); /* a job operation (send_job_op) */
			else if (s != PGRES_PIPELINE_ABORTED && !r->rc)
				pg_fail(r, NULL, res, c);
		} else if (slot->step == 1) { /* the application's statement */
			if (ok)
				pg_rows_collect(r, res);
			else if (s != PGRES_PIPELINE_ABORTED)
				pg_fail(r, NULL, res, c);
		} else if (slot->step == 2) { /* TX_BEGIN's journal row */
			if (ok)
				pg_read_step(r, res);
			else if (s != PGRES_PIPELINE_ABORTED)
				pg_fail(r, "reading the step journal", res, c);
		} else if (!ok && s != PGRES_PIPELINE_ABORTED) { /* TX_END's journal row */
			const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			if (code && !strcmp(code, "23505"))
				store_fail(r, "nondeterministic",
				           "step %lld \"%s\" of job %lld is journaled already",
				           (long long)r->seq, r->name, (long long)r->job_id);
			else
				pg_fail(r, "journaling the step", res, c);
		}
		break;
	case PG_SLOT_OWN:
		if (!ok && s != PGRES_PIPELINE_ABORTED && !r->rc && !c->cleanup)
			pg_fail(r,
			        r->op == STORE_TX_END && r->flag ? "committing the transaction"
			                                         : NULL,
			        res, c);
		else if (ok && r->op == STORE_TX_END && r->flag && !r->rc && !c->cleanup &&
		         !strcmp(PQcmdStatus(res), "ROLLBACK"))
			/* a COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK */
			store_fail(r, "db", "committing the transaction: it was rolled back");
		break;
	case PG_SLOT_SYNC:
		unit_end(c);
		break;
	default:
		break;
	}
}

static void on_pool_state(struct pg_conn *c, int up)
{
	struct pgstore *st = c->st;
	struct store_req *r = c->cur;

	if (up) {
		c->retry_at = 0;
		pump(st);
		return;
	}
	c->retry_at = clock_mono_ms() + 1000;
	if (c->tx)
		store_dead_tx_add(&st->dead, c->tx);
	c->tx = 0;
	c->cur = NULL;
	if (r) {
		if (!r->rc)
			store_fail(r, "db", "%s", c->err);
		pg_answer(st, r);
	}
	pump(st);
}

void pg_tx_submit(struct pgstore *st, struct store_req *r)
{
	r->next = NULL;
	store_list_append(&st->txq, &st->txq_tail, r);
	pump(st);
}

void pg_tx_reap(struct pgstore *st)
{
	double now = clock_mono_ms();

	for (int i = 0; i < PG_POOL; i++) {
		struct pg_conn *c = &st->pool[i];
		if (c->state != PGC_READY || !c->tx || c->cur ||
		    now - c->tx_started <= st->cfg.tx_timeout_ms)
			continue;
		/* its owner is late or gone: roll back (the connection goes back to the pool) */
		store_dead_tx_add(&st->dead, c->tx);
		c->tx = 0;
		pg_conn_close(c);
		c->retry_at = 0;
	}
	pump(st);
}

int pg_tx_open(struct pgstore *st, char *err, size_t errlen)
{
	st->pool_ev = evtimer_new(st->base, on_pool_timer, st);
	if (!st->pool_ev) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < PG_POOL; i++) {
		struct pg_conn *c = &st->pool[i];
		c->st = st;
		c->id = i + 1;
		c->on_result = on_pool_result;
		c->on_state = on_pool_state;
		if (pg_conn_open_blocking(c, st->conninfo, err, errlen) < 0)
			return -1;
		if (pg_conn_attach(c) < 0) {
			errbuf_set(err, errlen, "PostgreSQL: %s", c->err);
			return -1;
		}
	}
	return 0;
}

void pg_tx_close(struct pgstore *st)
{
	struct store_req *r;

	for (int i = 0; i < PG_POOL; i++) {
		struct pg_conn *c = &st->pool[i];
		if (c->cur) {
			store_fail(c->cur, "stopping", "the store is closing");
			pg_answer(st, c->cur);
			c->cur = NULL;
		}
		pg_conn_close(c);
		free(c->slots);
		c->slots = NULL;
	}
	while ((r = store_list_pop(&st->txq, &st->txq_tail))) {
		store_fail(r, "stopping", "the store is closing");
		pg_answer(st, r);
	}
	if (st->pool_ev)
		event_free(st->pool_ev);
	st->pool_ev = NULL;
}
