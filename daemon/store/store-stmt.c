/*
 * store-stmt.c: running statements on the store's connection: the cache of
 * prepared statements, binding, and collecting rows into store_rows.
 *
 * The cache keeps STMT_CACHE statements, the least recently used goes;
 * a cached statement is handed out reset and unbound. Application
 * statements (prepared while c->user_sql is set, under the authorizer's
 * rules) and the daemon's own never share a slot. Collected values are
 * malloc'd copies, each NUL-terminated, freed with the request.
 */
#include <stdlib.h>
#include <string.h>

#include "store-int.h"

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

/*
 * Bind vals[0..n-1] to parameters 1..n of s. Text and blobs are bound
 * SQLITE_STATIC: vals must outlive the statement's run.
 */
void store_bind_vals(sqlite3_stmt *s, const struct store_val *vals, int n)
{
	for (int i = 0; i < n; i++) {
		const struct store_val *v = &vals[i];
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
}

char *store_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? strdup((const char *)t) : NULL;
}

/* ---- prepared statements --------------------------------------------------- */

/* FNV-1a: the cache compares hashes before it compares texts. */
static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *sql; sql++)
		h = (h ^ (unsigned char)*sql) * 1099511628211ULL;
	return h;
}

/*
 * The cached statement for sql, reset and unbound, or a new one put in the
 * least recently used slot. NULL with *why: "db" (sqlite3_errmsg tells),
 * "invalid" (no statement in sql) or "out_of_memory".
 */
static sqlite3_stmt *stmt_get(struct store_conn *c, const char *sql, const char **why)
{
	struct stmt_slot *victim = &c->stmts[0];
	uint64_t h = sql_hash(sql);
	sqlite3_stmt *s = NULL;

	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_slot *e = &c->stmts[i];
		if (e->sql && e->hash == h && e->user == c->user_sql && strcmp(e->sql, sql) == 0) {
			e->used = ++c->stmt_clock;
			sqlite3_reset(e->stmt);
			sqlite3_clear_bindings(e->stmt);
			return e->stmt;
		}
		if (e->used < victim->used)
			victim = e;
	}
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		*why = "db";
		return NULL;
	}
	if (!s) {
		*why = "invalid";
		return NULL;
	}
	sqlite3_finalize(victim->stmt);
	free(victim->sql);
	victim->sql = strdup(sql);
	victim->stmt = victim->sql ? s : NULL;
	victim->hash = h;
	victim->used = ++c->stmt_clock;
	victim->user = c->user_sql;
	if (!victim->sql) {
		sqlite3_finalize(s);
		*why = "out_of_memory";
		return NULL;
	}
	return s;
}

sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql, struct store_req *r)
{
	const char *why = NULL;
	sqlite3_stmt *s = stmt_get(c, sql, &why);

	if (s)
		return s;
	if (strcmp(why, "db") == 0)
		store_fail(r, "db", "%s", sqlite3_errmsg(c->db));
	else if (strcmp(why, "invalid") == 0)
		store_fail(r, "invalid", "no SQL statement in \"%.60s\"", sql);
	else
		store_fail(r, "out_of_memory", "out of memory");
	return NULL;
}

/*
 * Take s out of the statement cache, for the caller to finalize: a DDL
 * statement is authorized (and its foreign keys checked) at every run.
 */
void store_stmt_forget(struct store_conn *c, sqlite3_stmt *s)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_slot *e = &c->stmts[i];
		if (e->stmt == s) {
			free(e->sql);
			memset(e, 0, sizeof *e);
			return;
		}
	}
}

int store_exec(struct store_conn *c, const char *sql)
{
	const char *why;
	sqlite3_stmt *s = stmt_get(c, sql, &why); /* prepared once: SAVEPOINT, COMMIT... */
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
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

int store_collect(struct store_conn *c, sqlite3_stmt *s, struct store_req *r)
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
		return store_fail(r, "db", "%s", sqlite3_errmsg(c->db));
	rows->changes = sqlite3_changes64(c->db);
	rows->last_id = sqlite3_last_insert_rowid(c->db);
	return 0;
}
