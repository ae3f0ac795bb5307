/*
 * test_migrate.c: migrations against real SQLite files: numeric order,
 * the schema_migrations record, re-runs, a later file, a failing file
 * (its path and SQLite's message, earlier files kept, nothing partial),
 * duplicate numbers, names that do not match, a missing directory, and
 * the repository's own migrations on a fresh database.
 *
 * Each test gets a fresh mkdtemp directory (removed by the teardown)
 * holding the database file and a migrations directory it writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "migrate.h"
#include "testutil.h"

#ifndef AWAITD_SOURCE_DIR
#error "AWAITD_SOURCE_DIR must name the source tree (it holds migrations/)"
#endif

#define NOW_MS 1700000000123LL

struct fx {
	char dir[64];  /* the temporary directory */
	char mig[96];  /* dir/migrations */
	char path[96]; /* dir/test.db */
	sqlite3 *db;
	char err[1024];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/test_migrate.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->mig, sizeof fx->mig, "%s/migrations", fx->dir);
	snprintf(fx->path, sizeof fx->path, "%s/test.db", fx->dir);
	if (mkdir(fx->mig, 0755) < 0)
		return -1;
	if (sqlite3_open(fx->path, &fx->db) != SQLITE_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	sqlite3_close(fx->db);
	rm_rf(fx->dir);
	free(fx);
	return 0;
}

static void write_mig(struct fx *fx, const char *name, const char *sql)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", fx->mig, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(sql, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The single integer of a query (fails the test on error). */
static int64_t q_int(struct fx *fx, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(fx->db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(fx->db));
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int table_exists(struct fx *fx, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
	return (int)q_int(fx, sql);
}

/* schema_migrations as "version:name;..." in version order. */
static void recorded(struct fx *fx, char *buf, size_t len)
{
	sqlite3_stmt *s = NULL;
	size_t off = 0;

	buf[0] = '\0';
	assert_int_equal(
	    sqlite3_prepare_v2(fx->db,
	                       "SELECT version, name, applied_at FROM schema_migrations"
	                       " ORDER BY version",
	                       -1, &s, NULL),
	    SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		assert_int_equal(sqlite3_column_int64(s, 2), NOW_MS);
		off += (size_t)snprintf(buf + off, len - off, "%lld:%s;",
		                        (long long)sqlite3_column_int64(s, 0),
		                        (const char *)sqlite3_column_text(s, 1));
		assert_true(off < len);
	}
	sqlite3_finalize(s);
}

static void test_applies_in_numeric_order(void **state)
{
	struct fx *fx = *state;
	char buf[512];

	/* "00010" sorts before "0003" as text: the order must be numeric */
	write_mig(fx, "00010_d.sql", "INSERT INTO log VALUES ('d');");
	write_mig(fx, "0003_c.sql", "INSERT INTO log VALUES ('c');");
	write_mig(fx, "0001_a.sql", "CREATE TABLE log (v TEXT);\nINSERT INTO log VALUES ('a');");
	write_mig(fx, "0002_b-x.sql", "INSERT INTO log VALUES ('b');");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 4);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM log"), 4);
	assert_int_equal(
	    q_int(fx, "SELECT (SELECT group_concat(v, '') FROM (SELECT v FROM log ORDER BY rowid))"
	              " = 'abcd'"),
	    1);
	recorded(fx, buf, sizeof buf);
	assert_string_equal(buf, "1:0001_a.sql;2:0002_b-x.sql;3:0003_c.sql;10:00010_d.sql;");
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 10);
}

static void test_rerun_applies_nothing_then_later_file(void **state)
{
	struct fx *fx = *state;
	char buf[512];

	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 0);
	write_mig(fx, "0001_a.sql", "CREATE TABLE log (v TEXT);");
	write_mig(fx, "0002_b.sql", "INSERT INTO log VALUES ('b');");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 2);
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 0);
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 0);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM log"), 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM schema_migrations"), 2);

	write_mig(fx, "0003_c.sql", "INSERT INTO log VALUES ('c');");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM log"), 2);
	recorded(fx, buf, sizeof buf);
	assert_string_equal(buf, "1:0001_a.sql;2:0002_b.sql;3:0003_c.sql;");
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 3);

	/* a fresh connection on the same file sees the same state */
	sqlite3_close(fx->db);
	assert_int_equal(sqlite3_open(fx->path, &fx->db), SQLITE_OK);
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 0);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 3);
}

