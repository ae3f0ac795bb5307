/*
 * store-jobs.c: the job operations of the store on SQLite (store.h lists
 * each op's inputs and outputs). Runs on the writer (the loop thread),
 * inside the batch transaction of store.c. The job states' names live here too.
 *
 * State sets are written as OR chains, like the partial indexes of
 * 0001_core.sql they must match (an IN list costs an ephemeral table).
 *
 * Every state change is one statement whose WHERE clause states the
 * transition it allows (a claim takes only ready rows; a finish only the
 * running row of its lease), so a stale caller changes nothing and the
 * answer says so (r->changed = 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-int.h"

#define PRUNE_MAX 10000 /* jobs removed per prune: the writer is not held for long */

static const char *const state_names[STORE_NSTATES] = {
    "queued", "running", "succeeded", "failed", "dead", "cancelled", "waiting", "blocked",
};

const char *store_state_name(enum store_state s)
{
	return (unsigned)s < STORE_NSTATES ? state_names[s] : "?";
}

int store_state_parse(const char *name)
{
	for (int i = 0; i < STORE_NSTATES; i++)
		if (name && strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

static int64_t col_i64(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

static void read_job(sqlite3_stmt *s, struct store_job *j)
{
	j->id = sqlite3_column_int64(s, 0);
	j->name = store_col_text(s, 1);
	j->state = store_col_text(s, 2);
	j->args = store_col_text(s, 3);
	j->key = store_col_text(s, 4);
	j->priority = col_i64(s, 5);
	j->attempt = col_i64(s, 6);
	j->max_attempts = col_i64(s, 7);
	j->backoff_ms = col_i64(s, 8);
	j->timeout_ms = col_i64(s, 9);
	j->run_at = col_i64(s, 10);
	j->created_at = col_i64(s, 11);
	j->started_at = col_i64(s, 12);
	j->finished_at = col_i64(s, 13);
	j->lease = col_i64(s, 14);
	j->result = store_col_text(s, 15);
	j->error = store_col_text(s, 16);
	j->wait_seq = col_i64(s, 17);
	j->wait_for = store_col_text(s, 18);
	j->wait_until = col_i64(s, 19);
	j->cancelling = (int)col_i64(s, 20);
	j->has_progress = sqlite3_column_type(s, 21) != SQLITE_NULL;
	j->progress = sqlite3_column_double(s, 21);
	j->progress_msg = store_col_text(s, 22);
	if (sqlite3_column_count(s) > 23) /* the claim's has_steps */
		j->has_steps = sqlite3_column_int(s, 23);
	for (int i = 0; i < STORE_MAX_LIMITS && sqlite3_column_count(s) > 24 + i; i++)
		j->limit_keys[i] = store_col_text(s, 24 + i); /* a limited claim's */
}

int store_read_jobs(struct sqlstore *st, sqlite3_stmt *s, struct store_req *r, const char *what)
{
	size_t cap = r->njobs;
	int rc, n = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r->njobs == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct store_job *nj = realloc(r->jobs, ncap * sizeof *nj);
			if (!nj) {
				sqlite3_reset(s);
				return store_fail(r, "out_of_memory", "out of memory");
			}
			r->jobs = nj;
			cap = ncap;
		}
		memset(&r->jobs[r->njobs], 0, sizeof r->jobs[0]);
		read_job(s, &r->jobs[r->njobs++]);
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, what);
	return n;
}

int store_run_done(struct sqlstore *st, sqlite3_stmt *s, struct store_req *r, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, what);
	r->changed = (int)sqlite3_changes(store_db(st));
	return 0;
}

int store_job_get(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", r);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	return store_read_jobs(st, s, r, "reading the job");
}

