/*
 * store.c: the SQLite store (see store.h): opening, the store thread with
 * its group commit, user transactions, and the answer path to the loop.
 *
 * Threads: the loop thread only calls store_submit (appends to `queue`
 * under `mu`, signals `cv`) and runs answers from `answered` in an event
 * woken through an eventfd. The store thread owns the connection and
 * everything below "store thread only"; it takes the queue in one swap and
 * works through it:
 *
 *  - a request of the open user transaction runs at once and is answered
 *    at once (its effects only count when TX_END commits);
 *  - while a user transaction is open, other requests are deferred, in
 *    order, and run when it ends;
 *  - every other answer joins `acks` and is released after the COMMIT of
 *    its batch. A batch commits when the store runs out of work with no
 *    user transaction open, or has grown past max_batch / max_batch_ms.
 *
 * If SQLite rolls the whole transaction back on its own (a full disk, an
 * I/O error) or the COMMIT fails, every unanswered request of the batch
 * fails with the cause: none of it was acknowledged, so nothing
 * acknowledged is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "errbuf.h"
#include "migrate.h"
#include "store-int.h"

#define STMT_CACHE 64   /* prepared statements kept */
#define DEAD_TX    64   /* timed-out transactions remembered */
#define SPIN_MS    0.05 /* how long the writer looks for its owner's next request */

struct stmt_slot {
	char *sql;
	sqlite3_stmt *stmt;
	uint64_t used; /* for eviction: least recently used goes */
	int user;      /* prepared as application SQL (under the authorizer's rules) */
};

struct store {
	struct store_config cfg;
	char *path, *migrations_dir, *synchronous;
	sqlite3 *db;
	int lock_fd; /* the locked database directory */
	int64_t epoch;
	pthread_t thread;
	int thread_on;

	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_req *queue, *queue_tail;
	struct store_req *answered, *answered_tail;
	int stopping;
	struct store_stats stats;

	/* loop thread only */
	int efd;         /* eventfd: answers are waiting */
	int has_answers; /* atomic: set with `answered`, cleared when taken (store_poll) */
	struct event *ev;
	size_t pending;

	/* store thread only */
	struct store_req *acks, *acks_tail;   /* answered at the next commit */
	struct store_req *later, *later_tail; /* deferred while a user tx is open */
	int in_batch;
	int batch_n;
	double batch_started; /* ms, monotonic */
	int64_t open_tx;      /* token of the user transaction holding the writer, 0 none */
	double tx_started;    /* ms, monotonic */
	int64_t dead_tx[DEAD_TX];
	int ndead;
	int64_t lease_seq;
	int user_sql;         /* running application SQL: the authorizer's rules apply */
	const char *denied;   /* why the authorizer refused it (static text), or NULL */
	char denied_name[64]; /* the table, pragma or function it named */
	char ddl_table[128];  /* the table a CREATE/ALTER TABLE being run makes, or "" */
	struct store_req *cur; /* the request whose statement runs (progress handler) */
	double stmt_deadline;  /* ms, monotonic: when cur's statement is stopped; 0 none */
	struct stmt_slot stmts[STMT_CACHE];
	uint64_t stmt_clock;
};

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_config_defaults(struct store_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->path = "awaitd.db";
	cfg->migrations_dir = "migrations";
	cfg->synchronous = "full";
	cfg->tx_timeout_ms = 5000;
	cfg->max_statement_ms = 1000;
	cfg->max_batch = 4096;
	cfg->max_batch_ms = 50;
}

static const char *const state_names[STORE_NSTATES] = {
    "queued", "running", "succeeded", "failed", "dead", "cancelled",
};

const char *store_state_name(enum store_state s)
{
	return (unsigned)s < STORE_NSTATES ? state_names[s] : "?";
}

int store_state_parse(const char *name)
{
	for (int i = 0; i < STORE_NSTATES; i++)
		if (name && strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

/* ---- requests ------------------------------------------------------------ */

struct store_req *store_req_new(enum store_op op)
{
	struct store_req *r = calloc(1, sizeof *r);

	if (r)
		r->op = op;
	return r;
}

static void vals_free(struct store_val *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].p);
	free(v);
}

void store_job_fini(struct store_job *j)
{
	free(j->name);
	free(j->state);
	free(j->args);
	free(j->key);
	free(j->result);
	free(j->error);
	memset(j, 0, sizeof *j);
}

void store_req_free(struct store_req *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->key);
	free(r->sql);
	free(r->text);
	free(r->text2);
	vals_free(r->params, (size_t)r->nparams);
	for (int i = 0; i < r->rows.ncols; i++)
		free(r->rows.cols[i]);
	free(r->rows.cols);
	vals_free(r->rows.vals, r->rows.nrows * (size_t)r->rows.ncols);
	for (size_t i = 0; i < r->njobs; i++)
		store_job_fini(&r->jobs[i]);
	free(r->jobs);
	free(r->out_text);
	free(r);
}

