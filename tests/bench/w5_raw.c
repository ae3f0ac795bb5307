/*
 * w5_raw.c: the SQLite floor of benchmark W5 (tests/bench/w5.sh). Runs,
 * for each of N jobs, the statements awaitd's store runs for it
 * (daemon/store-jobs.c: op_enqueue, op_claim, op_finish with its spans
 * row) on one connection, with no daemon, no Lua and no threads, and
 * commits every BATCH jobs' worth of statements: the best a group commit
 * of BATCH jobs can do on this disk.
 *
 *   cc -O2 -o w5_raw w5_raw.c -lsqlite3
 *   w5_raw DB N [BATCH [MODE]]
 *
 * DB must hold the repository's migrations already (w5.sh applies them
 * with the sqlite3 CLI). WAL mode, synchronous = FULL, as awaitd opens it.
 * MODE "one" (default): per batch, BATCH enqueues, one claim of BATCH
 * rows and BATCH finishes in ONE transaction (one fsync per batch).
 * MODE "split": the same in three transactions per batch (enqueues;
 * claim; finishes), the shape awaitd's own commits have (a job is
 * acknowledged enqueued before it is claimed, and claimed before it runs).
 * Prints one JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define JOB_COLS                                                                                   \
	"id, name, state, args, key, priority, attempt, max_attempts, backoff_ms, timeout_ms,"     \
	" run_at, created_at, started_at, finished_at, lease, result, error"

static sqlite3 *db;

static void die(const char *what)
{
	fprintf(stderr, "w5_raw: %s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static void exec(const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(sql);
}

static sqlite3_stmt *prep(const char *sql)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		die(sql);
	return s;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Step to the end, reading every column of every row (as the store copies them). */
static int drain(sqlite3_stmt *s, const char *what, long long *ids, int max)
{
	int rc, n = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(s);
		for (int c = 0; c < nc; c++)
			(void)sqlite3_column_text(s, c);
		if (ids && n < max)
			ids[n] = sqlite3_column_int64(s, 0);
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		die(what);
	return n;
}

