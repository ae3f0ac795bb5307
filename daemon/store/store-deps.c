/*
 * store-deps.c: jobs enqueued after others (STORE_ENQUEUE's `after`). Runs
 * on the writer, inside the batch transaction.
 *
 * At enqueue every job named must exist (so no cycle can be made); the new
 * job is queued at once when all of them succeeded, cancelled at once when
 * one is dead or cancelled, else blocked with one awaitd_deps row per
 * edge. When a job reaches a final state its blocked dependents are
 * settled: queued once all their jobs succeeded, or cancelled with an
 * error naming the job that did not, and so on down (a cancelled job's
 * own dependents are cancelled in turn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store-int.h"

/* {"code":"dependency_failed","message":"job P it waits for ended STATE"} (malloc'd) */
static char *dep_error(int64_t parent, const char *state)
{
	char msg[128];
	json_t *e;
	char *text;

	snprintf(msg, sizeof msg, "job %lld it waits for ended %s", (long long)parent, state);
	e = json_pack("{ss ss}", "code", "dependency_failed", "message", msg);
	text = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	return text;
}

int store_deps_state(struct sqlstore *st, struct store_req *r, const char **state, char **error)
{
	sqlite3_stmt *s = store_stmt(&st->w, "SELECT state FROM jobs WHERE id = ?", r);
	int waits = 0;

	*state = "queued";
	*error = NULL;
	if (!s)
		return -1;
	for (size_t i = 0; i < r->nafter; i++) {
		int rc;
		sqlite3_bind_int64(s, 1, r->after[i]);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			const char *ps = (const char *)sqlite3_column_text(s, 0);
			if (!*error && (strcmp(ps, "dead") == 0 || strcmp(ps, "cancelled") == 0)) {
				if (!(*error = dep_error(r->after[i], ps))) {
					sqlite3_reset(s);
					return store_fail(r, "out_of_memory", "out of memory");
				}
			}
			waits |= strcmp(ps, "succeeded") != 0;
		}
		sqlite3_reset(s);
		if (rc == SQLITE_DONE || rc != SQLITE_ROW) {
			free(*error);
			*error = NULL;
		}
		if (rc == SQLITE_DONE)
			return store_fail(r, "invalid", "after: no job %lld to wait for",
			                  (long long)r->after[i]);
		if (rc != SQLITE_ROW)
			return store_fail_db(&st->w, r, "reading the jobs to wait for");
	}
	*state = *error ? "cancelled" : waits ? "blocked" : "queued";
	return 0;
}

int store_deps_link(struct sqlstore *st, struct store_req *r, int64_t id)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w, "INSERT OR IGNORE INTO awaitd_deps (job_id, after_id) VALUES (?, ?)", r);

	if (!s)
		return -1;
	st->has_deps = 1;
	for (size_t i = 0; i < r->nafter; i++) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, r->after[i]);
		if (store_run_done(st, s, r, "recording what the job waits for") < 0)
			return -1;
	}
	return 0;
}

/* Note that job id became final here: its waiters are told (r->settled). 0, or -1. */
static int settled(struct store_req *r, int64_t id)
{
	int64_t *ns = realloc(r->settled, (r->nsettled + 1) * sizeof *ns);

	if (!ns)
		return -1;
	r->settled = ns;
	r->settled[r->nsettled++] = id;
	return 0;
}

/* Cancel the blocked dependents of parent (which ended state), then theirs. */
static int cancel_down(struct sqlstore *st, struct store_req *r, int64_t parent, const char *state)
{
	int64_t *below = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (;;) {
		char *err = dep_error(parent, state);
		sqlite3_stmt *s =
		    store_stmt(&st->w,
		               "UPDATE jobs SET state = 'cancelled', finished_at = ?1, error = ?2"
		               " WHERE state = 'blocked' AND id IN (SELECT job_id FROM awaitd_deps"
		               " WHERE after_id = ?3) RETURNING id",
		               r);
		int step;
		if (!err || !s) {
			free(err);
			rc = s ? store_fail(r, "out_of_memory", "out of memory") : -1;
			break;
		}
		sqlite3_bind_int64(s, 1, r->now);
		sqlite3_bind_text(s, 2, err, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 3, parent);
		while ((step = sqlite3_step(s)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(s, 0);
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				int64_t *nt = realloc(below, ncap * sizeof *nt);
				if (!nt)
					break; /* fails the op: its savepoint undoes the cancels */
				below = nt;
				cap = ncap;
			}
			if (settled(r, id) < 0)
				break;
			below[n++] = id;
			r->deps++;
		}
		sqlite3_reset(s);
		free(err);
		if (step != SQLITE_DONE) {
			rc = step == SQLITE_ROW
			         ? store_fail(r, "out_of_memory", "out of memory")
			         : store_fail_db(&st->w, r, "cancelling dependent jobs");
			break;
		}
		if (n == 0)
			break;
		parent = below[--n];
		state = "cancelled";
	}
	free(below);
	return rc;
}

int store_deps_resolve(struct sqlstore *st, struct store_req *r, int64_t parent, const char *state)
{
	sqlite3_stmt *s;

	if (!st->has_deps)
		return 0; /* no job was ever enqueued after another: no query */
	if (strcmp(state, "succeeded") != 0)
		return strcmp(state, "dead") == 0 || strcmp(state, "cancelled") == 0
		           ? cancel_down(st, r, parent, state)
		           : 0;
	s = store_stmt(&st->w,
	               "UPDATE jobs SET state = 'queued' WHERE state = 'blocked' AND id IN"
	               " (SELECT job_id FROM awaitd_deps WHERE after_id = ?1) AND NOT EXISTS"
	               " (SELECT 1 FROM awaitd_deps d JOIN jobs a ON a.id = d.after_id"
	               "  WHERE d.job_id = jobs.id AND a.state <> 'succeeded')",
	               r);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, parent);
	if (sqlite3_step(s) != SQLITE_DONE) {
		sqlite3_reset(s);
		return store_fail_db(&st->w, r, "queueing dependent jobs");
	}
	sqlite3_reset(s);
	r->deps += (int)sqlite3_changes(store_db(st));
	return 0;
}

int store_deps_retry(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "SELECT a.id, a.state FROM awaitd_deps d JOIN jobs a"
	                             " ON a.id = d.after_id WHERE d.job_id = ?"
	                             " AND (a.state = 'dead' OR a.state = 'cancelled') LIMIT 1",
	                             r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		long long parent = (long long)sqlite3_column_int64(s, 0);
		char state[16];
		snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(s, 1));
		sqlite3_reset(s);
		return store_fail(r, "invalid",
		                  "job %lld waits for job %lld, which is %s: retry that one first",
		                  (long long)r->id, parent, state);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail_db(&st->w, r, "reading what the job waits for");
}

int store_deps_reblock(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "UPDATE jobs SET state = 'blocked' WHERE id = ?1 AND"
	                             " state = 'queued' AND EXISTS (SELECT 1 FROM awaitd_deps d"
	                             " JOIN jobs a ON a.id = d.after_id WHERE d.job_id = ?1"
	                             " AND a.state <> 'succeeded')",
	                             r);
	char *blocked;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	if (sqlite3_step(s) != SQLITE_DONE) {
		sqlite3_reset(s);
		return store_fail_db(&st->w, r, "blocking the retried job again");
	}
	sqlite3_reset(s);
	if (sqlite3_changes(store_db(st)) && r->njobs && (blocked = strdup("blocked"))) {
		free(r->jobs[0].state);
		r->jobs[0].state = blocked;
	}
	return 0;
}
