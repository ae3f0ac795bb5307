/*
 * store.h: durable storage for jobs, steps, schedules and application SQL
 * (SPEC sections 4 and 5), behind a narrow interface of requests.
 *
 * The caller (the loop thread) fills a struct store_req for one operation
 * and submits it; the store runs it later in the same turn (between two
 * task resumes, or at the turn's end) and calls req->done once its answer
 * is durable. Nothing in this interface makes the loop wait on an fsync,
 * a checkpoint or another writer. The operations name what the job logic needs (claim,
 * finish, journal a step...), not SQL, so another driver (PostgreSQL with
 * FOR UPDATE SKIP LOCKED) can implement them without touching jobs.c; only
 * STORE_SQL carries SQL, the application's own.
 *
 * Group commit: the writer keeps one SQLite transaction open across the
 * requests of a loop turn and commits at its end (or when the batch is
 * large), then answers the whole batch. No answer is
 * given before the commit that makes it durable; if the commit fails,
 * every request of the batch fails with the reason and nothing of it was
 * acknowledged. With synchronous = full the COMMIT only writes the WAL
 * and a flusher thread fsyncs it while the next batch executes; the
 * answers of a batch leave after the sync that covers it.
 *
 * User transactions (db:tx) are savepoints inside that transaction. One
 * holds the writer at a time: its TX_BEGIN opens the savepoint, its
 * STORE_SQL requests (same tx token) answer at once, its TX_END releases
 * or rolls back; other requests wait until then. A transaction that holds
 * the writer longer than tx_timeout_ms is rolled back by the store, and
 * its later requests fail with "timeout". Application reads outside a
 * transaction run on reader connections on threads of their own.
 *
 * Part store (daemon/store/): the interface of requests, the SQLite driver
 * (writer on the loop, flusher and readers on threads), migrations, the check of enqueue options
 * (enqueue-opts.h). It may call base only: jobs and the control plane call it, it calls no one.
 */
#ifndef AWAITD_STORE_H
#define AWAITD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "histo.h"

struct event_base;
struct store;
struct store_req;

typedef void store_done_fn(struct store_req *r);

