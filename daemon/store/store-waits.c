/*
 * store-waits.c: durable waits and signals on SQLite (store.h: STORE_WAIT,
 * STORE_SIGNAL, FINISH to "waiting", CANCEL of a waiting job). Runs on the
 * writer, inside the batch transaction, like store-jobs.c.
 *
 * A wait is a step of the job's journal, written when the wait ends (a
 * signal taken, or its deadline passed) with what the wait returns. Until
 * then the job is parked: state 'waiting', wait_seq/wait_for/wait_until
 * say where and for what, run_at when it is ready again. A signal is a row
 * of `signals`, taken (taken = the wait's step) by the first wait for its
 * name; one that comes while the job waits for it makes the job ready.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store-int.h"

/* run_at of a job that waits with no deadline: never ready by time */
#define NEVER "9223372036854775807"

/* Signals a job may hold before it takes them: a runaway sender is told so. */
#define SIGNALS_MAX 10000

/* Does a job in state name never leave it (succeeded, dead, cancelled)? */
static int final_state(const char *name)
{
	int st = store_state_parse(name);

	return st == STORE_SUCCEEDED || st == STORE_DEAD || st == STORE_CANCELLED;
}

/*
 * FINISH to "waiting": park the running job at its wait (seq, key, run_at
 * as store.h says). Ready at once when a signal it waits for came while
 * it ran, or when a cancel reached it meanwhile.
 */
int store_park(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w,
	    "UPDATE jobs SET state = 'waiting', wait_seq = ?1, wait_for = ?2, wait_until = ?3,"
	    " run_at = CASE WHEN cancelling OR EXISTS (SELECT 1 FROM signals"
	    "  WHERE job_id = ?4 AND name = ?2 AND taken IS NULL) THEN ?5"
	    "  ELSE coalesce(?3, " NEVER ") END, lease = NULL,"
	    " trace = CASE WHEN ?7 IS NULL THEN trace WHEN trace IS NULL THEN ?7"
	    "  ELSE trace || char(10) || ?7 END"
	    " WHERE id = ?4 AND state = 'running' AND lease = ?6",
	    r);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->seq);
	store_bind_text(s, 2, r->key);
	store_bind_opt(s, 3, r->run_at);
	sqlite3_bind_int64(s, 4, r->id);
	sqlite3_bind_int64(s, 5, r->now);
	sqlite3_bind_int64(s, 6, r->lease);
	store_bind_text(s, 7, r->text2);
	return store_run_done(st, s, r, "parking the job");
}

/* The JSON text of v (stolen), or NULL with r failed. */
static char *dump_json(struct store_req *r, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(v);
	if (!text)
		store_fail(r, "out_of_memory", "out of memory");
	return text;
}

/*
 * A wait ended: journal what it returns (r->out_text) as step r->seq of
 * kind `kind`. A signal's payload comes as JSON text; a timeout as an error.
 */
static int wait_end(struct sqlstore *st, struct store_req *r, const char *kind, const char *payload)
{
	json_t *v;
	char msg[256];

	if (payload) {
		v = json_loads(payload, JSON_DECODE_ANY, NULL);
		v = v ? json_pack("{si s[o]}", "n", 1, "v", v) : NULL;
	} else if (r->key) {
		snprintf(msg, sizeof msg, "no signal \"%s\" came before the wait's timeout",
		         r->key);
		v = json_pack("{si s[n{ss ss}]}", "n", 2, "v", "code", "timeout", "message", msg);
	} else {
		v = json_pack("{si s[]}", "n", 0, "v");
	}
	free(r->text);
	if (!(r->text = dump_json(r, v)))
		return -1;
	if (store_journal_put(st, r, kind) < 0)
		return -1;
	r->journaled = 1;
	r->out_text = r->text;
	r->text = NULL;
	return 0;
}

/* Take the oldest signal r->key buffered for the job: 1 taken (journaled), 0 none, -1 error. */
static int wait_take(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "UPDATE signals SET taken = ?3 WHERE id = (SELECT id FROM signals"
	               " WHERE job_id = ?1 AND name = ?2 AND taken IS NULL"
	               " ORDER BY id LIMIT 1) RETURNING payload",
	               r);
	char *payload = NULL;
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_text(s, 2, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, r->seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && !(payload = store_col_text(s, 0))) {
		sqlite3_reset(s);
		return store_fail(r, "out_of_memory", "out of memory");
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "taking a signal");
	if (!payload)
		return 0;
	rc = wait_end(st, r, "signal", payload);
	free(payload);
	return rc < 0 ? -1 : 1;
}

