/*
 * store-int.h: what store.c (the thread, batching, user SQL) shares with
 * store-jobs.c (the job operations). Only the store thread touches these.
 */
#ifndef AWAITD_STORE_INT_H
#define AWAITD_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

/* A prepared statement for sql (static text or copied), reset and unbound. NULL with err. */
sqlite3_stmt *store_stmt(struct store *st, const char *sql, struct store_req *r);

/* Fail r with SQLite's message for what. Returns -1. */
int store_fail_db(struct store *st, struct store_req *r, const char *what);

/* The database handle of st. */
sqlite3 *store_db(struct store *st);

/* A new lease, unique across epochs. */
int64_t store_new_lease(struct store *st);

/* Execute one job operation (every op but SQL and TX_*). Returns 0 or -1 (r->err set). */
int store_jobs_exec(struct store *st, struct store_req *r);

/* Bind a nullable string / an int64 that is NULL when 0. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_opt(sqlite3_stmt *s, int i, int64_t v);

/* A malloc'd copy of a text column, NULL for NULL (or out of memory). */
char *store_col_text(sqlite3_stmt *s, int i);

/* Collect every remaining row of s into r->rows. Returns 0 or -1 (r->err set). */
int store_collect(struct store *st, sqlite3_stmt *s, struct store_req *r);

#endif
