/*
 * store-limits.c: claiming jobs under per-key limits and pauses (store.h,
 * STORE_CLAIM with limit_caps or rates, STORE_PAUSE, STORE_PAUSES). Runs on
 * the writer, inside the batch transaction.
 *
 * A pause of the whole script (key '') claims nothing; paused keys are left
 * out like full ones. A pause with an end makes the claim say when
 * (out_id), so the engine claims again then.
 *
 * A job of the name may start only while, for each limit i it falls under
 * (its limit_key<i> is not NULL), fewer than caps[i] running jobs of the
 * name hold the same value, and fewer than rates[i] jobs with that value
 * started in the last pers[i] ms (awaitd_limit_starts keeps each start for
 * that long). The running jobs and the recent starts are counted first
 * (they are few: at most the script's concurrency, and its rate). Then candidates
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

/* slot: 0..3 the running jobs of limit i, 4..7 its starts in the window */
struct keycount {
	int slot;
	char *key;
	int64_t n;
	int64_t oldest; /* rate slots: the oldest start in the window (epoch ms) */
};

struct counts {
	struct keycount *v;
	size_t n, cap;
};

static struct keycount *find(struct counts *c, int slot, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].slot == slot && strcmp(c->v[i].key, key) == 0)
			return &c->v[i];
	return NULL;
}

/* n more of key in slot, the oldest at `at`. 0, or -1 out of memory. */
static int add(struct counts *c, int slot, const char *key, int64_t n, int64_t at)
{
	struct keycount *k = find(c, slot, key);

	if (k) {
		k->n += n;
		if (at < k->oldest)
			k->oldest = at;
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
	c->v[c->n].slot = slot;
	c->v[c->n].oldest = at;
	c->v[c->n++].n = n;
	return 0;
}

/* The cap of a slot (0: none). */
static int64_t cap_of(const struct store_req *r, int slot)
{
	return slot < STORE_MAX_LIMITS ? r->limit_caps[slot]
	                               : r->limit_rates[slot - STORE_MAX_LIMITS];
}

static int full(const struct store_req *r, const struct keycount *k)
{
	return cap_of(r, k->slot) > 0 && k->n >= cap_of(r, k->slot);
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
	for (int slot = 0; slot < 2 * STORE_MAX_LIMITS; slot++) {
		const char *key = job->limit_keys[slot % STORE_MAX_LIMITS];
		struct keycount *k;
		if (key && (k = find(c, slot, key)) && full(r, k))
			return 0;
	}
	return 1;
}

/* Count job as started now under its limits (and log its rate-limited starts). */
static int take(struct sqlstore *st, struct store_req *r, struct counts *c,
                const struct store_job *job)
{
	for (int slot = 0; slot < 2 * STORE_MAX_LIMITS; slot++) {
		int i = slot % STORE_MAX_LIMITS;
		sqlite3_stmt *s;
		if (!job->limit_keys[i] || cap_of(r, slot) <= 0)
			continue;
		if (add(c, slot, job->limit_keys[i], 1, r->now) < 0)
			return store_fail(r, "out_of_memory", "out of memory");
		if (slot < STORE_MAX_LIMITS)
			continue;
		s = store_stmt(
		    &st->w,
		    "INSERT INTO awaitd_limit_starts (name, lim, key, at) VALUES (?, ?, ?, ?)", r);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, i + 1);
		sqlite3_bind_text(s, 3, job->limit_keys[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, r->now);
		if (store_run_done(st, s, r, "recording a start under a rate limit") < 0)
			return -1;
	}
	return 0;
}

/* Each rate limit's starts in its window (older ones pruned), by value. */
static int count_starts(struct sqlstore *st, struct store_req *r, struct counts *c)
{
	for (int i = 0; i < STORE_MAX_LIMITS; i++) {
		sqlite3_stmt *s;
		int rc;
		if (r->limit_rates[i] <= 0)
			continue;
		s = store_stmt(
		    &st->w,
		    "DELETE FROM awaitd_limit_starts WHERE name = ? AND lim = ? AND at <= ?", r);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, i + 1);
		sqlite3_bind_int64(s, 3, r->now - r->limit_pers[i]);
		if (store_run_done(st, s, r, "pruning old starts") < 0)
			return -1;
		s = store_stmt(&st->w,
		               "SELECT key, count(*), min(at) FROM awaitd_limit_starts"
		               " WHERE name = ? AND lim = ? GROUP BY key",
		               r);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, i + 1);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			if (add(c, STORE_MAX_LIMITS + i, (const char *)sqlite3_column_text(s, 0),
			        sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2)) < 0) {
				sqlite3_reset(s);
				return store_fail(r, "out_of_memory", "out of memory");
			}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return store_fail_db(&st->w, r, "counting the starts by key");
	}
	return 0;
}

