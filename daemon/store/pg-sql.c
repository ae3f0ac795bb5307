/*
 * pg-sql.c: values between awaitd and PostgreSQL. The driver's own
 * statements take their parameters as text (PostgreSQL infers each type
 * from where it is used); application SQL is translated from SQLite's '?'
 * placeholders to $1, $2..., and its result columns come back typed by
 * their PostgreSQL type: integers (and numerics without a fraction, such
 * as sum() of a bigint) as integers, float and numeric as reals, bytea as
 * a blob, booleans as 0/1 (as SQLite stores them), everything else as text.
 * And the guard of application SQL (pg_sql_allowed).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg-int.h"

/* PostgreSQL's type oids (pg_type.dat): fixed since forever */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700

void pg_params_init(struct pg_params *p)
{
	p->n = 0;
}

static char *slot(struct pg_params *p)
{
	/* the callers stay well under PG_MAX_PARAMS; past it the statement fails */
	if (p->n >= PG_MAX_PARAMS)
		return NULL;
	return p->num[p->n];
}

void pg_param_i64(struct pg_params *p, int64_t v)
{
	char *b = slot(p);

	if (!b)
		return;
	snprintf(b, 32, "%" PRId64, v);
	p->v[p->n++] = b;
}

void pg_param_opt(struct pg_params *p, int64_t v)
{
	if (v)
		pg_param_i64(p, v);
	else
		pg_param_text(p, NULL);
}

void pg_param_real(struct pg_params *p, double v)
{
	char *b = slot(p);

	if (!b)
		return;
	snprintf(b, 32, "%.17g", v);
	p->v[p->n++] = b;
}

void pg_param_text(struct pg_params *p, const char *v)
{
	if (p->n < PG_MAX_PARAMS)
		p->v[p->n++] = v;
}

char *pg_sql_translate(const char *sql, int *nplaceholders)
{
	size_t len = strlen(sql), o = 0, marks = 0;
	char *out;
	int n = 0;

	for (const char *q = sql; (q = strchr(q, '?')) != NULL; q++)
		marks++;
	if (marks > 999999)
		return NULL;
	out = malloc(len + marks * 7 + 1); /* a '?' becomes at most "$999999" */

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		char ch = sql[i];
		if (ch == '\'' || ch == '"') {
			/* a string or a quoted name, with its doubled quotes, copied as it is */
			out[o++] = sql[i++];
			while (i < len) {
				out[o++] = sql[i];
				if (sql[i++] == ch) {
					if (i < len && sql[i] == ch)
						out[o++] = sql[i++];
					else
						break;
				}
			}
		} else if (ch == '-' && sql[i + 1] == '-') {
			while (i < len && sql[i] != '\n')
				out[o++] = sql[i++];
		} else if (ch == '/' && sql[i + 1] == '*') {
			out[o++] = sql[i++];
			out[o++] = sql[i++];
			while (i < len && !(sql[i] == '*' && sql[i + 1] == '/'))
				out[o++] = sql[i++];
			if (i < len) {
				out[o++] = sql[i++];
				out[o++] = sql[i++];
			}
		} else if (ch == '?') {
			o += (size_t)sprintf(out + o, "$%d", ++n);
			i++;
		} else {
			out[o++] = sql[i++];
		}
	}
	out[o] = '\0';
	*nplaceholders = n;
	return out;
}