enum store_op {
	STORE_SQL,      /* sql, params[], tx -> rows */
	STORE_TX_BEGIN, /* tx; job_id, seq, name (step, optional) -> journaled, text */
	STORE_TX_END,   /* tx, flag (1 commit, 0 rollback); job_id, seq, name, text (journal) */
	STORE_STEP_GET, /* job_id, seq, name -> journaled, text (or nondeterministic) */
	STORE_STEP_PUT, /* job_id, seq, name, text (kind "step") */
	STORE_ENQUEUE,  /* name, text (args JSON), key, run_at, priority, max_attempts,
	                 * backoff_ms, timeout_ms, limit_keys, fair_key, after -> out_id,
	                 * created (jobs[0] when the key existed). With after: blocked until
	                 * those succeeded (queued at once if they have; cancelled if one is
	                 * dead or cancelled); an id that names no job fails it (invalid)
	                 */
	STORE_CLAIM,    /* name, n (limit), now, limit_caps/rates/pers, flag (1: fair_by: one job
	                 * of each fair_key in turn) -> jobs[] (now running,
	                 * leased, has_steps), out_id (a rate limit or a pause that ends held
	                 * some back: the earliest time, epoch ms, that may change; else 0).
	                 * Nothing of a paused name, nor with a paused key, is claimed */
	STORE_FINISH,   /* id, lease, state, text (result/error JSON), run_at, n (attempt),
	                 * text2 (the attempt's trace) -> changed. State "waiting" parks
	                 * the job: seq (the wait's step), key (the signal's name, NULL
	                 * for a sleep), run_at (its deadline, 0 none) */
	STORE_REQUEUE,  /* id, lease, flag (1: the run continued a wait: back to waiting,
	                 * ready now): back to queued, the attempt not counted -> changed */
	STORE_CANCEL,   /* id, now -> jobs[0], changed (1: cancelled; 0: not queued, failed
	                 * or waiting; 2: waiting, so marked cancelling and made ready:
	                 * its run replays to the wait and is cancelled there, so its
	                 * <close> handlers run) */
	STORE_RETRY,    /* id, now -> jobs[0], changed (0: not failed/dead/cancelled) */
	STORE_GET,      /* id, flag (1: with steps) -> jobs[0] (njobs 0: none), rows (steps) */
	STORE_LIST,     /* name, text (state), n (limit), id (only older ones; 0 all)
	                 * -> jobs[] newest first */
	STORE_COUNTS,   /* flag (1: by script too) -> counts[] by enum store_state; with the
	                 * flag rows (name TEXT, state TEXT, n INT) too; out_text: the daemons
	                 * sharing the database (PostgreSQL: a JSON array of {node, host, pid,
	                 * started, seen_at, running}; NULL for SQLite) */
	STORE_SPANS,    /* id -> jobs[0], out_text (the trace: a JSON array per line) */
	STORE_NEXT_DUE, /* name, now -> out_id: the earliest run_at after now of its ready
	                 * jobs, or 0 (those due already wait for a claim: a job's end, a
	                 * rate window, a pause's end wake it) */
	STORE_SCHEDULE, /* name, text (expr), run_at (next fire), flag (1: keep a stored next
	                 * of the same expr) -> out_id (the next fire now stored) */
	STORE_FIRE,     /* name, run_at (this fire), n (next fire), max_attempts, backoff_ms
	                 * -> created, out_id (fenced by next_at: fires once) */
	STORE_PRUNE,    /* now (finished before) -> changed (jobs removed) */
	STORE_WAIT,     /* job_id, lease (of the run that waits), seq, name (the journal's:
	                 * "sleep" or the signal's name),
	                 * key (the signal's name; NULL for a sleep), run_at (the deadline
	                 * this wait asks for, 0 none), now -> journaled + out_text (ended:
	                 * what the wait returns, journaled), else out_id (the deadline to
	                 * park with, 0 none) and changed = 1 when the job is being
	                 * cancelled instead (see STORE_CANCEL) */
	STORE_SIGNAL,   /* id, name, text (payload JSON), now -> jobs[0] (njobs 0: no job),
	                 * changed (0: the job is final, nothing stored) */
	STORE_PROGRESS, /* id, lease, fraction, text (message, NULL none) -> changed (0: that
	                 * attempt is over); a claim that starts a new attempt clears it */
	STORE_PAUSE,    /* name, key (NULL: the whole script), flag (1 pause, 0 resume),
	                 * run_at (when the pause ends, 0: when resumed) -> changed (resume:
	                 * 0 when it was not paused) */
	STORE_PAUSES,   /* now -> rows (name TEXT, key TEXT, until INT or NULL): the pauses
	                 * in force */
	STORE_WHY,      /* id, now, limit_caps/rates/pers (its script's) -> out_text: what a
	                 * job that may not start waits behind, as JSON {kind: "after" (jobs),
	                 * "pause" (key, until), "limit" (limit, key, running, of), "rate"
	                 * (limit, key, starts, of, per, until)}; NULL: nothing of these */
};

enum store_state {
	STORE_QUEUED,
	STORE_RUNNING,
	STORE_SUCCEEDED,
	STORE_FAILED,
	STORE_DEAD,
	STORE_CANCELLED,
	STORE_WAITING,
	STORE_BLOCKED, /* enqueued after other jobs, not all of them succeeded yet */
	STORE_NSTATES,
};

#define STORE_MAX_LIMITS   4                  /* per-key limits of a name */
#define STORE_PAUSE_MAX_MS (366 * 86400000.0) /* the longest timed pause (a year) */

enum store_vtype { STORE_NULL, STORE_INT, STORE_REAL, STORE_TEXT, STORE_BLOB };

/* One SQL value; text and blob bytes are malloc'd and owned by their holder. */
struct store_val {
	enum store_vtype type;
	int64_t i;
	double d;
	char *p;  /* text (NUL-terminated) or blob */
	size_t n; /* bytes, without the NUL */
};

