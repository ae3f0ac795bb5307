/*
 * store-sql.c: application SQL (db:query, db:one, db:exec) on the writer or a
 * reader connection,
 * and the boundary it runs under: the authorizer, the progress handler
 * that stops a statement past its deadline or of a cancelled task, and
 * the foreign-key check of application DDL.
 *
 * The boundary between the daemon's data and the application's. One file
 * and one connection hold both (a db:tx step journals in the same
 * transaction as the writes it made, which a second database file in WAL
 * mode could not promise), so application SQL runs under an authorizer,
 * installed once at open (installing one expires every prepared
 * statement) and in force while c->user_sql is set, which store_run_sql keeps
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
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "store-int.h"

static const char *const store_reserved[] = {
    "jobs", "steps", "schedules", "executor", "schema_migrations", "signals", NULL,
};
static const char *const allowed_pragmas[] = {
    "table_info",       "table_xinfo",    "index_list",    "index_info", "index_xinfo",
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
	return table &&
	       (in_list(store_reserved, table) || sqlite3_strnicmp(table, "awaitd_", 7) == 0);
}

static int deny(struct store_conn *c, const char *why, const char *name)
{
	if (!c->denied) {
		c->denied = why;
		snprintf(c->denied_name, sizeof c->denied_name, "%s", name ? name : "");
	}
	return SQLITE_DENY;
}

int store_authorize(void *arg, int action, const char *a, const char *b, const char *dbname,
                    const char *trigger)
{
	struct store_conn *c = arg;
	const char *table = NULL;

	(void)dbname;
	(void)trigger;
	if (!c->user_sql)
		return SQLITE_OK;
	switch (action) {
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		return deny(c,
		            "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is "
		            "refused in application SQL: use db:tx",
		            NULL);
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		return deny(c, "ATTACH, DETACH and VACUUM are refused in application SQL", NULL);
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
		return deny(c,
		            "temporary tables, indexes, triggers and views are refused in "
		            "application SQL (they live on the daemon's shared connection)",
		            NULL);
	case SQLITE_PRAGMA:
		if (a && in_list(allowed_pragmas, a))
			return SQLITE_OK;
		return deny(c,
		            "is refused in application SQL (allowed: table_info, table_xinfo, "
		            "index_list, index_info, index_xinfo, foreign_key_list, "
		            "collation_list, function_list)",
		            a);
	case SQLITE_FUNCTION:
		if (b && (sqlite3_stricmp(b, "load_extension") == 0 ||
		          sqlite3_stricmp(b, "fts3_tokenizer") == 0))
			return deny(c, "is refused in application SQL", b);
		return SQLITE_OK;
	case SQLITE_READ:
		table = a;
		if (table && (sqlite3_stricmp(table, "sqlite_stmt") == 0 ||
		              sqlite3_stricmp(table, "dbstat") == 0 ||
		              sqlite3_stricmp(table, "sqlite_dbpage") == 0))
			return deny(c, "is out of reach of application SQL", table);
		break;
	case SQLITE_CREATE_TABLE:
		snprintf(c->ddl_table, sizeof c->ddl_table, "%s", a ? a : "");
		table = a;
		break;
	case SQLITE_ALTER_TABLE:
		snprintf(c->ddl_table, sizeof c->ddl_table, "%s", b ? b : "");
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
		return deny(c, "is one of the daemon's own tables, out of reach of application SQL",
		            table);
	return SQLITE_OK;
}

/*
 * The progress handler: stops the statement of c->cur once its deadline
 * passes or its waiter went away. Daemon statements run with no deadline.
 */
int store_progress(void *arg)
{
	struct store_conn *c = arg;

	if (!c->cur)
		return 0;
	if (c->reader && __atomic_load_n(&c->st->rstop, __ATOMIC_RELAXED))
		return 1; /* the store is closing: a read stops (the writer runs what was submitted)
		           */
	if (__atomic_load_n(&c->cur->cancelled, __ATOMIC_RELAXED))
		return 1;
	return c->stmt_deadline > 0 && clock_mono_ms() > c->stmt_deadline;
}

/* Fail r after the authorizer refused its SQL, naming what and why. */
static int fail_denied(struct store_conn *c, struct store_req *r)
{
	if (c->denied_name[0] && strncmp(c->denied, "is ", 3) == 0)
		return store_fail(r, "invalid", "\"%s\" %s", c->denied_name, c->denied);
	return store_fail(r, "invalid", "%s", c->denied);
}

