/*
 * store-tx.c: user transactions (db:tx) and the step journal.
 *
 * A user transaction is the savepoint "u" inside the batch transaction,
 * opened by store_tx_begin and ended by store_tx_end; while it is open it
 * holds the writer, and store.c defers every other request. One that held
 * it past tx_timeout_ms with no request of its owner waiting, or that
 * SQLite dropped with its batch, is rolled back and its token remembered
 * (the last STORE_DEAD_TX), so the owner's next request fails with "timeout"
 * rather than "no such open transaction". The step journal (table steps)
 * holds one row per (job, seq), names of steps and db:tx unique per job
 * (waits: store-jobs.c), with the result of
 * a finished step or db:tx; a replay must meet the same names in the same
 * order, else "nondeterministic".
 */
#include <string.h>

#include "clock.h"
#include "store-int.h"

/* The journal for (job, seq, name): 1 found (r->out_text), 0 none, -1 error. */
int store_journal_get(struct sqlstore *st, struct store_req *r)
{
	sqlite3_stmt *s =
	    store_stmt(&st->w,
	               "SELECT seq, name, result FROM steps WHERE job_id = ?1"
	               " AND (seq = ?2 OR (name = ?3 AND (kind = 'tx' OR kind = 'step')))",
	               r);
	int rc, found = 0;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_int64(s, 2, r->seq);
	sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		if (seq != r->seq || !name || strcmp(name, r->name) != 0) {
			store_fail(
			    r, "nondeterministic",
			    "step %lld \"%s\": the journal of job %lld has step %lld \"%s\"; "
			    "this attempt reached its steps in a different order",
			    (long long)r->seq, r->name, (long long)r->job_id, (long long)seq,
			    name ? name : "?");
			sqlite3_reset(s);
			return -1;
		}
		r->out_text = store_col_text(s, 2);
		found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail_db(&st->w, r, "reading the step journal");
	return found;
}

int store_journal_put(struct sqlstore *st, struct store_req *r, const char *kind)
{
	sqlite3_stmt *s = store_stmt(&st->w,
	                             "INSERT INTO steps (job_id, seq, name, kind, result, at)"
	                             " VALUES (?, ?, ?, ?, ?, ?)",
	                             r);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->job_id);
	sqlite3_bind_int64(s, 2, r->seq);
	sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->text ? r->text : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, store_now());
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return store_fail(r, "nondeterministic",
		                  "step %lld \"%s\" of job %lld is journaled already",
		                  (long long)r->seq, r->name, (long long)r->job_id);
	return rc == SQLITE_DONE ? 0 : store_fail_db(&st->w, r, "journaling the step");
}

int store_tx_is_dead(struct sqlstore *st, int64_t tx, int forget)
{
	return store_dead_tx_has(&st->dead, tx, forget);
}

/* Roll the open user transaction back (its owner is late or gone). */
void store_tx_abandon(struct sqlstore *st)
{
	store_exec(&st->w, "ROLLBACK TO u");
	store_exec(&st->w, "RELEASE u");
	store_dead_tx_add(&st->dead, st->open_tx);
	st->open_tx = 0;
}

/*
 * 1 when r belongs to a user transaction that is not open: r failed, or,
 * a rollback of one that timed out, done (it is rolled back already);
 * either way r is answered at once. 0 when r may run.
 */
int store_tx_gone(struct sqlstore *st, struct store_req *r)
{
	if (!(r->tx && r->op != STORE_TX_BEGIN && r->tx != st->open_tx))
		return 0;
	if (store_tx_is_dead(st, r->tx, r->op == STORE_TX_END)) {
		if (r->op != STORE_TX_END || r->flag)
			store_fail(r, "timeout",
			           "the transaction held the writer longer than %.0f ms and "
			           "was rolled back",
			           st->cfg.tx_timeout_ms);
	} else {
		store_fail(r, "invalid", "no such open transaction");
	}
	return 1;
}

/*
 * TX_BEGIN: open the savepoint and hold the writer for r->tx; a named
 * transaction journaled already is not opened (r->journaled, r->out_text).
 * 1 when the transaction is open (answer at once), 0 when not (journaled,
 * or failed: the answer waits for the batch's commit).
 */
int store_tx_begin(struct sqlstore *st, struct store_req *r)
{
	int rc;

	if (r->name) {
		rc = store_journal_get(st, r);
		if (rc != 0) { /* journaled, or an error: no transaction */
			r->journaled = rc > 0;
			return 0;
		}
	}
	if (store_exec(&st->w, "SAVEPOINT u") < 0) {
		store_fail_db(&st->w, r, "beginning the transaction");
		return 0;
	}
	st->open_tx = r->tx;
	st->tx_started = clock_mono_ms();
	return 1;
}

/*
 * TX_END: commit (r->flag; journaled with it when named) or roll back the
 * open transaction, and give the writer back. 1 for a rollback (answer at
 * once), 0 for a commit, done or failed (answered after the batch's
 * COMMIT).
 */
int store_tx_end(struct sqlstore *st, struct store_req *r)
{
	int now_answer = 0;

	if (r->flag && r->name && store_journal_put(st, r, "tx") < 0) {
		store_exec(&st->w, "ROLLBACK TO u");
		store_exec(&st->w, "RELEASE u");
	} else if (r->flag) {
		if (store_exec(&st->w, "RELEASE u") < 0)
			store_fail_db(&st->w, r, "committing the transaction");
	} else {
		store_exec(&st->w, "ROLLBACK TO u");
		store_exec(&st->w, "RELEASE u");
		now_answer = 1;
	}
	st->open_tx = 0;
	return now_answer;
}
