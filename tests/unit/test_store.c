/*
 * test_store.c: the SQLite store through its public interface (store.h),
 * on a real event_base and a real database file in a fresh mkdtemp
 * directory per test, with the repository's migrations.
 *
 * A request is submitted and the loop run until its done callback has
 * run (call()); a persistent 5 ms tick keeps EVLOOP_ONCE from blocking,
 * so the helpers can give up after 10 s instead of hanging, and spin()
 * can run the loop for a while to show that something is NOT answered.
 *
 * Covered: opening (WAL, epochs, the directory lock, migration and
 * configuration errors, a read-only database), STORE_SQL (value types,
 * rows, changes/last_id, errors), user transactions (commit, rollback,
 * deferral of other requests, the timeout), step journals, every job
 * operation, crash recovery at reopen, group commit, and closing with
 * requests in flight.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "store.h"
#include "testutil.h"

#ifndef AWAITD_SOURCE_DIR
#error "AWAITD_SOURCE_DIR must name the source tree (it holds migrations/)"
#endif

#define MIGRATIONS AWAITD_SOURCE_DIR "/migrations"
#define T0         1600000000000LL /* ms, wall: a fixed "now" for the job operations */
#define WAIT_MS    10000           /* how long a helper waits for an answer before failing */

struct fx {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct event *tick; /* keeps EVLOOP_ONCE returning */
	struct store_config cfg;
	struct store *st;
	int64_t requeued;
	char err[1024];
	int chmodded; /* the read-only test changed permissions */
};

/* ---- plumbing ------------------------------------------------------------------------ */

static void fx_open(struct fx *fx)
{
	fx->requeued = -1;
	fx->st = store_open(fx->base, &fx->cfg, &fx->requeued, fx->err, sizeof fx->err);
	if (!fx->st)
		fail_msg("store_open: %s", fx->err);
}

static void fx_reopen(struct fx *fx)
{
	store_close(fx->st);
	fx->st = NULL;
	fx_open(fx);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	struct timeval tv = {0, 5000};

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/test_store.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof fx->path, "%s/awaitd.db", fx->dir);
	fx->base = event_base_new();
	if (!fx->base)
		return -1;
	fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
	if (!fx->tick || event_add(fx->tick, &tv) < 0)
		return -1;
	store_config_defaults(&fx->cfg);
	fx->cfg.path = fx->path;
	fx->cfg.migrations_dir = MIGRATIONS;
	*state = fx;
	fx_open(fx);
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	store_close(fx->st);
	event_free(fx->tick);
	event_base_free(fx->base);
	if (fx->chmodded) {
		chmod(fx->dir, 0755);
		chmod(fx->path, 0644);
	}
	rm_rf(fx->dir);
	free(fx);
	return 0;
}

static void on_flag(struct store_req *r)
{
	*(int *)r->arg = 1;
}

/* Answers counted, then freed. */
struct tally {
	int n, failed;
};

static void on_tally(struct store_req *r)
{
	struct tally *t = r->arg;

	t->n++;
	if (r->rc != 0)
		t->failed++;
	store_req_free(r);
}

/* Run the loop until *flag (fails after WAIT_MS). */
static void wait_flag(struct fx *fx, const int *flag)
{
	double end = mono_ms() + WAIT_MS;

	while (!*flag) {
		if (mono_ms() > end)
			fail_msg("no answer from the store within %d ms", WAIT_MS);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
}

/* Submit r; its answer is counted in t, then freed. */
static void submit_tally(struct fx *fx, struct store_req *r, struct tally *t)
{
	r->done = on_tally;
	r->arg = t;
	store_submit(fx->st, r);
}

static void wait_tally(struct fx *fx, const struct tally *t, int n)
{
	double end = mono_ms() + WAIT_MS;

	while (t->n < n) {
		if (mono_ms() > end)
			fail_msg("%d of %d answers within %d ms", t->n, n, WAIT_MS);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
}

/* Run the loop for ms. */
static void spin(struct fx *fx, double ms)
{
	double end = mono_ms() + ms;

	while (mono_ms() < end)
		event_base_loop(fx->base, EVLOOP_ONCE);
}

static void submit(struct fx *fx, struct store_req *r, int *flag)
{
	*flag = 0;
	r->done = on_flag;
	r->arg = flag;
	store_submit(fx->st, r);
}

/* Submit r and run the loop until it is answered; the caller frees r. */
static struct store_req *call(struct fx *fx, struct store_req *r)
{
	int flag;

	submit(fx, r, &flag);
	wait_flag(fx, &flag);
	return r;
}

static char *xstrdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	assert_non_null(p);
	return p;
}

static struct store_req *req(enum store_op op)
{
	struct store_req *r = store_req_new(op);

	assert_non_null(r);
	return r;
}

static void assert_ok(const struct store_req *r)
{
	if (r->rc != 0)
		fail_msg("op %d failed: %s: %s", (int)r->op, r->err.code, r->err.msg);
}

static void assert_err(const struct store_req *r, const char *code)
{
	if (r->rc != -1)
		fail_msg("op %d: expected error \"%s\", got rc %d", (int)r->op, code, r->rc);
	assert_string_equal(r->err.code, code);
}

/* ---- SQL helpers --------------------------------------------------------------------- */

static struct store_req *sql_req(int64_t tx, const char *sql, int nparams)
{
	struct store_req *r = req(STORE_SQL);

	r->tx = tx;
	r->sql = xstrdup(sql);
	if (nparams) {
		r->params = calloc((size_t)nparams, sizeof *r->params);
		assert_non_null(r->params);
		r->nparams = nparams;
	}
	return r;
}

static void p_int(struct store_req *r, int i, int64_t v)
{
	r->params[i].type = STORE_INT;
	r->params[i].i = v;
}

static void p_bytes(struct store_req *r, int i, enum store_vtype type, const void *p, size_t n)
{
	r->params[i].type = type;
	r->params[i].p = malloc(n + 1);
	assert_non_null(r->params[i].p);
	memcpy(r->params[i].p, p, n);
	r->params[i].p[n] = '\0';
	r->params[i].n = n;
}

static const struct store_val *cell(const struct store_req *r, size_t row, int col)
{
	assert_true(row < r->rows.nrows);
	assert_true(col < r->rows.ncols);
	return &r->rows.vals[row * (size_t)r->rows.ncols + (size_t)col];
}

/* Run sql in tx, assert success, return the request (caller frees). */
static struct store_req *sql(struct fx *fx, int64_t tx, const char *text)
{
	struct store_req *r = call(fx, sql_req(tx, text, 0));

	assert_ok(r);
	return r;
}

static void exec_ok(struct fx *fx, int64_t tx, const char *text)
{
	store_req_free(sql(fx, tx, text));
}

/* The one integer of a one-row, one-column query. */
static int64_t q_int_tx(struct fx *fx, int64_t tx, const char *text)
{
	struct store_req *r = sql(fx, tx, text);
	int64_t v;

	assert_int_equal(r->rows.nrows, 1);
	assert_int_equal(r->rows.ncols, 1);
	assert_int_equal(cell(r, 0, 0)->type, STORE_INT);
	v = cell(r, 0, 0)->i;
	store_req_free(r);
	return v;
}

static int64_t q_int(struct fx *fx, const char *text)
{
	return q_int_tx(fx, 0, text);
}

/*
 * An integer read from the daemon's own tables, which application SQL
 * cannot reach: through a second, read-only connection to the file (it
 * sees what the store committed, and every answered request is).
 */
static int64_t peek_int(struct fx *fx, const char *text)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, text, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* SQL that must fail with code and exactly msg (msg NULL: any). */
static void sql_fails(struct fx *fx, int64_t tx, const char *text, const char *code,
                      const char *msg)
{
	struct store_req *r = call(fx, sql_req(tx, text, 0));

	assert_err(r, code);
	if (msg)
		assert_string_equal(r->err.msg, msg);
	store_req_free(r);
}

/* ---- transaction and step helpers ------------------------------------------------------ */

static struct store_req *tx_begin(int64_t tx, int64_t job, int64_t seq, const char *name)
{
	struct store_req *r = req(STORE_TX_BEGIN);

	r->tx = tx;
	r->job_id = job;
	r->seq = seq;
	r->name = xstrdup(name);
	return r;
}

static struct store_req *tx_end(int64_t tx, int flag, int64_t job, int64_t seq, const char *name,
                                const char *text)
{
	struct store_req *r = req(STORE_TX_END);

	r->tx = tx;
	r->flag = flag;
	r->job_id = job;
	r->seq = seq;
	r->name = xstrdup(name);
	r->text = xstrdup(text);
	return r;
}

static void begin_ok(struct fx *fx, int64_t tx)
{
	struct store_req *r = call(fx, tx_begin(tx, 0, 0, NULL));

	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
}

static void end_ok(struct fx *fx, int64_t tx, int flag)
{
	struct store_req *r = call(fx, tx_end(tx, flag, 0, 0, NULL, NULL));

	assert_ok(r);
	store_req_free(r);
}

static struct store_req *step_req(enum store_op op, int64_t job, int64_t seq, const char *name,
                                  const char *text)
{
	struct store_req *r = req(op);

	r->job_id = job;
	r->seq = seq;
	r->name = xstrdup(name);
	r->text = xstrdup(text);
	return r;
}

/* ---- job helpers ----------------------------------------------------------------------- */

static struct store_req *enqueue_req(const char *name, const char *key, int64_t run_at,
                                     int64_t priority, int64_t now)
{
	struct store_req *r = req(STORE_ENQUEUE);

	r->name = xstrdup(name);
	r->key = xstrdup(key);
	r->text = xstrdup("{}");
	r->run_at = run_at;
	r->priority = priority;
	r->max_attempts = 1;
	r->now = now;
	return r;
}

/* Enqueue a new job; returns its id. */
static int64_t enq(struct fx *fx, const char *name, int64_t run_at, int64_t priority,
                   int64_t max_attempts)
{
	struct store_req *r = enqueue_req(name, NULL, run_at, priority, T0 - 100000);
	int64_t id;

	r->max_attempts = max_attempts;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->created, 1);
	id = r->out_id;
	assert_true(id > 0);
	store_req_free(r);
	return id;
}

static struct store_req *claim(struct fx *fx, const char *name, int64_t n, int64_t now)
{
	struct store_req *r = req(STORE_CLAIM);

	r->name = xstrdup(name);
	r->n = n;
	r->now = now;
	call(fx, r);
	assert_ok(r);
	return r;
}

/* Claim exactly one job of name at now: its id, its lease in *lease. */
static int64_t claim_one(struct fx *fx, const char *name, int64_t now, int64_t *lease)
{
	struct store_req *r = claim(fx, name, 1, now);
	int64_t id;

	assert_int_equal(r->njobs, 1);
	id = r->jobs[0].id;
	if (lease)
		*lease = r->jobs[0].lease;
	store_req_free(r);
	return id;
}

/* FINISH; returns changed. */
static int finish(struct fx *fx, int64_t id, int64_t lease, const char *state, const char *text,
                  int64_t run_at, int64_t now)
{
	struct store_req *r = req(STORE_FINISH);
	int changed;

	r->id = id;
	r->lease = lease;
	r->name = xstrdup(state);
	r->text = xstrdup(text);
	r->run_at = run_at;
	r->now = now;
	r->n = 1;
	call(fx, r);
	assert_ok(r);
	changed = r->changed;
	store_req_free(r);
	return changed;
}

/* Nothing of name is ready just before at, and NEXT_DUE says at. */
static void assert_due(struct fx *fx, const char *name, int64_t at)
{
	struct store_req *r = claim(fx, name, 1, at - 1);

	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	r = req(STORE_NEXT_DUE);
	r->name = xstrdup(name);
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->out_id, at);
	store_req_free(r);
}

static struct store_req *get(struct fx *fx, int64_t id, int flag)
{
	struct store_req *r = req(STORE_GET);

	r->id = id;
	r->flag = flag;
	call(fx, r);
	assert_ok(r);
	return r;
}

/* A job's state, copied into buf. */
static const char *state_of(struct fx *fx, int64_t id, char *buf, size_t len)
{
	struct store_req *r = get(fx, id, 0);

	assert_int_equal(r->njobs, 1);
	snprintf(buf, len, "%s", r->jobs[0].state);
	store_req_free(r);
	return buf;
}

static struct store_req *by_id(struct fx *fx, enum store_op op, int64_t id, int64_t now)
{
	struct store_req *r = req(op);

	r->id = id;
	r->now = now;
	call(fx, r);
	assert_ok(r);
	return r;
}