/* Fail r after its statement was stopped by the progress handler. */
static int fail_stopped(struct store_conn *c, struct store_req *r, double limit, double started)
{
	const struct store_config *cfg = &c->st->cfg;

	if (__atomic_load_n(&r->cancelled, __ATOMIC_RELAXED))
		return store_fail(r, "cancelled",
		                  "the statement was stopped: its task was cancelled");
	if (c->reader && __atomic_load_n(&c->st->rstop, __ATOMIC_RELAXED))
		return store_fail(r, "stopping", "the statement was stopped: the store is closing");
	return store_fail(r, "timeout", "the statement was stopped after %.0f ms (%s)",
	                  clock_mono_ms() - started,
	                  limit == cfg->max_statement_ms ? "max_statement_ms"
	                  : limit == cfg->loop_statement_ms
	                      ? "max_slice_ms: a statement that writes runs on the loop"
	                  : r->tx ? "the job's deadline or tx_timeout_ms"
	                          : "the job's deadline");
}

/*
 * 1 when c->ddl_table has a foreign key to a daemon table (its name in
 * buf), 0 when not, -1 when the check itself failed.
 */
static int ddl_references_reserved(struct store_conn *c, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc, found = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT \"table\" FROM pragma_foreign_key_list(?)", -1, &s,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, c->ddl_table, -1, SQLITE_STATIC);
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

int store_run_sql(struct store_conn *c, struct store_req *r)
{
	struct sqlstore *st = c->st;
	int64_t before = sqlite3_total_changes64(c->db);
	double started = clock_mono_ms(), limit = st->cfg.max_statement_ms, deadline;
	sqlite3_stmt *s;
	int rc, ddl;

	deadline = started + limit;
	if (!c->reader && st->cfg.loop_statement_ms > 0 &&
	    started + st->cfg.loop_statement_ms < deadline) {
		/* the writer runs on the loop: it may not hold it longer than a slice */
		limit = st->cfg.loop_statement_ms;
		deadline = started + limit;
	}
	if (r->deadline > 0 && r->deadline < deadline) {
		deadline = r->deadline;
		limit = -1;
	}
	if (r->tx && st->tx_started + st->cfg.tx_timeout_ms < deadline) {
		deadline = st->tx_started + st->cfg.tx_timeout_ms;
		limit = -1;
	}
	c->user_sql = 1;
	c->denied = NULL;
	c->ddl_table[0] = 0;
	c->cur = r;
	c->stmt_deadline = deadline;
	s = store_stmt(c, r->sql, r);
	if (!s) {
		rc = -1;
		if (c->denied) /* SQLITE_AUTH, or a table-valued function's own error */
			fail_denied(c, r);
		else if (sqlite3_errcode(c->db) == SQLITE_INTERRUPT)
			fail_stopped(c, r, limit, started);
		goto out;
	}
	if (c->reader && !sqlite3_stmt_readonly(s)) {
		rc = 1; /* the writer runs it, under the same rules */
		goto out;
	}
	ddl = c->ddl_table[0] != 0;
	if (ddl)
		store_stmt_forget(c, s);
	rc = -1;
	if (sqlite3_bind_parameter_count(s) != r->nparams) {
		store_fail(r, "invalid", "the statement has %d parameters, %d values given",
		           sqlite3_bind_parameter_count(s), r->nparams);
		if (ddl)
			sqlite3_finalize(s);
		goto out;
	}
	store_bind_vals(s, r->params, r->nparams);
	if (ddl) {
		c->user_sql = 0;
		if (store_exec(c, "SAVEPOINT ddl") < 0) {
			store_fail_db(c, r, "checking a table's foreign keys");
			sqlite3_finalize(s);
			goto out;
		}
		c->user_sql = 1;
	}
	rc = store_collect(c, s, r);
	if (rc < 0 && sqlite3_errcode(c->db) == SQLITE_INTERRUPT)
		fail_stopped(c, r, limit, started);
	else if (rc < 0 && c->denied) /* refused at a re-prepare inside sqlite3_step */
		fail_denied(c, r);
	if (ddl) {
		char ref[128];
		int bad;
		c->user_sql = 0;
		bad = rc == 0 ? ddl_references_reserved(c, ref, sizeof ref) : 0;
		if (bad != 0 || rc < 0)
			store_exec(c, "ROLLBACK TO ddl");
		store_exec(c, "RELEASE ddl");
		if (bad > 0)
			rc = store_fail(
			    r, "invalid",
			    "table \"%s\" would reference \"%s\", one of the daemon's own "
			    "tables, out of reach of application SQL",
			    c->ddl_table, ref);
		else if (bad < 0)
			rc = store_fail_db(c, r, "checking a table's foreign keys");
	}
	/* sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE of any request */
	if (rc == 0 && sqlite3_total_changes64(c->db) == before)
		r->rows.changes = 0;
	if (ddl) {
		sqlite3_finalize(s);
	} else {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
out:
	c->user_sql = 0;
	c->cur = NULL;
	c->stmt_deadline = 0;
	return rc;
}
