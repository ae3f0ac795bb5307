/*
 * pg-many.c: the operations of a batch that go to PostgreSQL as one
 * statement for all of them: the finishes (not parking), and the enqueues
 * with neither a key nor `after` (the bulk of a queue's traffic). One
 * UPDATE ... FROM unnest(arrays) and one INSERT ... SELECT FROM
 * unnest(arrays) cost PostgreSQL a fraction of a statement per job; each
 * request still gets its own answer, mapped back by its place in the
 * arrays. The other operations of the batch are sent one by one
 * (pg-ops.c), then the groups: a read in the same batch may not see their
 * effect yet, as if it had come in the batch before.
 *
 * A group's statement that fails names no one: the whole batch goes
 * again with each request alone (pg.c), so the one that fails is answered
 * with its own error and its neighbours are committed.
 *
 * Only one batch is in flight, so the groups live in struct pgstore until
 * the batch ends.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg-int.h"

/* A PostgreSQL array literal under construction: {1,NULL,"a\"b"}. */
struct arr {
	char *p;
	size_t n, cap;
	int count, oom;
};

static void put(struct arr *a, const char *s, size_t len)
{
	if (a->oom)
		return;
	if (a->n + len + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		while (cap < a->n + len + 2)
			cap *= 2;
		char *np = realloc(a->p, cap);
		if (!np) {
			a->oom = 1;
			return;
		}
		a->p = np;
		a->cap = cap;
	}
	memcpy(a->p + a->n, s, len);
	a->n += len;
	a->p[a->n] = '\0';
}

static void sep(struct arr *a)
{
	put(a, a->count++ ? "," : "{", 1);
}

static void add_text(struct arr *a, const char *v)
{
	sep(a);
	if (!v) {
		put(a, "NULL", 4);
		return;
	}
	put(a, "\"", 1);
	for (const char *s = v; *s; s++) {
		size_t run = strcspn(s, "\"\\");
		put(a, s, run);
		s += run;
		if (!*s)
			break;
		put(a, "\\", 1);
		put(a, s, 1);
	}
	put(a, "\"", 1);
}

static void add_i64(struct arr *a, int64_t v, int zero_is_null)
{
	char b[32];

	sep(a);
	if (zero_is_null && v == 0) {
		put(a, "NULL", 4);
		return;
	}
	snprintf(b, sizeof b, "%" PRId64, v);
	put(a, b, strlen(b));
}

static const char *done(struct arr *a)
{
	put(a, a->count ? "}" : "{}", a->count ? 1 : 2);
	return a->oom ? NULL : a->p;
}

/*
 * Send `sql` of statement `which` with the n finished arrays as its first
 * parameters and now as the last; frees the arrays. Returns 0 or -1.
 */
static int send_arrays(struct pg_conn *c, enum pg_prep which, const char *sql, struct arr *a, int n,
                       int group)
{
	struct pg_slot slot = {.kind = PG_SLOT_MANY, .step = group};
	struct pg_params p;
	int rc = 0;

	pg_params_init(&p);
	for (int k = 0; k < n; k++) {
		const char *v = done(&a[k]);
		if (!v)
			rc = -1;
		pg_param_text(&p, v);
	}
	pg_param_i64(&p, store_now());
	if (rc < 0)
		snprintf(c->err, sizeof c->err, "out of memory");
	else
		rc = pg_conn_send_prep(c, which, sql, &p, slot);
	for (int k = 0; k < n; k++)
		free(a[k].p);
	return rc;
}

static int grow(struct pg_many *g)
{
	if (g->n < g->cap)
		return 0;
	size_t cap = g->cap ? g->cap * 2 : 64;
	struct store_req **v = realloc(g->v, cap * sizeof *v);
	if (!v)
		return -1;
	g->v = v;
	g->cap = cap;
	return 0;
}