static void counts(struct fx *fx, int64_t out[STORE_NSTATES])
{
	struct store_req *r = call(fx, req(STORE_COUNTS));

	assert_ok(r);
	memcpy(out, r->counts, sizeof r->counts);
	store_req_free(r);
}

/* ---- opening --------------------------------------------------------------------------- */

static void test_open_wal_and_epochs(void **state)
{
	struct fx *fx = *state;
	sqlite3 *db;
	sqlite3_stmt *s;

	assert_int_equal(store_epoch(fx->st), 1);
	assert_int_equal(fx->requeued, 0);
	assert_int_equal(store_pending(fx->st), 0);
	/* the boundary: application SQL reaches neither PRAGMAs nor the daemon's tables */
	sql_fails(fx, 0, "PRAGMA journal_mode", "invalid", NULL);
	sql_fails(fx, 0, "SELECT pid FROM executor", "invalid",
	          "\"executor\" is one of the daemon's own tables, out of reach of application SQL");
	assert_int_equal(peek_int(fx, "SELECT pid FROM executor"), (int64_t)getpid());

	fx_reopen(fx);
	assert_int_equal(store_epoch(fx->st), 2);
	assert_int_equal(fx->requeued, 0);
	store_close(fx->st);
	fx->st = NULL;

	/* the file itself is in WAL mode, with the epoch of the last open */
	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT epoch FROM executor WHERE id = 1", -1, &s, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(s, 0), 2);
	sqlite3_finalize(s);
	sqlite3_close(db);

	fx_open(fx);
	assert_int_equal(store_epoch(fx->st), 3);
}

static void test_second_open_is_locked(void **state)
{
	struct fx *fx = *state;
	struct store *second;

	second = store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err);
	assert_null(second);
	assert_non_null(strstr(fx->err, "locked"));
	assert_non_null(strstr(fx->err, fx->dir));
	/* the first is unharmed */
	assert_int_equal(q_int(fx, "SELECT 41 + 1"), 42);
	assert_int_equal(store_epoch(fx->st), 1);

	/* released at close: the next open works, and the refused one took no epoch */
	fx_reopen(fx);
	assert_int_equal(store_epoch(fx->st), 2);
}

/* ---- durable waits and signals -------------------------------------------------------- */

/*
 * STORE_WAIT for job at step seq (key: the signal's name, NULL a sleep),
 * by the run that holds the job now (its lease). Not freed.
 */
static struct store_req *wait_at(struct fx *fx, int64_t job, int64_t seq, const char *key,
                                 int64_t deadline, int64_t now)
{
	struct store_req *g = get(fx, job, 0);
	struct store_req *r = req(STORE_WAIT);

	r->lease = g->njobs ? g->jobs[0].lease : 0;
	store_req_free(g);

	r->job_id = job;
	r->seq = seq;
	r->name = xstrdup(key ? key : "sleep");
	r->key = xstrdup(key);
	r->run_at = deadline;
	r->now = now;
	return call(fx, r);
}

/* FINISH to waiting: park job at seq for key (NULL: a sleep) until deadline; changed. */
static int park(struct fx *fx, int64_t id, int64_t lease, int64_t seq, const char *key,
                int64_t deadline, int64_t now)
{
	struct store_req *r = req(STORE_FINISH);
	int changed;

	r->id = id;
	r->lease = lease;
	r->name = xstrdup("waiting");
	r->seq = seq;
	r->key = xstrdup(key);
	r->run_at = deadline;
	r->now = now;
	call(fx, r);
	assert_ok(r);
	changed = r->changed;
	store_req_free(r);
	return changed;
}

/* SIGNAL name with payload to job id; the answer (not freed). */
static struct store_req *signal_job(struct fx *fx, int64_t id, const char *name,
                                    const char *payload, int64_t now)
{
	struct store_req *r = req(STORE_SIGNAL);

	r->id = id;
	r->name = xstrdup(name);
	r->text = xstrdup(payload);
	r->now = now;
	return call(fx, r);
}

/* A new job of name "w", claimed and parked at step 1 for key until deadline: its id. */
static int64_t parked_job(struct fx *fx, const char *key, int64_t deadline, int64_t now)
{
	int64_t l, id = enq(fx, "w", T0 - 1000, 0, 1);

	claim_one(fx, "w", now, &l);
	store_req_free(wait_at(fx, id, 1, key, deadline, now));
	assert_int_equal(park(fx, id, l, 1, key, deadline, now), 1);
	return id;
}

static void test_wait_sleep_parks_and_resumes(void **state)
{
	struct fx *fx = *state;
	int64_t l, l2, c[STORE_NSTATES], id = enq(fx, "nap", T0 - 1000, 0, 1);
	struct store_req *r;
	char buf[32];

	claim_one(fx, "nap", T0, &l);
	r = wait_at(fx, id, 1, NULL, T0 + 1000, T0);
	assert_ok(r);
	assert_false(r->journaled);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->out_id, T0 + 1000); /* park until then */
	store_req_free(r);
	assert_int_equal(park(fx, id, l, 1, NULL, T0 + 1000, T0), 1);
	assert_int_equal(park(fx, id, l, 1, NULL, T0 + 1000, T0), 0); /* fenced by the lease */
	assert_string_equal(state_of(fx, id, buf, sizeof buf), "waiting");
	counts(fx, c);
	assert_int_equal(c[STORE_WAITING], 1);
	assert_int_equal(c[STORE_RUNNING], 0);
	r = get(fx, id, 0);
	assert_int_equal(r->jobs[0].wait_seq, 1);
	assert_null(r->jobs[0].wait_for);
	assert_int_equal(r->jobs[0].wait_until, T0 + 1000);
	store_req_free(r);

	assert_due(fx, "nap", T0 + 1000); /* not before its time; NEXT_DUE knows when */

	/* woken: the same attempt goes on, and the replay finds the first deadline */
	r = claim(fx, "nap", 1, T0 + 1000);
	assert_int_equal(r->njobs, 1);
	assert_true(r->jobs[0].resumed);
	assert_true(r->jobs[0].has_steps);
	assert_int_equal(r->jobs[0].attempt, 1);
	l2 = r->jobs[0].lease;
	store_req_free(r);
	r = wait_at(fx, id, 1, NULL, T0 + 999999, T0 + 1000);
	assert_ok(r);
	assert_true(r->journaled);
	assert_string_equal(r->out_text, "{\"n\":0,\"v\":[]}");
	store_req_free(r);
	assert_int_equal(peek_int(fx, "SELECT count(*) FROM steps WHERE kind = 'sleep'"), 1);
	r = wait_at(fx, id, 1, NULL, 0, T0 + 2000); /* a later replay: journaled */
	assert_true(r->journaled);
	store_req_free(r);
	assert_int_equal(finish(fx, id, l2, "succeeded", "1", 0, T0 + 1001), 1);
	r = get(fx, id, 0);
	assert_int_equal(r->jobs[0].attempt, 1);
	store_req_free(r);

	/* a REQUEUE (shutdown) of a resumed run leaves it waiting, ready, attempt kept */
	id = enq(fx, "nap", T0 - 1000, 0, 1);
	claim_one(fx, "nap", T0, &l);
	assert_int_equal(park(fx, id, l, 1, NULL, T0 + 10, T0), 1);
	claim_one(fx, "nap", T0 + 10, &l);
	r = req(STORE_REQUEUE);
	r->id = id;
	r->lease = l;
	r->flag = 1;
	r->now = T0 + 20;
	call(fx, r);
	assert_int_equal(r->changed, 1);
	store_req_free(r);
	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "waiting");
	assert_int_equal(r->jobs[0].attempt, 1);
	assert_int_equal(r->jobs[0].run_at, T0 + 20);
	store_req_free(r);
}

static void test_signals_buffered_in_order(void **state)
{
	struct fx *fx = *state;
	int64_t l, id = enq(fx, "w", T0 - 1000, 0, 1);
	struct store_req *r;

	r = signal_job(fx, 424242, "go", "1", T0);
	assert_ok(r);
	assert_int_equal(r->njobs, 0); /* no such job */
	store_req_free(r);
	/* sent before the job waits: kept, in order */
	store_req_free(signal_job(fx, id, "go", "{\"a\":1}", T0));
	store_req_free(signal_job(fx, id, "go", "2", T0));
	r = signal_job(fx, id, "go", NULL, T0); /* no payload: null */
	assert_int_equal(r->changed, 1);
	store_req_free(r);
	claim_one(fx, "w", T0, &l);
	r = wait_at(fx, id, 1, "go", 0, T0);
	assert_true(r->journaled);
	assert_string_equal(r->out_text, "{\"n\":1,\"v\":[{\"a\":1}]}");
	store_req_free(r);
	r = wait_at(fx, id, 2, "go", 0, T0);
	assert_string_equal(r->out_text, "{\"n\":1,\"v\":[2]}");
	store_req_free(r);
	r = wait_at(fx, id, 3, "go", 0, T0);
	assert_string_equal(r->out_text, "{\"n\":1,\"v\":[null]}");
	store_req_free(r);
	/* none left: park with no deadline, never ready by time */
	r = wait_at(fx, id, 4, "go", 0, T0);
	assert_false(r->journaled);
	assert_int_equal(r->out_id, 0);
	store_req_free(r);
	assert_int_equal(park(fx, id, l, 4, "go", 0, T0), 1);
	r = claim(fx, "w", 1, INT64_MAX - 1);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	/* another name does not wake it; its own does */
	store_req_free(signal_job(fx, id, "other", "0", T0 + 5));
	r = claim(fx, "w", 1, T0 + 5);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	store_req_free(signal_job(fx, id, "go", "\"last\"", T0 + 6));
	claim_one(fx, "w", T0 + 6, &l);
	r = wait_at(fx, id, 4, "go", 0, T0 + 6);
	assert_string_equal(r->out_text, "{\"n\":1,\"v\":[\"last\"]}");
	store_req_free(r);
	assert_int_equal(peek_int(fx, "SELECT count(*) FROM signals WHERE taken IS NULL"), 1);

	/* finished: refused, nothing stored */
	assert_int_equal(finish(fx, id, l, "succeeded", "1", 0, T0 + 7), 1);
	r = signal_job(fx, id, "go", "1", T0 + 8);
	assert_ok(r);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->changed, 0);
	store_req_free(r);
	assert_int_equal(peek_int(fx, "SELECT count(*) FROM signals"), 5);
}

static void test_wait_while_running_gets_a_signal(void **state)
{
	struct fx *fx = *state;
	int64_t l, id = enq(fx, "w", T0 - 1000, 0, 1);
	struct store_req *r;

	claim_one(fx, "w", T0, &l);
	r = wait_at(fx, id, 1, "go", T0 + 5000, T0);
	assert_int_equal(r->out_id, T0 + 5000);
	store_req_free(r);
	/* the signal comes between the wait's check and the park: the park is ready at once */
	store_req_free(signal_job(fx, id, "go", "7", T0 + 1));
	assert_int_equal(park(fx, id, l, 1, "go", T0 + 5000, T0 + 2), 1);
	claim_one(fx, "w", T0 + 2, &l);
	r = wait_at(fx, id, 1, "go", T0 + 99999, T0 + 3);
	assert_string_equal(r->out_text, "{\"n\":1,\"v\":[7]}");
	store_req_free(r);
}

static void test_wait_timeout_and_replay_checks(void **state)
{
	struct fx *fx = *state;
	int64_t l, id = parked_job(fx, "go", T0 + 100, T0);
	struct store_req *r;

	claim_one(fx, "w", T0 + 100, &l);
	/* the same wait, reached again, with a signal of another name only */
	r = wait_at(fx, id, 1, "stop", 0, T0 + 100);
	assert_err(r, "nondeterministic");
	assert_non_null(strstr(r->err.msg, "signal \"go\""));
	store_req_free(r);
	r = wait_at(fx, id, 1, NULL, T0 + 100, T0 + 100);
	assert_err(r, "nondeterministic");
	store_req_free(r);
	/* its deadline passed: it ends with a timeout, journaled */
	r = wait_at(fx, id, 1, "go", T0 + 99999, T0 + 100);
	assert_true(r->journaled);
	assert_non_null(strstr(r->out_text, "\"code\":\"timeout\""));
	assert_non_null(strstr(r->out_text, "\"n\":2"));
	store_req_free(r);
	/* a wait where the journal has something else */
	store_req_free(call(fx, step_req(STORE_STEP_PUT, id, 2, "charge", "[1]")));
	r = wait_at(fx, id, 2, "go", 0, T0 + 100);
	assert_err(r, "nondeterministic");
	assert_non_null(strstr(r->err.msg, "charge"));
	store_req_free(r);
	/* a step named like a wait is no conflict: waits are found by their place */
	r = step_req(STORE_STEP_PUT, id, 3, "go", "[1]");
	call(fx, r);
	assert_ok(r);
	store_req_free(r);
	/* a run that is over (another lease) cannot wait: a signal is not taken for it */
	store_req_free(signal_job(fx, id, "late", "1", T0 + 100));
	r = req(STORE_WAIT);
	r->job_id = id;
	r->seq = 4;
	r->name = xstrdup("late");
	r->key = xstrdup("late");
	r->lease = l + 12345;
	r->now = T0 + 100;
	call(fx, r);
	assert_err(r, "invalid");
	assert_non_null(strstr(r->err.msg, "is over"));
	store_req_free(r);
	assert_int_equal(peek_int(fx, "SELECT count(*) FROM signals WHERE taken IS NULL"), 1);
}