static void test_failing_migration(void **state)
{
	struct fx *fx = *state;
	char want[512], buf[512];

	write_mig(fx, "0001_ok.sql", "CREATE TABLE ok (x);\nINSERT INTO ok VALUES (1);");
	/* the first two statements succeed before the third fails */
	write_mig(fx, "0002_bad.sql",
	          "CREATE TABLE partial (x);\nINSERT INTO partial VALUES (1);\nSELEC 1;");
	write_mig(fx, "0003_later.sql", "CREATE TABLE later (x);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "%s/0002_bad.sql: near \"SELEC\": syntax error", fx->mig);
	assert_string_equal(fx->err, want);
	assert_non_null(strstr(fx->err, "0002_bad.sql"));
	assert_non_null(strstr(fx->err, "syntax error"));

	/* the earlier one stays, the failing one left nothing, the later one did not run */
	assert_int_equal(table_exists(fx, "ok"), 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM ok"), 1);
	assert_int_equal(table_exists(fx, "partial"), 0);
	assert_int_equal(table_exists(fx, "later"), 0);
	recorded(fx, buf, sizeof buf);
	assert_string_equal(buf, "1:0001_ok.sql;");
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 1);
	/* the connection is usable: no transaction left open */
	assert_int_equal(sqlite3_get_autocommit(fx->db), 1);

	/* fixed, the rest applies */
	write_mig(fx, "0002_bad.sql", "CREATE TABLE partial (x);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 2);
	assert_int_equal(table_exists(fx, "partial"), 1);
	assert_int_equal(table_exists(fx, "later"), 1);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 3);
}

static void test_runtime_error_rolls_back(void **state)
{
	struct fx *fx = *state;
	char want[512];

	/* valid syntax, failing at run time after a change */
	write_mig(fx, "0001_t.sql", "CREATE TABLE t (x UNIQUE);\nINSERT INTO t VALUES (1);");
	write_mig(fx, "0002_dup.sql",
	          "INSERT INTO t VALUES (2);\nCREATE TABLE t2 (y);\nINSERT INTO t VALUES (1);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "%s/0002_dup.sql: UNIQUE constraint failed: t.x", fx->mig);
	assert_string_equal(fx->err, want);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM t"), 1);
	assert_int_equal(table_exists(fx, "t2"), 0);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 1);
}

static void test_duplicate_numbers(void **state)
{
	struct fx *fx = *state;

	write_mig(fx, "0001_a.sql", "CREATE TABLE a (x);");
	write_mig(fx, "0001_b.sql", "CREATE TABLE b (x);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "0001_a.sql"));
	assert_non_null(strstr(fx->err, "0001_b.sql"));
	assert_non_null(strstr(fx->err, "same number"));
	assert_int_equal(table_exists(fx, "a") + table_exists(fx, "b"), 0);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 0);
}

static void test_duplicate_numbers_different_width(void **state)
{
	struct fx *fx = *state;

	/* 0002 and 00002 are both version 2 */
	write_mig(fx, "0002_a.sql", "CREATE TABLE a (x);");
	write_mig(fx, "00002_b.sql", "CREATE TABLE b (x);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "0002_a.sql"));
	assert_non_null(strstr(fx->err, "00002_b.sql"));
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 0);
}

static void test_non_matching_names_ignored(void **state)
{
	struct fx *fx = *state;
	static const char *const ignored[] = {
	    "README.md",         "001_short.sql",    "0002_.sql",    "0003_x.sql.bak",
	    "0004_bad name.sql", "0005_x.SQL",       "x0006_a.sql",  "0007-a.sql",
	    "0008_a.txt",        ".0009_hidden.sql", "0010_a.b.sql",
	};

	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
		write_mig(fx, ignored[i], "THIS IS NOT SQL;");
	write_mig(fx, "0011_ok.sql", "CREATE TABLE ok (x);");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 1);
	assert_int_equal(table_exists(fx, "ok"), 1);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM schema_migrations"), 1);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 11);
}

static void test_empty_directory(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 0);
	assert_int_equal(table_exists(fx, "schema_migrations"), 1);
	assert_int_equal(migrate_version(fx->db, fx->err, sizeof fx->err), 0);
}

static void test_missing_directory(void **state)
{
	struct fx *fx = *state;
	char missing[160], want[512];

	snprintf(missing, sizeof missing, "%s/no-such-dir", fx->dir);
	assert_int_equal(migrate_apply(fx->db, missing, NOW_MS, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "migrations directory %s: No such file or directory", missing);
	assert_string_equal(fx->err, want);
}

static void test_not_text(void **state)
{
	struct fx *fx = *state;
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/0001_bin.sql", fx->mig);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite("CREATE TABLE a (x);\0junk", 1, 24, f), 24);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "0001_bin.sql"));
	assert_non_null(strstr(fx->err, "not a text file"));
	assert_int_equal(table_exists(fx, "a"), 0);
}

static void test_null_error_buffer(void **state)
{
	struct fx *fx = *state;

	write_mig(fx, "0001_bad.sql", "SELEC 1;");
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, NULL, 0), -1);
	assert_int_equal(migrate_apply(fx->db, "/nonexistent/dir", NOW_MS, NULL, 0), -1);
}