static int op_enqueue(struct sqlstore *st, struct store_req *r)
{
	const char *state = "queued";
	char *error = NULL;
	sqlite3_stmt *s;
	int rc;

	if (r->nafter && store_deps_state(st, r, &state, &error) < 0)
		return -1;
	s = store_stmt(&st->w,
	               "INSERT INTO jobs (name, args, key, priority, max_attempts, backoff_ms,"
	               " timeout_ms, run_at, created_at, limit_key1, limit_key2, limit_key3,"
	               " limit_key4, state, fair_key, error, finished_at)"
	               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	               " ON CONFLICT (key) DO NOTHING",
	               r);
	if (!s) {
		free(error);
		return -1;
	}
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	store_bind_text(s, 2, r->text);
	store_bind_text(s, 3, r->key);
	sqlite3_bind_int64(s, 4, r->priority);
	sqlite3_bind_int64(s, 5, r->max_attempts > 0 ? r->max_attempts : 1);
	sqlite3_bind_int64(s, 6, r->backoff_ms);
	store_bind_opt(s, 7, r->timeout_ms);
	sqlite3_bind_int64(s, 8, r->run_at ? r->run_at : r->now);
	sqlite3_bind_int64(s, 9, r->now);
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		store_bind_text(s, 10 + i, r->limit_keys[i]);
	sqlite3_bind_text(s, 14, state, -1, SQLITE_STATIC);
	store_bind_text(s, 15, r->fair_key);
	store_bind_text(s, 16, error);
	store_bind_opt(s, 17, error ? r->now : 0);
	rc = store_run_done(st, s, r, "inserting the job");
	free(error);
	if (rc < 0)
		return -1;
	if (r->changed) {
		r->created = 1;
		r->out_id = sqlite3_last_insert_rowid(store_db(st));
		/* a job cancelled at once (a part was dead already) keeps its edges too, so a
		 * retry is refused while that part is dead, and blocks again after */
		return strcmp(state, "queued") != 0 ? store_deps_link(st, r, r->out_id) : 0;
	}
	/* the key names a job already: that one is the answer */
	r->changed = 0;
	s = store_stmt(&st->w, "SELECT " JOB_COLS " FROM jobs WHERE key = ?", r);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->key, -1, SQLITE_STATIC);
	if (store_read_jobs(st, s, r, "reading the job of the key") != 1)
		return r->rc ? -1 : store_fail(r, "db", "key %s: no job and no insert", r->key);
	r->out_id = r->jobs[0].id;
	return 0;
}

/*
 * The ready jobs of a name, best first, then each one leased. Two plain
 * statements instead of UPDATE ... IN (SELECT) RETURNING, which builds two
 * ephemeral tables per claim; the batch transaction makes them atomic.
 */
static int op_claim(struct sqlstore *st, struct store_req *r)
{
	json_t *paused = NULL;
	int64_t until = 0;
	int whole = store_pauses_of(st, r, &paused, &until);
	int limited = paused != NULL;

	if (whole != 0) {
		r->out_id = until; /* paused: nothing now, and when it ends */
		return whole < 0 ? -1 : 0;
	}
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		limited |= r->limit_caps[i] > 0 || r->limit_rates[i] > 0;
	limited |= r->flag; /* fair_by */
	if (limited) {
		whole = store_claim_limited(st, r, paused, until);
		json_decref(paused);
		return whole;
	}
	/* has_steps: a job without a journal needs no replay check (jobrun.lua skips it) */
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    "SELECT " JOB_COLS ", EXISTS (SELECT 1 FROM steps WHERE job_id = jobs.id) FROM jobs"
	    " WHERE (state = 'queued' OR state = 'failed' OR state = 'waiting') AND name = ?"
	    " AND run_at <= ? ORDER BY priority DESC, run_at, id LIMIT ?",
	    r);

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, r->now);
	sqlite3_bind_int64(s, 3, r->n);
	if (store_read_jobs(st, s, r, "claiming jobs") < 0)
		return -1;
	return store_claim_mark(st, r, 0);
}