static void test_cancel_waiting(void **state)
{
	struct fx *fx = *state;
	int64_t l, id = parked_job(fx, "go", 0, T0);
	struct store_req *r;

	r = by_id(fx, STORE_CANCEL, id, T0 + 5);
	assert_int_equal(r->changed, 2); /* it wakes to be cancelled at its wait */
	assert_string_equal(r->jobs[0].state, "waiting");
	assert_true(r->jobs[0].cancelling);
	store_req_free(r);
	claim_one(fx, "w", T0 + 5, &l);
	r = wait_at(fx, id, 1, "go", 0, T0 + 5);
	assert_ok(r);
	assert_int_equal(r->changed, 1); /* cancelled, not parked */
	assert_false(r->journaled);
	store_req_free(r);
	assert_int_equal(finish(fx, id, l, "cancelled", "{}", 0, T0 + 6), 1);
	r = by_id(fx, STORE_CANCEL, id, T0 + 7);
	assert_int_equal(r->changed, 0);
	store_req_free(r);
	/* retried, it waits again instead of being cancelled at once */
	r = by_id(fx, STORE_RETRY, id, T0 + 8);
	assert_int_equal(r->changed, 1);
	assert_false(r->jobs[0].cancelling);
	store_req_free(r);
	claim_one(fx, "w", T0 + 8, &l);
	r = wait_at(fx, id, 1, "go", 0, T0 + 8);
	assert_int_equal(r->changed, 0);
	assert_false(r->journaled);
	store_req_free(r);
}

/*
 * A database made by the migrations in `old` (copied alone into a
 * directory of its own), holding the rows `fill` inserts, keeps them through
 * every migration of the repository: `check` (one row, one text column)
 * reads `want` afterwards, and no foreign key is broken.
 */
static void migrate_keeps(struct fx *fx, const char *const *old, const char *fill,
                          const char *check, const char *want)
{
	struct store_config cfg = fx->cfg;
	struct store *st;
	char mig[160], sub[160], dbpath[192], from[256], to[256], cmd[700];
	sqlite3 *db;
	sqlite3_stmt *s;

	snprintf(mig, sizeof mig, "%s/mig", fx->dir);
	snprintf(sub, sizeof sub, "%s/sub", fx->dir);
	assert_int_equal(mkdir(mig, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(dbpath, sizeof dbpath, "%s/old.db", sub);
	for (int i = 0; old[i]; i++) {
		snprintf(from, sizeof from, "%s/%s", MIGRATIONS, old[i]);
		snprintf(to, sizeof to, "%s/%s", mig, old[i]);
		snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
		assert_int_equal(system(cmd), 0);
	}
	cfg.path = dbpath;
	cfg.migrations_dir = mig;
	st = store_open(fx->base, &cfg, NULL, fx->err, sizeof fx->err);
	if (!st)
		fail_msg("store_open (old migrations): %s", fx->err);
	store_close(st);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, fill, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	cfg.migrations_dir = MIGRATIONS;
	st = store_open(fx->base, &cfg, NULL, fx->err, sizeof fx->err);
	if (!st)
		fail_msg("store_open (all migrations): %s", fx->err);
	store_close(st);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, check, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), want);
	sqlite3_finalize(s);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_foreign_key_check", -1, &s, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	/* the journal and signals still belong to their job: deleting it takes them along */
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON; DELETE FROM jobs WHERE id = 7;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT (SELECT count(*) FROM steps) +"
	                                    " (SELECT count(*) FROM signals)",
	                                    -1, &s, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* A database made before 0003_waits keeps its jobs and journal through it. */
static void test_migration_to_waits_keeps_data(void **state)
{
	static const char *const old[] = {"0001_core.sql", "0002_shop.sql", NULL};

	migrate_keeps(*state, old,
	              "INSERT INTO jobs (id, name, state, args, run_at, created_at, attempt)"
	              " VALUES (7, 'old', 'failed', '{\"x\":1}', 5, 1, 1);"
	              "INSERT INTO steps VALUES (7, 1, 'debit', 'tx', '[1]', 2);",
	              "SELECT j.state || j.args || s.name || s.kind FROM jobs j"
	              " JOIN steps s ON s.job_id = j.id",
	              "failed{\"x\":1}debittx");
}

/* ... and one made before 0007_fanin (jobs, steps and signals rebuilt) keeps them. */
static void test_migration_to_fanin_keeps_data(void **state)
{
	static const char *const old[] = {"0001_core.sql",     "0002_shop.sql",   "0003_waits.sql",
	                                  "0004_refunds.sql",  "0005_progress.sql",
	                                  "0006_limits.sql",   NULL};

	migrate_keeps(*state, old,
	              "INSERT INTO jobs (id, name, state, args, run_at, created_at, attempt,"
	              " progress, progress_msg, limit_key1, wait_seq, wait_for)"
	              " VALUES (7, 'old', 'waiting', '{\"x\":1}', 5, 1, 1, 0.5, 'half', 'acct-1',"
	              " 2, 'go');"
	              "INSERT INTO steps VALUES (7, 1, 'debit', 'tx', '[1]', 2);"
	              "INSERT INTO signals (job_id, name, payload, at) VALUES (7, 'go', '{}', 3);",
	              "SELECT j.state || j.args || j.progress || j.progress_msg || j.limit_key1 ||"
	              " j.wait_for || coalesce(j.fair_key, '-') || s.name || g.name FROM jobs j"
	              " JOIN steps s ON s.job_id = j.id JOIN signals g ON g.job_id = j.id",
	              "waiting{\"x\":1}0.5halfacct-1go-debitgo");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void test_open_migration_failure(void **state)
{
	struct fx *fx = *state;
	struct store_config cfg = fx->cfg;
	struct store *st2;
	char mig[160], file[256], sub[160], dbpath[192];

	/* another directory: fx->st holds the lock on fx->dir */
	snprintf(mig, sizeof mig, "%s/mig", fx->dir);
	assert_int_equal(mkdir(mig, 0755), 0);
	snprintf(file, sizeof file, "%s/0001_bad.sql", mig);
	write_file(file, "CREATE TABL x (y);");
	snprintf(sub, sizeof sub, "%s/sub", fx->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(dbpath, sizeof dbpath, "%s/other.db", sub);
	cfg.path = dbpath;
	cfg.migrations_dir = mig;
	assert_null(store_open(fx->base, &cfg, NULL, fx->err, sizeof fx->err));
	assert_non_null(strstr(fx->err, "0001_bad.sql"));
	assert_non_null(strstr(fx->err, "syntax error"));

	/* the failed open released the directory lock and took no epoch */
	cfg.migrations_dir = MIGRATIONS;
	st2 = store_open(fx->base, &cfg, NULL, fx->err, sizeof fx->err);
	if (!st2)
		fail_msg("store_open after a failed one: %s", fx->err);
	assert_int_equal(store_epoch(st2), 1);
	store_close(st2);
}

static void test_open_config_errors(void **state)
{
	struct fx *fx = *state;
	char missing[160];

	store_close(fx->st);
	fx->st = NULL;

	snprintf(missing, sizeof missing, "%s/no-migrations", fx->dir);
	fx->cfg.migrations_dir = missing;
	assert_null(store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err));
	assert_non_null(strstr(fx->err, missing));

	fx->cfg.migrations_dir = MIGRATIONS;
	fx->cfg.synchronous = "sometimes";
	assert_null(store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err));
	assert_non_null(strstr(fx->err, "synchronous"));
	assert_non_null(strstr(fx->err, "sometimes"));

	fx->cfg.synchronous = "full";
	fx->cfg.path = "/nonexistent-dir-for-awaitd-test/awaitd.db";
	assert_null(store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err));
	assert_non_null(strstr(fx->err, "/nonexistent-dir-for-awaitd-test"));

	/* a NULL error buffer is allowed */
	assert_null(store_open(fx->base, &fx->cfg, NULL, NULL, 0));

	fx->cfg.path = fx->path;
	fx_open(fx);
	assert_int_equal(store_epoch(fx->st), 2);
}

static void test_read_only_database(void **state)
{
	struct fx *fx = *state;
	char cwd[PATH_MAX];

	store_close(fx->st); /* the database now exists, migrated */
	fx->st = NULL;
	if (geteuid() != 0) {
		fx->chmodded = 1;
		assert_int_equal(chmod(fx->path, 0444), 0);
		assert_int_equal(chmod(fx->dir, 0555), 0);
		assert_null(store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err));
		assert_non_null(strstr(fx->err, "read-only"));
		assert_int_equal(chmod(fx->dir, 0755), 0);
		assert_int_equal(chmod(fx->path, 0644), 0);
		fx->chmodded = 0;
	} else {
		/*
		 * root writes through any permission: open it read-only through
		 * SQLite's URI form instead (a relative name, so that the
		 * directory the store locks is the current one).
		 */
		assert_non_null(getcwd(cwd, sizeof cwd));
		assert_int_equal(chdir(fx->dir), 0);
		fx->cfg.path = "file:awaitd.db?mode=ro";
		assert_null(store_open(fx->base, &fx->cfg, NULL, fx->err, sizeof fx->err));
		assert_int_equal(chdir(cwd), 0);
		assert_non_null(strstr(fx->err, "read-only"));
		fx->cfg.path = fx->path;
	}
	fx_open(fx);
	assert_int_equal(store_epoch(fx->st), 2);
}

/* ---- STORE_SQL --------------------------------------------------------------------------- */

static void test_sql_value_types(void **state)
{
	struct fx *fx = *state;
	static const char blob[] = {0, 1, (char)0xff, 0};
	static const char *const types[] = {"null", "integer", "real", "text", "blob"};
	struct store_req *r;

	exec_ok(fx, 0, "CREATE TABLE t (a, b, c, d, e)");
	r = sql_req(0, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", 5);
	r->params[0].type = STORE_NULL;
	p_int(r, 1, INT64_MIN + 1);
	r->params[2].type = STORE_REAL;
	r->params[2].d = 2.5;
	p_bytes(r, 3, STORE_TEXT, "h\xc3\xa9llo", 6);
	p_bytes(r, 4, STORE_BLOB, blob, sizeof blob);
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->rows.ncols, 0);
	assert_int_equal(r->rows.nrows, 0);
	assert_int_equal(r->rows.changes, 1);
	assert_int_equal(r->rows.last_id, 1);
	store_req_free(r);

	r = sql(fx, 0,
	        "SELECT a, b, c, d, e, typeof(a), typeof(b), typeof(c), typeof(d), typeof(e)"
	        " FROM t");
	assert_int_equal(r->rows.ncols, 10);
	assert_int_equal(r->rows.nrows, 1);
	assert_string_equal(r->rows.cols[0], "a");
	assert_string_equal(r->rows.cols[4], "e");
	assert_string_equal(r->rows.cols[5], "typeof(a)");
	assert_int_equal(cell(r, 0, 0)->type, STORE_NULL);
	assert_int_equal(cell(r, 0, 1)->type, STORE_INT);
	assert_true(cell(r, 0, 1)->i == INT64_MIN + 1);
	assert_int_equal(cell(r, 0, 2)->type, STORE_REAL);
	assert_true(cell(r, 0, 2)->d == 2.5);
	assert_int_equal(cell(r, 0, 3)->type, STORE_TEXT);
	assert_int_equal(cell(r, 0, 3)->n, 6);
	assert_string_equal(cell(r, 0, 3)->p, "h\xc3\xa9llo");
	assert_int_equal(cell(r, 0, 4)->type, STORE_BLOB);
	assert_int_equal(cell(r, 0, 4)->n, sizeof blob);
	assert_memory_equal(cell(r, 0, 4)->p, blob, sizeof blob);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(cell(r, 0, 5 + i)->type, STORE_TEXT);
		assert_string_equal(cell(r, 0, 5 + i)->p, types[i]);
	}
	store_req_free(r);

	/* empty text and empty blob keep their types */
	r = sql_req(0, "SELECT ?1, ?2, typeof(?2), 9223372036854775807", 2);
	p_bytes(r, 0, STORE_TEXT, "", 0);
	p_bytes(r, 1, STORE_BLOB, "", 0);
	call(fx, r);
	assert_ok(r);
	assert_int_equal(cell(r, 0, 0)->type, STORE_TEXT);
	assert_int_equal(cell(r, 0, 0)->n, 0);
	assert_string_equal(cell(r, 0, 0)->p, "");
	assert_int_equal(cell(r, 0, 1)->type, STORE_BLOB);
	assert_int_equal(cell(r, 0, 1)->n, 0);
	assert_string_equal(cell(r, 0, 2)->p, "blob");
	assert_true(cell(r, 0, 3)->i == INT64_MAX);
	store_req_free(r);
}

