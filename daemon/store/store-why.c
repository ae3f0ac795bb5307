/*
 * store-why.c: what a job that may not start waits behind (STORE_WHY), for
 * `awaitctl show` and the dashboard: the jobs it was enqueued after, a
 * pause of its script or of one of its keys, a per-key limit that is full
 * or a rate whose window is. Read-only; runs on the writer like the claim
 * it explains, so it sees what the claim would.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store-int.h"

/* The jobs job waits for that have not succeeded, as {kind: "after", jobs: [...]}. */
static json_t *after_of(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "SELECT d.after_id FROM awaitd_deps d JOIN jobs a"
	                             " ON a.id = d.after_id WHERE d.job_id = ?"
	                             " AND a.state <> 'succeeded' ORDER BY d.after_id",
	                             r);
	json_t *ids = json_array();

	if (!s || !ids) {
		json_decref(ids);
		return NULL;
	}
	sqlite3_bind_int64(s, 1, r->id);
	while (sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(ids, json_integer(sqlite3_column_int64(s, 0)));
	sqlite3_reset(s);
	return json_pack("{ss so}", "kind", "after", "jobs", ids);
}

/* How many rows the query (name ?1, key ?2, and lim ?3, since ?4 if it has them) counts. */
static int64_t count_of(struct sqlstore *st, struct store_req *r, const char *sql, const char *key,
                        int lim, int64_t since, int64_t *oldest)
{
	sqlite3_stmt *s = store_stmt(&st->w, sql, r);
	int64_t n = 0;

	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(s) >= 4) {
		sqlite3_bind_int(s, 3, lim);
		sqlite3_bind_int64(s, 4, since);
	}
	if (sqlite3_step(s) == SQLITE_ROW) {
		n = sqlite3_column_int64(s, 0);
		if (oldest && sqlite3_column_count(s) > 1)
			*oldest = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return n;
}

/*
 * Until when the pauses holding a job back (the script's, those of its values) hold it:
 * the latest end, 0 when one of them lasts until resumed. -1 on a store error.
 */
static int held_until(struct sqlstore *st, struct store_req *r, char *const *keys, const char *fair,
                      int64_t *until)
{
	sqlite3_stmt *s = store_pauses_stmt(st, r);
	int rc, forever = 0;

	*until = 0;
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		int hit = key[0] == 0 || (fair && strcmp(fair, key) == 0);
		for (int k = 0; k < STORE_MAX_LIMITS && !hit; k++)
			hit = keys[k] && strcmp(keys[k], key) == 0;
		if (!hit)
			continue;
		if (sqlite3_column_type(s, 1) == SQLITE_NULL)
			forever = 1;
		else if (sqlite3_column_int64(s, 1) > *until)
			*until = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "reading the pauses");
	if (forever)
		*until = 0;
	return 0;
}

/* The first thing of keys[] (limit values, then the fair value) that holds job back. */
static json_t *held_by(struct sqlstore *st, struct store_req *r, char *const *keys,
                       const char *fair)
{
	/* the running jobs holding value ?2 of limit k+1 */
	static const char *const running[STORE_MAX_LIMITS] = {
	    "SELECT count(*) FROM jobs WHERE state = 'running' AND name = ?1 AND limit_key1 = ?2",
	    "SELECT count(*) FROM jobs WHERE state = 'running' AND name = ?1 AND limit_key2 = ?2",
	    "SELECT count(*) FROM jobs WHERE state = 'running' AND name = ?1 AND limit_key3 = ?2",
	    "SELECT count(*) FROM jobs WHERE state = 'running' AND name = ?1 AND limit_key4 = ?2",
	};
	json_t *paused = NULL;
	int64_t until = 0; /* (the soonest end of all the script's pauses: not what holds it) */
	int whole = store_pauses_of(st, r, &paused, &until);

	if (whole < 0)
		return NULL;
	if ((whole || paused) && held_until(st, r, keys, fair, &until) < 0) {
		json_decref(paused);
		return NULL;
	}
	if (whole)
		return json_pack("{ss sn so}", "kind", "pause", "key", "until",
		                 until ? json_integer(until) : json_null());
	for (size_t i = 0; paused && i < json_array_size(paused); i++) {
		const char *p = json_string_value(json_array_get(paused, i));
		int hit = fair && strcmp(fair, p) == 0;
		for (int k = 0; k < STORE_MAX_LIMITS && !hit; k++)
			hit = keys[k] && strcmp(keys[k], p) == 0;
		if (hit) {
			json_t *o = json_pack("{ss ss so}", "kind", "pause", "key", p, "until",
			                      until ? json_integer(until) : json_null());
			json_decref(paused);
			return o;
		}
	}
	json_decref(paused);
	for (int k = 0; k < STORE_MAX_LIMITS; k++) {
		int64_t n, oldest = 0;
		if (!keys[k])
			continue;
		if (r->limit_caps[k] > 0 &&
		    (n = count_of(st, r, running[k], keys[k], k + 1, 0, NULL)) >= r->limit_caps[k])
			return json_pack("{ss si ss sI sI}", "kind", "limit", "limit", k, "key",
			                 keys[k], "running", (json_int_t)n, "of",
			                 (json_int_t)r->limit_caps[k]);
		if (r->limit_rates[k] > 0 &&
		    (n = count_of(
		         st, r,
		         "SELECT count(*), min(at) FROM awaitd_limit_starts WHERE name = ?1"
		         " AND key = ?2 AND lim = ?3 AND at > ?4",
		         keys[k], k + 1, r->now - r->limit_pers[k], &oldest)) >= r->limit_rates[k])
			return json_pack("{ss si ss sI sI sI sI}", "kind", "rate", "limit", k,
			                 "key", keys[k], "starts", (json_int_t)n, "of",
			                 (json_int_t)r->limit_rates[k], "per",
			                 (json_int_t)r->limit_pers[k], "until",
			                 (json_int_t)(oldest + r->limit_pers[k]));
	}
	return NULL;
}

int store_why(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "SELECT state, name, limit_key1, limit_key2, limit_key3,"
	                             " limit_key4, fair_key FROM jobs WHERE id = ?",
	                             r);
	char *keys[STORE_MAX_LIMITS] = {NULL}, *state = NULL, *fair = NULL;
	json_t *why = NULL;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		state = store_col_text(s, 0);
		free(r->name);
		r->name = store_col_text(s, 1);
		for (int k = 0; k < STORE_MAX_LIMITS; k++)
			keys[k] = store_col_text(s, 2 + k);
		fair = store_col_text(s, 6);
	}
	sqlite3_reset(s);
	if (state && strcmp(state, "blocked") == 0)
		why = after_of(st, r);
	else if (state && r->name && (strcmp(state, "queued") == 0 || strcmp(state, "failed") == 0))
		why = held_by(st, r, keys, fair);
	r->out_text = why ? json_dumps(why, JSON_COMPACT) : NULL;
	json_decref(why);
	free(state);
	free(fair);
	for (int k = 0; k < STORE_MAX_LIMITS; k++)
		free(keys[k]);
	return 0;
}