/* How many files of dir match NNNN_name.sql. */
static int count_migration_files(const char *dir)
{
	regex_t re;
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	assert_int_equal(regcomp(&re, "^[0-9]{4,}_[A-Za-z0-9_-]+\\.sql$", REG_EXTENDED | REG_NOSUB),
	                 0);
	while ((e = readdir(d)))
		if (regexec(&re, e->d_name, 0, NULL, 0) == 0)
			n++;
	regfree(&re);
	closedir(d);
	return n;
}

static void test_repo_migrations_apply(void **state)
{
	struct fx *fx = *state;
	const char *dir = AWAITD_SOURCE_DIR "/migrations";
	int n = count_migration_files(dir);

	assert_true(n >= 1);
	assert_int_equal(sqlite3_exec(fx->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL),
	                 SQLITE_OK);
	if (migrate_apply(fx->db, dir, NOW_MS, fx->err, sizeof fx->err) != n)
		fail_msg("repo migrations: %s", fx->err);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM schema_migrations"), n);
	for (const char *const *t =
	         (const char *const[]){"jobs", "steps", "schedules", "executor", NULL};
	     *t; t++)
		assert_int_equal(table_exists(fx, *t), 1);
	assert_int_equal(q_int(fx, "SELECT epoch FROM executor WHERE id = 1"), 0);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	assert_int_equal(q_int(fx, "SELECT count(*) FROM pragma_integrity_check"
	                           " WHERE integrity_check <> 'ok'"),
	                 0);
	assert_int_equal(migrate_apply(fx->db, dir, NOW_MS, fx->err, sizeof fx->err), 0);
}

/* PostgreSQL's versions: NNNN_x.pg.sql stands in for NNNN_x.sql, alone it is PostgreSQL's only. */
static void test_list_pg_versions(void **state)
{
	struct fx *fx = *state;
	struct migration *m = NULL;
	int n;

	write_mig(fx, "0001_core.sql", "CREATE TABLE a (x);");
	write_mig(fx, "0001_core.pg.sql", "CREATE TABLE a (x int);");
	write_mig(fx, "0002_app.sql", "CREATE TABLE b (x);");
	write_mig(fx, "0003_pgonly.pg.sql", "SELECT 1;");
	write_mig(fx, "0004_x.y.sql", "ignored: a dot in the name");

	n = migrate_list(fx->mig, 0, &m, fx->err, sizeof fx->err);
	assert_int_equal(n, 2); /* SQLite: the .pg.sql files are not its */
	assert_string_equal(m[0].file, "0001_core.sql");
	assert_string_equal(m[1].file, "0002_app.sql");
	free(m);

	n = migrate_list(fx->mig, 1, &m, fx->err, sizeof fx->err);
	assert_int_equal(n, 3);
	assert_string_equal(m[0].file, "0001_core.pg.sql");
	assert_string_equal(m[0].name, "0001_core.sql"); /* recorded as SQLite records it */
	assert_string_equal(m[1].file, "0002_app.sql");
	assert_int_equal(m[2].version, 3);
	assert_string_equal(m[2].file, "0003_pgonly.pg.sql");
	assert_string_equal(m[2].name, "0003_pgonly.sql");
	free(m);

	/* SQLite's apply ignores them too: only 0001 and 0002 recorded */
	assert_int_equal(migrate_apply(fx->db, fx->mig, NOW_MS, fx->err, sizeof fx->err), 2);
}

/* A .pg.sql beside a .sql of another name, same number: two migrations, one number. */
static void test_list_pg_mismatch(void **state)
{
	struct fx *fx = *state;
	struct migration *m = NULL;

	write_mig(fx, "0001_core.sql", "SELECT 1;");
	write_mig(fx, "0001_other.pg.sql", "SELECT 1;");
	assert_int_equal(migrate_list(fx->mig, 1, &m, fx->err, sizeof fx->err), -1);
	assert_null(m);
	assert_non_null(strstr(fx->err, "have the same number"));
	assert_non_null(strstr(fx->err, "0001_other.pg.sql"));
	/* SQLite does not see the .pg.sql: no conflict there */
	assert_int_equal(migrate_list(fx->mig, 0, &m, fx->err, sizeof fx->err), 1);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_applies_in_numeric_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rerun_applies_nothing_then_later_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failing_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runtime_error_rolls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_numbers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_numbers_different_width, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_non_matching_names_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_error_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repo_migrations_apply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_pg_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_pg_mismatch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