/* A result set: ncols names, nrows * ncols values (row-major). */
struct store_rows {
	int ncols;
	char **cols;
	size_t nrows;
	struct store_val *vals;
	int64_t changes; /* STORE_SQL: rows changed by the statement */
	int64_t last_id; /* STORE_SQL: last inserted rowid */
};

/* One job row. Strings are malloc'd (NULL for SQL NULL); JSON columns as text. */
struct store_job {
	int64_t id;
	char *name, *state, *args, *key, *result, *error;
	int64_t priority, attempt, max_attempts, backoff_ms;
	int64_t timeout_ms;                                  /* 0: the script's */
	int64_t run_at, created_at, started_at, finished_at; /* ms, wall; 0 for NULL */
	int64_t lease;
	int has_steps; /* STORE_CLAIM: the step journal holds rows of this job */
	/* a durable wait: the step it parked at (0 none), the signal's name (NULL: a
	 * sleep), its deadline (0 none); cancelling: `cancel` reached it waiting */
	int64_t wait_seq, wait_until;
	char *wait_for;
	int cancelling;
	int resumed; /* STORE_CLAIM: it was waiting (this run continues an attempt) */
	char *limit_keys[STORE_MAX_LIMITS]; /* a limited claim's: its values of the limits */
	int has_progress; /* ctx.progress: the attempt's last progress (0..1) and message */
	double progress;
	char *progress_msg;
};

struct store_err {
	char code[32]; /* "db", "timeout", "nondeterministic", "invalid", "stopping" */
	char msg[512];
};

struct store_req {
	enum store_op op;
	/* inputs: which ones an op reads is listed with the op */
	int64_t tx, job_id, seq, id, lease, n, now;
	int64_t run_at, priority, max_attempts, backoff_ms, timeout_ms;
	int flag;
	char *name, *key, *sql, *text, *text2; /* malloc'd, freed with the request */
	struct store_val *params;
	int nparams;
	double fraction; /* STORE_PROGRESS */
	/* per-key limits: ENQUEUE stores the job's value of each (malloc'd; NULL none);
	 * CLAIM takes a job only while fewer than caps[i] running jobs of the name share
	 * its value i, and fewer than rates[i] of them started in the last pers[i] ms
	 * (0: no such cap) */
	char *limit_keys[STORE_MAX_LIMITS];
	char *fair_key; /* ENQUEUE: the job's value of its script's fair_by field (malloc'd) */
	int64_t *after; /* ENQUEUE: the jobs it waits for (malloc'd, nafter of them) */
	size_t nafter;
	int64_t limit_caps[STORE_MAX_LIMITS];
	int64_t limit_rates[STORE_MAX_LIMITS], limit_pers[STORE_MAX_LIMITS];
	double deadline; /* STORE_SQL: ms, CLOCK_MONOTONIC, when its task must be done; 0 none */
	int cancelled;   /* atomic: the waiter is gone, a statement of it may stop */
	/* outputs */
	int rc; /* 0 or -1 with err */
	struct store_err err;
	struct store_rows rows;
	struct store_job *jobs;
	size_t njobs;
	int64_t counts[STORE_NSTATES];
	int64_t out_id;
	int created, changed, journaled;
	int deps; /* FINISH, CANCEL: jobs that waited for this one became queued or cancelled */
	int64_t *settled; /* ... the ones made final (cancelled): their waiters are told */
	size_t nsettled;
	char *out_text;
	/* completion, on the loop thread */
	store_done_fn *done;
	void *arg;
	/* private to the store */
	struct store_req *next;
	int64_t batch; /* the batch that must commit before the answer */
};

struct store_config {
	const char *path;           /* the database file */
	const char *migrations_dir; /* NNNN_name.sql */
	const char *synchronous;    /* "full", "normal" or "off" */
	double tx_timeout_ms;       /* how long a user transaction may hold the writer */
	double max_statement_ms;    /* how long one application statement may run */
	double loop_statement_ms;   /* ... and one on the writer, which runs on the loop (the
	                             * daemon's max_slice_ms); 0: no such bound */
	int max_batch;              /* requests per group commit */
};