static void test_sql_rows_row_major(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;

	exec_ok(fx, 0, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
	exec_ok(fx, 0, "INSERT INTO t (v) VALUES ('one'), ('two'), ('three')");
	r = sql(fx, 0, "SELECT id, v AS value FROM t ORDER BY id");
	assert_int_equal(r->rows.ncols, 2);
	assert_string_equal(r->rows.cols[0], "id");
	assert_string_equal(r->rows.cols[1], "value");
	assert_int_equal(r->rows.nrows, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cell(r, i, 0)->i, (int64_t)i + 1);
		static const char *const v[] = {"one", "two", "three"};
		assert_string_equal(cell(r, i, 1)->p, v[i]);
	}
	store_req_free(r);

	/* no rows: the columns are still named */
	r = sql(fx, 0, "SELECT id, v FROM t WHERE id > 100");
	assert_int_equal(r->rows.ncols, 2);
	assert_int_equal(r->rows.nrows, 0);
	store_req_free(r);
}

static void test_sql_changes_and_last_id(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;

	exec_ok(fx, 0, "CREATE TABLE u (id INTEGER PRIMARY KEY, v)");
	r = sql(fx, 0, "INSERT INTO u (v) VALUES (1), (2), (3)");
	assert_int_equal(r->rows.changes, 3);
	assert_int_equal(r->rows.last_id, 3);
	store_req_free(r);
	r = sql(fx, 0, "UPDATE u SET v = v + 1 WHERE id >= 2");
	assert_int_equal(r->rows.changes, 2);
	store_req_free(r);
	r = sql(fx, 0, "DELETE FROM u WHERE id = 99");
	assert_int_equal(r->rows.changes, 0);
	store_req_free(r);
	r = sql(fx, 0, "INSERT INTO u (id, v) VALUES (10, 0)");
	assert_int_equal(r->rows.changes, 1);
	assert_int_equal(r->rows.last_id, 10);
	store_req_free(r);
	r = sql(fx, 0, "DELETE FROM u WHERE id < 3");
	assert_int_equal(r->rows.changes, 2);
	store_req_free(r);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM u"), 2);
}

/* store.h: changes is "rows changed by the statement": a statement that changes none reports 0. */
static void test_sql_changes_counts_only_the_statement(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t sel, create;
	size_t nrows;

	exec_ok(fx, 0, "CREATE TABLE u (id INTEGER PRIMARY KEY, v)");
	exec_ok(fx, 0, "INSERT INTO u (v) VALUES (1), (2), (3)");
	/* read, freed, then checked: a failure here leaks nothing */
	r = sql(fx, 0, "SELECT v FROM u");
	nrows = r->rows.nrows;
	sel = r->rows.changes;
	store_req_free(r);
	r = sql(fx, 0, "CREATE TABLE w (x)");
	create = r->rows.changes;
	store_req_free(r);
	assert_int_equal(nrows, 3);
	assert_int_equal(sel, 0);
	assert_int_equal(create, 0);
}

static void test_sql_errors(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;

	sql_fails(fx, 0, "SELEC 1", "db", "near \"SELEC\": syntax error");
	sql_fails(fx, 0, "SELECT * FROM nope", "db", "no such table: nope");
	sql_fails(fx, 0, "SELECT ?", "invalid", "the statement has 1 parameters, 0 values given");
	r = sql_req(0, "SELECT 1", 1);
	p_int(r, 0, 5);
	call(fx, r);
	assert_err(r, "invalid");
	assert_string_equal(r->err.msg, "the statement has 0 parameters, 1 values given");
	store_req_free(r);
	r = call(fx, sql_req(0, "", 0));
	assert_err(r, "invalid");
	assert_non_null(strstr(r->err.msg, "no SQL statement"));
	store_req_free(r);

	exec_ok(fx, 0, "CREATE TABLE k (x UNIQUE)");
	exec_ok(fx, 0, "INSERT INTO k VALUES (1)");
	r = call(fx, sql_req(0, "INSERT INTO k VALUES (1)", 0));
	assert_err(r, "db");
	assert_non_null(strstr(r->err.msg, "UNIQUE constraint failed: k.x"));
	store_req_free(r);
	/* a failure does not take the rest of its batch with it */
	{
		int f1, f2, f3;
		struct store_req *a = sql_req(0, "INSERT INTO k VALUES (2)", 0);
		struct store_req *b = sql_req(0, "INSERT INTO k VALUES (1)", 0);
		struct store_req *c = sql_req(0, "INSERT INTO k VALUES (3)", 0);

		submit(fx, a, &f1);
		submit(fx, b, &f2);
		submit(fx, c, &f3);
		wait_flag(fx, &f1);
		wait_flag(fx, &f2);
		wait_flag(fx, &f3);
		assert_ok(a);
		assert_err(b, "db");
		assert_ok(c);
		store_req_free(a);
		store_req_free(b);
		store_req_free(c);
	}
	assert_int_equal(q_int(fx, "SELECT count(*) FROM k"), 3);
	assert_int_equal(q_int(fx, "SELECT sum(x) FROM k"), 6);
}

/*
 * Transaction control in application SQL would end or reshape the store's
 * own transaction. Whatever the store does with it, an answer must not
 * lie: a request answered rc 0 is durable, one answered -1 left nothing.
 */
static void test_sql_commit_cannot_break_the_batch(void **state)
{
	struct fx *fx = *state;
	struct store_req *a, *b, *c;
	int af, bf, cf, ok = 0;
	int64_t n[STORE_NSTATES];
	char why[1200];

	/* hold the writer so that the three run as one batch when it is released */
	begin_ok(fx, 7);
	a = enqueue_req("a", NULL, 0, 0, T0);
	b = sql_req(0, "COMMIT", 0);
	c = enqueue_req("c", NULL, 0, 0, T0);
	submit(fx, a, &af);
	submit(fx, b, &bf);
	submit(fx, c, &cf);
	spin(fx, 20);
	end_ok(fx, 7, 0);
	wait_flag(fx, &af);
	wait_flag(fx, &bf);
	wait_flag(fx, &cf);
	ok = (a->rc == 0) + (c->rc == 0);
	snprintf(why, sizeof why, "a: %s %s; COMMIT: rc %d %s", a->rc ? a->err.code : "ok",
	         a->rc ? a->err.msg : "", b->rc, b->rc ? b->err.msg : "");
	store_req_free(a);
	store_req_free(b);
	store_req_free(c);
	counts(fx, n);
	if (n[STORE_QUEUED] != ok)
		fail_msg("%d enqueues answered ok but %lld jobs exist (%s)", ok,
		         (long long)n[STORE_QUEUED], why);
}

static void test_sql_release_cannot_break_a_rollback(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int rc;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	store_req_free(call(fx, sql_req(7, "RELEASE u", 0))); /* refused or not */
	r = call(fx, tx_end(7, 0, 0, 0, NULL, NULL));
	rc = r->rc;
	store_req_free(r);
	/* a rollback answered ok must have rolled back */
	if (rc == 0)
		assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 0);
}

/* ---- user transactions -------------------------------------------------------------------- */

