/*
 * pg-collect.c: what the statements of pg-ops.c answered, into the
 * request: job rows, the changes of awaitd_finish and awaitd_cancel (the
 * job itself, then what its dependents became), enqueue results, the
 * journal, counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg-int.h"

static void read_job(PGresult *res, int row, struct store_job *j)
{
	j->id = pg_i64(res, row, 0);
	j->name = pg_text(res, row, 1);
	j->state = pg_text(res, row, 2);
	j->args = pg_text(res, row, 3);
	j->key = pg_text(res, row, 4);
	j->priority = pg_i64(res, row, 5);
	j->attempt = pg_i64(res, row, 6);
	j->max_attempts = pg_i64(res, row, 7);
	j->backoff_ms = pg_i64(res, row, 8);
	j->timeout_ms = pg_i64(res, row, 9);
	j->run_at = pg_i64(res, row, 10);
	j->created_at = pg_i64(res, row, 11);
	j->started_at = pg_i64(res, row, 12);
	j->finished_at = pg_i64(res, row, 13);
	j->lease = pg_i64(res, row, 14);
	j->result = pg_text(res, row, 15);
	j->error = pg_text(res, row, 16);
	j->wait_seq = pg_i64(res, row, 17);
	j->wait_for = pg_text(res, row, 18);
	j->wait_until = pg_i64(res, row, 19);
	j->cancelling = (int)pg_i64(res, row, 20);
	j->has_progress = !PQgetisnull(res, row, 21);
	j->progress = j->has_progress ? strtod(PQgetvalue(res, row, 21), NULL) : 0;
	j->progress_msg = pg_text(res, row, 22);
	if (PQnfields(res) > PG_JOB_NCOLS) /* the claim's has_steps */
		j->has_steps = PQgetvalue(res, row, PG_JOB_NCOLS)[0] == 't';
}

/* Append res's first n rows (PG_JOB_COLS...) to r->jobs. */
static int read_jobs_n(struct store_req *r, PGresult *res, int n)
{
	struct store_job *nj;

	if (n == 0)
		return 0;
	nj = realloc(r->jobs, (r->njobs + (size_t)n) * sizeof *nj);
	if (!nj)
		return store_fail(r, "out_of_memory", "out of memory");
	r->jobs = nj;
	for (int i = 0; i < n; i++) {
		memset(&r->jobs[r->njobs], 0, sizeof r->jobs[0]);
		read_job(res, i, &r->jobs[r->njobs++]);
	}
	return n;
}

static int read_jobs(struct store_req *r, PGresult *res)
{
	return read_jobs_n(r, res, PQntuples(res));
}

static int note_settled(struct store_req *r, int64_t id)
{
	int64_t *ns = realloc(r->settled, (r->nsettled + 1) * sizeof *ns);

	if (!ns)
		return store_fail(r, "out_of_memory", "out of memory");
	r->settled = ns;
	r->settled[r->nsettled++] = id;
	return 0;
}

void pg_read_change(struct store_req *r, const char *kind, int64_t id)
{
	if (!strcmp(kind, "changed")) {
		r->changed = r->op == STORE_CANCEL ? (int)id : 1;
		return;
	}
	r->deps++;
	if (!strcmp(kind, "cancelled"))
		note_settled(r, id);
}

/* Rows (kind, id) of awaitd_finish/awaitd_cancel: changed, then what dependents became. */
static void read_changes(struct store_req *r, PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++)
		pg_read_change(r, PQgetvalue(res, i, 0), pg_i64(res, i, 1));
}

/* Rows (created, id, code, message) of awaitd_enqueue/awaitd_fire. */
static void read_enqueued(struct store_req *r, PGresult *res)
{
	if (PQntuples(res) != 1)
		return;
	if (!PQgetisnull(res, 0, 2)) {
		store_fail(r, PQgetvalue(res, 0, 2), "%s", PQgetvalue(res, 0, 3));
		return;
	}
	r->created = (int)pg_i64(res, 0, 0);
	r->out_id = pg_i64(res, 0, 1);
	r->changed = r->created;
}

/* STEP_GET: the journal's row for this step, unless the attempt went another way. */
void pg_read_step(struct store_req *r, PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t seq = pg_i64(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);
		if (seq != r->seq || strcmp(name, r->name) != 0) {
			store_fail(
			    r, "nondeterministic",
			    "step %lld \"%s\": the journal of job %lld has step %lld \"%s\"; "
			    "this attempt reached its steps in a different order",
			    (long long)r->seq, r->name, (long long)r->job_id, (long long)seq, name);
			return;
		}
		free(r->out_text);
		r->out_text = pg_text(res, i, 2);
		r->journaled = 1;
	}
}

static void read_counts(struct store_req *r, PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++) {
		int k = store_state_parse(PQgetvalue(res, i, 1));
		if (k >= 0)
			r->counts[k] += pg_i64(res, i, 2);
	}
	if (r->flag)
		pg_rows_collect(r, res);
}