/* A wait's step in the journal: 1 (ended: r->out_text), 0 none, -1 error or another step. */
static int wait_journaled(struct sqlstore *st, struct store_req *r, const char *kind)
{
	sqlite3_stmt *s = store_stmt(
	    &st->w, "SELECT name, kind, result FROM steps WHERE job_id = ?1 AND seq = ?2", r);
	int rc, found = 0;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_int64(s, 2, r->seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const char *k = (const char *)sqlite3_column_text(s, 1);
		if (!name || !k || strcmp(name, r->name) != 0 || strcmp(k, kind) != 0) {
			store_fail(
			    r, "nondeterministic",
			    "step %lld (%s \"%s\"): the journal of job %lld has %s \"%s\" there;"
			    " this run reached its steps in a different order",
			    (long long)r->seq, kind, r->name, (long long)r->job_id, k ? k : "?",
			    name ? name : "?");
			sqlite3_reset(s);
			return -1;
		}
		if (!(r->out_text = store_col_text(s, 2))) {
			sqlite3_reset(s);
			return store_fail(r, "out_of_memory", "out of memory");
		}
		found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "reading the step journal");
	return found;
}

int store_wait(struct sqlstore *st, struct store_req *r)
{
	const char *kind = r->key ? "signal" : "sleep";
	int64_t deadline = r->run_at;
	const struct store_job *j;
	int rc = wait_journaled(st, r, kind);

	if (rc != 0) {
		r->journaled = rc > 0;
		return rc < 0 ? -1 : 0;
	}
	r->id = r->job_id;
	if (store_job_get(st, r) < 0)
		return -1;
	if (!r->njobs)
		return store_fail(r, "no_such_job", "no job %lld", (long long)r->job_id);
	j = &r->jobs[0];
	if (strcmp(j->state, "running") != 0 || j->lease != r->lease)
		/* a run that is over (a task it left behind): it must not take a signal */
		return store_fail(
		    r, "invalid",
		    "job %lld: the run that reached this wait is over (the job is %s)",
		    (long long)r->job_id, j->state);
	if (j->cancelling) {
		r->changed = 1;
		return 0;
	}
	if (j->wait_seq == r->seq) {
		/* it parked here before: the same wait, with the deadline it had then */
		if ((j->wait_for == NULL) != (r->key == NULL) ||
		    (r->key && strcmp(j->wait_for, r->key) != 0))
			return store_fail(r, "nondeterministic",
			                  "step %lld: job %lld waited there for %s%s%s; this run "
			                  "waits for %s%s%s",
			                  (long long)r->seq, (long long)r->job_id,
			                  j->wait_for ? "signal \"" : "a sleep",
			                  j->wait_for ? j->wait_for : "", j->wait_for ? "\"" : "",
			                  r->key ? "signal \"" : "a sleep", r->key ? r->key : "",
			                  r->key ? "\"" : "");
		deadline = j->wait_until;
	}
	if (r->key && (rc = wait_take(st, r)) != 0)
		return rc < 0 ? -1 : 0;
	if (deadline && r->now >= deadline)
		return wait_end(st, r, kind, NULL);
	r->out_id = deadline;
	return 0;
}

int store_signal(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s;
	int64_t n = 0;

	if (store_job_get(st, r) < 0)
		return -1;
	if (!r->njobs || final_state(r->jobs[0].state))
		return 0;
	s = store_stmt(&st->w,
	               "SELECT count(*) FROM (SELECT 1 FROM signals"
	               " WHERE job_id = ?1 AND taken IS NULL LIMIT ?2)",
	               r);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_int64(s, 2, SIGNALS_MAX);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (n >= SIGNALS_MAX)
		return store_fail(r, "too_large",
		                  "job %lld holds %d signals it has not taken yet; no more are "
		                  "stored until it takes some",
		                  (long long)r->id, SIGNALS_MAX);
	s = store_stmt(&st->w,
	               "INSERT INTO signals (job_id, name, payload, at) VALUES (?, ?, ?, ?)", r);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_text(s, 2, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, r->text ? r->text : "null", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, r->now);
	if (store_run_done(st, s, r, "storing the signal") < 0)
		return -1;
	/* a job parked waiting for it is ready now */
	s = store_stmt(&st->w,
	               "UPDATE jobs SET run_at = ?2 WHERE id = ?1 AND state = 'waiting'"
	               " AND wait_for = ?3",
	               r);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_int64(s, 2, r->now);
	sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
	if (store_run_done(st, s, r, "waking the job") < 0)
		return -1;
	r->changed = 1;
	return 0;
}

int store_wait_cancel(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "UPDATE jobs SET cancelling = 1, run_at = ?2"
	                             " WHERE id = ?1 AND state = 'waiting'",
	                             r);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_int64(s, 2, r->now);
	if (store_run_done(st, s, r, "cancelling the waiting job") < 0)
		return -1;
	r->jobs[0].cancelling = 1;
	r->changed = 2;
	return 0;
}