static void test_tx_commit_is_durable(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	begin_ok(fx, 7);
	r = sql(fx, 7, "INSERT INTO t VALUES (1)");
	assert_int_equal(r->rows.changes, 1);
	store_req_free(r);
	assert_int_equal(q_int_tx(fx, 7, "SELECT count(*) FROM t"), 1);
	end_ok(fx, 7, 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
	/* the token is free again */
	sql_fails(fx, 7, "SELECT 1", "invalid", "no such open transaction");

	fx_reopen(fx);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
}

static void test_tx_rollback(void **state)
{
	struct fx *fx = *state;
	struct store_req *p, *b;
	int pf, bf;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	/* a plain write in the same batch is not the transaction's to roll back */
	p = sql_req(0, "INSERT INTO t VALUES (1)", 0);
	b = tx_begin(7, 0, 0, NULL);
	submit(fx, p, &pf);
	submit(fx, b, &bf);
	wait_flag(fx, &bf);
	assert_ok(b);
	exec_ok(fx, 7, "INSERT INTO t VALUES (2)");
	exec_ok(fx, 7, "INSERT INTO t VALUES (3)");
	assert_int_equal(q_int_tx(fx, 7, "SELECT count(*) FROM t WHERE x > 1"), 2);
	end_ok(fx, 7, 0);
	wait_flag(fx, &pf);
	assert_ok(p);
	store_req_free(p);
	store_req_free(b);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
	assert_int_equal(q_int(fx, "SELECT x FROM t"), 1);
	sql_fails(fx, 7, "SELECT 1", "invalid", "no such open transaction");

	fx_reopen(fx);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
}

static void test_tx_defers_other_requests(void **state)
{
	struct fx *fx = *state;
	struct store_req *q, *w, *b8, *e7;
	int qf, wf, b8f, e7f;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	exec_ok(fx, 0, "CREATE TABLE u (x)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	/* a read runs on a reader meanwhile, and sees only what is committed */
	q = sql_req(0, "SELECT count(*) FROM t", 0);
	submit(fx, q, &qf);
	wait_flag(fx, &qf);
	assert_ok(q);
	assert_int_equal(cell(q, 0, 0)->i, 0);
	/* a write and another transaction wait for the writer */
	w = sql_req(0, "INSERT INTO u SELECT count(*) FROM t", 0);
	submit(fx, w, &wf);
	b8 = tx_begin(8, 0, 0, NULL);
	submit(fx, b8, &b8f);
	for (int i = 0; i < 3; i++) {
		spin(fx, 50);
		assert_int_equal(wf, 0);
		assert_int_equal(b8f, 0);
	}
	/* the transaction's own requests are answered meanwhile */
	exec_ok(fx, 7, "INSERT INTO t VALUES (2)");
	assert_int_equal(wf, 0);
	assert_int_equal(b8f, 0);
	assert_int_equal(store_pending(fx->st), 2);

	e7 = tx_end(7, 1, 0, 0, NULL, NULL);
	submit(fx, e7, &e7f);
	/* the next transaction gets the writer and sees the commit */
	wait_flag(fx, &b8f);
	assert_ok(b8);
	assert_int_equal(b8->journaled, 0);
	assert_int_equal(q_int_tx(fx, 8, "SELECT count(*) FROM t"), 2);
	end_ok(fx, 8, 0);
	wait_flag(fx, &e7f);
	wait_flag(fx, &wf);
	assert_ok(e7);
	assert_ok(w);
	assert_int_equal(q_int(fx, "SELECT x FROM u"), 2); /* it ran after the transaction */
	store_req_free(q);
	store_req_free(w);
	store_req_free(b8);
	store_req_free(e7);
	assert_int_equal(store_pending(fx->st), 0);
}

/*
 * A transaction begun without waiting (db:tx's open: the BEGIN and its first
 * statement submitted back to back) while another holds the writer: both
 * wait, and once the writer is free its statement runs inside it.
 */
static void test_tx_queued_begin_and_statement(void **state)
{
	struct fx *fx = *state;
	struct store_req *b8, *q8, *e7;
	int b8f, q8f, e7f;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	b8 = tx_begin(8, 0, 0, NULL);
	submit(fx, b8, &b8f);
	q8 = sql_req(8, "SELECT count(*) FROM t", 0);
	submit(fx, q8, &q8f);
	spin(fx, 50);
	assert_int_equal(b8f, 0);
	assert_int_equal(q8f, 0);
	e7 = tx_end(7, 1, 0, 0, NULL, NULL);
	submit(fx, e7, &e7f); /* answered at the batch's commit, after 8 ends */
	wait_flag(fx, &q8f);
	assert_ok(q8);
	assert_int_equal(cell(q8, 0, 0)->i, 1); /* in transaction 8, after 7's release */
	end_ok(fx, 8, 1);
	wait_flag(fx, &b8f);
	wait_flag(fx, &e7f);
	assert_ok(b8);
	assert_ok(e7);
	store_req_free(b8);
	store_req_free(q8);
	store_req_free(e7);
}

static void test_tx_error_inside_keeps_the_transaction(void **state)
{
	struct fx *fx = *state;

	exec_ok(fx, 0, "CREATE TABLE k (x UNIQUE)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO k VALUES (1)");
	sql_fails(fx, 7, "INSERT INTO k VALUES (1)", "db", NULL);
	sql_fails(fx, 7, "SELEC", "db", NULL);
	exec_ok(fx, 7, "INSERT INTO k VALUES (2)");
	end_ok(fx, 7, 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM k"), 2);
}

static void test_tx_unknown_token(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;

	sql_fails(fx, 99, "SELECT 1", "invalid", "no such open transaction");
	r = call(fx, tx_end(99, 1, 0, 0, NULL, NULL));
	assert_err(r, "invalid");
	store_req_free(r);
}

static void test_tx_timeout_rolls_back(void **state)
{
	struct fx *fx = *state;
	struct store_req *q, *r;
	int qf;

	store_close(fx->st);
	fx->st = NULL;
	fx->cfg.tx_timeout_ms = 100;
	fx_open(fx);

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	exec_ok(fx, 0, "CREATE TABLE u (x)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	/* a plain write waits for the writer, then runs once the store takes it back */
	q = sql_req(0, "INSERT INTO u SELECT count(*) FROM t", 0);
	submit(fx, q, &qf);
	wait_flag(fx, &qf);
	assert_ok(q);
	store_req_free(q);
	assert_int_equal(q_int(fx, "SELECT x FROM u"), 0);

	r = call(fx, sql_req(7, "INSERT INTO t VALUES (2)", 0));
	assert_err(r, "timeout");
	assert_non_null(strstr(r->err.msg, "100 ms"));
	store_req_free(r);
	r = call(fx, tx_end(7, 1, 0, 0, NULL, NULL));
	assert_err(r, "timeout");
	store_req_free(r);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 0);

	/* an idle transaction with nobody waiting times out too; its rollback is harmless */
	begin_ok(fx, 9);
	exec_ok(fx, 9, "INSERT INTO t VALUES (9)");
	spin(fx, 300);
	sql_fails(fx, 9, "SELECT 1", "timeout", NULL);
	end_ok(fx, 9, 0);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 0);

	/* the writer is usable afterwards */
	begin_ok(fx, 10);
	exec_ok(fx, 10, "INSERT INTO t VALUES (10)");
	end_ok(fx, 10, 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
}

/* ---- steps ------------------------------------------------------------------------------------
 */

static void test_tx_step_journal(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t job = enq(fx, "purchase", T0, 0, 1), other = enq(fx, "purchase", T0, 0, 1);

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	r = call(fx, tx_begin(7, job, 1, "debit"));
	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	assert_null(r->out_text);
	store_req_free(r);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	r = call(fx, tx_end(7, 1, job, 1, "debit", "[42]"));
	assert_ok(r);
	store_req_free(r);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);

	/* a later attempt: the journal answers, no transaction is opened */
	r = call(fx, tx_begin(8, job, 1, "debit"));
	assert_ok(r);
	assert_int_equal(r->journaled, 1);
	assert_non_null(r->out_text);
	assert_string_equal(r->out_text, "[42]");
	store_req_free(r);
	sql_fails(fx, 8, "SELECT 1", "invalid", "no such open transaction");

	/* a different name at that seq, or that name at another seq */
	r = call(fx, tx_begin(9, job, 1, "credit"));
	assert_err(r, "nondeterministic");
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
	sql_fails(fx, 9, "SELECT 1", "invalid", "no such open transaction");
	r = call(fx, tx_begin(10, job, 2, "debit"));
	assert_err(r, "nondeterministic");
	store_req_free(r);

	/* a rolled-back step journals nothing */
	r = call(fx, tx_begin(11, job, 2, "credit"));
	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
	exec_ok(fx, 11, "INSERT INTO t VALUES (2)");
	r = call(fx, tx_end(11, 0, job, 2, "credit", "[1]"));
	assert_ok(r);
	store_req_free(r);
	r = call(fx, tx_begin(12, job, 2, "credit"));
	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
	r = call(fx, tx_end(12, 1, job, 2, "credit", "[\"c\"]"));
	assert_ok(r);
	store_req_free(r);

	/* another job has its own journal */
	r = call(fx, tx_begin(13, other, 1, "debit"));
	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
	end_ok(fx, 13, 0);

	r = get(fx, job, 1);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->rows.ncols, 5);
	assert_string_equal(r->rows.cols[0], "seq");
	assert_string_equal(r->rows.cols[1], "name");
	assert_string_equal(r->rows.cols[2], "kind");
	assert_string_equal(r->rows.cols[3], "result");
	assert_string_equal(r->rows.cols[4], "at");
	assert_int_equal(r->rows.nrows, 2);
	assert_int_equal(cell(r, 0, 0)->i, 1);
	assert_string_equal(cell(r, 0, 1)->p, "debit");
	assert_string_equal(cell(r, 0, 2)->p, "tx");
	assert_string_equal(cell(r, 0, 3)->p, "[42]");
	assert_true(cell(r, 0, 4)->i > 0);
	assert_int_equal(cell(r, 1, 0)->i, 2);
	assert_string_equal(cell(r, 1, 1)->p, "credit");
	assert_string_equal(cell(r, 1, 3)->p, "[\"c\"]");
	store_req_free(r);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
}

static void test_step_get_put(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t job = enq(fx, "pay", T0, 0, 1);

	r = call(fx, step_req(STORE_STEP_GET, job, 1, "charge", NULL));
	assert_ok(r);
	assert_int_equal(r->journaled, 0);
	assert_null(r->out_text);
	store_req_free(r);
	r = call(fx, step_req(STORE_STEP_PUT, job, 1, "charge", "[\"ch_1\"]"));
	assert_ok(r);
	store_req_free(r);
	r = call(fx, step_req(STORE_STEP_GET, job, 1, "charge", NULL));
	assert_ok(r);
	assert_int_equal(r->journaled, 1);
	assert_string_equal(r->out_text, "[\"ch_1\"]");
	store_req_free(r);

	r = call(fx, step_req(STORE_STEP_GET, job, 1, "refund", NULL));
	assert_err(r, "nondeterministic");
	assert_int_equal(r->journaled, 0);
	store_req_free(r);
	r = call(fx, step_req(STORE_STEP_GET, job, 2, "charge", NULL));
	assert_err(r, "nondeterministic");
	store_req_free(r);
	/* journaling twice is refused, under the same seq or the same name */
	r = call(fx, step_req(STORE_STEP_PUT, job, 1, "charge", "[\"ch_2\"]"));
	assert_err(r, "nondeterministic");
	store_req_free(r);
	r = call(fx, step_req(STORE_STEP_PUT, job, 2, "charge", "[\"ch_2\"]"));
	assert_err(r, "nondeterministic");
	store_req_free(r);

	r = get(fx, job, 1);
	assert_int_equal(r->rows.nrows, 1);
	assert_string_equal(cell(r, 0, 2)->p, "step");
	assert_string_equal(cell(r, 0, 3)->p, "[\"ch_1\"]");
	store_req_free(r);
}

/* ---- jobs ---------------------------------------------------------------------------------------
 */

static void test_enqueue_idempotent(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t id, c[STORE_NSTATES];
	struct store_job *j;

	r = enqueue_req("mail", "k1", 0, 3, T0);
	free(r->text);
	r->text = xstrdup("{\"to\":\"a\"}");
	r->max_attempts = 4;
	r->backoff_ms = 250;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->created, 1);
	assert_true(r->out_id > 0);
	assert_int_equal(r->njobs, 0); /* a new job is not read back (store.h) */
	id = r->out_id;
	store_req_free(r);
	r = get(fx, id, 0);
	assert_int_equal(r->njobs, 1);
	j = &r->jobs[0];
	assert_int_equal(j->id, id);
	assert_string_equal(j->name, "mail");
	assert_string_equal(j->state, "queued");
	assert_string_equal(j->args, "{\"to\":\"a\"}");
	assert_string_equal(j->key, "k1");
	assert_int_equal(j->priority, 3);
	assert_int_equal(j->attempt, 0);
	assert_int_equal(j->max_attempts, 4);
	assert_int_equal(j->backoff_ms, 250);
	assert_int_equal(j->timeout_ms, 0);
	assert_int_equal(j->run_at, T0); /* run_at 0: now */
	assert_int_equal(j->created_at, T0);
	assert_int_equal(j->started_at, 0);
	assert_int_equal(j->finished_at, 0);
	assert_int_equal(j->lease, 0);
	assert_null(j->result);
	assert_null(j->error);
	store_req_free(r);

	/* the same key: the same job, as it was */
	r = enqueue_req("mail", "k1", T0 + 999, 9, T0 + 5);
	free(r->text);
	r->text = xstrdup("{\"to\":\"b\"}");
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->created, 0);
	assert_int_equal(r->out_id, id);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, id);
	assert_string_equal(r->jobs[0].args, "{\"to\":\"a\"}");
	assert_int_equal(r->jobs[0].priority, 3);
	assert_int_equal(r->jobs[0].created_at, T0);
	store_req_free(r);

	/* no key: always a new job; max_attempts 0 means 1; a timeout is kept */
	r = enqueue_req("mail", NULL, T0 + 10, 0, T0);
	r->max_attempts = 0;
	r->timeout_ms = 1500;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->created, 1);
	assert_true(r->out_id != id);
	{
		int64_t id2 = r->out_id;
		store_req_free(r);
		r = get(fx, id2, 0);
	}
	assert_int_equal(r->jobs[0].max_attempts, 1);
	assert_int_equal(r->jobs[0].timeout_ms, 1500);
	assert_int_equal(r->jobs[0].run_at, T0 + 10);
	assert_null(r->jobs[0].key);
	store_req_free(r);
	r = call(fx, enqueue_req("mail", NULL, 0, 0, T0));
	assert_ok(r);
	assert_int_equal(r->created, 1);
	store_req_free(r);

	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 3);
}

static void test_claim_order(void **state)
{
	struct fx *fx = *state;
	int64_t a = enq(fx, "work", T0 - 3000, 0, 1);
	int64_t b = enq(fx, "work", T0 - 1000, 5, 1);
	int64_t c = enq(fx, "work", T0 - 2000, 5, 1);
	int64_t d = enq(fx, "work", T0 + 60000, 9, 1);
	int64_t e = enq(fx, "other", T0 - 5000, 10, 1);
	int64_t leases[5] = {0};
	struct store_req *r;
	const int64_t want[3] = {c, b, a};

	/* higher priority first, then earlier run_at; never a future one, never another name */
	for (int i = 0; i < 3; i++) {
		r = claim(fx, "work", 1, T0);
		assert_int_equal(r->njobs, 1);
		assert_int_equal(r->jobs[0].id, want[i]);
		assert_string_equal(r->jobs[0].state, "running");
		assert_int_equal(r->jobs[0].attempt, 1);
		assert_true(r->jobs[0].lease != 0);
		assert_int_equal(r->jobs[0].started_at, T0);
		leases[i] = r->jobs[0].lease;
		store_req_free(r);
	}
	r = claim(fx, "work", 10, T0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);

	assert_int_equal(claim_one(fx, "work", T0 + 60000, &leases[3]), d);
	assert_int_equal(claim_one(fx, "other", T0, &leases[4]), e);
	for (int i = 0; i < 5; i++)
		for (int k = i + 1; k < 5; k++)
			assert_true(leases[i] != leases[k]);
}