int pg_many_take(struct pgstore *st, struct store_req *r)
{
	struct pg_many *g;

	if (r->op == STORE_FINISH && store_state_parse(r->name) >= 0 &&
	    strcmp(r->name, "waiting") != 0 && strcmp(r->name, "running") != 0 &&
	    strcmp(r->name, "queued") != 0)
		g = &st->many[PG_MANY_FINISH];
	else if (r->op == STORE_ENQUEUE && !r->key && !r->nafter)
		g = &st->many[PG_MANY_ENQUEUE];
	else
		return 0;
	if (grow(g) < 0)
		return 0; /* out of memory: it goes alone */
	g->v[g->n++] = r;
	return 1;
}

static int send_finishes(struct pg_conn *c, struct pg_many *g)
{
	struct arr a[7] = {{0}};

	for (size_t i = 0; i < g->n; i++) {
		struct store_req *r = g->v[i];
		int terminal = strcmp(r->name, "failed") != 0;
		add_i64(&a[0], r->id, 0);
		add_i64(&a[1], r->lease, 0);
		add_text(&a[2], r->name);
		add_text(&a[3], r->text);
		add_i64(&a[4], terminal ? r->now : 0, 1);
		add_i64(&a[5], terminal ? 0 : r->run_at, 1);
		add_text(&a[6], r->text2);
	}
	return send_arrays(c, PG_PREP_FINISH_MANY,
	                   "SELECT * FROM awaitd_finish_many($1, $2, $3, $4, $5, $6, $7, $8)", a, 7,
	                   PG_MANY_FINISH);
}

static int send_enqueues(struct pg_conn *c, struct pg_many *g)
{
	struct arr a[13] = {{0}};

	for (size_t i = 0; i < g->n; i++) {
		struct store_req *r = g->v[i];
		add_text(&a[0], r->name);
		add_text(&a[1], r->text);
		add_i64(&a[2], r->priority, 0);
		add_i64(&a[3], r->max_attempts > 0 ? r->max_attempts : 1, 0);
		add_i64(&a[4], r->backoff_ms, 0);
		add_i64(&a[5], r->timeout_ms, 1);
		add_i64(&a[6], r->run_at ? r->run_at : r->now, 0);
		add_i64(&a[7], r->now, 0);
		for (int k = 0; k < STORE_MAX_LIMITS; k++)
			add_text(&a[8 + k], r->limit_keys[k]);
		add_text(&a[12], r->fair_key);
	}
	return send_arrays(
	    c, PG_PREP_ENQUEUE_MANY,
	    "SELECT * FROM awaitd_enqueue_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
	    " $11, $12, $13, $14)",
	    a, 13, PG_MANY_ENQUEUE);
}

int pg_many_send(struct pgstore *st, struct pg_conn *c)
{
	if (st->many[PG_MANY_FINISH].n && send_finishes(c, &st->many[PG_MANY_FINISH]) < 0)
		return -1;
	if (st->many[PG_MANY_ENQUEUE].n && send_enqueues(c, &st->many[PG_MANY_ENQUEUE]) < 0)
		return -1;
	return 0;
}

/* The group's answer: rows (n, kind, id) for finishes, (n, id) for enqueues; n from 1. */
void pg_many_collect(struct pgstore *st, int which, PGresult *res)
{
	struct pg_many *g = &st->many[which];

	for (int i = 0; i < PQntuples(res); i++) {
		int64_t n = pg_i64(res, i, 0);
		struct store_req *r;
		if (n < 1 || (size_t)n > g->n)
			continue;
		r = g->v[n - 1];
		if (which == PG_MANY_ENQUEUE) {
			r->out_id = pg_i64(res, i, 1);
			r->created = r->changed = 1;
		} else {
			pg_read_change(r, PQgetvalue(res, i, 1), pg_i64(res, i, 2));
		}
	}
}

void pg_many_clear(struct pgstore *st)
{
	for (int k = 0; k < PG_MANY_N; k++)
		st->many[k].n = 0;
}

void pg_many_free(struct pgstore *st)
{
	for (int k = 0; k < PG_MANY_N; k++) {
		free(st->many[k].v);
		st->many[k].v = NULL;
		st->many[k].n = st->many[k].cap = 0;
	}
}