int main(int argc, char **argv)
{
	sqlite3_stmt *enq, *claim, *lease_one, *has_steps, *fin;
	long long n, batch, lease = 0, *ids, *leases;
	int split;
	double t0, ms;
	long long commits = 0;
	char args[64], result[32], span[512];

	if (argc < 3) {
		fprintf(stderr, "usage: w5_raw DB N [BATCH [one|split]]\n");
		return 2;
	}
	n = atoll(argv[2]);
	batch = argc > 3 ? atoll(argv[3]) : 100;
	split = argc > 4 && strcmp(argv[4], "split") == 0;
	if (n <= 0 || batch <= 0) {
		fprintf(stderr, "w5_raw: N and BATCH must be > 0\n");
		return 2;
	}
	ids = calloc((size_t)batch, sizeof *ids);
	leases = calloc((size_t)batch, sizeof *leases);
	if (!ids || !leases)
		return 1;
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		die(argv[1]);
	/* as store.c opens it */
	exec("PRAGMA journal_mode = WAL");
	exec("PRAGMA synchronous = FULL");
	exec("PRAGMA foreign_keys = ON");
	exec("PRAGMA busy_timeout = 5000");
	exec("PRAGMA cache_size = -65536");
	exec("PRAGMA temp_store = MEMORY");

	/* the statements of daemon/store-jobs.c (op_enqueue, op_claim, op_finish) */
	enq = prep("INSERT INTO jobs (name, state, args, key, priority, max_attempts, backoff_ms,"
	           " timeout_ms, run_at, created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)"
	           " ON CONFLICT (key) DO NOTHING");
	claim = prep("SELECT " JOB_COLS " FROM jobs"
	             " WHERE (state = 'queued' OR state = 'failed') AND name = ?1 AND run_at <= ?2"
	             " ORDER BY priority DESC, run_at, id LIMIT ?3");
	lease_one = prep("UPDATE jobs SET state = 'running', attempt = attempt + 1, lease = ?,"
	                 " epoch = ?, started_at = ? WHERE id = ?");
	has_steps = prep("SELECT EXISTS (SELECT 1 FROM steps WHERE job_id = ?)");
	fin = prep("UPDATE jobs SET state = ?1, result = ?2, error = ?3, finished_at = ?4,"
	           " run_at = coalesce(?5, run_at), lease = NULL,"
	           " trace = CASE WHEN ?8 IS NULL THEN trace WHEN trace IS NULL THEN ?8"
	           "  ELSE trace || char(10) || ?8 END"
	           " WHERE id = ?6 AND state = 'running' AND lease = ?7");

	t0 = mono_ms();
	for (long long done = 0; done < n; done += batch) {
		long long b = n - done < batch ? n - done : batch, now;
		int got;

		exec("BEGIN IMMEDIATE");
		for (long long k = 0; k < b; k++) {
			now = wall_ms();
			snprintf(args, sizeof args, "{\"i\":%lld}", done + k + 1);
			sqlite3_bind_text(enq, 1, "noop", -1, SQLITE_STATIC);
			sqlite3_bind_text(enq, 2, args, -1, SQLITE_TRANSIENT);
			sqlite3_bind_null(enq, 3);
			sqlite3_bind_int64(enq, 4, 0);
			sqlite3_bind_int64(enq, 5, 1);
			sqlite3_bind_int64(enq, 6, 1000);
			sqlite3_bind_null(enq, 7);
			sqlite3_bind_int64(enq, 8, now);
			sqlite3_bind_int64(enq, 9, now);
			if (drain(enq, "enqueue", NULL, 0) != 0 || sqlite3_changes(db) != 1)
				die("enqueue: no row");
		}
		if (split) {
			exec("COMMIT");
			exec("BEGIN IMMEDIATE");
			commits++;
		}
		now = wall_ms();
		sqlite3_bind_text(claim, 1, "noop", -1, SQLITE_STATIC);
		sqlite3_bind_int64(claim, 2, now);
		sqlite3_bind_int64(claim, 3, b);
		got = drain(claim, "claim", ids, (int)b);
		if (got != b) {
			fprintf(stderr, "w5_raw: claimed %d of %lld\n", got, b);
			return 1;
		}
		++lease;
		for (int k = 0; k < got; k++) {
			sqlite3_bind_int64(lease_one, 1, lease);
			sqlite3_bind_int64(lease_one, 2, 1);
			sqlite3_bind_int64(lease_one, 3, now);
			sqlite3_bind_int64(lease_one, 4, ids[k]);
			if (sqlite3_step(lease_one) != SQLITE_DONE)
				die("lease");
			sqlite3_reset(lease_one);
			sqlite3_bind_int64(has_steps, 1, ids[k]);
			if (sqlite3_step(has_steps) != SQLITE_ROW)
				die("has_steps");
			sqlite3_reset(has_steps);
		}
		if (split) {
			exec("COMMIT");
			exec("BEGIN IMMEDIATE");
			commits++;
		}
		for (int k = 0; k < got; k++) {
			now = wall_ms();
			snprintf(result, sizeof result, "%lld", (done + k + 1) * 2);
			/* a noop job's trace, as awaitd writes it (about 270 bytes) */
			snprintf(span, sizeof span,
			         "[{\"task\":%lld,\"parent\":null,\"name\":\"run\",\"where\":\"jobrun.lua:135\","
			         "\"start\":1.0228630006313324,\"ms\":0.052628999575972557,\"outcome\":\"done\","
			         "\"attempt\":1},{\"task\":%lld,\"parent\":%lld,\"name\":\"task\",\"where\":"
			         "\"scripts/noop.lua:1\",\"start\":1.0541719999164343,\"ms\":0.0091670006513595581,"
			         "\"outcome\":\"done\",\"attempt\":1}]",
			         2 * ids[k], 2 * ids[k] + 1, 2 * ids[k]);
			sqlite3_bind_text(fin, 1, "succeeded", -1, SQLITE_STATIC);
			sqlite3_bind_text(fin, 2, result, -1, SQLITE_TRANSIENT);
			sqlite3_bind_null(fin, 3);
			sqlite3_bind_int64(fin, 4, now);
			sqlite3_bind_null(fin, 5);
			sqlite3_bind_int64(fin, 6, ids[k]);
			sqlite3_bind_int64(fin, 7, lease);
			sqlite3_bind_text(fin, 8, span, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(fin) != SQLITE_DONE)
				die("finish");
			sqlite3_reset(fin);
			if (sqlite3_changes(db) != 1) {
				fprintf(stderr, "w5_raw: job %lld: finish changed nothing\n", ids[k]);
				return 1;
			}
		}
		exec("COMMIT");
		commits++;
	}
	ms = mono_ms() - t0;
	printf("{\"bench\":\"w5\",\"impl\":\"sqlite_raw\",\"variant\":\"%s\",\"n\":%lld,\"batch\":%lld,"
	       "\"commits\":%lld,\"synchronous\":\"full\",\"sqlite\":\"%s\",\"total_ms\":%.0f,"
	       "\"per_s\":%.0f}\n",
	       split ? "split" : "one", n, batch, commits, sqlite3_libversion(), ms, n / ms * 1000);
	sqlite3_finalize(enq);
	sqlite3_finalize(claim);
	sqlite3_finalize(fin);
	sqlite3_finalize(lease_one);
	sqlite3_finalize(has_steps);
	sqlite3_close(db);
	return 0;
}
