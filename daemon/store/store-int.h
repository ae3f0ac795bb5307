/*
 * store-int.h: what the files of the SQLite store share; not part of
 * store.h. The files, by concern:
 *
 *   store.c       the writer on the loop thread, its group commit, the
 *                 answer path, opening and closing the struct
 *   store-flush.c the flusher thread: fdatasync of the WAL off the writer
 *   store-read.c  reader connections on threads: application reads
 *   store-req.c   requests: allocating, freeing, failing; job-state names
 *   store-open.c  opening the database: the directory lock, pragmas,
 *                 migrations, the new epoch
 *   store-stmt.c  the statement cache, binding, collecting rows
 *   store-sql.c   application SQL and its boundary: the authorizer, the
 *                 progress handler, the DDL foreign-key check
 *   store-tx.c    user transactions (db:tx) and the step journal
 *   store-jobs.c  the job operations
 *
 * Threads: the writer's connection and everything under "loop thread
 * only" belong to the loop thread, where every store_* function below
 * runs, but those of the flusher and the readers, which say where they
 * run; `mu` guards the fields under "shared".
 */
#ifndef AWAITD_STORE_INT_H
#define AWAITD_STORE_INT_H

#include <pthread.h>
#include <jansson.h>
#include <sqlite3.h>

#include <event2/event.h>

#include "store-drv.h"

#define STMT_CACHE    64   /* prepared statements kept */
#define CKPT_FRAMES   1000 /* WAL pages that call for a checkpoint (SQLite's default) */
#define STORE_READERS 2    /* reader connections, each on its own thread */

struct stmt_slot {
	char *sql;
	sqlite3_stmt *stmt;
	uint64_t hash; /* of sql */
	uint64_t used; /* for eviction: least recently used goes */
	int user;      /* prepared as application SQL (under the authorizer's rules) */
};

/*
 * One SQLite connection and what runs on it: the writer's, or a reader's.
 * Only the thread that owns it touches it.
 */
struct store_conn {
	struct sqlstore *st; /* for the limits in st->cfg and the open user tx */
	sqlite3 *db;
	int reader;            /* a reader's: statements that may write go to the writer */
	int user_sql;          /* running application SQL: the authorizer's rules apply */
	const char *denied;    /* why the authorizer refused it (static text), or NULL */
	char denied_name[64];  /* the table, pragma or function it named */
	char ddl_table[128];   /* the table a CREATE/ALTER TABLE being run makes, or "" */
	struct store_req *cur; /* the request whose statement runs (progress handler) */
	double stmt_deadline;  /* ms, monotonic: when cur's statement is stopped; 0 none */
	struct stmt_slot stmts[STMT_CACHE];
	uint64_t stmt_clock;
};

struct sqlstore {
	struct store drv; /* first: store-api.c calls through drv.ops (store-drv.h) */
	struct store_config cfg;
	char *path, *migrations_dir, *synchronous;
	struct store_conn w; /* the writer's connection, on the loop thread */
	int lock_fd;         /* the locked database directory */
	int64_t epoch;
	/* whether the coordination tables may hold rows (set at open from the tables, and
	 * whenever this writer adds one): when not, claims and finishes skip their
	 * queries (the writer is the only one, so the flags cannot miss a row) */
	int has_pauses, has_deps;
	struct event_base *base;

	/* shared, under mu */
	pthread_mutex_t mu;
	struct store_req *queue, *queue_tail;       /* handed on by the readers, for the writer */
	struct store_req *answered, *answered_tail; /* answers for the loop to run */
	struct store_stats stats;

	/* the flusher: fq..ckpt_frames under fmu */
	pthread_mutex_t fmu;
	pthread_cond_t fcv;
	struct store_req *fq, *fq_tail; /* committed, waiting for the next fdatasync */
	int fstop;
	int ckpt_frames; /* the WAL's frames at the last commit, when it is time to checkpoint */
	int wal_fd;      /* the WAL file, for fdatasync; -1 when commits are not synced */
	struct store_conn ck; /* the flusher's connection, for checkpoints */
	pthread_t fthread;
	int fthread_on;

	/* the readers: rq..rstop under rmu (rstop also read atomically by progress handlers) */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	struct store_req *rq, *rq_tail;
	int rstop;
	struct store_conn readers[STORE_READERS];
	pthread_t rthreads[STORE_READERS];
	int nreaders; /* started */

	/* loop thread only */
	int efd;              /* eventfd: answers or handed-on requests are waiting */
	int has_answers;      /* atomic: set with `answered`, cleared when taken (store_poll) */
	struct event *ev;     /* on efd: answers, and the requests the readers hand on */
	struct event *run_ev; /* end of the turn: run what is submitted, commit */
	struct event *tx_ev;  /* the open user transaction's tx_timeout_ms */
	size_t pending;
	int stopping;
	struct store_req *inq, *inq_tail;     /* submitted, not run yet */
	struct store_req *acks, *acks_tail;   /* answered at the next commit */
	struct store_req *later, *later_tail; /* deferred while a user tx is open */
	int in_batch;
	int batch_n;
	int64_t open_tx;           /* token of the user transaction holding the writer, 0 none */
	double tx_started;         /* ms, monotonic */
	struct store_dead_tx dead; /* user transactions rolled back under their owner */
	int64_t lease_seq;
};