char *pg_text(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

int64_t pg_i64(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* One value of a result column, typed by the column's PostgreSQL type. */
static int col_value(PGresult *res, int row, int col, struct store_val *v)
{
	const char *s = PQgetvalue(res, row, col);
	char *end;

	if (PQgetisnull(res, row, col)) {
		v->type = STORE_NULL;
		return 0;
	}
	switch (PQftype(res, col)) {
	case OID_BOOL:
		v->type = STORE_INT;
		v->i = s[0] == 't';
		return 0;
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		v->type = STORE_INT;
		v->i = strtoll(s, NULL, 10);
		return 0;
	case OID_NUMERIC:
		if (!strpbrk(s, ".eEN")) { /* an integer, if it fits */
			long long i = strtoll(s, &end, 10);
			if (*end == '\0' && i != LLONG_MAX && i != LLONG_MIN) {
				v->type = STORE_INT;
				v->i = i;
				return 0;
			}
		}
		/* fall through */
	case OID_FLOAT4:
	case OID_FLOAT8:
		v->type = STORE_REAL;
		v->d = strtod(s, NULL);
		return 0;
	case OID_BYTEA: {
		size_t n = 0;
		unsigned char *b = PQunescapeBytea((const unsigned char *)s, &n);
		if (!b)
			return -1;
		v->p = malloc(n + 1);
		if (v->p) {
			memcpy(v->p, b, n);
			v->p[n] = '\0';
		}
		PQfreemem(b);
		v->type = STORE_BLOB;
		v->n = n;
		return v->p ? 0 : -1;
	}
	default:
		v->type = STORE_TEXT;
		v->n = (size_t)PQgetlength(res, row, col);
		v->p = malloc(v->n + 1);
		if (!v->p)
			return -1;
		memcpy(v->p, s, v->n + 1);
		return 0;
	}
}

int pg_rows_collect(struct store_req *r, PGresult *res)
{
	struct store_rows *rows = &r->rows;
	int nrows = PQntuples(res);
	const char *ct = PQcmdTuples(res);

	rows->ncols = PQnfields(res);
	if (rows->ncols) {
		rows->cols = calloc((size_t)rows->ncols, sizeof *rows->cols);
		if (!rows->cols)
			return store_fail(r, "out_of_memory", "out of memory");
		for (int i = 0; i < rows->ncols; i++)
			if (!(rows->cols[i] = strdup(PQfname(res, i))))
				return store_fail(r, "out_of_memory", "out of memory");
	}
	if (nrows > 0 && rows->ncols > 0) {
		rows->vals = calloc((size_t)nrows * (size_t)rows->ncols, sizeof *rows->vals);
		if (!rows->vals)
			return store_fail(r, "out_of_memory", "out of memory");
	}
	for (int i = 0; i < nrows; i++) {
		struct store_val *row = rows->vals + (size_t)i * (size_t)rows->ncols;
		rows->nrows++;
		for (int k = 0; k < rows->ncols; k++)
			if (col_value(res, i, k, &row[k]) < 0)
				return store_fail(r, "out_of_memory", "out of memory");
	}
	/* rows changed: by a write only (a SELECT's count is its rows, not changes) */
	rows->changes = 0;
	if (ct && *ct &&
	    (!strncmp(PQcmdStatus(res), "INSERT", 6) || !strncmp(PQcmdStatus(res), "UPDATE", 6) ||
	     !strncmp(PQcmdStatus(res), "DELETE", 6) || !strncmp(PQcmdStatus(res), "MERGE", 5)))
		rows->changes = strtoll(ct, NULL, 10);
	/* no rowid in PostgreSQL: an INSERT ... RETURNING id gives its first column */
	rows->last_id = 0;
	if (nrows > 0 && rows->ncols > 0 && !strncmp(PQcmdStatus(res), "INSERT", 6)) {
		struct store_val *last = rows->vals + (size_t)(nrows - 1) * (size_t)rows->ncols;
		if (last->type == STORE_INT)
			rows->last_id = last->i;
	}
	return 0;
}

int pg_fail(struct store_req *r, const char *what, PGresult *res, struct pg_conn *c)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	size_t n;

	if (!*m && c && c->pq)
		m = PQerrorMessage(c->pq);
	if (!*m && c)
		m = c->err;
	n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	if (n > 6 && !strncmp(m, "ERROR:", 6)) { /* libpq's severity prefix: the code says it */
		m += 6;
		n -= 6;
		while (n && *m == ' ')
			m++, n--;
	}
	return store_fail(r, "db", "%s%s%.*s", what ? what : "", what ? ": " : "", (int)n, m);
}

/*
 * The first word of application SQL, lower-cased, past blanks and comments
 * ("" when none fits in out).
 */
static void first_word(const char *sql, char *out, size_t outlen)
{
	size_t n = 0;

	for (;;) {
		while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
			sql++;
		if (sql[0] == '-' && sql[1] == '-') {
			sql += strcspn(sql, "\n");
			continue;
		}
		if (sql[0] == '/' && sql[1] == '*') {
			const char *e = strstr(sql + 2, "*/");
			sql = e ? e + 2 : sql + strlen(sql);
			continue;
		}
		break;
	}
	while (n + 1 < outlen && ((*sql >= 'a' && *sql <= 'z') || (*sql >= 'A' && *sql <= 'Z')))
		out[n++] = (char)(*sql++ | 0x20);
	out[n] = '\0';
}

/*
 * Whether application SQL may run: not a statement that would end or
 * escape the transaction the store keeps (BEGIN, COMMIT, SET ROLE...),
 * and no word naming one of the daemon's own tables (store_is_reserved).
 * Returns 0, or -1 with r failed (invalid) naming what was refused.
 */
int pg_sql_allowed(struct store_req *r)
{
	static const char *const control[] = {
	    "begin",   "start", "commit", "end",     "rollback", "abort",    "savepoint", "release",
	    "prepare", "set",   "reset",  "discard", "listen",   "unlisten", "copy"};
	char w[32];
	const char *p = r->sql;

	first_word(p, w, sizeof w);
	for (size_t i = 0; i < sizeof control / sizeof *control; i++)
		if (!strcmp(w, control[i]))
			return store_fail(
			    r, "invalid",
			    "%s statements are not allowed in application SQL (the store runs"
			    " the transactions)",
			    w);
	while (*p) {
		char name[64];
		size_t n = 0;
		if (*p == '\'') { /* a string: skip it */
			for (p++; *p && !(*p == '\'' && p[1] != '\''); p += *p == '\'' ? 2 : 1)
				;
			if (*p)
				p++;
			continue;
		}
		if (*p == '"') {
			for (p++; *p && *p != '"' && n + 1 < sizeof name; p++)
				name[n++] = *p;
			p += strcspn(p, "\"");
			if (*p)
				p++;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') {
			while (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			        (*p >= '0' && *p <= '9')) &&
			       n + 1 < sizeof name) {
				char ch = *p++;
				name[n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch | 0x20) : ch;
			}
			while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			       (*p >= '0' && *p <= '9'))
				p++;
		} else {
			p++;
			continue;
		}
		name[n] = '\0';
		if (store_is_reserved(name) || !strcmp(name, "awaitd_nodes"))
			return store_fail(
			    r, "invalid",
			    "\"%s\" is one of the daemon's own tables, out of reach of"
			    " application SQL",
			    name);
	}
	return 0;
}
