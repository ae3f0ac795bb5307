/*
 * pg-migrate.c: opening a PostgreSQL database, on the main connection
 * before it goes non-blocking. Under the advisory lock (PG_LOCK_SPACE,
 * PG_LOCK_MIGRATE), so that of several daemons starting at once one
 * applies each migration and the others find it applied:
 *
 *  1. the pending migrations (migrate_list with PostgreSQL's .pg.sql
 *     versions), each in its own transaction with its row in
 *     schema_migrations, recorded as SQLite records it;
 *  2. the driver's functions (pg_funcs.sql, embedded: they change with the
 *     binary, not with the schema);
 *  3. this daemon's node: registered, its lock taken, LISTEN for what the
 *     other daemons announce (awaitd_register), dead nodes reaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"
#include "migrate.h"
#include "pg_claim_sql.h"
#include "pg_funcs_sql.h"
#include "pg-int.h"

/* Run sql (several statements allowed: the simple protocol); 0 or -1 with err "what: msg". */
static int run(struct pg_conn *c, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(c->pq, sql);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
		const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pq);
		size_t n = strlen(m);
		while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
			n--;
		errbuf_set(err, errlen, "%s: %.*s", what, (int)n, m);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static int apply(struct pg_conn *c, const char *dir, const struct migration *m, char *err,
                 size_t errlen)
{
	char path[4096 + 300], *sql;
	struct pg_params p;
	PGresult *res;

	snprintf(path, sizeof path, "%s/%s", dir, m->file);
	sql = migrate_read(path, err, errlen);
	if (!sql)
		return -1;
	if (run(c, "BEGIN", path, err, errlen) < 0 || run(c, sql, path, err, errlen) < 0) {
		free(sql);
		run(c, "ROLLBACK", path, NULL, 0);
		return -1;
	}
	free(sql);
	pg_params_init(&p);
	pg_param_i64(&p, m->version);
	pg_param_text(&p, m->name);
	pg_param_i64(&p, store_now());
	res = pg_exec_blocking(c, "INSERT INTO schema_migrations VALUES ($1, $2, $3)", &p, err,
	                       errlen);
	if (!res) {
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		errbuf_set(err, errlen, "%s: recording it: %s", path, why);
		run(c, "ROLLBACK", path, NULL, 0);
		return -1;
	}
	PQclear(res);
	return run(c, "COMMIT", path, err, errlen);
}

static int migrate(struct pg_conn *c, const char *dir, char *err, size_t errlen)
{
	struct migration *list = NULL;
	int n;

	if (run(c,
	        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY,"
	        " name text NOT NULL, applied_at bigint NOT NULL)",
	        "schema_migrations", err, errlen) < 0)
		return -1;
	n = migrate_list(dir, 1, &list, err, errlen);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct pg_params p;
		PGresult *res;
		int done;

		pg_params_init(&p);
		pg_param_i64(&p, list[i].version);
		res = pg_exec_blocking(c, "SELECT 1 FROM schema_migrations WHERE version = $1", &p,
		                       err, errlen);
		if (!res) {
			free(list);
			return -1;
		}
		done = PQntuples(res) > 0;
		PQclear(res);
		if (!done && apply(c, dir, &list[i], err, errlen) < 0) {
			free(list);
			return -1;
		}
	}
	free(list);
	return 0;
}

/* The text of an embedded file, NUL-terminated (malloc'd), or NULL. */
static char *embedded(const unsigned char *text, size_t len)
{
	char *sql = malloc(len + 1);

	if (sql) {
		memcpy(sql, text, len);
		sql[len] = '\0';
	}
	return sql;
}

/* The functions of pg_funcs.sql and pg_claim.sql, one transaction (CREATE OR REPLACE:
 * idempotent). */
static int install_functions(struct pg_conn *c, char *err, size_t errlen)
{
	const char *what = "installing awaitd's functions";
	char *funcs = embedded(pg_funcs_sql, pg_funcs_sql_len);
	char *claim = embedded(pg_claim_sql, pg_claim_sql_len);
	int rc;

	if (!funcs || !claim) {
		free(funcs);
		free(claim);
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	rc = run(c, "BEGIN", what, err, errlen) < 0 || run(c, funcs, what, err, errlen) < 0 ||
	             run(c, claim, what, err, errlen) < 0 || run(c, "COMMIT", what, err, errlen) < 0
	         ? -1
	         : 0;
	free(funcs);
	free(claim);
	if (rc < 0)
		run(c, "ROLLBACK", "", NULL, 0);
	return rc;
}

/* Register this daemon (awaitd_register takes the node's lock) and reap the dead. */
static int join(struct pgstore *st, struct pg_conn *c, int64_t *requeued, char *err, size_t errlen)
{
	char host[256] = "";
	struct pg_params p;
	PGresult *res;

	gethostname(host, sizeof host - 1);
	pg_params_init(&p);
	pg_param_text(&p, host);
	pg_param_i64(&p, (int64_t)getpid());
	pg_param_i64(&p, store_now());
	res = pg_exec_blocking(c, "SELECT awaitd_register($1, $2, $3)", &p, err, errlen);
	if (!res)
		return -1;
	st->node = pg_i64(res, 0, 0);
	PQclear(res);
	pg_params_init(&p);
	pg_param_i64(&p, st->node);
	pg_param_i64(&p, store_now());
	res = pg_exec_blocking(c, "SELECT awaitd_beat($1, $2)", &p, err, errlen);
	if (!res)
		return -1;
	if (requeued)
		*requeued = pg_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int pg_migrate(struct pgstore *st, struct pg_conn *c, int64_t *requeued, char *err, size_t errlen)
{
	char why[1024] = "";
	int rc;

	if (run(c, "SET client_min_messages = warning", "setting up", err, errlen) < 0 ||
	    run(c, "SELECT pg_advisory_lock(" PG_LOCK_SPACE_SQL ", 0)", "taking the migration lock",
	        err, errlen) < 0)
		return -1;
	rc = migrate(c, st->migrations_dir, why, sizeof why) < 0 ||
	             install_functions(c, why, sizeof why) < 0 ||
	             join(st, c, requeued, why, sizeof why) < 0
	         ? -1
	         : 0;
	run(c, "SELECT pg_advisory_unlock(" PG_LOCK_SPACE_SQL ", 0)",
	    "releasing the migration lock", NULL, 0);
	if (rc < 0)
		errbuf_set(err, errlen, "%s", why);
	return rc;
}