/* ---- store.c --------------------------------------------------------------- */

/* The database handle of st. */
sqlite3 *store_db(struct sqlstore *st);

/* A new lease, unique across epochs. */
int64_t store_new_lease(struct sqlstore *st);

/* Release a list of answers to the loop (any thread; wakes it if needed). */
void store_answer_list(struct sqlstore *st, struct store_req *head);

/* A reader hands r on to the writer (a reader's thread; the loop is woken). */
void store_hand_to_writer(struct sqlstore *st, struct store_req *r);

/* ---- store-read.c ---------------------------------------------------------- */

/* Open the reader connections and start their threads. Returns 0, or -1 with err. */
int store_read_start(struct sqlstore *st, char *err, size_t errlen);

/* Queue an application statement outside a transaction for the readers (loop thread). */
void store_read_submit(struct sqlstore *st, struct store_req *r);

/* Stop the statements that run, answer what is queued "stopping", join, close. */
void store_read_stop(struct sqlstore *st);

/* ---- store-flush.c --------------------------------------------------------- */

/*
 * Start the flusher (store_open, after the database is open): its
 * checkpoint connection, the WAL file when synchronous = full, the writer's
 * WAL hook. Returns 0, or -1 with err; store_flush_stop undoes either.
 */
int store_flush_start(struct sqlstore *st, char *err, size_t errlen);

/* Loop thread: the answers of a batch just committed, released after the next fdatasync. */
void store_flush_hand(struct sqlstore *st, struct store_req *head);

/* After the writer's last commit: sync and answer what is handed, stop, close. */
void store_flush_stop(struct sqlstore *st);

/* ---- store-req.c ----------------------------------------------------------- */

/* Fail r with SQLite's message for what. Returns -1. */
int store_fail_db(struct store_conn *c, struct store_req *r, const char *what);

/* ---- store-open.c ---------------------------------------------------------- */

/*
 * Lock st->path's directory, open and configure the connection, apply the
 * migrations and take a new epoch (*requeued: orphans put back, may be
 * NULL). Returns 0, or -1 with err; st->db and st->lock_fd, when set, are
 * for store_close to release.
 */
int store_open_db(struct sqlstore *st, int64_t *requeued, char *err, size_t errlen);

/*
 * Open a connection to path with the boundary of store-sql.c (authorizer,
 * progress handler, DEFENSIVE, no extensions, no ATTACH) and the common
 * pragmas. Returns 0, or -1 with err; store_conn_close releases either.
 */
int store_conn_open(struct store_conn *c, const char *path, char *err, size_t errlen);

/* Finalize c's statements and close its connection. */
void store_conn_close(struct store_conn *c);

/* ---- store-stmt.c ---------------------------------------------------------- */

/* A prepared statement for sql (static text or copied), reset and unbound. NULL with err. */
sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql, struct store_req *r);

/* Take s out of the statement cache, for the caller to finalize. */
void store_stmt_forget(struct store_conn *c, sqlite3_stmt *s);

/* Run sql (prepared once, cached) with no error record; rows are skipped. Returns 0 or -1. */
int store_exec(struct store_conn *c, const char *sql);

/* Bind a nullable string / an int64 that is NULL when 0. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_opt(sqlite3_stmt *s, int i, int64_t v);

/* Bind vals[0..n-1] to parameters 1..n of s, SQLITE_STATIC: vals outlives the run. */
void store_bind_vals(sqlite3_stmt *s, const struct store_val *vals, int n);

/* A malloc'd copy of a text column, NULL for NULL (or out of memory). */
char *store_col_text(sqlite3_stmt *s, int i);

/* Collect every remaining row of s into r->rows. Returns 0 or -1 (r->err set). */
int store_collect(struct store_conn *c, sqlite3_stmt *s, struct store_req *r);

/* ---- store-sql.c ----------------------------------------------------------- */

/* The authorizer and the progress handler, installed once per connection (arg: the conn). */
int store_authorize(void *arg, int action, const char *a, const char *b, const char *c,
                    const char *d);
int store_progress(void *arg);

/*
 * Run r->sql with r->params under the boundary; rows into r->rows. Returns
 * 0 or -1; on a reader, 1 (nothing run) when the statement may write.
 */
int store_run_sql(struct store_conn *c, struct store_req *r);

/* ---- store-tx.c ------------------------------------------------------------ */

/* The journal for (job, seq, name): 1 found (r->out_text), 0 none, -1 error. */
int store_journal_get(struct sqlstore *st, struct store_req *r);

/* Journal r's step of the given kind ("step", "tx"). Returns 0 or -1 (r->err set). */
int store_journal_put(struct sqlstore *st, struct store_req *r, const char *kind);

/* 1 when tx timed out and was rolled back (forget: drop it from the list), else 0. */
int store_tx_is_dead(struct sqlstore *st, int64_t tx, int forget);