int store_fail(struct store_req *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->rc = -1;
	snprintf(r->err.code, sizeof r->err.code, "%s", code);
	va_start(ap, fmt);
	vsnprintf(r->err.msg, sizeof r->err.msg, fmt, ap);
	va_end(ap);
	return -1;
}

int store_fail_db(struct store *st, struct store_req *r, const char *what)
{
	return store_fail(r, "db", "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

int64_t store_new_lease(struct store *st)
{
	return st->epoch * ((int64_t)1 << 32) + ++st->lease_seq;
}

int64_t store_epoch(const struct store *st)
{
	return st->epoch;
}

size_t store_pending(const struct store *st)
{
	return st->pending;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	pthread_mutex_unlock(&st->mu);
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

void store_bind_opt(sqlite3_stmt *s, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

char *store_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? strdup((const char *)t) : NULL;
}

/* ---- prepared statements --------------------------------------------------- */

sqlite3_stmt *store_stmt(struct store *st, const char *sql, struct store_req *r)
{
	struct stmt_slot *victim = &st->stmts[0];
	sqlite3_stmt *s = NULL;

	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_slot *e = &st->stmts[i];
		if (e->sql && e->user == st->user_sql && strcmp(e->sql, sql) == 0) {
			e->used = ++st->stmt_clock;
			sqlite3_reset(e->stmt);
			sqlite3_clear_bindings(e->stmt);
			return e->stmt;
		}
		if (e->used < victim->used)
			victim = e;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		store_fail(r, "db", "%s", sqlite3_errmsg(st->db));
		return NULL;
	}
	if (!s) {
		store_fail(r, "invalid", "no SQL statement in \"%.60s\"", sql);
		return NULL;
	}
	sqlite3_finalize(victim->stmt);
	free(victim->sql);
	victim->sql = strdup(sql);
	victim->stmt = victim->sql ? s : NULL;
	victim->used = ++st->stmt_clock;
	victim->user = st->user_sql;
	if (!victim->sql) {
		sqlite3_finalize(s);
		store_fail(r, "out_of_memory", "out of memory");
		return NULL;
	}
	return s;
}

/* ---- results ----------------------------------------------------------------- */

static int col_value(sqlite3_stmt *s, int i, struct store_val *v)
{
	const void *p;

	switch (sqlite3_column_type(s, i)) {
	case SQLITE_INTEGER:
		v->type = STORE_INT;
		v->i = sqlite3_column_int64(s, i);
		return 0;
	case SQLITE_FLOAT:
		v->type = STORE_REAL;
		v->d = sqlite3_column_double(s, i);
		return 0;
	case SQLITE_NULL:
		v->type = STORE_NULL;
		return 0;
	case SQLITE_TEXT:
		v->type = STORE_TEXT;
		p = sqlite3_column_text(s, i);
		break;
	default:
		v->type = STORE_BLOB;
		p = sqlite3_column_blob(s, i);
		break;
	}
	v->n = (size_t)sqlite3_column_bytes(s, i);
	v->p = malloc(v->n + 1);
	if (!v->p)
		return -1;
	if (v->n)
		memcpy(v->p, p, v->n);
	v->p[v->n] = '\0';
	return 0;
}

int store_collect(struct store *st, sqlite3_stmt *s, struct store_req *r)
{
	struct store_rows *rows = &r->rows;
	size_t cap = 0;
	int rc;

	rows->ncols = sqlite3_column_count(s);
	if (rows->ncols) {
		rows->cols = calloc((size_t)rows->ncols, sizeof *rows->cols);
		if (!rows->cols)
			return store_fail(r, "out_of_memory", "out of memory");
		for (int i = 0; i < rows->ncols; i++) {
			const char *n = sqlite3_column_name(s, i);
			if (!(rows->cols[i] = strdup(n ? n : "?")))
				return store_fail(r, "out_of_memory", "out of memory");
		}
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_val *row;
		if (rows->nrows == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct store_val *nv =
			    realloc(rows->vals, ncap * (size_t)rows->ncols * sizeof *nv);
			if (!nv)
				return store_fail(r, "out_of_memory", "out of memory");
			rows->vals = nv;
			cap = ncap;
		}
		row = rows->vals + rows->nrows * (size_t)rows->ncols;
		memset(row, 0, (size_t)rows->ncols * sizeof *row);
		rows->nrows++;
		for (int i = 0; i < rows->ncols; i++)
			if (col_value(s, i, &row[i]) < 0)
				return store_fail(r, "out_of_memory", "out of memory");
	}
	if (rc != SQLITE_DONE)
		return store_fail(r, "db", "%s", sqlite3_errmsg(st->db));
	rows->changes = sqlite3_changes64(st->db);
	rows->last_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* ---- user SQL and transactions -------------------------------------------------- */

/*
 * The boundary between the daemon's data and the application's. One file
 * and one connection hold both (a db:tx step journals in the same
 * transaction as the writes it made, which a second database file in WAL
 * mode could not promise), so application SQL runs under an authorizer,
 * installed once at open (installing one expires every prepared
 * statement) and in force while st->user_sql is set, which run_sql keeps
 * over prepare and step (a statement re-prepared inside sqlite3_step is
 * checked again). It refuses:
 *  - the daemon's tables (store_reserved, and any name starting with
 *    awaitd_): no read, write, index, trigger, view or drop can name them,
 *    also through a view or a trigger (SQLite's own sqlite_master cannot
 *    be written directly either: DEFENSIVE, and writable_schema refused);
 *  - transaction control (db:tx is the way), ATTACH and DETACH (and so
 *    VACUUM, which attaches), temporary objects (they would shadow the
 *    daemon's tables on the shared connection), every PRAGMA but a short
 *    read-only list, load_extension and fts3_tokenizer, and the
 *    introspection tables that show other scripts' SQL or pages.
 * Application statements and the daemon's own never share a cache slot.
 * A foreign key is the one reference the authorizer does not see: a table
 * made or altered by application SQL is checked after its statement ran
 * (in a savepoint, undone when it references a daemon table, which would
 * let a script block the daemon's own deletes).
 */
static const char *const store_reserved[] = {
    "jobs", "steps", "schedules", "executor", "schema_migrations", NULL,
};
static const char *const allowed_pragmas[] = {
    "table_info",  "table_xinfo",      "index_list",   "index_info", "index_xinfo",
    "foreign_key_list", "collation_list", "function_list", NULL,
};

static int in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (sqlite3_stricmp(*list, name) == 0)
			return 1;
	return 0;
}

int store_is_reserved(const char *table)
{
	return table && (in_list(store_reserved, table) || sqlite3_strnicmp(table, "awaitd_", 7) == 0);
}

static int deny(struct store *st, const char *why, const char *name)
{
	if (!st->denied) {
		st->denied = why;
		snprintf(st->denied_name, sizeof st->denied_name, "%s", name ? name : "");
	}
	return SQLITE_DENY;
}

static int authorize(void *arg, int action, const char *a, const char *b, const char *c,
                     const char *d)
{
	struct store *st = arg;
	const char *table = NULL;

	(void)c;
	(void)d;
	if (!st->user_sql)
		return SQLITE_OK;
	switch (action) {
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		return deny(st,
		            "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is "
		            "refused in application SQL: use db:tx",
		            NULL);
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		return deny(st, "ATTACH, DETACH and VACUUM are refused in application SQL", NULL);
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
		return deny(st,
		            "temporary tables, indexes, triggers and views are refused in "
		            "application SQL (they live on the daemon's shared connection)",
		            NULL);
	case SQLITE_PRAGMA:
		if (a && in_list(allowed_pragmas, a))
			return SQLITE_OK;
		return deny(st, "is refused in application SQL (allowed: table_info, table_xinfo, "
		                "index_list, index_info, index_xinfo, foreign_key_list, "
		                "collation_list, function_list)",
		            a);
	case SQLITE_FUNCTION:
		if (b && (sqlite3_stricmp(b, "load_extension") == 0 ||
		          sqlite3_stricmp(b, "fts3_tokenizer") == 0))
			return deny(st, "is refused in application SQL", b);
		return SQLITE_OK;
	case SQLITE_READ:
		table = a;
		if (table && (sqlite3_stricmp(table, "sqlite_stmt") == 0 ||
		              sqlite3_stricmp(table, "dbstat") == 0 ||
		              sqlite3_stricmp(table, "sqlite_dbpage") == 0))
			return deny(st, "is out of reach of application SQL", table);
		break;
	case SQLITE_CREATE_TABLE:
		snprintf(st->ddl_table, sizeof st->ddl_table, "%s", a ? a : "");
		table = a;
		break;
	case SQLITE_ALTER_TABLE:
		snprintf(st->ddl_table, sizeof st->ddl_table, "%s", b ? b : "");
		table = b;
		break;
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
	case SQLITE_DROP_TABLE:
	case SQLITE_CREATE_VIEW:
	case SQLITE_DROP_VIEW:
	case SQLITE_ANALYZE:
	case SQLITE_CREATE_VTABLE:
	case SQLITE_DROP_VTABLE:
		table = a;
		break;
	case SQLITE_CREATE_INDEX:
	case SQLITE_DROP_INDEX:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_DROP_TRIGGER:
		table = b;
		break;
	default:
		return SQLITE_OK;
	}
	if (store_is_reserved(table))
		return deny(st, "is one of the daemon's own tables, out of reach of application SQL",
		            table);
	return SQLITE_OK;
}

/*
 * The progress handler: stops the statement of st->cur once its deadline
 * passes or its waiter went away. Daemon statements run with no deadline.
 */
static int progress(void *arg)
{
	struct store *st = arg;

	if (!st->cur)
		return 0;
	if (__atomic_load_n(&st->cur->cancelled, __ATOMIC_RELAXED))
		return 1;
	return st->stmt_deadline > 0 && mono_ms() > st->stmt_deadline;
}

/* Fail r after the authorizer refused its SQL, naming what and why. */
static int fail_denied(struct store *st, struct store_req *r)
{
	if (st->denied_name[0] && strncmp(st->denied, "is ", 3) == 0)
		return store_fail(r, "invalid", "\"%s\" %s", st->denied_name, st->denied);
	return store_fail(r, "invalid", "%s", st->denied);
}

/* Fail r after its statement was stopped by the progress handler. */
static int fail_stopped(struct store *st, struct store_req *r, double limit, double started)
{
	if (__atomic_load_n(&r->cancelled, __ATOMIC_RELAXED))
		return store_fail(r, "cancelled", "the statement was stopped: its task was cancelled");
	return store_fail(r, "timeout",
	                  "the statement was stopped after %.0f ms (%s)", mono_ms() - started,
	                  limit == st->cfg.max_statement_ms ? "max_statement_ms"
	                  : r->tx                           ? "the job's deadline or tx_timeout_ms"
	                                                    : "the job's deadline");
}

static int exec_simple(struct store *st, const char *sql);

/*
 * Take s out of the statement cache, for the caller to finalize: a DDL
 * statement is authorized (and its foreign keys checked) at every run.
 */
static void stmt_forget(struct store *st, sqlite3_stmt *s)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_slot *e = &st->stmts[i];
		if (e->stmt == s) {
			free(e->sql);
			memset(e, 0, sizeof *e);
			return;
		}
	}
}