int store_claim_mark(struct sqlstore *st, struct store_req *r, size_t from)
{
	int64_t lease = store_new_lease(st);
	/* a job that waited continues its attempt: not counted again */
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    "UPDATE jobs SET state = 'running', attempt = attempt + (state <> 'waiting'),"
	    " lease = ?, epoch = ?, started_at = ?,"
	    " progress = iif(state = 'waiting', progress, NULL),"
	    " progress_msg = iif(state = 'waiting', progress_msg, NULL) WHERE id = ?",
	    r);

	if (!s)
		return -1;
	for (size_t i = from; i < r->njobs; i++) {
		struct store_job *j = &r->jobs[i];
		char *state = strdup("running");
		sqlite3_bind_int64(s, 1, lease);
		sqlite3_bind_int64(s, 2, st->epoch);
		sqlite3_bind_int64(s, 3, r->now);
		sqlite3_bind_int64(s, 4, j->id);
		if (store_run_done(st, s, r, "claiming a job") < 0) {
			free(state);
			return -1;
		}
		if (!state)
			return store_fail(r, "out_of_memory", "out of memory");
		j->resumed = strcmp(j->state, "waiting") == 0;
		j->has_steps |= j->resumed;
		free(j->state);
		j->state = state;
		j->attempt += !j->resumed;
		j->lease = lease;
		j->started_at = r->now;
	}
	r->changed = (int)r->njobs;
	return 0;
}

static int op_finish(struct sqlstore *st, struct store_req *r)
{
	int ok = strcmp(r->name, "succeeded") == 0, terminal = strcmp(r->name, "failed") != 0;
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "UPDATE jobs SET state = ?1, result = ?2, error = ?3, finished_at = ?4,"
	               " run_at = coalesce(?5, run_at), lease = NULL,"
	               " trace = CASE WHEN ?8 IS NULL THEN trace WHEN trace IS NULL THEN ?8"
	               "  ELSE trace || char(10) || ?8 END"
	               " WHERE id = ?6 AND state = 'running' AND lease = ?7",
	               r);

	if (!s)
		return -1;
	if (strcmp(r->name, "waiting") == 0)
		return store_park(st, r);
	if (store_state_parse(r->name) < 0 || strcmp(r->name, "running") == 0 ||
	    strcmp(r->name, "queued") == 0)
		return store_fail(r, "invalid", "no job state \"%s\" to finish in", r->name);
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	store_bind_text(s, 2, ok ? r->text : NULL);
	store_bind_text(s, 3, ok ? NULL : r->text);
	store_bind_opt(s, 4, terminal ? r->now : 0);
	store_bind_opt(s, 5, terminal ? 0 : r->run_at);
	sqlite3_bind_int64(s, 6, r->id);
	sqlite3_bind_int64(s, 7, r->lease);
	store_bind_text(s, 8, r->text2);
	if (store_run_done(st, s, r, "finishing the job") < 0)
		return -1;
	/* the jobs that wait for it: queued when it was the last, cancelled when it failed */
	return r->changed && terminal ? store_deps_resolve(st, r, r->id, r->name) : 0;
}

static int op_requeue(struct sqlstore *st, struct store_req *r)
{
	/* a run that continued a wait goes back to waiting, ready: its attempt goes on */
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "UPDATE jobs SET state = CASE WHEN ?4 THEN 'waiting' ELSE 'queued' END,"
	               " attempt = attempt - (NOT ?4), run_at = ?1, lease = NULL"
	               " WHERE id = ?2 AND state = 'running' AND lease = ?3",
	               r);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->now);
	sqlite3_bind_int64(s, 2, r->id);
	sqlite3_bind_int64(s, 3, r->lease);
	sqlite3_bind_int(s, 4, r->flag != 0);
	return store_run_done(st, s, r, "requeueing the job");
}

