/*
 * store-open.c: opening the database of the store, once, before the store
 * thread starts: the config's defaults, the lock on the database's
 * directory (one awaitd per database), the connection and its limits (the
 * authorizer and progress handler of store-sql.c, DEFENSIVE, no
 * extensions, no ATTACH), the pragmas (WAL, synchronous, foreign keys),
 * the migrations, and a new epoch that requeues the jobs the last
 * executor left running. Every failure is a start-up error, described
 * in err (naming the database or its directory where one is at fault).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "errbuf.h"
#include "migrate.h"
#include "store-int.h"

void store_config_defaults(struct store_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->path = "awaitd.db";
	cfg->migrations_dir = "migrations";
	cfg->synchronous = "full";
	cfg->tx_timeout_ms = 5000;
	cfg->max_statement_ms = 1000;
	cfg->loop_statement_ms = 100;
	cfg->max_batch = 4096;
}

static int lock_dir(struct sqlstore *st, char *err, size_t errlen)
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

static int open_exec(struct sqlstore *st, const char *sql, const char *what, char *err,
                     size_t errlen)
{
	if (sqlite3_exec(st->w.db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	errbuf_set(err, errlen, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->w.db));
	return -1;
}

/* Whether table holds a row (0 too when it does not exist: an older schema). */
static int has_rows(struct sqlstore *st, const char *table)
{
	char sql[96];
	sqlite3_stmt *s;
	int yes = 0;

	snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM %s)", table);
	if (sqlite3_prepare_v2(st->w.db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		yes = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return yes;
}

/* New epoch and orphan requeue, in one transaction. */
static int new_epoch(struct sqlstore *st, int64_t *requeued, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int64_t now = store_now();
	int rc = -1;

	if (open_exec(st, "BEGIN IMMEDIATE", "taking a new epoch", err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->w.db,
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
	if (sqlite3_prepare_v2(st->w.db,
	                       "UPDATE jobs SET state = 'queued', run_at = ?, lease = NULL"
	                       " WHERE state = 'running' AND epoch < ?",
	                       -1, &s, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, st->epoch);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto fail;
	if (requeued)
		*requeued = sqlite3_changes64(st->w.db);
	sqlite3_finalize(s);
	s = NULL;
	st->has_pauses = has_rows(st, "awaitd_pauses");
	st->has_deps = has_rows(st, "awaitd_deps");
	if (open_exec(st, "COMMIT", "taking a new epoch", err, errlen) < 0)
		goto out;
	rc = 0;
	goto out;
fail:
	errbuf_set(err, errlen, "%s: taking a new epoch: %s", st->path, sqlite3_errmsg(st->w.db));
out:
	sqlite3_finalize(s);
	if (rc < 0 && !sqlite3_get_autocommit(st->w.db))
		sqlite3_exec(st->w.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int store_conn_open(struct store_conn *c, const char *path, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(
	    path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		errbuf_set(err, errlen, "%s: %s", path,
		           c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		return -1;
	}
	if (!c->reader && sqlite3_db_readonly(c->db, "main") == 1) {
		errbuf_set(err, errlen,
		           "%s: the database is read-only (check the file's permissions)", path);
		return -1;
	}
	sqlite3_extended_result_codes(c->db, 0);
	sqlite3_set_authorizer(c->db, store_authorize, c);
	sqlite3_progress_handler(c->db, 1000, store_progress, c);
	/* beyond the authorizer: no schema edits by PRAGMA, no extensions, no ATTACH at all */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, NULL);
	sqlite3_limit(c->db, SQLITE_LIMIT_ATTACHED, 0);
	if (sqlite3_exec(c->db,
	                 "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;"
	                 /* RETURNING and IN (subquery) use ephemeral tables: keep them off disk */
	                 " PRAGMA temp_store = MEMORY",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		errbuf_set(err, errlen, "%s: setting up a connection: %s", path,
		           sqlite3_errmsg(c->db));
		return -1;
	}
	return 0;
}

void store_conn_close(struct store_conn *c)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(c->stmts[i].stmt);
		free(c->stmts[i].sql);
		c->stmts[i].stmt = NULL;
		c->stmts[i].sql = NULL;
	}
	if (c->db)
		sqlite3_close(c->db);
	c->db = NULL;
}

int store_open_db(struct sqlstore *st, int64_t *requeued, char *err, size_t errlen)
{
	char sql[128], *mode = NULL;
	sqlite3_stmt *s = NULL;

	if (strcmp(st->synchronous, "full") != 0 && strcmp(st->synchronous, "normal") != 0 &&
	    strcmp(st->synchronous, "off") != 0) {
		errbuf_set(err, errlen, "synchronous must be full, normal or off, not \"%s\"",
		           st->synchronous);
		return -1;
	}
	if (lock_dir(st, err, errlen) < 0 || store_conn_open(&st->w, st->path, err, errlen) < 0)
		return -1;
	/* WAL: readers never block the writer; one fsync per commit at most */
	if (sqlite3_prepare_v2(st->w.db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		mode = store_col_text(s, 0);
	sqlite3_finalize(s);
	if (!mode || strcmp(mode, "wal") != 0) {
		errbuf_set(err, errlen, "%s: cannot use WAL mode: %s", st->path,
		           mode ? mode : sqlite3_errmsg(st->w.db));
		free(mode);
		return -1;
	}
	free(mode);
	/* full: the COMMIT writes the WAL and the flusher (store-flush.c) syncs it */
	snprintf(sql, sizeof sql, "PRAGMA synchronous = %s",
	         strcmp(st->synchronous, "full") == 0 ? "normal" : st->synchronous);
	if (open_exec(st, sql, "synchronous", err, errlen) < 0 ||
	    open_exec(st, "PRAGMA foreign_keys = ON", "foreign keys", err, errlen) < 0)
		return -1;
	if (migrate_apply(st->w.db, st->migrations_dir, store_now(), err, errlen) < 0)
		return -1;
	return new_epoch(st, requeued, err, errlen);
}