/*
 * 1 when st->ddl_table has a foreign key to a daemon table (its name in
 * buf), 0 when not, -1 when the check itself failed.
 */
static int ddl_references_reserved(struct store *st, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc, found = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT \"table\" FROM pragma_foreign_key_list(?)", -1, &s,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, st->ddl_table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (store_is_reserved(t)) {
			snprintf(buf, len, "%s", t);
			found = 1;
			break;
		}
	}
	sqlite3_finalize(s);
	return found ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int run_sql(struct store *st, struct store_req *r)
{
	int64_t before = sqlite3_total_changes64(st->db);
	double started = mono_ms(), limit = st->cfg.max_statement_ms, deadline;
	sqlite3_stmt *s;
	int rc, ddl;

	deadline = started + limit;
	if (r->deadline > 0 && r->deadline < deadline) {
		deadline = r->deadline;
		limit = -1;
	}
	if (r->tx && st->tx_started + st->cfg.tx_timeout_ms < deadline) {
		deadline = st->tx_started + st->cfg.tx_timeout_ms;
		limit = -1;
	}
	st->user_sql = 1;
	st->denied = NULL;
	st->ddl_table[0] = 0;
	st->cur = r;
	st->stmt_deadline = deadline;
	s = store_stmt(st, r->sql, r);
	if (!s) {
		rc = -1;
		if (st->denied) /* SQLITE_AUTH, or a table-valued function's own error */
			fail_denied(st, r);
		else if (sqlite3_errcode(st->db) == SQLITE_INTERRUPT)
			fail_stopped(st, r, limit, started);
		goto out;
	}
	ddl = st->ddl_table[0] != 0;
	if (ddl)
		stmt_forget(st, s);
	rc = -1;
	if (sqlite3_bind_parameter_count(s) != r->nparams) {
		store_fail(r, "invalid", "the statement has %d parameters, %d values given",
		           sqlite3_bind_parameter_count(s), r->nparams);
		if (ddl)
			sqlite3_finalize(s);
		goto out;
	}
	for (int i = 0; i < r->nparams; i++) {
		struct store_val *v = &r->params[i];
		switch (v->type) {
		case STORE_NULL:
			sqlite3_bind_null(s, i + 1);
			break;
		case STORE_INT:
			sqlite3_bind_int64(s, i + 1, v->i);
			break;
		case STORE_REAL:
			sqlite3_bind_double(s, i + 1, v->d);
			break;
		case STORE_TEXT:
			sqlite3_bind_text64(s, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
			break;
		case STORE_BLOB:
			sqlite3_bind_blob64(s, i + 1, v->p, v->n, SQLITE_STATIC);
			break;
		}
	}
	if (ddl) {
		st->user_sql = 0;
		if (exec_simple(st, "SAVEPOINT ddl") < 0) {
			store_fail_db(st, r, "checking a table's foreign keys");
			sqlite3_finalize(s);
			goto out;
		}
		st->user_sql = 1;
	}
	rc = store_collect(st, s, r);
	if (rc < 0 && sqlite3_errcode(st->db) == SQLITE_INTERRUPT)
		fail_stopped(st, r, limit, started);
	else if (rc < 0 && st->denied) /* refused at a re-prepare inside sqlite3_step */
		fail_denied(st, r);
	if (ddl) {
		char ref[128];
		int bad;
		st->user_sql = 0;
		bad = rc == 0 ? ddl_references_reserved(st, ref, sizeof ref) : 0;
		if (bad != 0 || rc < 0)
			exec_simple(st, "ROLLBACK TO ddl");
		exec_simple(st, "RELEASE ddl");
		if (bad > 0)
			rc = store_fail(r, "invalid",
			                "table \"%s\" would reference \"%s\", one of the daemon's own "
			                "tables, out of reach of application SQL",
			                st->ddl_table, ref);
		else if (bad < 0)
			rc = store_fail_db(st, r, "checking a table's foreign keys");
	}
	/* sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE of any request */
	if (rc == 0 && sqlite3_total_changes64(st->db) == before)
		r->rows.changes = 0;
	if (ddl) {
		sqlite3_finalize(s);
	} else {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
out:
	st->user_sql = 0;
	st->cur = NULL;
	st->stmt_deadline = 0;
	return rc;
}

/* The journal for (job, seq, name): 1 found (r->out_text), 0 none, -1 error. */
static int journal_get(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(st,
	                             "SELECT seq, name, result FROM steps"
	                             " WHERE job_id = ?1 AND (seq = ?2 OR name = ?3)",
	                             r);
	int rc, found = 0;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_int64(s, 2, r->seq);
	sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		if (seq != r->seq || !name || strcmp(name, r->name) != 0) {
			store_fail(
			    r, "nondeterministic",
			    "step %lld \"%s\": the journal of job %lld has step %lld \"%s\"; "
			    "this attempt reached its steps in a different order",
			    (long long)r->seq, r->name, (long long)r->job_id, (long long)seq,
			    name ? name : "?");
			sqlite3_reset(s);
			return -1;
		}
		r->out_text = store_col_text(s, 2);
		found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail_db(st, r, "reading the step journal");
	return found;
}

static int journal_put(struct store *st, struct store_req *r, const char *kind)
{
	sqlite3_stmt *s = store_stmt(st,
	                             "INSERT INTO steps (job_id, seq, name, kind, result, at)"
	                             " VALUES (?, ?, ?, ?, ?, ?)",
	                             r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_int64(s, 2, r->seq);
	sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->text ? r->text : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, store_now());
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return store_fail(r, "nondeterministic",
		                  "step %lld \"%s\" of job %lld is journaled already",
		                  (long long)r->seq, r->name, (long long)r->job_id);
	return rc == SQLITE_DONE ? 0 : store_fail_db(st, r, "journaling the step");
}

static int exec_simple(struct store *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int is_dead_tx(struct store *st, int64_t tx, int forget)
{
	for (int i = 0; i < st->ndead; i++)
		if (st->dead_tx[i] == tx) {
			if (forget)
				st->dead_tx[i] = st->dead_tx[--st->ndead];
			return 1;
		}
	return 0;
}

/* Roll the open user transaction back (its owner is late or gone). */
static void tx_abandon(struct store *st)
{
	exec_simple(st, "ROLLBACK TO u");
	exec_simple(st, "RELEASE u");
	if (st->ndead == DEAD_TX)
		memmove(st->dead_tx, st->dead_tx + 1, (DEAD_TX - 1) * sizeof st->dead_tx[0]);
	st->dead_tx[st->ndead < DEAD_TX ? st->ndead++ : DEAD_TX - 1] = st->open_tx;
	st->open_tx = 0;
}

/* ---- the batch ----------------------------------------------------------------- */

/* Release answers in one go; wake the loop only if none were waiting (its
 * on_answers takes the whole list, so a later append is taken with it). */
static void answer_list(struct store *st, struct store_req *head)
{
	uint64_t one = 1;
	int wake;

	if (!head)
		return;
	pthread_mutex_lock(&st->mu);
	wake = st->answered == NULL;
	if (st->answered_tail)
		st->answered_tail->next = head;
	else
		st->answered = head;
	while (head) {
		st->answered_tail = head;
		st->stats.requests++;
		head = head->next;
	}
	__atomic_store_n(&st->has_answers, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->mu);
	if (wake && write(st->efd, &one, sizeof one) < 0) {
		/* the counter is saturated: the loop is woken already */
	}
}

/* Release one answer now (the loop is woken unless answers already wait). */
static void answer(struct store *st, struct store_req *r)
{
	r->next = NULL;
	answer_list(st, r);
}

static void ack_later(struct store *st, struct store_req *r)
{
	r->next = NULL;
	if (st->acks_tail)
		st->acks_tail->next = r;
	else
		st->acks = r;
	st->acks_tail = r;
}

/* Fail every unanswered request of the batch with the cause. */
static void batch_fail(struct store *st, const char *why)
{
	for (struct store_req *r = st->acks; r; r = r->next)
		if (r->rc == 0)
			store_fail(r, "db", "the write was not committed: %s", why);
	answer_list(st, st->acks);
	st->acks = st->acks_tail = NULL;
	if (st->open_tx) {
		/* SQLite dropped the savepoint with the transaction */
		if (st->ndead < DEAD_TX)
			st->dead_tx[st->ndead++] = st->open_tx;
		st->open_tx = 0;
	}
	st->in_batch = 0;
	pthread_mutex_lock(&st->mu);
	st->stats.failed_commits++;
	pthread_mutex_unlock(&st->mu);
}

static void batch_commit(struct store *st)
{
	if (!st->in_batch)
		return;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		char why[sizeof st->acks->err.msg];
		snprintf(why, sizeof why, "%s", sqlite3_errmsg(st->db));
		if (!sqlite3_get_autocommit(st->db))
			exec_simple(st, "ROLLBACK");
		batch_fail(st, why);
		return;
	}
	st->in_batch = 0;
	pthread_mutex_lock(&st->mu);
	st->stats.commits++; /* before the answers: whoever sees them sees the commit counted */
	pthread_mutex_unlock(&st->mu);
	answer_list(st, st->acks);
	st->acks = st->acks_tail = NULL;
}

static int batch_begin(struct store *st, struct store_req *r)
{
	if (st->in_batch)
		return 0;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(st, r, "beginning a transaction");
	st->in_batch = 1;
	st->batch_n = 0;
	st->batch_started = mono_ms();
	return 0;
}

/*
 * SQLite ended the transaction on its own (SQLITE_FULL, IOERR...): what the
 * batch did is gone. Fail it, r included, with SQLite's reason.
 */
static int check_batch_alive(struct store *st, struct store_req *r)
{
	char why[sizeof r->err.msg];

	if (!st->in_batch || !sqlite3_get_autocommit(st->db))
		return 0;
	snprintf(why, sizeof why, "%s", r->rc ? r->err.msg : sqlite3_errmsg(st->db));
	if (r->rc == 0)
		store_fail(r, "db", "the transaction was rolled back: %s", why);
	batch_fail(st, why);
	return -1;
}

/* Run one request; decide when it is answered. */
static void run_one(struct store *st, struct store_req *r)
{
	int now_answer = 0, rc;

	if (r->tx && r->op != STORE_TX_BEGIN && r->tx != st->open_tx) {
		if (is_dead_tx(st, r->tx, r->op == STORE_TX_END)) {
			if (r->op != STORE_TX_END || r->flag)
				store_fail(
				    r, "timeout",
				    "the transaction held the writer longer than %.0f ms and "
				    "was rolled back",
				    st->cfg.tx_timeout_ms);
		} else {
			store_fail(r, "invalid", "no such open transaction");
		}
		answer(st, r);
		return;
	}
	if (batch_begin(st, r) < 0) {
		answer(st, r);
		return;
	}
	st->batch_n++;
	switch (r->op) {
	case STORE_SQL:
		run_sql(st, r);
		now_answer = r->tx != 0;
		break;
	case STORE_TX_BEGIN:
		if (r->name) {
			rc = journal_get(st, r);
			if (rc != 0) { /* journaled, or an error: no transaction */
				r->journaled = rc > 0;
				break;
			}
		}
		if (exec_simple(st, "SAVEPOINT u") < 0) {
			store_fail_db(st, r, "beginning the transaction");
			break;
		}
		st->open_tx = r->tx;
		st->tx_started = mono_ms();
		now_answer = 1;
		break;
	case STORE_TX_END:
		if (r->flag && r->name && journal_put(st, r, "tx") < 0) {
			exec_simple(st, "ROLLBACK TO u");
			exec_simple(st, "RELEASE u");
		} else if (r->flag) {
			if (exec_simple(st, "RELEASE u") < 0)
				store_fail_db(st, r, "committing the transaction");
		} else {
			exec_simple(st, "ROLLBACK TO u");
			exec_simple(st, "RELEASE u");
			now_answer = 1;
		}
		st->open_tx = 0;
		break;
	case STORE_STEP_GET:
		rc = journal_get(st, r);
		r->journaled = rc > 0;
		break;
	case STORE_STEP_PUT:
		journal_put(st, r, "step");
		break;
	default:
		store_jobs_exec(st, r);
		now_answer = r->tx != 0; /* inside the open transaction: its TX_END commits it */
		break;
	}
	if (check_batch_alive(st, r) < 0) {
		answer(st, r);
		return;
	}
	if (now_answer) {
		answer(st, r);
	} else {
		ack_later(st, r);
	}
}

/* Move the deferred requests in front of list. */
static struct store_req *take_later(struct store *st, struct store_req *list)
{
	struct store_req *head = st->later;

	if (!head)
		return list;
	st->later_tail->next = list;
	st->later = st->later_tail = NULL;
	return head;
}

static void *store_main(void *arg)
{
	struct store *st = arg;
	struct store_req *list = NULL;

	for (;;) {
		if (st->open_tx) {
			/*
			 * The writer waits for its owner's next request, which is
			 * usually a few microseconds away: look for it a little
			 * before sleeping (a futex sleep and wake-up cost more).
			 */
			double until = mono_ms() + SPIN_MS;
			while (!__atomic_load_n(&st->queue, __ATOMIC_ACQUIRE) && mono_ms() < until)
				sched_yield();
		}
		pthread_mutex_lock(&st->mu);
		while (!st->queue && !st->stopping) {
			if (st->open_tx) {
				double left = st->tx_started + st->cfg.tx_timeout_ms - mono_ms();
				struct timespec ts;
				if (left <= 0)
					break;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += (time_t)(left / 1000);
				ts.tv_nsec +=
				    (long)((left - (double)(time_t)(left / 1000) * 1000) * 1e6);
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&st->cv, &st->mu, &ts);
			} else {
				pthread_cond_wait(&st->cv, &st->mu);
			}
		}
		list = st->queue;
		__atomic_store_n(&st->queue, NULL, __ATOMIC_RELAXED);
		st->queue_tail = NULL;
		if (!list && st->stopping && !st->open_tx && !st->later) {
			pthread_mutex_unlock(&st->mu);
			break;
		}
		pthread_mutex_unlock(&st->mu);

		if (!list && st->open_tx) {
			/* the owner is late (or the store stops): take the writer back */
			tx_abandon(st);
			list = take_later(st, NULL);
		}
		while (list) {
			struct store_req *r = list;
			list = r->next;
			r->next = NULL;
			if (st->open_tx && r->tx != st->open_tx) {
				if (st->later_tail)
					st->later_tail->next = r;
				else
					st->later = r;
				st->later_tail = r;
				continue;
			}
			run_one(st, r);
			if (!st->open_tx) {
				list = take_later(st, list);
				if (st->in_batch &&
				    (st->batch_n >= st->cfg.max_batch ||
				     mono_ms() - st->batch_started >= st->cfg.max_batch_ms))
					batch_commit(st);
			}
		}
		if (!st->open_tx)
			batch_commit(st);
	}
	batch_commit(st);
	return NULL;
}

/* ---- the loop side --------------------------------------------------------------- */

static void on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_req *r, *next;
	uint64_t n;

	(void)what;
	if (fd >= 0 && read(fd, &n, sizeof n) < 0) {
		/* EAGAIN: a spurious wake */
	}
	pthread_mutex_lock(&st->mu);
	r = st->answered;
	st->answered = st->answered_tail = NULL;
	__atomic_store_n(&st->has_answers, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->mu);
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		st->pending--;
		if (r->done)
			r->done(r);
		else
			store_req_free(r);
	}
}