static void test_claim_at_most_n(void **state)
{
	struct fx *fx = *state;
	int64_t ids[5];
	struct store_req *r;

	for (int i = 0; i < 5; i++)
		ids[i] = enq(fx, "bulk", T0 - 100, 0, 1);
	r = claim(fx, "bulk", 0, T0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	r = claim(fx, "bulk", 3, T0);
	assert_int_equal(r->njobs, 3);
	/* equal priority and run_at: the oldest three (in any order) */
	for (size_t i = 0; i < 3; i++) {
		int found = 0;
		for (int k = 0; k < 3; k++)
			found += r->jobs[i].id == ids[k];
		assert_int_equal(found, 1);
		assert_string_equal(r->jobs[i].state, "running");
	}
	store_req_free(r);
	r = claim(fx, "bulk", 3, T0);
	assert_int_equal(r->njobs, 2);
	store_req_free(r);
	r = claim(fx, "bulk", 3, T0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
}

static void test_finish_is_fenced(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t lease, id = enq(fx, "f", T0, 0, 1);
	char st[32];

	assert_int_equal(claim_one(fx, "f", T0, &lease), id);
	assert_int_equal(finish(fx, id, lease + 1, "succeeded", "{\"ok\":1}", 0, T0 + 10), 0);
	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "running");
	assert_int_equal(r->jobs[0].lease, lease);
	assert_null(r->jobs[0].result);
	store_req_free(r);

	r = req(STORE_FINISH);
	r->id = id;
	r->lease = lease;
	r->name = xstrdup("succeeded");
	r->text = xstrdup("{\"ok\":1}");
	r->text2 = xstrdup("[{\"task\":1}]");
	r->n = 1;
	r->now = T0 + 10;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 1);
	store_req_free(r);

	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "succeeded");
	assert_string_equal(r->jobs[0].result, "{\"ok\":1}");
	assert_null(r->jobs[0].error);
	assert_int_equal(r->jobs[0].finished_at, T0 + 10);
	assert_int_equal(r->jobs[0].lease, 0);
	assert_int_equal(r->jobs[0].attempt, 1);
	store_req_free(r);
	/* finished: the same lease changes nothing any more */
	assert_int_equal(finish(fx, id, lease, "dead", "{}", 0, T0 + 20), 0);
	assert_string_equal(state_of(fx, id, st, sizeof st), "succeeded");

	r = by_id(fx, STORE_SPANS, id, 0);
	assert_string_equal(r->out_text, "[{\"task\":1}]");
	assert_int_equal(r->njobs, 1);
	store_req_free(r);

	/* an unknown state is refused */
	r = req(STORE_FINISH);
	r->id = id;
	r->lease = lease;
	r->name = xstrdup("bogus");
	call(fx, r);
	assert_err(r, "invalid");
	store_req_free(r);
}

static void test_finish_failed_runs_later(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t lease, lease2, id = enq(fx, "f", T0, 0, 3);

	assert_int_equal(claim_one(fx, "f", T0, &lease), id);
	assert_int_equal(finish(fx, id, lease, "failed", "{\"code\":\"boom\"}", T0 + 5000, T0 + 10),
	                 1);
	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "failed");
	assert_string_equal(r->jobs[0].error, "{\"code\":\"boom\"}");
	assert_null(r->jobs[0].result);
	assert_int_equal(r->jobs[0].run_at, T0 + 5000);
	assert_int_equal(r->jobs[0].finished_at, 0);
	assert_int_equal(r->jobs[0].lease, 0);
	store_req_free(r);

	assert_due(fx, "f", T0 + 5000);
	r = claim(fx, "f", 1, T0 + 5000);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, id);
	assert_int_equal(r->jobs[0].attempt, 2);
	lease2 = r->jobs[0].lease;
	assert_true(lease2 != lease);
	store_req_free(r);
	/* the first attempt's lease is stale */
	assert_int_equal(finish(fx, id, lease, "succeeded", "1", 0, T0 + 6000), 0);
	assert_int_equal(finish(fx, id, lease2, "dead", "{\"code\":\"x\"}", 0, T0 + 6000), 1);
	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "dead");
	assert_int_equal(r->jobs[0].finished_at, T0 + 6000);
	store_req_free(r);
}

static void test_requeue(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t lease, id = enq(fx, "rq", T0, 0, 1);

	assert_int_equal(claim_one(fx, "rq", T0, &lease), id);
	r = req(STORE_REQUEUE);
	r->id = id;
	r->lease = lease + 1;
	r->now = T0 + 7;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 0);
	store_req_free(r);

	r = req(STORE_REQUEUE);
	r->id = id;
	r->lease = lease;
	r->now = T0 + 7;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 1);
	store_req_free(r);
	r = get(fx, id, 0);
	assert_string_equal(r->jobs[0].state, "queued");
	assert_int_equal(r->jobs[0].attempt, 0);
	assert_int_equal(r->jobs[0].lease, 0);
	assert_int_equal(r->jobs[0].run_at, T0 + 7);
	store_req_free(r);

	/* queued now: the same request changes nothing */
	r = req(STORE_REQUEUE);
	r->id = id;
	r->lease = lease;
	r->now = T0 + 8;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 0);
	store_req_free(r);

	r = claim(fx, "rq", 1, T0 + 7);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].attempt, 1);
	store_req_free(r);
}

static void test_cancel(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t ls, lr, lf;
	int64_t s = enq(fx, "s", T0, 0, 1), run = enq(fx, "r", T0, 0, 1);
	int64_t f = enq(fx, "f", T0, 0, 2), q = enq(fx, "q", T0, 0, 1);

	claim_one(fx, "s", T0, &ls);
	assert_int_equal(finish(fx, s, ls, "succeeded", "1", 0, T0), 1);
	claim_one(fx, "r", T0, &lr);
	claim_one(fx, "f", T0, &lf);
	assert_int_equal(finish(fx, f, lf, "failed", "{}", T0 + 1000, T0), 1);

	r = by_id(fx, STORE_CANCEL, q, T0 + 50);
	assert_int_equal(r->changed, 1);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, q);
	assert_string_equal(r->jobs[0].state, "cancelled");
	assert_int_equal(r->jobs[0].finished_at, T0 + 50);
	assert_non_null(r->jobs[0].error);
	assert_non_null(strstr(r->jobs[0].error, "\"cancelled\""));
	store_req_free(r);
	/* cancelled: not claimable, and a second cancel changes nothing */
	r = claim(fx, "q", 1, T0 + 100);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	r = by_id(fx, STORE_CANCEL, q, T0 + 60);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->jobs[0].finished_at, T0 + 50);
	store_req_free(r);

	r = by_id(fx, STORE_CANCEL, s, T0 + 50);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, s);
	assert_string_equal(r->jobs[0].state, "succeeded");
	store_req_free(r);

	r = by_id(fx, STORE_CANCEL, run, T0 + 50);
	assert_int_equal(r->changed, 0);
	assert_string_equal(r->jobs[0].state, "running");
	store_req_free(r);

	/* a failed job waiting for its retry can be cancelled */
	r = by_id(fx, STORE_CANCEL, f, T0 + 50);
	assert_int_equal(r->changed, 1);
	assert_string_equal(r->jobs[0].state, "cancelled");
	store_req_free(r);
	r = claim(fx, "f", 1, T0 + 5000);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);

	r = by_id(fx, STORE_CANCEL, 9999, T0);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
}

static void test_retry(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t l;
	int64_t dead = enq(fx, "d", T0, 0, 1), can = enq(fx, "c", T0, 0, 1);
	int64_t q = enq(fx, "q", T0, 0, 1), ok = enq(fx, "ok", T0, 0, 1),
	        f = enq(fx, "f", T0, 0, 3);

	claim_one(fx, "d", T0, &l);
	assert_int_equal(finish(fx, dead, l, "dead", "{\"code\":\"x\"}", 0, T0 + 1), 1);
	r = by_id(fx, STORE_RETRY, dead, T0 + 100);
	assert_int_equal(r->changed, 1);
	assert_int_equal(r->njobs, 1);
	assert_string_equal(r->jobs[0].state, "queued");
	assert_int_equal(r->jobs[0].attempt, 1);
	assert_true(r->jobs[0].max_attempts >= r->jobs[0].attempt + 1);
	assert_int_equal(r->jobs[0].max_attempts, 2);
	assert_int_equal(r->jobs[0].run_at, T0 + 100);
	assert_int_equal(r->jobs[0].finished_at, 0);
	store_req_free(r);
	r = claim(fx, "d", 1, T0 + 100);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].attempt, 2);
	store_req_free(r);

	store_req_free(by_id(fx, STORE_CANCEL, can, T0));
	r = by_id(fx, STORE_RETRY, can, T0 + 100);
	assert_int_equal(r->changed, 1);
	assert_string_equal(r->jobs[0].state, "queued");
	assert_true(r->jobs[0].max_attempts >= r->jobs[0].attempt + 1);
	store_req_free(r);

	claim_one(fx, "f", T0, &l);
	assert_int_equal(finish(fx, f, l, "failed", "{}", T0 + 99999, T0), 1);
	r = by_id(fx, STORE_RETRY, f, T0 + 100);
	assert_int_equal(r->changed, 1);
	assert_string_equal(r->jobs[0].state, "queued");
	assert_int_equal(r->jobs[0].run_at, T0 + 100);
	store_req_free(r);

	r = by_id(fx, STORE_RETRY, q, T0 + 100);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->njobs, 1);
	assert_string_equal(r->jobs[0].state, "queued");
	store_req_free(r);

	claim_one(fx, "ok", T0, &l);
	assert_int_equal(finish(fx, ok, l, "succeeded", "1", 0, T0 + 1), 1);
	r = by_id(fx, STORE_RETRY, ok, T0 + 100);
	assert_int_equal(r->changed, 0);
	assert_string_equal(r->jobs[0].state, "succeeded");
	store_req_free(r);

	r = by_id(fx, STORE_RETRY, 9999, T0);
	assert_int_equal(r->changed, 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
}

static void test_get(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t id = enq(fx, "g", T0, 0, 1);

	store_req_free(call(fx, step_req(STORE_STEP_PUT, id, 2, "second", "[2]")));
	store_req_free(call(fx, step_req(STORE_STEP_PUT, id, 1, "first", "[1]")));

	r = get(fx, id, 0);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, id);
	assert_string_equal(r->jobs[0].name, "g");
	assert_int_equal(r->rows.nrows, 0);
	store_req_free(r);

	r = get(fx, id, 1);
	assert_int_equal(r->rows.nrows, 2);
	assert_int_equal(cell(r, 0, 0)->i, 1);
	assert_string_equal(cell(r, 0, 1)->p, "first");
	assert_int_equal(cell(r, 1, 0)->i, 2);
	assert_string_equal(cell(r, 1, 1)->p, "second");
	store_req_free(r);

	r = get(fx, 9999, 1);
	assert_int_equal(r->njobs, 0);
	assert_int_equal(r->rows.nrows, 0);
	store_req_free(r);
}

static struct store_req *list(struct fx *fx, const char *name, const char *st, int64_t n)
{
	struct store_req *r = req(STORE_LIST);

	r->name = xstrdup(name);
	r->text = xstrdup(st);
	r->n = n;
	call(fx, r);
	assert_ok(r);
	return r;
}

static void assert_ids(const struct store_req *r, size_t n, const int64_t *ids)
{
	assert_int_equal(r->njobs, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r->jobs[i].id, ids[i]);
}

static void test_list(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t a1 = enq(fx, "a", T0, 0, 1), b1 = enq(fx, "b", T0, 0, 1);
	int64_t a2 = enq(fx, "a", T0, 0, 1), a3 = enq(fx, "a", T0, 0, 1);

	store_req_free(by_id(fx, STORE_CANCEL, a2, T0));

	r = list(fx, NULL, NULL, 0);
	assert_ids(r, 4, (const int64_t[4]){a3, a2, b1, a1});
	store_req_free(r);
	r = list(fx, "a", NULL, 0);
	assert_ids(r, 3, (const int64_t[]){a3, a2, a1});
	store_req_free(r);
	r = list(fx, "a", "queued", 0);
	assert_ids(r, 2, (const int64_t[]){a3, a1});
	store_req_free(r);
	r = list(fx, NULL, "cancelled", 0);
	assert_ids(r, 1, (const int64_t[]){a2});
	store_req_free(r);
	r = list(fx, NULL, NULL, 2);
	assert_ids(r, 2, (const int64_t[]){a3, a2});
	store_req_free(r);
	r = list(fx, NULL, "running", 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	r = list(fx, "nobody", NULL, 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);

	/* no limit given: 20 */
	for (int i = 0; i < 25; i++)
		enq(fx, "c", T0, 0, 1);
	r = list(fx, "c", NULL, 0);
	assert_int_equal(r->njobs, 20);
	assert_true(r->jobs[0].id > r->jobs[19].id);
	store_req_free(r);
}

static void test_counts(void **state)
{
	struct fx *fx = *state;
	int64_t c[STORE_NSTATES], l;
	int64_t s = enq(fx, "s", T0, 0, 1), f = enq(fx, "f", T0, 0, 2), d = enq(fx, "d", T0, 0, 1);
	int64_t x = enq(fx, "x", T0, 0, 1);

	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 4);
	assert_int_equal(c[STORE_RUNNING] + c[STORE_SUCCEEDED] + c[STORE_FAILED] + c[STORE_DEAD] +
	                     c[STORE_CANCELLED],
	                 0);
	enq(fx, "q", T0, 0, 1);
	enq(fx, "q", T0, 0, 1);
	enq(fx, "r", T0, 0, 1);
	claim_one(fx, "r", T0, NULL);
	claim_one(fx, "s", T0, &l);
	finish(fx, s, l, "succeeded", "1", 0, T0);
	claim_one(fx, "f", T0, &l);
	finish(fx, f, l, "failed", "{}", T0 + 1000, T0);
	claim_one(fx, "d", T0, &l);
	finish(fx, d, l, "dead", "{}", 0, T0);
	store_req_free(by_id(fx, STORE_CANCEL, x, T0));
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 2);
	assert_int_equal(c[STORE_RUNNING], 1);
	assert_int_equal(c[STORE_SUCCEEDED], 1);
	assert_int_equal(c[STORE_FAILED], 1);
	assert_int_equal(c[STORE_DEAD], 1);
	assert_int_equal(c[STORE_CANCELLED], 1);
}

