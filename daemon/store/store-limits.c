/*
 * store-limits.c: claiming jobs under per-key limits (store.h, STORE_CLAIM
 * with limit_caps). Runs on the writer, inside the batch transaction.
 *
 * A job of the name may start only while, for each limit i it falls under
 * (its limit_key<i> is not NULL), fewer than caps[i] running jobs of the
 * name hold the same value. The running jobs are counted first (they are
 * few: at most the script's concurrency on each daemon). Then candidates
 * are read best first with the keys already full left out in SQL, and
 * taken in order while their keys have room; a key that fills up during
 * this pass leaves the rest of its rows out, so the pass reads again
 * without it. Each pass takes at least its first row, so at most n passes
 * run, and one big key ahead in the queue never hides the others.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store-int.h"

struct keycount {
	int lim;
	char *key;
	int64_t n;
};

struct counts {
	struct keycount *v;
	size_t n, cap;
};

static struct keycount *find(struct counts *c, int lim, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].lim == lim && strcmp(c->v[i].key, key) == 0)
			return &c->v[i];
	return NULL;
}

/* One more running job with value key of limit lim. 0, or -1 out of memory. */
static int add(struct counts *c, int lim, const char *key)
{
	struct keycount *k = find(c, lim, key);

	if (k) {
		k->n++;
		return 0;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct keycount *nv = realloc(c->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		c->v = nv;
		c->cap = ncap;
	}
	if (!(c->v[c->n].key = strdup(key)))
		return -1;
	c->v[c->n].lim = lim;
	c->v[c->n++].n = 1;
	return 0;
}

static void counts_free(struct counts *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
}

/* Has job room under every limit (given the counts)? */
static int has_room(struct counts *c, const struct store_req *r, const struct store_job *job)
{
	for (int i = 0; i < STORE_MAX_LIMITS; i++) {
		struct keycount *k;
		if (r->limit_caps[i] <= 0 || !job->limit_keys[i])
			continue;
		if ((k = find(c, i, job->limit_keys[i])) && k->n >= r->limit_caps[i])
			return 0;
	}
	return 1;
}

/* The running jobs of r->name counted by their limit values. */
static int count_running(struct store *st, struct store_req *r, struct counts *c)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "SELECT limit_key1, limit_key2, limit_key3, limit_key4 FROM jobs"
	               " WHERE state = 'running' AND name = ?",
	               r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		for (int i = 0; i < STORE_MAX_LIMITS; i++)
			if (r->limit_caps[i] > 0 && sqlite3_column_type(s, i) != SQLITE_NULL &&
			    add(c, i, (const char *)sqlite3_column_text(s, i)) < 0) {
				sqlite3_reset(s);
				return store_fail(r, "out_of_memory", "out of memory");
			}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail_db(&st->w, r, "counting the running jobs by key");
}

/* The values of limit lim that are full, as a JSON array for json_each (malloc'd). */
static char *full_keys(const struct counts *c, const struct store_req *r, int lim)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; a && i < c->n; i++)
		if (c->v[i].lim == lim && c->v[i].n >= r->limit_caps[lim])
			json_array_append_new(a, json_string(c->v[i].key));
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* One pass: read up to want candidates without the full keys, take those with room. */
static int pass(struct store *st, struct store_req *r, struct counts *c, int64_t want, int *took)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    "SELECT " JOB_COLS ", EXISTS (SELECT 1 FROM steps WHERE job_id = jobs.id),"
	    " limit_key1, limit_key2, limit_key3, limit_key4 FROM jobs"
	    " WHERE (state = 'queued' OR state = 'failed' OR state = 'waiting') AND name = ?1"
	    " AND run_at <= ?2"
	    " AND (limit_key1 IS NULL OR limit_key1 NOT IN (SELECT value FROM json_each(?4)))"
	    " AND (limit_key2 IS NULL OR limit_key2 NOT IN (SELECT value FROM json_each(?5)))"
	    " AND (limit_key3 IS NULL OR limit_key3 NOT IN (SELECT value FROM json_each(?6)))"
	    " AND (limit_key4 IS NULL OR limit_key4 NOT IN (SELECT value FROM json_each(?7)))"
	    " ORDER BY priority DESC, run_at, id LIMIT ?3",
	    r);
	size_t from = r->njobs, kept = from;
	char *full[STORE_MAX_LIMITS] = {NULL};
	int n, rc = 0;

	if (!s)
		return -1;
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		if (!(full[i] = full_keys(c, r, i)))
			rc = store_fail(r, "out_of_memory", "out of memory");
	if (rc == 0) {
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, r->now);
		sqlite3_bind_int64(s, 3, want);
		for (int i = 0; i < STORE_MAX_LIMITS; i++)
			sqlite3_bind_text(s, 4 + i, full[i], -1, SQLITE_STATIC);
		n = store_read_jobs(st, s, r, "claiming jobs under their limits");
		sqlite3_clear_bindings(s);
		rc = n < 0 ? -1 : 0;
	}
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		free(full[i]);
	/* take the rows in order while their keys have room; drop the others */
	for (size_t i = from; i < r->njobs; i++) {
		struct store_job *job = &r->jobs[i];
		if (rc != 0 || !has_room(c, r, job)) {
			store_job_fini(job);
			continue;
		}
		for (int k = 0; k < STORE_MAX_LIMITS; k++)
			if (r->limit_caps[k] > 0 && job->limit_keys[k] &&
			    add(c, k, job->limit_keys[k]) < 0)
				rc = store_fail(r, "out_of_memory", "out of memory");
		if (kept != i)
			r->jobs[kept] = *job;
		kept++;
	}
	*took = (int)(r->njobs - from); /* rows read: 0 means none is left */
	r->njobs = kept;
	return rc;
}

int store_claim_limited(struct store *st, struct store_req *r)
{
	struct counts c = {NULL, 0, 0};
	int rc = count_running(st, r, &c), read = 1;

	while (rc == 0 && read > 0 && (int64_t)r->njobs < r->n) {
		size_t before = r->njobs;
		rc = pass(st, r, &c, r->n - (int64_t)r->njobs, &read);
		if (rc == 0 && read > 0 && r->njobs - before == (size_t)read)
			break; /* every row read was taken: the queue has no more than that */
	}
	counts_free(&c);
	if (rc < 0)
		return -1;
	return store_claim_mark(st, r);
}