/* The running jobs of r->name counted by their limit values. */
static int count_running(struct sqlstore *st, struct store_req *r, struct counts *c)
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
			    add(c, i, (const char *)sqlite3_column_text(s, i), 1, 0) < 0) {
				sqlite3_reset(s);
				return store_fail(r, "out_of_memory", "out of memory");
			}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail_db(&st->w, r, "counting the running jobs by key");
}

/*
 * The values of limit lim that are full, and the paused keys (a JSON
 * array, or NULL), as a JSON array for json_each (malloc'd).
 */
static char *full_keys(const struct counts *c, const struct store_req *r, int lim, json_t *paused)
{
	json_t *a = paused ? json_copy(paused) : json_array();
	char *text;

	for (size_t i = 0; a && i < c->n; i++)
		if (c->v[i].slot % STORE_MAX_LIMITS == lim && full(r, &c->v[i]))
			json_array_append_new(a, json_string(c->v[i].key));
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* One pass: read up to want candidates without the full keys, take those with room. */
static int pass(struct sqlstore *st, struct store_req *r, struct counts *c, json_t *paused,
                const char *pausedtext, int64_t want, int *took)
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
	    " AND (fair_key IS NULL OR fair_key NOT IN (SELECT value FROM json_each(?8)))"
	    " ORDER BY priority DESC, run_at, id LIMIT ?3",
	    r);
	size_t from = r->njobs, kept = from;
	char *full[STORE_MAX_LIMITS] = {NULL};
	int n, rc = 0;

	if (!s)
		return -1;
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		if (!(full[i] = full_keys(c, r, i, paused)))
			rc = store_fail(r, "out_of_memory", "out of memory");
	if (rc == 0) {
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, r->now);
		sqlite3_bind_int64(s, 3, want);
		for (int i = 0; i < STORE_MAX_LIMITS; i++)
			sqlite3_bind_text(s, 4 + i, full[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 8, pausedtext, -1, SQLITE_STATIC);
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
		rc = take(st, r, c, job);
		if (kept != i)
			r->jobs[kept] = *job;
		kept++;
	}
	*took = (int)(r->njobs - from); /* rows read: 0 means none is left */
	r->njobs = kept;
	/* running now: the next pass cannot read them again */
	return rc == 0 ? store_claim_mark(st, r, from) : rc;
}

/* ---- fair_by: claims rotate over the values of fair_key ---------------------------------- */

/* The first value of fair_key after `after` (NULL: the first of all) with jobs waiting to
 * run; NULL when there is none (malloc'd), or *rc = -1 on error. */
static char *fair_next(struct sqlstore *st, struct store_req *r, const char *after, int *rc)
{
	/* min() over the partial index jobs_fair: a seek per value, however many jobs */
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    after ? "SELECT min(fair_key) FROM jobs WHERE name = ?1 AND fair_key IS NOT NULL"
	            " AND (state = 'queued' OR state = 'failed' OR state = 'waiting')"
	            " AND fair_key > ?2"
	          : "SELECT min(fair_key) FROM jobs WHERE name = ?1 AND fair_key IS NOT NULL"
	            " AND (state = 'queued' OR state = 'failed' OR state = 'waiting')",
	    r);
	char *v = NULL;

	if (!s) {
		*rc = -1;
		return NULL;
	}
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	if (after)
		sqlite3_bind_text(s, 2, after, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = store_col_text(s, 0); /* NULL for a NULL min(): none */
	else
		*rc = store_fail_db(&st->w, r, "listing the fair_by values");
	sqlite3_reset(s);
	return v;
}

/* ... wrapping round to the first (*wrapped then counts one more wrap). */
static char *fair_after(struct sqlstore *st, struct store_req *r, const char *after, int *rc,
                        int *wrapped)
{
	char *v = fair_next(st, r, after, rc);

	if (v || *rc < 0 || !after)
		return v;
	(*wrapped)++;
	return fair_next(st, r, NULL, rc);
}

/*
 * The best job of value key that may start now, taken
 * (appended to r->jobs and counted): 1, 0 when none, -1 on error.
 */
/* what a fair claim reads of a job, and the rules every candidate is under (?3..?8) */
#define FAIR_COLS                                                                                  \
	JOB_COLS ", EXISTS (SELECT 1 FROM steps WHERE job_id = jobs.id),"                          \
	         " limit_key1, limit_key2, limit_key3, limit_key4 FROM jobs"