/* CANCEL and RETRY: one guarded update returning the row, else the row as it is. */
static int op_transition(struct sqlstore *st, struct store_req *r, const char *sql)
{
	sqlite3_stmt *s = store_stmt(&st->w, sql, r);
	int n;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_int64(s, 2, r->now);
	n = store_read_jobs(st, s, r, "changing the job");
	if (n < 0)
		return -1;
	r->changed = n;
	return n ? 0 : store_job_get(st, r) < 0 ? -1 : 0;
}

/*
 * A queued or retry-waiting job is cancelled at once (changed 1); a
 * waiting one is marked cancelling and made ready (changed 2): its run
 * replays to the wait and is cancelled there, so its <close> handlers run.
 */
static int op_cancel(struct sqlstore *st, struct store_req *r)
{
	if (op_transition(st, r,
	                  "UPDATE jobs SET state = 'cancelled', finished_at = ?2, lease = NULL,"
	                  " error = '{\"code\":\"cancelled\",\"message\":\"cancelled by "
	                  "request\"}' WHERE id = ?1 AND (state = 'queued' OR state = 'failed'"
	                  " OR state = 'blocked') RETURNING " JOB_COLS) < 0)
		return -1;
	if (r->changed)
		return store_deps_resolve(st, r, r->id, "cancelled");
	if (!r->njobs || strcmp(r->jobs[0].state, "waiting") != 0)
		return 0;
	return store_wait_cancel(st, r);
}

static int op_next_due(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "SELECT min(run_at) FROM jobs WHERE (state = 'queued'"
	                             " OR state = 'failed' OR state = 'waiting') AND name = ?"
	                             " AND run_at > ?",
	                             r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, r->now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r->out_id = col_i64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE
	           ? 0
	           : store_fail_db(&st->w, r, "finding the next due job");
}

static int op_schedule(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w, "SELECT expr, next_at FROM schedules WHERE name = ?", r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && r->flag &&
	    strcmp((const char *)sqlite3_column_text(s, 0), r->text) == 0) {
		r->out_id = sqlite3_column_int64(s, 1); /* same schedule: its next fire stands */
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "reading the schedule");
	s = store_stmt(
	    &st->w, "INSERT OR REPLACE INTO schedules (name, expr, next_at) VALUES (?, ?, ?)", r);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, r->run_at);
	if (store_run_done(st, s, r, "saving the schedule") < 0)
		return -1;
	r->out_id = r->run_at;
	return 0;
}

static int op_fire(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w, "UPDATE schedules SET next_at = ?1 WHERE name = ?2 AND next_at = ?3", r);
	char key[256];

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->n);
	sqlite3_bind_text(s, 2, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, r->run_at);
	if (store_run_done(st, s, r, "advancing the schedule") < 0 || !r->changed)
		return r->rc ? -1 : 0; /* fired already (another start got there) */
	snprintf(key, sizeof key, "schedule:%s:%lld", r->name, (long long)r->run_at);
	free(r->key);
	r->key = strdup(key);
	if (!r->key)
		return store_fail(r, "out_of_memory", "out of memory");
	r->run_at = r->now;
	return op_enqueue(st, r);
}

/* Fenced by lease: the progress of an attempt that is over changes nothing. */
static int op_progress(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "UPDATE jobs SET progress = ?1, progress_msg = ?2"
	                             " WHERE id = ?3 AND state = 'running' AND lease = ?4",
	                             r);

	if (!s)
		return -1;
	sqlite3_bind_double(s, 1, r->fraction);
	store_bind_text(s, 2, r->text);
	sqlite3_bind_int64(s, 3, r->id);
	sqlite3_bind_int64(s, 4, r->lease);
	return store_run_done(st, s, r, "recording the job's progress");
}

static int op_prune(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
	               " WHERE (state = 'succeeded' OR state = 'dead' OR state = 'cancelled')"
	               " AND finished_at < ? ORDER BY id LIMIT ?)",
	               r);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->now);
	sqlite3_bind_int64(s, 2, PRUNE_MAX);
	return store_run_done(st, s, r, "pruning finished jobs");
}