void pg_op_collect(struct store_req *r, int step, PGresult *res)
{
	if (r->rc)
		return; /* failed already (an error row): the rest is not read */
	switch (r->op) {
	case STORE_ENQUEUE:
		if (step == 0)
			read_enqueued(r, res);
		else if (!r->created && read_jobs(r, res) == 1)
			r->out_id = r->jobs[0].id;
		break;
	case STORE_FIRE:
		read_enqueued(r, res);
		break;
	case STORE_CLAIM:
		if (step == 1 && PQntuples(res) > 0 &&
		    PQgetisnull(res, PQntuples(res) - 1, 0)) { /* the limited claim's wake row */
			r->out_id = pg_i64(res, PQntuples(res) - 1, PG_JOB_NCOLS + 2);
			if (read_jobs_n(r, res, PQntuples(res) - 1) < 0)
				break;
		} else if (read_jobs(r, res) < 0) {
			break;
		}
		/* (their leases join the live set once the batch commits: pg.c batch_end) */
		for (size_t i = 0; i < r->njobs; i++)
			r->jobs[i].resumed = PQgetvalue(res, (int)i, PG_JOB_NCOLS + 1)[0] == 't';
		r->changed = (int)r->njobs;
		break;
	case STORE_FINISH:
		if (step == 2) /* parked: awaitd_park's rows changed */
			r->changed = PQntuples(res) ? (int)pg_i64(res, 0, 0) : 0;
		else
			read_changes(r, res);
		break;
	case STORE_WAIT:
		/* (journaled, out_text, out_id, changed, code, message) */
		if (PQntuples(res) != 1)
			break;
		if (!PQgetisnull(res, 0, 4)) {
			store_fail(r, PQgetvalue(res, 0, 4), "%s", PQgetvalue(res, 0, 5));
			break;
		}
		r->journaled = (int)pg_i64(res, 0, 0);
		r->out_text = pg_text(res, 0, 1);
		r->out_id = pg_i64(res, 0, 2);
		r->changed = (int)pg_i64(res, 0, 3);
		break;
	case STORE_SIGNAL:
		if (step == 1) {
			read_jobs(r, res);
		} else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
			store_fail(r, PQgetvalue(res, 0, 1), "%s", PQgetvalue(res, 0, 2));
		} else if (PQntuples(res) == 1) {
			r->changed = (int)pg_i64(res, 0, 0);
		}
		break;
	case STORE_CANCEL:
		if (step == 0)
			read_changes(r, res);
		else
			read_jobs(r, res);
		break;
	case STORE_RETRY:
		if (step == 0) {
			if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1))
				store_fail(r, PQgetvalue(res, 0, 1), "%s", PQgetvalue(res, 0, 2));
			else if (PQntuples(res) == 1)
				r->changed = (int)pg_i64(res, 0, 0);
		} else {
			read_jobs(r, res);
		}
		break;
	case STORE_GET:
		if (step == 0)
			read_jobs(r, res);
		else
			pg_rows_collect(r, res);
		break;
	case STORE_LIST:
		read_jobs(r, res);
		break;
	case STORE_COUNTS:
		if (step == 0)
			read_counts(r, res);
		else
			r->out_text = PQntuples(res) ? pg_text(res, 0, 0) : NULL;
		break;
	case STORE_SPANS:
		if (step == 0)
			r->out_text = PQntuples(res) ? pg_text(res, 0, 0) : NULL;
		else
			read_jobs(r, res);
		break;
	case STORE_NEXT_DUE:
		r->out_id = PQntuples(res) ? pg_i64(res, 0, 0) : 0;
		break;
	case STORE_SCHEDULE:
		if (step == 1)
			r->out_id = PQntuples(res) ? pg_i64(res, 0, 0) : r->run_at;
		break;
	case STORE_STEP_GET:
		pg_read_step(r, res);
		break;
	case STORE_STEP_PUT:
		if (strtoll(PQcmdTuples(res), NULL, 10) == 0)
			store_fail(r, "nondeterministic",
			           "step %lld \"%s\" of job %lld is journaled already",
			           (long long)r->seq, r->name, (long long)r->job_id);
		break;
	case STORE_PAUSES:
		pg_rows_collect(r, res);
		break;
	case STORE_WHY: /* (name, the JSON or NULL) */
		if (PQntuples(res) == 1) {
			free(r->name);
			r->name = pg_text(res, 0, 0);
			r->out_text = pg_text(res, 0, 1);
		}
		break;
	case STORE_REQUEUE: /* (a row per job requeued: its notification) */
		r->changed = PQntuples(res);
		break;
	case STORE_PRUNE:
	case STORE_PROGRESS:
	case STORE_PAUSE:
		if (step == 0)
			r->changed = (int)strtoll(PQcmdTuples(res), NULL, 10);
		break;
	default:
		break;
	}
}