/* The earliest run_at of name's ready jobs (0: none). */
static int64_t next_due(struct fx *fx, const char *name)
{
	struct store_req *r = req(STORE_NEXT_DUE);
	int64_t v;

	r->name = xstrdup(name);
	call(fx, r);
	assert_ok(r);
	v = r->out_id;
	store_req_free(r);
	return v;
}

static void test_next_due(void **state)
{
	struct fx *fx = *state;
	int64_t l, x, f;

	assert_int_equal(next_due(fx, "q"), 0);
	enq(fx, "q", T0 - 100, 0, 1);
	claim_one(fx, "q", T0, NULL); /* running: not due */
	assert_int_equal(next_due(fx, "q"), 0);
	x = enq(fx, "q", T0 - 200, 0, 1);
	store_req_free(by_id(fx, STORE_CANCEL, x, T0)); /* cancelled: not due */
	assert_int_equal(next_due(fx, "q"), 0);
	enq(fx, "q", T0 + 500, 0, 1);
	enq(fx, "q", T0 + 300, 0, 1);
	enq(fx, "other", T0 + 10, 0, 1); /* another name: not counted */
	assert_int_equal(next_due(fx, "q"), T0 + 300);
	assert_int_equal(next_due(fx, "other"), T0 + 10);
	f = enq(fx, "q", T0 - 50, 0, 2);
	claim_one(fx, "q", T0, &l);
	assert_int_equal(next_due(fx, "q"), T0 + 300);
	assert_int_equal(finish(fx, f, l, "failed", "{}", T0 + 100, T0), 1);
	assert_int_equal(next_due(fx, "q"), T0 + 100);
}

/* Finish with a trace of one attempt. */
static void finish_traced(struct fx *fx, int64_t id, int64_t lease, const char *state,
                          int64_t run_at, const char *trace)
{
	struct store_req *r = req(STORE_FINISH);

	r->id = id;
	r->lease = lease;
	r->name = xstrdup(state);
	r->text = xstrdup("{}");
	r->text2 = xstrdup(trace);
	r->run_at = run_at;
	r->now = T0;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 1);
	store_req_free(r);
}

static void test_trace_per_attempt(void **state)
{
	struct fx *fx = *state;
	int64_t id = enq(fx, "t", T0, 0, 2), lease;
	struct store_req *r;

	assert_int_equal(claim_one(fx, "t", T0, &lease), id);
	finish_traced(fx, id, lease, "failed", T0 + 10, "[{\"attempt\":1}]");
	assert_int_equal(claim_one(fx, "t", T0 + 10, &lease), id);
	finish_traced(fx, id, lease, "succeeded", 0, "[{\"attempt\":2}]");
	r = by_id(fx, STORE_SPANS, id, 0);
	/* one JSON array per attempt, a line each, in order */
	assert_string_equal(r->out_text, "[{\"attempt\":1}]\n[{\"attempt\":2}]");
	assert_int_equal(r->njobs, 1);
	store_req_free(r);
	r = by_id(fx, STORE_SPANS, id + 1000, 0);
	assert_null(r->out_text);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
}

static int64_t schedule(struct fx *fx, const char *name, const char *expr, int64_t next, int flag)
{
	struct store_req *r = req(STORE_SCHEDULE);
	int64_t v;

	r->name = xstrdup(name);
	r->text = xstrdup(expr);
	r->run_at = next;
	r->flag = flag;
	call(fx, r);
	assert_ok(r);
	v = r->out_id;
	store_req_free(r);
	return v;
}

static struct store_req *fire(struct fx *fx, const char *name, int64_t at, int64_t next)
{
	struct store_req *r = req(STORE_FIRE);

	r->name = xstrdup(name);
	r->run_at = at;
	r->n = next;
	r->max_attempts = 2;
	r->backoff_ms = 100;
	r->now = T0;
	call(fx, r);
	assert_ok(r);
	return r;
}

static void test_schedule_and_fire(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t first, c[STORE_NSTATES];

	assert_int_equal(schedule(fx, "nightly", "0 3 * * *", 1000, 1), 1000);
	assert_int_equal(schedule(fx, "nightly", "0 3 * * *", 2000, 1), 1000); /* kept */
	assert_int_equal(schedule(fx, "nightly", "0 3 * * *", 3000, 0), 3000); /* replaced */
	assert_int_equal(schedule(fx, "nightly", "0 4 * * *", 4000, 1), 4000); /* new expr */

	r = fire(fx, "nightly", 4000, 5000);
	assert_int_equal(r->created, 1);
	assert_true(r->out_id > 0);
	first = r->out_id;
	store_req_free(r);
	r = get(fx, first, 0);
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, first);
	assert_string_equal(r->jobs[0].name, "nightly");
	assert_string_equal(r->jobs[0].state, "queued");
	assert_string_equal(r->jobs[0].key, "schedule:nightly:4000");
	assert_int_equal(r->jobs[0].max_attempts, 2);
	assert_int_equal(r->jobs[0].backoff_ms, 100);
	assert_int_equal(r->jobs[0].run_at, T0);
	first = r->out_id;
	store_req_free(r);

	/* the same fire again (a second daemon, a restart): fenced */
	r = fire(fx, "nightly", 4000, 5000);
	assert_int_equal(r->created, 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	assert_int_equal(schedule(fx, "nightly", "0 4 * * *", 9999, 1), 5000);

	r = fire(fx, "nightly", 5000, 6000);
	assert_int_equal(r->created, 1);
	assert_true(r->out_id != first);
	store_req_free(r);

	r = fire(fx, "nobody", 5000, 6000);
	assert_int_equal(r->created, 0);
	store_req_free(r);
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 2);
}

static void test_prune(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t l, c[STORE_NSTATES];
	int64_t a = enq(fx, "a", T0 - 3000, 0, 1), b = enq(fx, "b", T0 - 3000, 0, 1);
	int64_t cn = enq(fx, "c", T0 - 3000, 0, 1), q = enq(fx, "q", T0 - 100000, 0, 1);
	int64_t f = enq(fx, "f", T0 - 3000, 0, 2);
	char sql_a[128];

	store_req_free(call(fx, step_req(STORE_STEP_PUT, a, 1, "s1", "[1]")));
	claim_one(fx, "a", T0 - 2000, &l);
	r = req(STORE_FINISH);
	r->id = a;
	r->lease = l;
	r->name = xstrdup("succeeded");
	r->text = xstrdup("1");
	r->text2 = xstrdup("[]");
	r->n = 1;
	r->now = T0 - 1000;
	call(fx, r);
	assert_ok(r);
	assert_int_equal(r->changed, 1);
	store_req_free(r);
	claim_one(fx, "b", T0 - 2000, &l);
	assert_int_equal(finish(fx, b, l, "dead", "{}", 0, T0 - 500), 1);
	store_req_free(by_id(fx, STORE_CANCEL, cn, T0 + 1000)); /* after the cut */
	claim_one(fx, "f", T0 - 2000, &l);
	assert_int_equal(finish(fx, f, l, "failed", "{}", T0 + 1000, T0 - 1500), 1);

	r = by_id(fx, STORE_PRUNE, 0, T0);
	assert_int_equal(r->changed, 2);
	store_req_free(r);

	r = get(fx, a, 1);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	r = get(fx, b, 0);
	assert_int_equal(r->njobs, 0);
	store_req_free(r);
	snprintf(sql_a, sizeof sql_a, "SELECT count(*) FROM steps WHERE job_id = %lld",
	         (long long)a);
	assert_int_equal(peek_int(fx, sql_a), 0);
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 1);
	assert_int_equal(c[STORE_CANCELLED], 1);
	assert_int_equal(c[STORE_FAILED], 1);
	assert_int_equal(c[STORE_SUCCEEDED] + c[STORE_DEAD], 0);
	assert_string_equal(state_of(fx, q, sql_a, sizeof sql_a), "queued");

	r = by_id(fx, STORE_PRUNE, 0, T0);
	assert_int_equal(r->changed, 0);
	store_req_free(r);
}

/* Every table the daemon's own migrations make is out of application SQL's reach. */
static void test_core_tables_are_reserved(void **state)
{
	static const char *const own[] = {"0001_core.sql", "0003_waits.sql", "0005_progress.sql",
	                                  "0006_limits.sql", "0007_fanin.sql"};
	char path[512], *sql = NULL;
	sqlite3 *db;
	sqlite3_stmt *s;
	FILE *f;
	long n;
	int ntables = 0;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		snprintf(path, sizeof path, "%s/migrations/%s", AWAITD_SOURCE_DIR, own[i]);
		f = fopen(path, "rb");
		assert_non_null(f);
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		n = ftell(f);
		rewind(f);
		sql = calloc(1, (size_t)n + 1);
		assert_non_null(sql);
		assert_int_equal(fread(sql, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		free(sql);
	}
	sql = NULL;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &s, NULL),
	    SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (!store_is_reserved(t))
			fail_msg("core table %s is not reserved (store_reserved in daemon/store/store-sql.c)", t);
		ntables++;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_true(ntables >= 5);
	assert_true(store_is_reserved("signals"));
	assert_true(store_is_reserved("schema_migrations"));
	assert_true(store_is_reserved("JOBS"));
	assert_true(store_is_reserved("awaitd_signals"));
	assert_false(store_is_reserved("accounts"));
	assert_false(store_is_reserved("jobs2"));
}

/* ---- crash recovery ---------------------------------------------------------------------- */

static void test_orphans_requeued_at_open(void **state)
{
	struct fx *fx = *state;
	struct store_req *r;
	int64_t now = store_now(), l1, l2, l3;
	int64_t j1 = enq(fx, "o", now - 10, 0, 3), j2 = enq(fx, "other", now - 10, 0, 1);
	int64_t j3 = enq(fx, "done", now - 10, 0, 1);
	char st[32];

	store_req_free(call(fx, step_req(STORE_STEP_PUT, j1, 1, "charge", "[\"ch\"]")));
	assert_int_equal(claim_one(fx, "o", now, &l1), j1);
	claim_one(fx, "done", now, &l3);
	assert_int_equal(finish(fx, j3, l3, "succeeded", "1", 0, now), 1);

	/* the daemon dies with j1 running */
	fx_reopen(fx);
	assert_int_equal(store_epoch(fx->st), 2);
	assert_int_equal(fx->requeued, 1);
	r = get(fx, j1, 1);
	assert_string_equal(r->jobs[0].state, "queued");
	assert_int_equal(r->jobs[0].lease, 0);
	assert_int_equal(r->jobs[0].attempt, 1);
	assert_true(r->jobs[0].run_at <= store_now());
	assert_int_equal(r->rows.nrows, 1);
	assert_string_equal(cell(r, 0, 1)->p, "charge");
	assert_string_equal(cell(r, 0, 3)->p, "[\"ch\"]");
	store_req_free(r);
	assert_string_equal(state_of(fx, j2, st, sizeof st), "queued");
	assert_string_equal(state_of(fx, j3, st, sizeof st), "succeeded");

	/* the old attempt's lease is stale; the new claim is a new attempt */
	assert_int_equal(finish(fx, j1, l1, "succeeded", "1", 0, store_now()), 0);
	r = claim(fx, "o", 1, store_now());
	assert_int_equal(r->njobs, 1);
	assert_int_equal(r->jobs[0].id, j1);
	assert_int_equal(r->jobs[0].attempt, 2);
	l2 = r->jobs[0].lease;
	assert_true(l2 != l1);
	store_req_free(r);

	/* a job claimed under this epoch is an orphan for the next */
	fx_reopen(fx);
	assert_int_equal(fx->requeued, 1);
	assert_int_equal(finish(fx, j1, l2, "succeeded", "1", 0, store_now()), 0);
	fx_reopen(fx);
	assert_int_equal(fx->requeued, 0);
}