/* RETRY: failed, dead or cancelled to queued (blocked again while its jobs are not done). */
static int op_retry(struct sqlstore *st, struct store_req *r)
{
	if (st->has_deps && store_deps_retry(st, r) < 0)
		return -1;
	if (op_transition(st, r,
	                  "UPDATE jobs SET state = 'queued', run_at = ?2, finished_at = NULL,"
	                  " max_attempts = max(max_attempts, attempt + 1), cancelling = 0"
	                  " WHERE id = ?1 AND (state = 'failed' OR state = 'dead' OR"
	                  " state = 'cancelled') RETURNING " JOB_COLS) < 0)
		return -1;
	return st->has_deps && r->changed ? store_deps_reblock(st, r) : 0;
}

/*
 * op under a savepoint: an op of several writes that fails midway (a full
 * disk, no memory) leaves nothing of itself in the batch, so a claim never
 * leaves jobs leased to no one and a finish never settles half a fan-in.
 * Only for the ops that may write more than once: the plain paths of the
 * hot loop (W5) pay nothing.
 */
static int atomic(struct sqlstore *st, struct store_req *r,
                  int (*op)(struct sqlstore *st, struct store_req *r))
{
	if (store_exec(&st->w, "SAVEPOINT awaitd_op") < 0)
		return store_fail_db(&st->w, r, "opening the operation's savepoint");
	if (op(st, r) < 0) {
		store_exec(&st->w, "ROLLBACK TO awaitd_op");
		store_exec(&st->w, "RELEASE awaitd_op");
		return -1;
	}
	if (store_exec(&st->w, "RELEASE awaitd_op") < 0)
		return store_fail_db(&st->w, r, "releasing the operation's savepoint");
	return 0;
}

/* Does this claim go beyond one SELECT and its UPDATEs (limits, fairness, pauses)? */
static int claim_is_complex(const struct sqlstore *st, const struct store_req *r)
{
	int complex = r->flag || st->has_pauses;

	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		complex |= r->limit_caps[i] > 0 || r->limit_rates[i] > 0;
	return complex;
}

int store_jobs_exec(struct sqlstore *st, struct store_req *r)
{
	switch (r->op) {
	case STORE_ENQUEUE:
		return r->nafter ? atomic(st, r, op_enqueue) : op_enqueue(st, r);
	case STORE_CLAIM:
		return claim_is_complex(st, r) ? atomic(st, r, op_claim) : op_claim(st, r);
	case STORE_FINISH:
		return st->has_deps ? atomic(st, r, op_finish) : op_finish(st, r);
	case STORE_REQUEUE:
		return op_requeue(st, r);
	case STORE_CANCEL:
		return st->has_deps ? atomic(st, r, op_cancel) : op_cancel(st, r);
	case STORE_RETRY:
		return st->has_deps ? atomic(st, r, op_retry) : op_retry(st, r);
	case STORE_GET:
	case STORE_LIST:
	case STORE_COUNTS:
	case STORE_SPANS:
		return store_view(st, r);
	case STORE_NEXT_DUE:
		return op_next_due(st, r);
	case STORE_SCHEDULE:
		return op_schedule(st, r);
	case STORE_FIRE:
		return op_fire(st, r);
	case STORE_PRUNE:
		return op_prune(st, r);
	case STORE_WAIT:
		return store_wait(st, r);
	case STORE_SIGNAL:
		return store_signal(st, r);
	case STORE_PROGRESS:
		return op_progress(st, r);
	case STORE_PAUSE:
		return store_pause(st, r);
	case STORE_PAUSES:
		return store_pauses(st, r);
	case STORE_WHY:
		return store_why(st, r);
	default:
		return store_fail(r, "invalid", "unknown store operation %d", (int)r->op);
	}
}