void store_poll(void *arg)
{
	struct store *st = arg;

	if (__atomic_load_n(&st->has_answers, __ATOMIC_ACQUIRE))
		on_answers(-1, 0, st);
}

void store_submit(struct store *st, struct store_req *r)
{
	int stopping;

	r->next = NULL;
	st->pending++;
	pthread_mutex_lock(&st->mu);
	stopping = st->stopping;
	if (!stopping) {
		if (st->queue_tail)
			st->queue_tail->next = r;
		else /* atomic: the store thread's spin reads it without the lock */
			__atomic_store_n(&st->queue, r, __ATOMIC_RELEASE);
		st->queue_tail = r;
		pthread_cond_signal(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
	if (stopping) {
		store_fail(r, "stopping", "the store is closing");
		answer(st, r);
	}
}

/* ---- opening and closing ------------------------------------------------------------- */

static int lock_dir(struct store *st, char *err, size_t errlen)
{
	char *copy = strdup(st->path);
	const char *dir;
	int rc = -1;

	if (!copy) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	dir = dirname(copy);
	st->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->lock_fd < 0)
		errbuf_set(err, errlen, "database directory %s: %s", dir, strerror(errno));
	else if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
		errbuf_set(err, errlen,
		           "database directory %s is locked: %s (is another awaitd using %s?)", dir,
		           errno == EWOULDBLOCK ? "held by another process" : strerror(errno),
		           st->path);
	else
		rc = 0;
	free(copy);
	return rc;
}

static int open_exec(struct store *st, const char *sql, const char *what, char *err, size_t errlen)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	errbuf_set(err, errlen, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
	return -1;
}

/* New epoch and orphan requeue, in one transaction. */
static int new_epoch(struct store *st, int64_t *requeued, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int64_t now = store_now();
	int rc = -1;

	if (open_exec(st, "BEGIN IMMEDIATE", "taking a new epoch", err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db,
	                       "UPDATE executor SET epoch = epoch + 1, started_at = ?, pid = ?"
	                       " WHERE id = 1 RETURNING epoch",
	                       -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (int64_t)getpid());
	if (sqlite3_step(s) != SQLITE_ROW)
		goto fail;
	st->epoch = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(st->db,
	                       "UPDATE jobs SET state = 'queued', run_at = ?, lease = NULL"
	                       " WHERE state = 'running' AND epoch < ?",
	                       -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, st->epoch);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto fail;
	if (requeued)
		*requeued = sqlite3_changes64(st->db);
	sqlite3_finalize(s);
	s = NULL;
	if (open_exec(st, "COMMIT", "taking a new epoch", err, errlen) < 0)
		goto out;
	rc = 0;
	goto out;
fail:
	errbuf_set(err, errlen, "%s: taking a new epoch: %s", st->path, sqlite3_errmsg(st->db));
out:
	sqlite3_finalize(s);
	if (rc < 0 && !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int open_db(struct store *st, int64_t *requeued, char *err, size_t errlen)
{
	char sql[128], *mode = NULL;
	sqlite3_stmt *s = NULL;
	int rc;

	if (strcmp(st->synchronous, "full") != 0 && strcmp(st->synchronous, "normal") != 0 &&
	    strcmp(st->synchronous, "off") != 0) {
		errbuf_set(err, errlen, "synchronous must be full, normal or off, not \"%s\"",
		           st->synchronous);
		return -1;
	}
	if (lock_dir(st, err, errlen) < 0)
		return -1;
	rc =
	    sqlite3_open_v2(st->path, &st->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		errbuf_set(err, errlen, "%s: %s", st->path,
		           st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return -1;
	}
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		errbuf_set(err, errlen,
		           "%s: the database is read-only (check the file's permissions)",
		           st->path);
		return -1;
	}
	sqlite3_extended_result_codes(st->db, 0);
	sqlite3_set_authorizer(st->db, authorize, st);
	sqlite3_progress_handler(st->db, 1000, progress, st);
	/* beyond the authorizer: no schema edits by PRAGMA, no extensions, no ATTACH at all */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, NULL);
	sqlite3_limit(st->db, SQLITE_LIMIT_ATTACHED, 0);
	/* WAL: readers never block the writer; one fsync per commit at most */
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		mode = store_col_text(s, 0);
	sqlite3_finalize(s);
	if (!mode || strcmp(mode, "wal") != 0) {
		errbuf_set(err, errlen, "%s: cannot use WAL mode: %s", st->path,
		           mode ? mode : sqlite3_errmsg(st->db));
		free(mode);
		return -1;
	}
	free(mode);
	snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", st->synchronous);
	if (open_exec(st, sql, "synchronous", err, errlen) < 0 ||
	    open_exec(st, "PRAGMA foreign_keys = ON", "foreign keys", err, errlen) < 0 ||
	    open_exec(st, "PRAGMA busy_timeout = 5000", "busy timeout", err, errlen) < 0 ||
	    open_exec(st, "PRAGMA cache_size = -65536", "cache size", err, errlen) < 0 ||
	    /* RETURNING and IN (subquery) use ephemeral tables: keep them off disk */
	    open_exec(st, "PRAGMA temp_store = MEMORY", "temp store", err, errlen) < 0)
		return -1;
	if (migrate_apply(st->db, st->migrations_dir, store_now(), err, errlen) < 0)
		return -1;
	return new_epoch(st, requeued, err, errlen);
}

struct store *store_open(struct event_base *base, const struct store_config *cfg, int64_t *requeued,
                         char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof *st);

	if (!st) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	st->cfg = *cfg;
	st->lock_fd = -1;
	st->efd = -1;
	st->path = strdup(cfg->path);
	st->migrations_dir = strdup(cfg->migrations_dir);
	st->synchronous = strdup(cfg->synchronous);
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if (!st->path || !st->migrations_dir || !st->synchronous) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	if (open_db(st, requeued, err, errlen) < 0)
		goto fail;
	st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	st->ev =
	    st->efd >= 0 ? event_new(base, st->efd, EV_READ | EV_PERSIST, on_answers, st) : NULL;
	if (!st->ev || event_add(st->ev, NULL) < 0) {
		errbuf_set(err, errlen, "the store's wake-up: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&st->thread, NULL, store_main, st) != 0) {
		errbuf_set(err, errlen, "starting the store thread: %s", strerror(errno));
		goto fail;
	}
	st->thread_on = 1;
	return st;
fail:
	store_close(st);
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->thread_on) {
		pthread_mutex_lock(&st->mu);
		st->stopping = 1;
		pthread_cond_signal(&st->cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->thread, NULL);
		/* the last answers: their owners release what they hold */
		while (st->answered)
			on_answers(st->efd, 0, st);
	}
	if (st->ev)
		event_free(st->ev);
	if (st->efd >= 0)
		close(st->efd);
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(st->stmts[i].stmt);
		free(st->stmts[i].sql);
	}
	if (st->db)
		sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->path);
	free(st->migrations_dir);
	free(st->synchronous);
	free(st);
}
