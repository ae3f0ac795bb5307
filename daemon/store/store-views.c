/*
 * store-views.c: the job operations that only read (store.h): one job with
 * its journal (GET), a page of jobs (LIST), the counts by state and by
 * script (COUNTS), a job's trace (SPANS). They run on the writer like the
 * others, so they see what its batch has done.
 */
#include <stdlib.h>
#include <string.h>

#include "store-int.h"

static int op_get(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s;

	if (store_job_get(st, r) < 0)
		return -1;
	if (!r->njobs || !r->flag)
		return 0;
	s = store_stmt(
	    &st->w, "SELECT seq, name, kind, result, at FROM steps WHERE job_id = ? ORDER BY seq",
	    r);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	return store_collect(&st->w, s, r);
}

static int op_list(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "SELECT " JOB_COLS " FROM jobs WHERE (?1 IS NULL OR state = ?1)"
	               " AND (?2 IS NULL OR name = ?2) AND (?4 = 0 OR id < ?4)"
	               " ORDER BY id DESC LIMIT ?3",
	               r);

	if (!s)
		return -1;
	store_bind_text(s, 1, r->text);
	store_bind_text(s, 2, r->name);
	sqlite3_bind_int64(s, 3, r->n > 0 ? r->n : 20);
	sqlite3_bind_int64(s, 4, r->id);
	return store_read_jobs(st, s, r, "listing jobs") < 0 ? -1 : 0;
}

/* flag: by script too, as rows (name, state, n); the totals by state are their sums */
static int op_counts(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s;
	int rc;

	if (r->flag) {
		s = store_stmt(
		    &st->w, "SELECT name, state, count(*) AS n FROM jobs GROUP BY name, state", r);
		if (!s)
			return -1;
		rc = store_collect(&st->w, s, r);
		sqlite3_reset(s);
		for (size_t i = 0; rc == 0 && i < r->rows.nrows; i++) {
			int k = store_state_parse(r->rows.vals[i * 3 + 1].p);
			if (k >= 0)
				r->counts[k] += r->rows.vals[i * 3 + 2].i;
		}
		return rc;
	}
	s = store_stmt(&st->w, "SELECT state, count(*) FROM jobs GROUP BY state", r);
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int i = store_state_parse((const char *)sqlite3_column_text(s, 0));
		if (i >= 0)
			r->counts[i] = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail_db(&st->w, r, "counting jobs");
}

static int op_spans(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s = store_stmt(&st->w, "SELECT trace FROM jobs WHERE id = ?", r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r->out_text = store_col_text(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "reading the trace");
	return store_job_get(st, r) < 0 ? -1 : 0;
}

int store_view(struct sqlstore *st, struct store_req *r)
{
	switch (r->op) {
	case STORE_GET:
		return op_get(st, r);
	case STORE_LIST:
		return op_list(st, r);
	case STORE_COUNTS:
		return op_counts(st, r);
	case STORE_SPANS:
		return op_spans(st, r);
	default:
		return store_fail(r, "invalid", "not a view: operation %d", (int)r->op);
	}
}