/* ---- group commit and closing --------------------------------------------------------------- */

static void test_group_commit(void **state)
{
	struct fx *fx = *state;
	struct store_stats s0, s1;
	struct tally t = {0, 0};
	int64_t c[STORE_NSTATES];
	enum { N = 1000 };

	store_get_stats(fx->st, &s0);
	for (int i = 0; i < N; i++) {
		struct store_req *r = enqueue_req("bulk", NULL, 0, 0, T0);
		submit_tally(fx, r, &t);
	}
	assert_int_equal(store_pending(fx->st), N);
	wait_tally(fx, &t, N);
	assert_int_equal(t.failed, 0);
	assert_int_equal(store_pending(fx->st), 0);
	/*
	 * The store thread counts a commit just after releasing its answers:
	 * one more round trip (its own batch) makes the count settle.
	 */
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], N);
	store_get_stats(fx->st, &s1);
	assert_int_equal(s1.requests - s0.requests, N + 1);
	assert_int_equal(s1.failed_commits, 0);
	assert_true(s1.commits > s0.commits);
	if (s1.commits - s0.commits >= 100)
		fail_msg("%d requests took %llu commits: no group commit", N,
		         (unsigned long long)(s1.commits - s0.commits));
}

/*
 * A long application read runs on a reader: the writer goes on meanwhile
 * (an enqueue and a write are answered while the read still runs), and the
 * read is stopped at max_statement_ms. Reads are counted as the readers'.
 */
static void test_long_read_beside_writer(void **state)
{
	struct fx *fx = *state;
	struct store_req *slow, *r;
	struct store_stats s0, s1;
	int slowf;

	fx->cfg.max_statement_ms = 2000;
	fx_reopen(fx);
	exec_ok(fx, 0, "CREATE TABLE t (x)");
	store_get_stats(fx->st, &s0);
	slow = sql_req(0,
	               "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
	               " WHERE x < 1000000000) SELECT count(*) FROM c",
	               0);
	submit(fx, slow, &slowf);
	spin(fx, 50); /* it is running on a reader now */
	r = call(fx, enqueue_req("beside", NULL, 0, 0, T0));
	assert_ok(r);
	store_req_free(r);
	exec_ok(fx, 0, "INSERT INTO t VALUES (1)");
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
	assert_int_equal(slowf, 0); /* the long read still runs */
	wait_flag(fx, &slowf);
	assert_err(slow, "timeout");
	assert_non_null(strstr(slow->err.msg, "max_statement_ms"));
	store_req_free(slow);
	store_get_stats(fx->st, &s1);
	assert_int_equal(s1.reads - s0.reads, 2); /* the long read and the count; not the writes */
}

/*
 * The writer never checkpoints: once the WAL passes CKPT_FRAMES pages the
 * flusher does, on a connection of its own.
 */
static void test_checkpoint_by_flusher(void **state)
{
	struct fx *fx = *state;
	struct store_stats s;
	double end;

	exec_ok(fx, 0, "CREATE TABLE big (x)");
	/* ~4.8 MB: well over CKPT_FRAMES pages of 4 KiB */
	for (int round = 0; round < 2; round++)
		exec_ok(fx, 0,
		        "INSERT INTO big WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
		        " FROM c WHERE i < 600) SELECT randomblob(4000) FROM c");
	end = mono_ms() + WAIT_MS;
	do {
		spin(fx, 5);
		store_get_stats(fx->st, &s);
	} while (s.checkpoints == 0 && mono_ms() < end);
	assert_true(s.checkpoints > 0);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM big"), 1200);
}

/* What the flusher test sees of each answer: the syncs done when it left. */
struct synced {
	struct store *st;
	uint64_t before; /* syncs when the requests were submitted */
	int n, early;    /* answers; answers that left before a sync that followed their submit */
};

static void on_synced(struct store_req *r)
{
	struct synced *sy = r->arg;
	struct store_stats s;

	store_get_stats(sy->st, &s);
	sy->n++;
	if (r->rc != 0 || s.syncs <= sy->before)
		sy->early++;
	store_req_free(r);
}

static void flush_round(struct fx *fx, struct synced *sy, int n)
{
	struct store_stats s;
	double end = mono_ms() + WAIT_MS;

	store_get_stats(fx->st, &s);
	*sy = (struct synced){fx->st, s.syncs, 0, 0};
	for (int i = 0; i < n; i++) {
		struct store_req *r = enqueue_req("flush", NULL, 0, 0, T0);
		r->done = on_synced;
		r->arg = sy;
		store_submit(fx->st, r);
	}
	while (sy->n < n) {
		if (mono_ms() > end)
			fail_msg("%d of %d answers within %d ms", sy->n, n, WAIT_MS);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
}

/*
 * synchronous = full: every answer leaves after an fdatasync of the WAL that
 * came after its request, and the syncs are shared (never more than the
 * commits). normal: no sync at all.
 */
static void test_flush_after_sync(void **state)
{
	struct fx *fx = *state;
	struct synced sy;
	struct store_stats s0, s1;

	store_get_stats(fx->st, &s0);
	flush_round(fx, &sy, 500);
	assert_int_equal(sy.early, 0);
	store_get_stats(fx->st, &s1);
	assert_true(s1.syncs > s0.syncs);
	assert_true(s1.syncs - s0.syncs <= s1.commits - s0.commits);

	fx->cfg.synchronous = "normal";
	fx_reopen(fx);
	flush_round(fx, &sy, 50);
	store_get_stats(fx->st, &s1);
	assert_int_equal(s1.syncs, 0);
	assert_int_equal(sy.early, 50); /* answered at the commit: no sync ever came */
}

static void test_close_answers_submitted(void **state)
{
	struct fx *fx = *state;
	struct tally t = {0, 0};
	int64_t c[STORE_NSTATES];

	for (int i = 0; i < 50; i++) {
		struct store_req *r = enqueue_req("late", NULL, 0, 0, T0);
		submit_tally(fx, r, &t);
	}
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(t.n, 50);
	assert_int_equal(t.failed, 0);
	/* answered means committed */
	fx_open(fx);
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 50);
}

/*
 * Closing while a transaction is open and another transaction's BEGIN and
 * a job operation wait behind it: both transactions are rolled back, the
 * job operation and the work committed before run and are answered.
 */
static void test_close_with_deferred_transaction(void **state)
{
	struct fx *fx = *state;
	struct tally t = {0, 0};
	struct store_req *r;
	int64_t c[STORE_NSTATES];

	r = enqueue_req("before", NULL, 0, 0, T0); /* in the batch before tx 7 */
	submit_tally(fx, r, &t);
	begin_ok(fx, 7);
	r = tx_begin(8, 0, 0, NULL); /* deferred behind 7, then opened at close */
	submit_tally(fx, r, &t);
	r = enqueue_req("after", NULL, 0, 0, T0); /* deferred behind 8 */
	submit_tally(fx, r, &t);
	spin(fx, 20);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(t.n, 3);
	assert_int_equal(t.failed, 0);
	fx_open(fx);
	counts(fx, c);
	assert_int_equal(c[STORE_QUEUED], 2); /* "before" and "after" are committed */
}

static void test_close_with_open_transaction(void **state)
{
	struct fx *fx = *state;
	struct tally t = {0, 0};
	struct store_req *q;

	exec_ok(fx, 0, "CREATE TABLE t (x)");
	begin_ok(fx, 7);
	exec_ok(fx, 7, "INSERT INTO t VALUES (1)");
	q = sql_req(0, "INSERT INTO t VALUES (2)", 0); /* deferred behind tx 7 */
	submit_tally(fx, q, &t);
	spin(fx, 20);
	assert_int_equal(t.n, 0);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(t.n, 1);
	assert_int_equal(t.failed, 0);

	/* the unfinished transaction is gone, the deferred write is not */
	fx_open(fx);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
	assert_int_equal(q_int(fx, "SELECT x FROM t"), 2);
}

/* A done callback that submits a follow-up, as a caller chaining requests does. */
struct chain {
	struct store *st;
	int first, second;
	char code[32];
};

static void on_second(struct store_req *r)
{
	struct chain *c = r->arg;

	c->second = 1;
	snprintf(c->code, sizeof c->code, "%s", r->rc ? r->err.code : "ok");
	store_req_free(r);
}

static void on_first(struct store_req *r)
{
	struct chain *c = r->arg;
	struct store_req *next = enqueue_req("next", NULL, 0, 0, T0);

	c->first = 1;
	next->done = on_second;
	next->arg = c;
	store_submit(c->st, next);
	store_req_free(r);
}

static void test_close_answers_requests_made_while_closing(void **state)
{
	struct fx *fx = *state;
	struct chain c = {fx->st, 0, 0, ""};
	struct store_req *r = enqueue_req("first", NULL, 0, 0, T0);

	r->done = on_first;
	r->arg = &c;
	store_submit(fx->st, r);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(c.first, 1);
	assert_int_equal(c.second, 1);
	assert_string_equal(c.code, "stopping");
}

/* ---- small helpers -----------------------------------------------------------------------------
 */

static void test_states_and_requests(void **state)
{
	struct store_req *r;

	(void)state;
	for (int i = 0; i < STORE_NSTATES; i++)
		assert_int_equal(store_state_parse(store_state_name((enum store_state)i)), i);
	assert_string_equal(store_state_name(STORE_DEAD), "dead");
	assert_string_equal(store_state_name(STORE_NSTATES), "?");
	assert_int_equal(store_state_parse("nope"), -1);
	assert_int_equal(store_state_parse(NULL), -1);
	store_req_free(NULL);
	store_close(NULL);
	r = req(STORE_PRUNE);
	assert_int_equal(r->op, STORE_PRUNE);
	assert_int_equal(r->rc, 0);
	assert_null(r->jobs);
	assert_int_equal(store_fail(r, "invalid", "bad %d", 7), -1);
	assert_int_equal(r->rc, -1);
	assert_string_equal(r->err.code, "invalid");
	assert_string_equal(r->err.msg, "bad 7");
	store_req_free(r);
	assert_true(store_now() > T0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_states_and_requests),
	    T(test_open_wal_and_epochs),
	    T(test_second_open_is_locked),
	    T(test_open_migration_failure),
	    T(test_open_config_errors),
	    T(test_read_only_database),
	    T(test_sql_value_types),
	    T(test_sql_rows_row_major),
	    T(test_sql_changes_and_last_id),
	    T(test_sql_changes_counts_only_the_statement),
	    T(test_sql_errors),
	    T(test_sql_commit_cannot_break_the_batch),
	    T(test_sql_release_cannot_break_a_rollback),
	    T(test_tx_commit_is_durable),
	    T(test_tx_rollback),
	    T(test_tx_defers_other_requests),
	    T(test_tx_error_inside_keeps_the_transaction),
	    T(test_tx_unknown_token),
	    T(test_tx_timeout_rolls_back),
	    T(test_tx_step_journal),
	    T(test_step_get_put),
	    T(test_enqueue_idempotent),
	    T(test_claim_order),
	    T(test_claim_at_most_n),
	    T(test_finish_is_fenced),
	    T(test_trace_per_attempt),
	    T(test_finish_failed_runs_later),
	    T(test_requeue),
	    T(test_cancel),
	    T(test_retry),
	    T(test_get),
	    T(test_list),
	    T(test_counts),
	    T(test_next_due),
	    T(test_schedule_and_fire),
	    T(test_prune),
	    T(test_wait_sleep_parks_and_resumes),
	    T(test_signals_buffered_in_order),
	    T(test_wait_while_running_gets_a_signal),
	    T(test_wait_timeout_and_replay_checks),
	    T(test_cancel_waiting),
	    T(test_migration_to_waits_keeps_data),
	    T(test_migration_to_fanin_keeps_data),
	    cmocka_unit_test(test_core_tables_are_reserved),
	    T(test_orphans_requeued_at_open),
	    T(test_group_commit),
	    T(test_flush_after_sync),
	    T(test_checkpoint_by_flusher),
	    T(test_tx_queued_begin_and_statement),
	    T(test_long_read_beside_writer),
	    T(test_close_answers_submitted),
	    T(test_close_with_deferred_transaction),
	    T(test_close_with_open_transaction),
	    T(test_close_answers_requests_made_while_closing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
