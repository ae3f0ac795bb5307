/*
 * migrate.h: the schema migrations of SPEC section 5.
 *
 * A migration is a file DIR/NNNN_name.sql (four or more digits, then
 * '_', letters, digits, '_' or '-'), applied once, in the order of NNNN,
 * with NNNN_name.pg.sql beside it as its PostgreSQL version (pg-migrate.c),
 * each in its own transaction together with its row in
 * schema_migrations(version, name, applied_at). Files that do not match
 * the pattern are ignored; two files with one number are an error.
 */
#ifndef AWAITD_MIGRATE_H
#define AWAITD_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* One migration file, in the order they apply. */
struct migration {
	int64_t version;
	char file[256]; /* the file to run: NNNN_name.sql, or NNNN_name.pg.sql */
	char name[256]; /* the name recorded in schema_migrations: NNNN_name.sql */
};

/*
 * The migrations of dir by version (*out malloc'd). for_pg: a
 * NNNN_name.pg.sql beside NNNN_name.sql replaces it (PostgreSQL's version),
 * and one alone is a migration of PostgreSQL only; else .pg.sql files are
 * ignored. Returns the count, or -1 with err (two files with one number).
 */
int migrate_list(const char *dir, int for_pg, struct migration **out, char *err, size_t errlen);

/* A migration file's text (malloc'd, NUL-terminated), or NULL with err. */
char *migrate_read(const char *path, char *err, size_t errlen);

/*
 * Apply the pending migrations of dir to db (not inside a transaction).
 * Returns the number applied, or -1 with err set to the failing file and
 * SQLite's message ("migrations/0003_orders.sql: near \"SELEC\": syntax
 * error"); what failed is rolled back, what came before stays applied.
 */
int migrate_apply(sqlite3 *db, const char *dir, int64_t now_ms, char *err, size_t errlen);

/* The highest applied version, 0 for none, -1 on error (err set). */
int64_t migrate_version(sqlite3 *db, char *err, size_t errlen);

#endif