void store_config_defaults(struct store_config *cfg);

/*
 * Whether table names one of the daemon's own tables (jobs, steps,
 * schedules, executor, schema_migrations, signals, or any awaitd_* name), which
 * application SQL cannot read, write, index, trigger on or drop.
 */
int store_is_reserved(const char *table);

/* Whether path is a libpq connection string (the PostgreSQL driver) rather than a file. */
int store_path_is_pg(const char *path);

/* path as it may be shown (logs, status): a connection string's password as "***". Returns out. */
const char *store_path_shown(const char *path, char *out, size_t outlen);

/*
 * Open (creating) the database: lock its directory against a second
 * daemon, WAL mode, apply migrations, take a new epoch, requeue the jobs
 * an older epoch left running. Then start the flusher and the readers;
 * answers run on base. Returns NULL with err (the file and the cause) on failure.
 * `requeued` (may be NULL) receives the number of orphans requeued.
 */
struct store *store_open(struct event_base *base, const struct store_config *cfg, int64_t *requeued,
                         char *err, size_t errlen);

/* Run the requests already submitted, commit, sync, stop the threads, close. NULL is a no-op. */
void store_close(struct store *st);

/* The epoch of this open (1, 2, ... one per start). */
int64_t store_epoch(const struct store *st);

/* A zeroed request for op. NULL when out of memory. */
struct store_req *store_req_new(enum store_op op);

/* Free a request and everything it owns. NULL is a no-op. */
void store_req_free(struct store_req *r);

/* Free the strings of one job row (not the row). */
void store_job_fini(struct store_job *j);

/*
 * Queue r (loop thread); r->done(r) runs later on the loop thread and
 * owns r from then on. Never fails: after store_close began, r is
 * answered with the error "stopping".
 */
void store_submit(struct store *st, struct store_req *r);

/*
 * Run the requests queued and the answers waiting now, if any (cheap when
 * none): for the scheduler between two resumes (sched.between), so a task
 * that holds the writer gets its answer within the turn, outside any
 * task's slice. The turn's end runs them anyway.
 */
void store_poll(void *arg);

/* What another daemon sharing the database announced (store_set_wake). */
enum store_wake {
	STORE_WAKE_READY, /* jobs of script `payload` became ready ("": of any script) */
	STORE_WAKE_DONE,  /* jobs `payload` (their ids, joined by commas) reached a final state */
};

typedef void store_wake_fn(void *arg, enum store_wake what, const char *payload);

/*
 * fn(arg, what, payload) runs on the loop when another daemon sharing the
 * database announced work or an outcome. Only the PostgreSQL driver calls
 * it (with SQLite this daemon is the only one).
 */
void store_set_wake(struct store *st, store_wake_fn *fn, void *arg);

/* Requests submitted and not yet answered. */
size_t store_pending(const struct store *st);

/*
 * Of those, the ones held up by an open user transaction (deferred, or
 * waiting for the batch it keeps open): only its task can end their wait
 * (`awaitd test` does not count them as work under way).
 */
size_t store_held(const struct store *st);

/* Fail r with code and a printf message (rc -1, err set). Returns -1. */
int store_fail(struct store_req *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wall clock in unix epoch milliseconds. */
int64_t store_now(void);

/* Name of a state and back (-1 for an unknown name). */
const char *store_state_name(enum store_state s);
int store_state_parse(const char *name);

struct store_stats {
	uint64_t commits;     /* group commits */
	uint64_t syncs;       /* fdatasync calls of the flusher (synchronous = full) */
	uint64_t reads;       /* application reads answered by a reader connection */
	uint64_t checkpoints; /* WAL checkpoints run by the flusher */
	uint64_t requests;    /* requests answered */
	uint64_t failed_commits;
	struct histo batch; /* requests per group commit */
	struct histo fsync; /* seconds per fdatasync of the WAL */
};

void store_get_stats(struct store *st, struct store_stats *out);

#endif
