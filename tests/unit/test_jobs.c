/*
 * test_jobs.c: the job engine (jobs.h) on a real daemon core without the
 * control server: a real event_base and scheduler with awaitd's Lua
 * modules, the store on a real SQLite file in a fresh mkdtemp directory
 * (the repository's migrations), the scripts of a temporary directory that
 * each test writes before boot(), and the engine, opened in daemon.c's
 * order and closed in daemon_close's.
 *
 * Jobs are enqueued through jobs_enqueue and the loop is run (EVLOOP_ONCE,
 * with a 5 ms tick so it never blocks, and a wall-clock deadline) until a
 * condition read from the database holds: the test reads the file through
 * its own read-only connection (WAL: it sees each commit the store makes).
 * Scripts record what they do into the table rec (created before the
 * store opens the file) with ctx.db:exec; rec.t is async.now(), monotonic
 * ms.
 *
 * Covered: success, retries with backoff and jitter, dead, a result that
 * is not JSON, the attempt timeout, concurrency, priority, delayed jobs,
 * cancelling one run, cancelling all at shutdown (requeue), schedules,
 * waiters, step journals replayed by a second attempt, and enqueues the
 * engine refuses. The last three tests pin engine bugs found while writing
 * these (they fail until jobs.c is fixed): the one due timer is moved later
 * by a second name's NEXT_DUE; a job cancelled in the store (`awaitctl
 * cancel` of a queued job) never answers its waiters; a reload frees the
 * schedules that requests in flight still point to (use after free: seen
 * reliably under AWAITD_SANITIZE).
 *
 * Bounds on time are generous (a shared, noisy machine): these test what
 * the engine does, not how fast.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>
#include <lauxlib.h>
#include <sqlite3.h>

#include "daemon.h"
#include "jobs.h"
#include "modules.h"
#include "sched.h"
#include "store.h"
#include "testutil.h"

#ifndef AWAITD_SOURCE_DIR
#error "AWAITD_SOURCE_DIR must name the source tree (it holds migrations/)"
#endif

#define MIGRATIONS AWAITD_SOURCE_DIR "/migrations"
#define WAIT_MS    5000 /* how long a wait gives a condition before failing */

/* Every script starts with this: rec(ctx, tag [, t]) writes one row of rec. */
#define PRELUDE                                                                                    \
	"local function rec(ctx, tag, t)\n"                                                        \
	"  assert(ctx.db:exec('INSERT INTO rec (job, tag, attempt, t) VALUES (?, ?, ?, ?)',"       \
	"    ctx.job.id, tag, ctx.job.attempt, t or async.now()))\n"                               \
	"end\n"

/*
 * What a store request answered, copied out before the request is freed
 * (in the callback: a test that fails leaves nothing pointing at its stack).
 */
struct answer {
	int done;
	int rc;
	char code[32]; /* err.code */
	int created;
	int64_t out_id;
	size_t njobs;
	int64_t id;       /* jobs[0] */
	char state[32];   /* jobs[0] */
	char result[256]; /* jobs[0], "(null)" for NULL */
};

#define NANS 4 /* answers a test can wait for at once */

struct jx {
	char dir[64];
	char scripts[128];
	char db[128];
	struct daemon d;
	struct event *tick; /* keeps EVLOOP_ONCE returning */
	sqlite3 *ro;        /* the test's read-only view of the database */
	int allow_broken;   /* boot() accepts scripts that fail to load */
	struct answer ans[NANS];
	struct answer enq; /* enqueue()'s */
};

/* ---- plumbing ------------------------------------------------------------------------ */

/* r->done for every request a test waits for: copies the answer out, frees r. */
static void on_answer(struct store_req *r)
{
	struct answer *a = r->arg;

	memset(a, 0, sizeof *a);
	a->done = 1;
	a->rc = r->rc;
	snprintf(a->code, sizeof a->code, "%s", r->rc ? r->err.code : "");
	a->created = r->created;
	a->out_id = r->out_id;
	a->njobs = r->njobs;
	if (r->njobs) {
		a->id = r->jobs[0].id;
		snprintf(a->state, sizeof a->state, "%s", r->jobs[0].state);
		snprintf(a->result, sizeof a->result, "%s",
		         r->jobs[0].result ? r->jobs[0].result : "(null)");
	}
	store_req_free(r);
}

static int open_modules(lua_State *L)
{
	modules_open(L);
	return 0;
}

