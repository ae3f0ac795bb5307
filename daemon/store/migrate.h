/*
 * migrate.h: the schema migrations of SPEC section 5.
 *
 * A migration is a file DIR/NNNN_name.sql (four or more digits, then
 * '_', letters, digits, '_' or '-'), applied once, in the order of NNNN,
 * each in its own transaction together with its row in
 * schema_migrations(version, name, applied_at). Files that do not match
 * the pattern are ignored; two files with one number are an error.
 */
#ifndef AWAITD_MIGRATE_H
#define AWAITD_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

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