/* Roll the open user transaction back (its owner is late or gone). */
void store_tx_abandon(struct sqlstore *st);

/* 1 when r names a user transaction that is not open (r answered at once), else 0. */
int store_tx_gone(struct sqlstore *st, struct store_req *r);

/* TX_BEGIN / TX_END of r. Return 1 when r is answered at once, 0 after the commit. */
int store_tx_begin(struct sqlstore *st, struct store_req *r);
int store_tx_end(struct sqlstore *st, struct store_req *r);

/* ---- store-views.c: GET, LIST, COUNTS, SPANS (0 or -1 with r->err) ---- */
int store_view(struct sqlstore *st, struct store_req *r);

/* ---- store-jobs.c ---------------------------------------------------------- */

/* The columns of a job row, in the order store_read_jobs reads them. */
#define JOB_COLS                                                                                   \
	"id, name, state, args, key, priority, attempt, max_attempts, backoff_ms, timeout_ms,"     \
	" run_at, created_at, started_at, finished_at, lease, result, error, wait_seq,"            \
	" wait_for, wait_until, cancelling, progress, progress_msg"

/* Execute one job operation (every op but SQL and TX_*). Returns 0 or -1 (r->err set). */
int store_jobs_exec(struct sqlstore *st, struct store_req *r);

/* Append job r->id's row to r->jobs (none when there is no such job). Returns rows or -1. */
int store_job_get(struct sqlstore *st, struct store_req *r);

/* Run a statement that returns no rows; r->changed gets the count. 0 or -1. */
int store_run_done(struct sqlstore *st, sqlite3_stmt *s, struct store_req *r, const char *what);

/*
 * Step s (JOB_COLS, then optionally has_steps and the limit keys) to the
 * end, appending each row to r->jobs. Returns rows read or -1.
 */
int store_read_jobs(struct sqlstore *st, sqlite3_stmt *s, struct store_req *r, const char *what);

/*
 * Lease r->jobs[from..] to this claim (running, attempt counted, started
 * now). A claim of several passes marks each pass's jobs at once, so the
 * next pass cannot read them again.
 */
int store_claim_mark(struct sqlstore *st, struct store_req *r, size_t from);

/* ---- store-limits.c ------------------------------------------------------------ */

/*
 * A CLAIM with per-key limits (r->limit_caps, rates) or paused keys
 * (paused: a JSON array of them, or NULL; until: when the first timed
 * pause ends, 0 none).
 */
int store_claim_limited(struct sqlstore *st, struct store_req *r, json_t *paused, int64_t until);

/*
 * The pauses of r->name in force at r->now: 1 when the whole script is
 * paused, else 0 with the paused keys in *keys (a new JSON array, NULL
 * when none); *until: the first end of a timed one (0 none). -1 on error.
 */
int store_pauses_of(struct sqlstore *st, struct store_req *r, json_t **keys, int64_t *until);

/* The statement reading those pauses, rows (key, until), bound; NULL on error (r failed). */
sqlite3_stmt *store_pauses_stmt(struct sqlstore *st, struct store_req *r);

/* ---- store-deps.c: jobs enqueued after others ---- */

/*
 * ENQUEUE's after: every job named exists (else "invalid"); the new job's
 * state: "queued" (all succeeded), "cancelled" with *error (malloc'd: one
 * ended dead or cancelled) or "blocked". 0 or -1.
 */
int store_deps_state(struct sqlstore *st, struct store_req *r, const char **state, char **error);

/* Record that job id waits for each of r->after. 0 or -1. */
int store_deps_link(struct sqlstore *st, struct store_req *r, int64_t id);

/*
 * RETRY of job r->id: refused (invalid, naming it) while one of the jobs it
 * waits for is dead or cancelled. 0 or -1.
 */
int store_deps_retry(struct sqlstore *st, struct store_req *r);

/* After that RETRY queued it: blocked again while its jobs have not all succeeded. 0 or -1. */
int store_deps_reblock(struct sqlstore *st, struct store_req *r);

/*
 * Job parent reached state: settle its blocked dependents (r->deps counts
 * them; the ones it made final are in r->settled). 0 or -1.
 */
int store_deps_resolve(struct sqlstore *st, struct store_req *r, int64_t parent, const char *state);

/* STORE_PAUSE, STORE_PAUSES and STORE_WHY. */
int store_pause(struct sqlstore *st, struct store_req *r);
int store_pauses(struct sqlstore *st, struct store_req *r);
int store_why(struct sqlstore *st, struct store_req *r);

/* ---- store-waits.c: durable waits and signals (each 0 or -1 with r->err) ---- */

/* FINISH to "waiting": park the job's running attempt at its wait. */
int store_park(struct sqlstore *st, struct store_req *r);

/* STORE_WAIT, STORE_SIGNAL (store.h). */
int store_wait(struct sqlstore *st, struct store_req *r);
int store_signal(struct sqlstore *st, struct store_req *r);

/* CANCEL of a waiting job r->jobs[0]: mark it cancelling, ready now (changed 2). */
int store_wait_cancel(struct sqlstore *st, struct store_req *r);

#endif