static int setup(void **state)
{
	struct jx *jx = calloc(1, sizeof *jx);
	sqlite3 *db;

	if (!jx)
		return -1;
	strcpy(jx->dir, "/tmp/test_jobs.XXXXXX");
	if (!mkdtemp(jx->dir))
		return -1;
	snprintf(jx->scripts, sizeof jx->scripts, "%s/scripts", jx->dir);
	snprintf(jx->db, sizeof jx->db, "%s/awaitd.db", jx->dir);
	if (mkdir(jx->scripts, 0755) < 0)
		return -1;
	/* the scripts' own table, before the migrations make the rest */
	if (sqlite3_open(jx->db, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
	                 "CREATE TABLE rec (id INTEGER PRIMARY KEY, job INTEGER, tag TEXT,"
	                 " attempt INTEGER, t REAL)",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_close(db);
	config_init(&jx->d.cfg);
	jx->d.listen_fd = -1;
	jx->d.inotify_fd = -1;
	*state = jx;
	return 0;
}

/* daemon_close's order, without the control server. */
static int teardown(void **state)
{
	struct jx *jx = *state;
	struct daemon *d = &jx->d;

	jobs_fail_waiters(d->jobs);
	if (d->s) {
		jobs_close_lua(d->jobs);
		scripts_close(&d->scripts);
	}
	sched_free(d->s);
	store_close(d->st);
	jobs_free(d->jobs);
	if (jx->tick)
		event_free(jx->tick);
	if (d->base)
		event_base_free(d->base);
	config_fini(&d->cfg);
	sqlite3_close(jx->ro);
	rm_rf(jx->dir);
	free(jx);
	return 0;
}

/* Write DIR/scripts/name.lua: PRELUDE then body. */
static void put(struct jx *jx, const char *name, const char *body)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s.lua", jx->scripts, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(PRELUDE, f) >= 0);
	assert_true(fputs(body, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* daemon_open's order: loop, scheduler, modules, store, engine, scripts; then start. */
static void boot(struct jx *jx)
{
	struct daemon *d = &jx->d;
	struct sched_config sc;
	struct store_config stc;
	struct jobs_env env;
	struct timeval tv = {0, 5000};
	char err[1024];

	d->base = sched_base_new();
	assert_non_null(d->base);
	jx->tick = event_new(d->base, -1, EV_PERSIST, on_tick, NULL);
	assert_non_null(jx->tick);
	assert_int_equal(event_add(jx->tick, &tv), 0);
	sched_config_defaults(&sc);
	d->s = sched_new(d->base, &sc);
	assert_non_null(d->s);
	lua_pushcfunction(d->s->L, open_modules);
	if (lua_pcall(d->s->L, 0, 0, 0) != LUA_OK)
		fail_msg("Lua modules: %s", lua_tostring(d->s->L, -1));
	store_config_defaults(&stc);
	stc.path = jx->db;
	stc.migrations_dir = MIGRATIONS;
	stc.synchronous = "off";
	d->st = store_open(d->base, &stc, &d->orphans, err, sizeof err);
	if (!d->st)
		fail_msg("store_open: %s", err);
	d->s->between = store_poll;
	d->s->between_arg = d->st;
	daemon_jobs_env(d, &env);
	d->jobs = jobs_new(&env, d->st, err, sizeof err);
	if (!d->jobs)
		fail_msg("jobs_new: %s", err);
	if (scripts_open(&d->scripts, d->s->L, jx->scripts, err, sizeof err) < 0)
		fail_msg("scripts_open: %s", err);
	for (size_t i = 0; i < d->scripts.n && !jx->allow_broken; i++)
		if (d->scripts.v[i]->error)
			fail_msg("script %s: %s", d->scripts.v[i]->name, d->scripts.v[i]->error);
	if (sqlite3_open_v2(jx->db, &jx->ro, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		fail_msg("read-only view: %s", sqlite3_errmsg(jx->ro));
	sqlite3_busy_timeout(jx->ro, 1000);
	jobs_start(d->jobs);
}

static void turn(struct jx *jx)
{
	event_base_loop(jx->d.base, EVLOOP_ONCE);
}

/* Run the loop for ms. */
static void spin(struct jx *jx, double ms)
{
	double end = mono_ms() + ms;

	while (mono_ms() < end)
		turn(jx);
}

static void wait_flag(struct jx *jx, const int *flag)
{
	double end = mono_ms() + WAIT_MS;

	while (!*flag) {
		if (mono_ms() > end)
			fail_msg("no answer within %d ms", WAIT_MS);
		turn(jx);
	}
}

/* ---- reading the database -------------------------------------------------------------- */

static sqlite3_stmt *q_prep(struct jx *jx, const char *fmt, va_list ap)
{
	char sql[1024];
	sqlite3_stmt *s = NULL;

	vsnprintf(sql, sizeof sql, fmt, ap);
	if (sqlite3_prepare_v2(jx->ro, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(jx->ro));
	return s;
}

/* The integer in the first column of the first row (0 for none or NULL). */
static int64_t q_int(struct jx *jx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t q_int(struct jx *jx, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *s;
	int64_t v = 0;
	int rc;

	va_start(ap, fmt);
	s = q_prep(jx, fmt, ap);
	va_end(ap);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		fail_msg("query: %s", sqlite3_errmsg(jx->ro));
	sqlite3_finalize(s);
	return v;
}

/* The text of the first column of the first row into buf ("(null)" for none or NULL). */
static const char *q_text(struct jx *jx, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static const char *q_text(struct jx *jx, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *s;
	int rc;

	va_start(ap, fmt);
	s = q_prep(jx, fmt, ap);
	va_end(ap);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		snprintf(buf, len, "(null)");
	else
		fail_msg("query: %s", sqlite3_errmsg(jx->ro));
	sqlite3_finalize(s);
	return buf;
}

/* Up to max values of the first column (REAL or INTEGER as double); returns the count. */
static size_t q_doubles(struct jx *jx, double *out, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t q_doubles(struct jx *jx, double *out, size_t max, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *s;
	size_t n = 0;
	int rc;

	va_start(ap, fmt);
	s = q_prep(jx, fmt, ap);
	va_end(ap);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < max)
		out[n++] = sqlite3_column_double(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail_msg("query: %s", sqlite3_errmsg(jx->ro));
	sqlite3_finalize(s);
	return n;
}

static const char *state_of(struct jx *jx, int64_t id, char *buf, size_t len)
{
	return q_text(jx, buf, len, "SELECT state FROM jobs WHERE id = %lld", (long long)id);
}

/* Run the loop until the job's state is `state` (fails after WAIT_MS). */
static void wait_state(struct jx *jx, int64_t id, const char *state)
{
	double end = mono_ms() + WAIT_MS;
	char buf[32];

	while (strcmp(state_of(jx, id, buf, sizeof buf), state) != 0) {
		if (mono_ms() > end)
			fail_msg("job %lld: still %s after %d ms, expected %s", (long long)id, buf,
			         WAIT_MS, state);
		turn(jx);
	}
}

/* Run the loop until `SELECT count(*) FROM rec WHERE tag = tag` reaches n. */
static void wait_rec(struct jx *jx, const char *tag, int64_t n)
{
	double end = mono_ms() + WAIT_MS;
	int64_t v;

	while ((v = q_int(jx, "SELECT count(*) FROM rec WHERE tag = '%s'", tag)) < n) {
		if (mono_ms() > end)
			fail_msg("%lld of %lld rows tagged %s after %d ms", (long long)v,
			         (long long)n, tag, WAIT_MS);
		turn(jx);
	}
}

/* The error column of job id: its code and message (asserts it is an object). */
static void job_error(struct jx *jx, int64_t id, char *code, size_t codelen, char *msg,
                      size_t msglen)
{
	char text[1024];
	json_t *e;

	q_text(jx, text, sizeof text, "SELECT error FROM jobs WHERE id = %lld", (long long)id);
	e = json_loads(text, 0, NULL);
	if (!json_is_object(e))
		fail_msg("job %lld: error is not a JSON object: %s", (long long)id, text);
	snprintf(code, codelen, "%s", json_string_value(json_object_get(e, "code")));
	snprintf(msg, msglen, "%s", json_string_value(json_object_get(e, "message")));
	json_decref(e);
}

/* One consistent read of a job's row (text columns "(null)" for NULL). */
struct job_row {
	char state[32];
	int64_t attempt, run_at, started_at, finished_at; /* 0 for NULL */
	char result[256];
	char error_code[64], error_msg[256]; /* "" when error is NULL or not an object */
};

static void job_row(struct jx *jx, int64_t id, struct job_row *jr)
{
	sqlite3_stmt *s;
	const char *err;
	json_t *e;

	memset(jr, 0, sizeof *jr);
	if (sqlite3_prepare_v2(jx->ro,
	                       "SELECT state, attempt, run_at, started_at, finished_at,"
	                       " coalesce(result, '(null)'), error FROM jobs WHERE id = ?",
	                       -1, &s, NULL) != SQLITE_OK)
		fail_msg("job_row: %s", sqlite3_errmsg(jx->ro));
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		fail_msg("job %lld: no row", (long long)id);
	}
	snprintf(jr->state, sizeof jr->state, "%s", (const char *)sqlite3_column_text(s, 0));
	jr->attempt = sqlite3_column_int64(s, 1);
	jr->run_at = sqlite3_column_int64(s, 2);
	jr->started_at = sqlite3_column_int64(s, 3);
	jr->finished_at = sqlite3_column_int64(s, 4);
	snprintf(jr->result, sizeof jr->result, "%s", (const char *)sqlite3_column_text(s, 5));
	err = (const char *)sqlite3_column_text(s, 6);
	e = err ? json_loads(err, 0, NULL) : NULL;
	if (json_is_object(e)) {
		const char *c = json_string_value(json_object_get(e, "code"));
		const char *m = json_string_value(json_object_get(e, "message"));
		snprintf(jr->error_code, sizeof jr->error_code, "%s", c ? c : "");
		snprintf(jr->error_msg, sizeof jr->error_msg, "%s", m ? m : "");
	}
	json_decref(e);
	sqlite3_finalize(s);
}

/* ---- driving the engine ----------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	assert_non_null(p);
	return p;
}

static struct store_req *enqueue_req(const char *name, const char *args, const char *key,
                                     int64_t run_at, int64_t priority)
{
	struct store_req *r = store_req_new(STORE_ENQUEUE);

	assert_non_null(r);
	r->name = xstrdup(name);
	r->text = xstrdup(args);
	r->key = xstrdup(key);
	r->run_at = run_at;
	r->priority = priority;
	return r;
}

/* Enqueue through the engine and run the loop until it is durable: the job's id. */
static int64_t enqueue_at(struct jx *jx, const char *name, const char *args, int64_t run_at,
                          int64_t priority)
{
	struct store_req *r = enqueue_req(name, args, NULL, run_at, priority);
	struct store_err err;

	memset(&jx->enq, 0, sizeof jx->enq);
	r->done = on_answer;
	r->arg = &jx->enq;
	if (jobs_enqueue(jx->d.jobs, r, &err) < 0) {
		store_req_free(r);
		fail_msg("jobs_enqueue %s: %s: %s", name, err.code, err.msg);
	}
	wait_flag(jx, &jx->enq.done);
	if (jx->enq.rc)
		fail_msg("enqueue %s: %s", name, jx->enq.code);
	assert_int_equal(jx->enq.created, 1);
	assert_true(jx->enq.out_id > 0);
	return jx->enq.out_id;
}

static int64_t enqueue(struct jx *jx, const char *name, const char *args)
{
	return enqueue_at(jx, name, args, 0, 0);
}

/* Wait for job id with jobs_wait: ans[slot] gets the answer. */
static void wait_job(struct jx *jx, int64_t id, int slot)
{
	struct store_req *r = store_req_new(STORE_GET);

	assert_non_null(r);
	memset(&jx->ans[slot], 0, sizeof jx->ans[slot]);
	r->id = id;
	r->done = on_answer;
	r->arg = &jx->ans[slot];
	jobs_wait(r, jx->d.jobs);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_succeeds(void **state)
{
	struct jx *jx = *state;
	char buf[256];
	json_t *res, *stats;
	int64_t id, before;

	put(jx, "ok",
	    "return { run = function(ctx, args)\n"
	    "  rec(ctx, 'ran')\n"
	    "  return { n = args.n + 1, name = ctx.job.name, id = ctx.job.id }\n"
	    "end }\n");
	boot(jx);
	before = store_now();
	id = enqueue(jx, "ok", "{\"n\":41}");
	wait_state(jx, id, "succeeded");

	q_text(jx, buf, sizeof buf, "SELECT result FROM jobs WHERE id = %lld", (long long)id);
	res = json_loads(buf, 0, NULL);
	assert_non_null(res);
	assert_int_equal(json_integer_value(json_object_get(res, "n")), 42);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "ok");
	assert_int_equal(json_integer_value(json_object_get(res, "id")), id);
	assert_int_equal(json_object_size(res), 3);
	json_decref(res);
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
	assert_int_equal(q_int(jx,
	                       "SELECT count(*) FROM jobs WHERE id = %lld AND error IS NULL"
	                       " AND lease IS NULL AND started_at >= %lld"
	                       " AND finished_at >= started_at AND finished_at <= %lld",
	                       (long long)id, (long long)before, (long long)store_now()),
	                 1);
	assert_int_equal(q_int(jx,
	                       "SELECT count(*) FROM rec WHERE tag = 'ran' AND job = %lld"
	                       " AND attempt = 1",
	                       (long long)id),
	                 1);
	/* the run leaves the engine once its outcome is durable */
	while (jobs_running(jx->d.jobs))
		turn(jx);
	stats = jobs_stats_json(jx->d.jobs);
	assert_int_equal(json_integer_value(json_object_get(stats, "completed")), 1);
	assert_int_equal(json_integer_value(json_object_get(stats, "failed")), 0);
	assert_int_equal(json_integer_value(json_object_get(stats, "running")), 0);
	json_decref(stats);
}

static void test_retries_backoff(void **state)
{
	struct jx *jx = *state;
	char msg[256];
	double t[8];
	double end;
	int64_t id;
	int seen2 = 0;

	put(jx, "flaky",
	    "return { retries = 3, backoff = 100, run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  if ctx.job.attempt < 3 then\n"
	    "    return nil, async.error('flaky', 'attempt ' .. ctx.job.attempt)\n"
	    "  end\n"
	    "  return { attempt = ctx.job.attempt }\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "flaky", NULL);
	assert_int_equal(q_int(jx, "SELECT max_attempts FROM jobs WHERE id = %lld", (long long)id),
	                 4);
	assert_int_equal(q_int(jx, "SELECT backoff_ms FROM jobs WHERE id = %lld", (long long)id),
	                 100);

	/* watch it between attempts: each failure is recorded, with its retry time */
	end = mono_ms() + WAIT_MS;
	for (;;) {
		struct job_row jr;
		double base;

		job_row(jx, id, &jr); /* one read: the next claim may commit between two */
		if (strcmp(jr.state, "succeeded") == 0)
			break;
		if (mono_ms() > end)
			fail_msg("job still %s after %d ms", jr.state, WAIT_MS);
		if (strcmp(jr.state, "failed") == 0) {
			assert_true(jr.attempt == 1 || jr.attempt == 2);
			base = 100.0 * (jr.attempt == 1 ? 1 : 2);
			assert_string_equal(jr.error_code, "flaky");
			assert_string_equal(jr.error_msg,
			                    jr.attempt == 1 ? "attempt 1" : "attempt 2");
			assert_int_equal(jr.finished_at, 0);
			assert_string_equal(jr.result, "(null)");
			/* run_at = the failure's time + backoff * 2^(a-1) * [0.75, 1.25] */
			if (jr.run_at - jr.started_at < (int64_t)(0.75 * base) ||
			    jr.run_at - jr.started_at > (int64_t)(1.25 * base) + 500)
				fail_msg(
				    "attempt %lld: retry %lld ms after its start, expected %g..%g",
				    (long long)jr.attempt, (long long)(jr.run_at - jr.started_at),
				    0.75 * base, 1.25 * base + 500);
			/* attempt 1's window is short (>= 75 ms): seeing it is not required */
			if (jr.attempt == 2)
				seen2 = 1;
		}
		turn(jx);
	}
	assert_true(seen2);

	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 3);
	assert_string_equal(
	    q_text(jx, msg, sizeof msg, "SELECT result FROM jobs WHERE id = %lld", (long long)id),
	    "{\"attempt\":3}");
	assert_int_equal(q_int(jx, "SELECT error IS NULL FROM jobs WHERE id = %lld", (long long)id),
	                 1);
	/* the attempts' starts, as the script saw them */
	assert_int_equal(q_doubles(jx, t, 8,
	                           "SELECT t FROM rec WHERE job = %lld AND tag = 'start'"
	                           " ORDER BY attempt",
	                           (long long)id),
	                 3);
	q_text(jx, msg, sizeof msg,
	       "SELECT group_concat(attempt, ',') FROM (SELECT attempt FROM rec ORDER BY id)");
	assert_string_equal(msg, "1,2,3");
	for (int a = 1; a <= 2; a++) {
		double want = 100.0 * (a == 1 ? 1 : 2), gap = t[a] - t[a - 1];

		/* 2 ms: the store's clock has whole milliseconds */
		if (gap < 0.75 * want - 2 || gap > 1.25 * want + 1000)
			fail_msg("gap after attempt %d: %.1f ms, expected %g..%g", a, gap,
			         0.75 * want - 2, 1.25 * want + 1000);
	}
}

static void test_dead(void **state)
{
	struct jx *jx = *state;
	char code[64], msg[256];
	int64_t id;

	put(jx, "doomed",
	    "return { retries = 1, backoff = 10, run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  return nil, async.error('nope', 'always')\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "doomed", "{}");
	wait_state(jx, id, "dead");
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 2);
	job_error(jx, id, code, sizeof code, msg, sizeof msg);
	assert_string_equal(code, "nope");
	assert_string_equal(msg, "always");
	assert_int_equal(q_int(jx,
	                       "SELECT count(*) FROM jobs WHERE id = %lld AND result IS NULL"
	                       " AND finished_at >= started_at AND lease IS NULL",
	                       (long long)id),
	                 1);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE job = %lld", (long long)id), 2);
	/* no third attempt */
	spin(jx, 100);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE job = %lld", (long long)id), 2);
	assert_string_equal(state_of(jx, id, msg, sizeof msg), "dead");
}

static void test_result_not_json(void **state)
{
	struct jx *jx = *state;
	char code[64], msg[256];
	int64_t id, id2;

	put(jx, "weird",
	    "return { run = function(ctx)\n"
	    "  return function() end\n"
	    "end }\n");
	put(jx, "weird2",
	    "return { retries = 1, backoff = 5000, run = function(ctx)\n"
	    "  return { ok = true, f = print }\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "weird", NULL);
	id2 = enqueue(jx, "weird2", NULL);
	wait_state(jx, id, "dead");
	job_error(jx, id, code, sizeof code, msg, sizeof msg);
	assert_string_equal(code, "invalid");
	assert_non_null(strstr(msg, "the job's result is not JSON: "));
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
	assert_int_equal(
	    q_int(jx, "SELECT result IS NULL FROM jobs WHERE id = %lld", (long long)id), 1);
	/* with a retry left, the same is a failed attempt (its retry is 3.75 s away at least) */
	wait_state(jx, id2, "failed");
	job_error(jx, id2, code, sizeof code, msg, sizeof msg);
	assert_string_equal(code, "invalid");
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id2), 1);
}

static void test_timeout(void **state)
{
	struct jx *jx = *state;
	char code[64], msg[256];
	int64_t id;

	put(jx, "sleepy",
	    "return { timeout = 50, run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  async.sleep(5000)\n"
	    "  rec(ctx, 'after')\n"
	    "  return true\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "sleepy", NULL);
	wait_state(jx, id, "dead");
	job_error(jx, id, code, sizeof code, msg, sizeof msg);
	assert_string_equal(code, "timeout");
	assert_string_equal(msg, "timed out after 50 ms");
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE tag = 'start'"), 1);
	/* it ended at its deadline, not after the sleep */
	if (q_int(jx, "SELECT finished_at - started_at FROM jobs WHERE id = %lld", (long long)id) >
	    2000)
		fail_msg("the attempt took %lld ms",
		         (long long)q_int(
		             jx, "SELECT finished_at - started_at FROM jobs WHERE id = %lld",
		             (long long)id));
	/* and it really stopped: no task is left to write the row after the sleep */
	while (jobs_running(jx->d.jobs))
		turn(jx);
	assert_int_equal(jx->d.s->stats.live, 0);
	spin(jx, 100);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE tag = 'after'"), 0);
}

/* The largest number of half-open intervals [s[i], e[i]) that hold at once. */
static int max_overlap(const double *s, const double *e, size_t n)
{
	int best = 0;

	for (size_t i = 0; i < n; i++) {
		int k = 0;
		for (size_t m = 0; m < n; m++)
			if (s[m] <= s[i] && s[i] < e[m])
				k++;
		if (k > best)
			best = k;
	}
	return best;
}

static void test_concurrency(void **state)
{
	struct jx *jx = *state;
	double s[8], e[8];
	int64_t ids[6];

	put(jx, "pair",
	    "return { concurrency = 2, run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  async.sleep(100)\n"
	    "  rec(ctx, 'end')\n"
	    "  return ctx.job.id\n"
	    "end }\n");
	boot(jx);
	for (int i = 0; i < 6; i++)
		ids[i] = enqueue(jx, "pair", NULL);
	for (int i = 0; i < 6; i++)
		wait_state(jx, ids[i], "succeeded");
	assert_int_equal(q_int(jx, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"
	                           " AND attempt = 1 AND result = CAST(id AS TEXT)"),
	                 6);
	/* as the scripts saw it (monotonic ms) */
	assert_int_equal(q_doubles(jx, s, 8, "SELECT t FROM rec WHERE tag = 'start' ORDER BY job"),
	                 6);
	assert_int_equal(q_doubles(jx, e, 8, "SELECT t FROM rec WHERE tag = 'end' ORDER BY job"),
	                 6);
	assert_int_equal(max_overlap(s, e, 6), 2);
	/* as the engine recorded it (claim to outcome, wall ms) */
	assert_int_equal(q_doubles(jx, s, 8, "SELECT started_at FROM jobs ORDER BY id"), 6);
	assert_int_equal(q_doubles(jx, e, 8, "SELECT finished_at FROM jobs ORDER BY id"), 6);
	assert_true(max_overlap(s, e, 6) <= 2);
}

static void test_priority(void **state)
{
	struct jx *jx = *state;
	char order[128];
	int64_t block, low, high;

	put(jx, "prio",
	    "return { concurrency = 1, run = function(ctx, args)\n"
	    "  rec(ctx, args.tag)\n"
	    "  if args.block then async.sleep(200) end\n"
	    "  return args.tag\n"
	    "end }\n");
	boot(jx);
	block = enqueue(jx, "prio", "{\"tag\":\"block\",\"block\":true}");
	wait_rec(jx, "block", 1);
	low = enqueue_at(jx, "prio", "{\"tag\":\"low\"}", 0, 0);
	high = enqueue_at(jx, "prio", "{\"tag\":\"high\"}", 0, 5);
	/* the slot is taken: both wait */
	assert_int_equal(q_int(jx, "SELECT count(*) FROM jobs WHERE state = 'queued'"), 2);
	wait_state(jx, low, "succeeded");
	wait_state(jx, high, "succeeded");
	assert_string_equal(state_of(jx, block, order, sizeof order), "succeeded");
	q_text(jx, order, sizeof order,
	       "SELECT group_concat(tag, ',') FROM (SELECT tag FROM rec ORDER BY id)");
	assert_string_equal(order, "block,high,low");
	assert_true(q_int(jx, "SELECT started_at FROM jobs WHERE id = %lld", (long long)high) <=
	            q_int(jx, "SELECT started_at FROM jobs WHERE id = %lld", (long long)low));
}

static void test_delay(void **state)
{
	struct jx *jx = *state;
	int64_t id, now, at;
	double t0;

	put(jx, "later",
	    "return { run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  return 'late'\n"
	    "end }\n");
	boot(jx);
	t0 = mono_ms();
	now = store_now();
	at = now + 300;
	id = enqueue_at(jx, "later", NULL, at, 0);
	assert_int_equal(q_int(jx, "SELECT run_at FROM jobs WHERE id = %lld", (long long)id), at);
	wait_state(jx, id, "succeeded");
	/* not before its time (the wall clock the store uses) */
	if (q_int(jx, "SELECT started_at FROM jobs WHERE id = %lld", (long long)id) < at)
		fail_msg("started %lld ms before its run_at",
		         (long long)(at - q_int(jx, "SELECT started_at FROM jobs WHERE id = %lld",
		                                (long long)id)));
	/* and the due timer started it, not a much later poll (generous) */
	assert_true(mono_ms() - t0 < 300 + 1500);
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
}

/* A script that records its start, then sleeps long enough to be cancelled. */
#define LONG_SCRIPT                                                                                \
	"return { run = function(ctx)\n"                                                           \
	"  rec(ctx, 'start')\n"                                                                    \
	"  async.sleep(5000)\n"                                                                    \
	"  rec(ctx, 'after')\n"                                                                    \
	"  return true\n"                                                                          \
	"end }\n"

static void test_cancel_running(void **state)
{
	struct jx *jx = *state;
	char code[64], msg[256];
	json_t *stats;
	int64_t id;

	put(jx, "long", LONG_SCRIPT);
	boot(jx);
	id = enqueue(jx, "long", NULL);
	wait_rec(jx, "start", 1);
	assert_string_equal(state_of(jx, id, msg, sizeof msg), "running");
	assert_int_equal(jobs_cancel_running(jx->d.jobs, id + 1000), 0);
	assert_int_equal(jobs_cancel_running(jx->d.jobs, id), 1);
	wait_state(jx, id, "cancelled");
	job_error(jx, id, code, sizeof code, msg, sizeof msg);
	assert_string_equal(code, "cancelled");
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
	assert_int_equal(
	    q_int(jx, "SELECT finished_at IS NOT NULL FROM jobs WHERE id = %lld", (long long)id),
	    1);
	while (jobs_running(jx->d.jobs))
		turn(jx);
	assert_int_equal(jobs_cancel_running(jx->d.jobs, id), 0);
	stats = jobs_stats_json(jx->d.jobs);
	assert_int_equal(json_integer_value(json_object_get(stats, "cancelled")), 1);
	assert_int_equal(json_integer_value(json_object_get(stats, "failed")), 0);
	json_decref(stats);
	spin(jx, 50);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE tag = 'after'"), 0);
	assert_string_equal(state_of(jx, id, msg, sizeof msg), "cancelled");
}

static void test_cancel_all_requeues(void **state)
{
	struct jx *jx = *state;
	char buf[64];
	double end;
	json_t *stats;
	int64_t id;

	put(jx, "long", LONG_SCRIPT);
	boot(jx);
	id = enqueue(jx, "long", NULL);
	wait_rec(jx, "start", 1);
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 1);
	assert_int_equal(jobs_running(jx->d.jobs), 1);
	/* what SIGTERM does: drain; then, the shutdown timeout spent, cancel all */
	jobs_drain(jx->d.jobs);
	jobs_cancel_all(jx->d.jobs);
	end = mono_ms() + WAIT_MS;
	while (jobs_running(jx->d.jobs)) {
		if (mono_ms() > end)
			fail_msg("%zu runs left after %d ms", jobs_running(jx->d.jobs), WAIT_MS);
		turn(jx);
	}
	assert_string_equal(state_of(jx, id, buf, sizeof buf), "queued");
	/* the interrupted attempt is not counted */
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 0);
	assert_int_equal(q_int(jx,
	                       "SELECT count(*) FROM jobs WHERE id = %lld AND lease IS NULL"
	                       " AND finished_at IS NULL AND error IS NULL",
	                       (long long)id),
	                 1);
	stats = jobs_stats_json(jx->d.jobs);
	assert_int_equal(json_integer_value(json_object_get(stats, "requeued")), 1);
	assert_int_equal(json_integer_value(json_object_get(stats, "cancelled")), 0);
	json_decref(stats);
	/* drained: it is not claimed again */
	spin(jx, 100);
	assert_string_equal(state_of(jx, id, buf, sizeof buf), "queued");
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE tag = 'start'"), 1);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM rec WHERE tag = 'after'"), 0);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_schedule(void **state)
{
	struct jx *jx = *state;
	int64_t at[16], t0 = store_now();
	double end;
	size_t n = 0;
	sqlite3_stmt *s;

	put(jx, "tick",
	    "return { schedule = '@every 200ms', run = function(ctx)\n"
	    "  return ctx.job.id\n"
	    "end }\n");
	boot(jx);
	end = mono_ms() + 1500;
	while (q_int(jx, "SELECT count(*) FROM jobs WHERE name = 'tick'") < 3) {
		if (mono_ms() > end)
			fail_msg(
			    "%lld scheduled jobs after 1500 ms",
			    (long long)q_int(jx, "SELECT count(*) FROM jobs WHERE name = 'tick'"));
		turn(jx);
	}
	assert_int_equal(
	    sqlite3_prepare_v2(jx->ro, "SELECT key FROM jobs WHERE name = 'tick'", -1, &s, NULL),
	    SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW && n < 16) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		char *endp;

		assert_non_null(key);
		assert_int_equal(strncmp(key, "schedule:tick:", 14), 0);
		at[n] = strtoll(key + 14, &endp, 10);
		assert_int_equal(*endp, '\0');
		assert_true(at[n] > t0);
		n++;
	}
	sqlite3_finalize(s);
	assert_true(n >= 3);
	qsort(at, n, sizeof at[0], cmp_i64);
	for (size_t i = 1; i < n; i++)
		if (at[i] - at[i - 1] < 200)
			fail_msg("fires %lld and %lld are %lld ms apart", (long long)at[i - 1],
			         (long long)at[i], (long long)(at[i] - at[i - 1]));
	assert_int_equal(q_int(jx,
	                       "SELECT count(*) FROM schedules WHERE name = 'tick'"
	                       " AND expr = '@every 200ms' AND next_at > %lld",
	                       (long long)at[n - 1]),
	                 1);
	/* and they run */
	end = mono_ms() + WAIT_MS;
	while (q_int(jx, "SELECT count(*) FROM jobs WHERE name = 'tick' AND state = 'succeeded'") <
	       2) {
		if (mono_ms() > end)
			fail_msg("scheduled jobs did not run");
		turn(jx);
	}
}

static void test_wait(void **state)
{
	struct jx *jx = *state;
	struct answer *a = &jx->ans[0];
	int saw_running = 0;
	char st[32];
	double end;
	int64_t id;

	put(jx, "slow",
	    "return { run = function(ctx)\n"
	    "  rec(ctx, 'start')\n"
	    "  async.sleep(200)\n"
	    "  return 'done'\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "slow", NULL);
	wait_rec(jx, "start", 1);
	wait_job(jx, id, 0);
	/* not answered while the job runs */
	end = mono_ms() + WAIT_MS;
	while (strcmp(state_of(jx, id, st, sizeof st), "running") == 0) {
		if (mono_ms() > end)
			fail_msg("the job ran for %d ms", WAIT_MS);
		assert_int_equal(a->done, 0);
		saw_running = 1;
		turn(jx);
	}
	assert_true(saw_running);
	assert_string_equal(st, "succeeded");
	/* answered (through its own done and arg) once it is final */
	wait_flag(jx, &a->done);
	assert_int_equal(a->rc, 0);
	assert_int_equal(a->njobs, 1);
	assert_int_equal(a->id, id);
	assert_string_equal(a->state, "succeeded");
	assert_string_equal(a->result, "\"done\"");

	/* a job already final: answered at once; no such job: answered with none */
	wait_job(jx, id, 1);
	wait_job(jx, id + 1000, 2);
	wait_flag(jx, &jx->ans[1].done);
	wait_flag(jx, &jx->ans[2].done);
	assert_int_equal(jx->ans[1].rc, 0);
	assert_int_equal(jx->ans[1].njobs, 1);
	assert_string_equal(jx->ans[1].state, "succeeded");
	assert_int_equal(jx->ans[2].rc, 0);
	assert_int_equal(jx->ans[2].njobs, 0);
}

static void test_wait_stopping(void **state)
{
	struct jx *jx = *state;
	struct store_req *r2;
	int64_t id;

	put(jx, "long", LONG_SCRIPT);
	boot(jx);
	id = enqueue(jx, "long", NULL);
	wait_rec(jx, "start", 1);
	wait_job(jx, id, 0);
	r2 = store_req_new(STORE_GET);
	assert_non_null(r2);
	r2->id = id;
	r2->done = on_answer;
	r2->arg = &jx->ans[1];
	jobs_wait(r2, jx->d.jobs);
	spin(jx, 50); /* both parked */
	assert_int_equal(jx->ans[0].done, 0);
	assert_int_equal(jx->ans[1].done, 0);
	/* one is taken back by its owner (a client that went away), done and arg restored */
	assert_int_equal(jobs_withdraw(r2, jx->d.jobs), 1);
	assert_int_equal(jobs_withdraw(r2, jx->d.jobs), 0);
	assert_ptr_equal(r2->done, on_answer);
	assert_ptr_equal(r2->arg, &jx->ans[1]);
	store_req_free(r2);
	/* the other is answered "stopping" when the daemon closes */
	jobs_fail_waiters(jx->d.jobs);
	assert_int_equal(jx->ans[0].done, 1);
	assert_int_equal(jx->ans[0].rc, -1);
	assert_string_equal(jx->ans[0].code, "stopping");
	assert_int_equal(jx->ans[1].done, 0);
}

static void test_steps_replay(void **state)
{
	struct jx *jx = *state;
	char buf[256];
	json_t *res;
	int64_t id;

	put(jx, "steps",
	    "return { retries = 1, backoff = 10, run = function(ctx)\n"
	    "  local a = assert(ctx.db:tx(function(tx)\n"
	    "    assert(tx:exec('INSERT INTO rec (job, tag, attempt, t) VALUES (?, ?, ?, 0)',\n"
	    "      ctx.job.id, 'tx', ctx.job.attempt))\n"
	    "    return 40 + ctx.job.attempt\n"
	    "  end, { step = 'debit' }))\n"
	    "  local b, c = ctx.step('charge', function(x)\n"
	    "    rec(ctx, 'step')\n"
	    "    return 'ch-' .. ctx.job.attempt, x\n"
	    "  end, 7)\n"
	    "  assert(b, c)\n"
	    "  if ctx.job.attempt == 1 then return nil, async.error('flaky', 'first attempt') end\n"
	    "  return { a, b, c, ctx.job.attempt }\n"
	    "end }\n");
	boot(jx);
	id = enqueue(jx, "steps", NULL);
	wait_state(jx, id, "succeeded");
	assert_int_equal(q_int(jx, "SELECT attempt FROM jobs WHERE id = %lld", (long long)id), 2);
	q_text(jx, buf, sizeof buf, "SELECT result FROM jobs WHERE id = %lld", (long long)id);
	res = json_loads(buf, 0, NULL);
	if (!json_is_array(res) || json_array_size(res) != 4)
		fail_msg("result: %s", buf);
	assert_int_equal(json_integer_value(json_array_get(res, 0)), 41);
	assert_string_equal(json_string_value(json_array_get(res, 1)), "ch-1");
	assert_int_equal(json_integer_value(json_array_get(res, 2)), 7);
	assert_int_equal(json_integer_value(json_array_get(res, 3)), 2);
	json_decref(res);
	/* each fn ran once, in the first attempt */
	assert_string_equal(q_text(jx, buf, sizeof buf,
	                           "SELECT group_concat(tag || attempt, ',') FROM"
	                           " (SELECT tag, attempt FROM rec WHERE job = %lld ORDER BY id)",
	                           (long long)id),
	                    "tx1,step1");
	assert_string_equal(q_text(jx, buf, sizeof buf,
	                           "SELECT group_concat(seq || name || kind, ',') FROM"
	                           " (SELECT seq, name, kind FROM steps WHERE job_id = %lld"
	                           " ORDER BY seq)",
	                           (long long)id),
	                    "1debittx,2chargestep");
}

static void test_enqueue_rejected(void **state)
{
	struct jx *jx = *state;
	struct store_req *r;
	struct store_err err;

	put(jx, "fine", "return { run = function() return 1 end }\n");
	put(jx, "broken", "return { run = function( end }\n");
	jx->allow_broken = 1;
	boot(jx);
	r = enqueue_req("nosuch", NULL, NULL, 0, 0);
	memset(&err, 0, sizeof err);
	assert_int_equal(jobs_enqueue(jx->d.jobs, r, &err), -1);
	assert_string_equal(err.code, "no_such_script");
	assert_int_equal(r->op, STORE_ENQUEUE);
	assert_int_equal(r->max_attempts, 0); /* untouched */
	memset(&err, 0, sizeof err);
	free(r->name);
	r->name = xstrdup("broken");
	assert_int_equal(jobs_enqueue(jx->d.jobs, r, &err), -1);
	assert_string_equal(err.code, "invalid");
	jobs_drain(jx->d.jobs);
	memset(&err, 0, sizeof err);
	free(r->name);
	r->name = xstrdup("fine");
	assert_int_equal(jobs_enqueue(jx->d.jobs, r, &err), -1);
	assert_string_equal(err.code, "stopping");
	store_req_free(r);
	assert_int_equal(q_int(jx, "SELECT count(*) FROM jobs"), 0);
}

/*
 * Two names with delayed jobs: each name's NEXT_DUE answer arms the one
 * due timer; the earliest due time must win, whatever the answers' order.
 */
static void test_delay_two_names(void **state)
{
	struct jx *jx = *state;
	int64_t soon, late, now, lag;

	put(jx, "a_soon", "return { run = function(ctx) rec(ctx, 'soon') return 1 end }\n");
	put(jx, "b_late", "return { run = function(ctx) rec(ctx, 'late') return 1 end }\n");
	boot(jx);
	now = store_now();
	soon = enqueue_at(jx, "a_soon", NULL, now + 150, 0);
	late = enqueue_at(jx, "b_late", NULL, now + 900, 0);
	wait_state(jx, soon, "succeeded");
	lag = q_int(jx, "SELECT started_at - run_at FROM jobs WHERE id = %lld", (long long)soon);
	if (lag < 0 || lag > 400)
		fail_msg("a_soon started %lld ms after its run_at (b_late's is 750 ms later)",
		         (long long)lag);
	wait_state(jx, late, "succeeded");
}

/* A reload while the schedule's request is with the store. */
static void test_schedule_reload_in_flight(void **state)
{
	struct jx *jx = *state;
	double end;

	put(jx, "tick",
	    "return { schedule = '@every 100ms', run = function(ctx)\n"
	    "  return ctx.job.id\n"
	    "end }\n");
	boot(jx); /* jobs_start submitted STORE_SCHEDULE; its answer has not run */
	assert_true(scripts_reload(&jx->d.scripts) == 0);
	jobs_reloaded(jx->d.jobs);
	end = mono_ms() + WAIT_MS;
	while (q_int(jx, "SELECT count(*) FROM jobs WHERE name = 'tick' AND state = 'succeeded'") <
	       2) {
		if (mono_ms() > end)
			fail_msg("the schedule did not fire twice");
		turn(jx);
	}
}

/*
 * A queued job cancelled in the store (`awaitctl cancel`: STORE_CANCEL,
 * then jobs_finished when it changed the job, as cmd-cancel.c does) is final:
 * its waiters are answered.
 */
static void on_cancelled(struct store_req *r)
{
	struct jx *jx = r->arg;

	if (r->rc == 0 && r->changed)
		jobs_finished(jx->d.jobs, r);
	r->arg = &jx->ans[1];
	on_answer(r);
}

static void test_wait_cancelled_in_store(void **state)
{
	struct jx *jx = *state;
	struct store_req *c;
	int64_t id;

	put(jx, "later", "return { run = function(ctx) return 1 end }\n");
	boot(jx);
	id = enqueue_at(jx, "later", NULL, store_now() + 60000, 0);
	wait_job(jx, id, 0);
	spin(jx, 30); /* parked: the job is queued */
	assert_int_equal(jx->ans[0].done, 0);
	c = store_req_new(STORE_CANCEL);
	assert_non_null(c);
	c->id = id;
	c->now = store_now();
	c->done = on_cancelled;
	c->arg = jx;
	store_submit(jx->d.st, c);
	wait_flag(jx, &jx->ans[1].done);
	assert_int_equal(jx->ans[1].rc, 0);
	assert_string_equal(jx->ans[1].state, "cancelled");
	wait_flag(jx, &jx->ans[0].done);
	assert_int_equal(jx->ans[0].rc, 0);
	assert_string_equal(jx->ans[0].state, "cancelled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_succeeds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retries_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_result_not_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_all_requeues, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_stopping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_steps_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enqueue_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delay_two_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_cancelled_in_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_reload_in_flight, setup, teardown),
	};

	if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER=test_wait* */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