#define FAIR_TAIL                                                                                  \
	" AND run_at <= ?3"                                                                        \
	" AND (limit_key1 IS NULL OR limit_key1 NOT IN (SELECT value FROM json_each(?4)))"         \
	" AND (limit_key2 IS NULL OR limit_key2 NOT IN (SELECT value FROM json_each(?5)))"         \
	" AND (limit_key3 IS NULL OR limit_key3 NOT IN (SELECT value FROM json_each(?6)))"         \
	" AND (limit_key4 IS NULL OR limit_key4 NOT IN (SELECT value FROM json_each(?7)))"         \
	" AND (fair_key IS NULL OR fair_key NOT IN (SELECT value FROM json_each(?8)))"             \
	" ORDER BY priority DESC, run_at, id LIMIT 1"

static int fair_head(struct sqlstore *st, struct store_req *r, struct counts *c, json_t *paused,
                     const char *pausedtext, const char *key)
{
	/* key NULL: the jobs without a value (enqueued before fair_by was set) take a turn */
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    key ? "SELECT " FAIR_COLS " WHERE name = ?1 AND fair_key = ?2 AND fair_key IS NOT NULL"
	          " AND (state = 'queued' OR state = 'failed' OR state = 'waiting')" FAIR_TAIL
	        : "SELECT " FAIR_COLS " WHERE name = ?1 AND fair_key IS NULL"
	          " AND (state = 'queued' OR state = 'failed' OR state = 'waiting')" FAIR_TAIL,
	    r);
	char *full[STORE_MAX_LIMITS] = {NULL};
	size_t from = r->njobs;
	int rc = 0;

	if (!s)
		return -1;
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		if (!(full[i] = full_keys(c, r, i, paused)))
			rc = store_fail(r, "out_of_memory", "out of memory");
	if (rc == 0) {
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		if (key) /* (the NULL variant has no ?2) */
			sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, r->now);
		for (int i = 0; i < STORE_MAX_LIMITS; i++)
			sqlite3_bind_text(s, 4 + i, full[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 8, pausedtext, -1, SQLITE_STATIC);
		rc = store_read_jobs(st, s, r, "claiming a job in its turn") < 0 ? -1 : 0;
		sqlite3_clear_bindings(s);
	}
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		free(full[i]);
	if (rc < 0 || r->njobs == from)
		return rc;
	if (!has_room(c, r, &r->jobs[from])) {
		store_job_fini(&r->jobs[--r->njobs]);
		return 0;
	}
	/* taken and running at once: the next head of this value is the next job */
	if (take(st, r, c, &r->jobs[from]) < 0 || store_claim_mark(st, r, from) < 0)
		return -1;
	return 1;
}

/*
 * A fair claim: one job of each value in turn, starting after the value
 * served last (awaitd_fair), round after round until n are taken or a
 * round takes none. 10 jobs of a small tenant enqueued behind 5,000 of a
 * big one start within the next rounds, not after the 5,000.
 */
static int fair_claim(struct sqlstore *st, struct store_req *r, struct counts *c, json_t *paused,
                      const char *pausedtext)
{
	sqlite3_stmt *s = store_stmt(&st->w, "SELECT last_key FROM awaitd_fair WHERE name = ?", r);
	char *start = NULL, *last = NULL;
	int rc = 0;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		start = store_col_text(s, 0);
	sqlite3_reset(s);
	while (rc == 0 && (int64_t)r->njobs < r->n) {
		int wrapped = 0, took = 0, got = fair_head(st, r, c, paused, pausedtext, NULL);
		char *first = got < 0 ? NULL : fair_after(st, r, start, &rc, &wrapped);
		char *t = first ? strdup(first) : NULL;
		if (got < 0)
			rc = -1;
		took += got > 0;
		/* a round: the jobs without a value once (above), then each value once, ascending
		 * from the one after the last served and wrapping past the greatest, until it comes
		 * back to first or beyond, or wraps a second time (the values from first on left
		 * the walk: their jobs were all taken) */
		wrapped = 0;
		while (rc == 0 && t && (int64_t)r->njobs < r->n) {
			char *next;
			got = fair_head(st, r, c, paused, pausedtext, t);
			if (got < 0)
				rc = -1;
			if (got > 0) {
				took++;
				free(last);
				last = strdup(t);
			}
			next = rc == 0 ? fair_after(st, r, t, &rc, &wrapped) : NULL;
			free(t);
			t = next;
			if (t && (wrapped > 1 || (wrapped && strcmp(t, first) >= 0)))
				break; /* round the circle */
		}
		free(t);
		free(first);
		if (!took)
			break;
	}
	free(start);
	if (rc == 0 && last) {
		s = store_stmt(&st->w,
		               "INSERT INTO awaitd_fair (name, last_key) VALUES (?, ?)"
		               " ON CONFLICT (name) DO UPDATE SET last_key = excluded.last_key",
		               r);
		if (!s)
			rc = -1;
		if (s) {
			sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, last, -1, SQLITE_STATIC);
			rc = store_run_done(st, s, r, "keeping the fair turn");
		}
	}
	free(last);
	return rc;
}

int store_claim_limited(struct sqlstore *st, struct store_req *r, json_t *paused, int64_t until)
{
	struct counts c = {NULL, 0, 0};
	int rc = count_running(st, r, &c), read = 1;
	char *pausedtext = paused ? json_dumps(paused, JSON_COMPACT) : strdup("[]");

	if (!pausedtext)
		rc = store_fail(r, "out_of_memory", "out of memory");
	if (rc == 0)
		rc = count_starts(st, r, &c);
	if (rc == 0 && r->flag)
		rc = fair_claim(st, r, &c, paused, pausedtext);
	/* (after a fair claim: what its rounds left, jobs from before fair_by was set, deeper
	 * ones behind blocked heads) */
	while (rc == 0 && read > 0 && (int64_t)r->njobs < r->n) {
		size_t before = r->njobs;
		rc = pass(st, r, &c, paused, pausedtext, r->n - (int64_t)r->njobs, &read);
		if (rc == 0 && read > 0 && r->njobs - before == (size_t)read)
			break; /* every row read was taken: the queue has no more than that */
	}
	/* when a value held back by its rate has room again, or a pause ends: the engine
	 * claims then */
	r->out_id = until;
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		const struct keycount *k = &c.v[i];
		int64_t at;
		if (k->slot < STORE_MAX_LIMITS || !full(r, k))
			continue;
		at = k->oldest + r->limit_pers[k->slot - STORE_MAX_LIMITS];
		if (!r->out_id || at < r->out_id)
			r->out_id = at;
	}
	counts_free(&c);
	free(pausedtext);
	return rc < 0 ? -1 : 0; /* each pass marked what it took */
}

sqlite3_stmt *store_pauses_stmt(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "SELECT key, until FROM awaitd_pauses WHERE name = ?"
	                             " AND (until IS NULL OR until > ?)",
	                             r);

	if (s) {
		sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, r->now);
	}
	return s;
}

int store_pauses_of(struct sqlstore *st, struct store_req *r, json_t **keys, int64_t *until)
{
	sqlite3_stmt *s;
	int rc, whole = 0;

	*keys = NULL;
	*until = 0;
	if (!st->has_pauses)
		return 0; /* none was ever made: no query */
	s = store_pauses_stmt(st, r);
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		int64_t end = sqlite3_column_int64(s, 1); /* 0 for NULL: until resumed */
		if (key[0] == 0)
			whole = 1;
		else if ((*keys || (*keys = json_array())) && *keys)
			json_array_append_new(*keys, json_string(key));
		if (end && (!*until || end < *until))
			*until = end;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(*keys);
		*keys = NULL;
		return store_fail_db(&st->w, r, "reading the pauses");
	}
	if (whole) {
		json_decref(*keys);
		*keys = NULL;
	}
	return whole;
}

int store_pause(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               r->flag ? "INSERT INTO awaitd_pauses (name, key, until) VALUES (?1, ?2, ?3)"
	                         " ON CONFLICT (name, key) DO UPDATE SET until = excluded.until"
	                         " WHERE until IS NOT excluded.until"
	                       : "DELETE FROM awaitd_pauses WHERE name = ?1 AND key = ?2",
	               r);

	if (!s)
		return -1;
	st->has_pauses |= r->flag;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->key ? r->key : "", -1, SQLITE_STATIC);
	if (r->flag)
		store_bind_opt(s, 3, r->run_at);
	return store_run_done(st, s, r, r->flag ? "pausing" : "resuming");
}

int store_pauses(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w, "DELETE FROM awaitd_pauses WHERE until IS NOT NULL AND until <= ?", r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->now);
	if (store_run_done(st, s, r, "pruning ended pauses") < 0)
		return -1;
	s = store_stmt(&st->w, "SELECT name, key, until FROM awaitd_pauses ORDER BY name, key", r);
	if (!s)
		return -1;
	rc = store_collect(&st->w, s, r);
	sqlite3_reset(s);
	return rc;
}
