/*
 * pg-int.h: what the files of the PostgreSQL store share; not part of
 * store.h. The files, by concern:
 *
 *   pg.c         the life of struct pgstore, the request queue, the batch
 *                (group commit) on the main connection, the answers
 *   pg-node.c    this daemon as a node: leases, heartbeat, reconnecting
 *   pg-conn.c    one libpq connection on the loop: connecting, sending in
 *                pipeline mode, reading results as the socket allows
 *   pg-sql.c     parameters and values: '?' to '$n', store_val to text
 *                and back, result sets to struct store_rows; the guard of
 *                application SQL
 *   pg-many.c    the finishes and plain enqueues of a batch as one statement
 *   pg-migrate.c migrations under an advisory lock, the functions of
 *                pg_funcs.sql, the node's registration
 *   pg-ops.c     each store_op as the statements that carry it out
 *   pg-collect.c what those statements answered, into the request
 *   pg-tx.c      application SQL and user transactions on pool connections
 *
 * Everything runs on the loop thread: libpq in non-blocking mode, its
 * socket watched by libevent, so no PostgreSQL wait ever blocks the loop
 * (but opening the store, which waits for its connection and migrations
 * before the daemon serves anything).
 */
#ifndef AWAITD_PG_INT_H
#define AWAITD_PG_INT_H

#include <libpq-fe.h>

#include <event2/event.h>

#include "store-drv.h"

#define PG_POOL       4  /* connections for application SQL and user transactions */
#define PG_MAX_PARAMS 24 /* parameters of one of the driver's own statements */
/*
 * Advisory lock keys (24951 = 0x6177, "aw", n) are awaitd's: n = 0 while
 * migrating, n = a node's id while that node lives (pg_funcs.sql uses the
 * same number).
 */
#define PG_LOCK_SPACE_SQL "24951"

struct pgstore;
struct pg_conn;

/* What a result answers: a request's statement, or the connection's own. */
enum pg_slot_kind {
	PG_SLOT_REQ,    /* statement `step` of request r */
	PG_SLOT_BEGIN,  /* the batch's BEGIN */
	PG_SLOT_COMMIT, /* the batch's COMMIT */
	PG_SLOT_OWN,    /* a statement of the driver (heartbeat, reaping, LISTEN): on_own */
	PG_SLOT_MANY,   /* the statement of a group of requests (pg-many.c): group `step` */
	PG_SLOT_SYNC,   /* the pipeline's sync point: the end of what was sent */
};

/* Called with the result of a statement of the driver's own (PG_SLOT_OWN). */
typedef void pg_own_fn(struct pgstore *st, PGresult *res);

struct pg_slot {
	enum pg_slot_kind kind;
	struct store_req *r;
	int step;
	pg_own_fn *own;
};

/* The requests of a batch that go as one statement (pg-many.c). */
enum { PG_MANY_FINISH, PG_MANY_ENQUEUE, PG_MANY_N };
struct pg_many {
	struct store_req **v;
	size_t n, cap;
};

/* The hot statements, prepared once per connection (their plans are kept). */
enum pg_prep { PG_PREP_CLAIM, PG_PREP_FINISH_MANY, PG_PREP_ENQUEUE_MANY, PG_PREP_N };

/* What the main connection has in flight: nothing, a batch, or the driver's own unit. */
enum pg_unit { PG_UNIT_NONE, PG_UNIT_BATCH, PG_UNIT_OWN };

/* Called with each result of a connection's statements, in order (pg-conn.c). */
typedef void pg_result_fn(struct pg_conn *c, const struct pg_slot *slot, PGresult *res);
/* Called when the connection is lost (c->err says why) or has connected. */
typedef void pg_state_fn(struct pg_conn *c, int up);

enum pg_cstate { PGC_DOWN, PGC_CONNECTING, PGC_READY };

struct pg_conn {
	struct pgstore *st;
	PGconn *pq;
	enum pg_cstate state;
	struct event *rev;     /* the socket, readable (persistent while attached or connecting) */
	struct event *wev;     /* the socket, writable: while libpq has output left */
	int id;                /* 0: the main connection; 1..PG_POOL: the pool's */
	unsigned prepared;     /* statements of enum pg_prep prepared on it (a bit each) */
	unsigned prep_gen;     /* in their names: a batch that failed may have left some */
	struct pg_slot *slots; /* what was sent and not answered yet, in order */
	size_t nslots, slots_cap, slot_head;
	pg_result_fn *on_result;
	pg_state_fn *on_state;
	char err[512];
	/* the pool's: what the connection serves */
	int64_t tx;            /* the user transaction it holds open, 0 none */
	struct store_req *cur; /* the request in flight on it */
	int got;               /* cur's statement answered (its result or its error) */
	int cleanup;           /* the unit in flight only undoes what cur's failure left */
	double tx_started;     /* ms, monotonic */
	double retry_at;       /* ms, monotonic: when to connect again after a failure */
};

/* Parameters of one statement, as text (NULL for SQL NULL). */
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][32];
};

struct pgstore {
	struct store drv; /* first: store-api.c calls through drv.ops */
	struct store_config cfg;
	char *conninfo, *migrations_dir;
	struct event_base *base;
	int64_t node;      /* this daemon's node id (awaitd_nodes), the high half of its leases */
	int64_t lease_seq; /* the low half */
	int64_t *live;     /* leases of the jobs this daemon claimed and has not ended */
	size_t nlive, live_cap;
	struct pg_conn main;
	struct pg_conn pool[PG_POOL];
	struct store_stats stats;
	/* the request queue (main connection) */
	struct store_req *inq, *inq_tail;     /* submitted, not sent */
	struct store_req *batch, *batch_tail; /* sent in the batch in flight */
	int batch_n;
	enum pg_unit in_unit;           /* what the main connection has in flight */
	double last_result_ms;          /* when its last result came (mono): COMMIT's time */
	int committed;                  /* the batch in flight: its COMMIT succeeded */
	struct store_req *culprit;      /* the request whose statement failed the batch in flight */
	struct pg_many many[PG_MANY_N]; /* the batch in flight's groups */
	int group_failed;               /* a group's statement failed the batch in flight */
	int solo_next;                  /* so the next batch sends each request alone */
	int registered;                 /* the main connection is up and holds this node's lock */
	char down_why[600];             /* why it is not (what requests fail with meanwhile) */
	/* application SQL and user transactions (pool connections) */
	struct store_req *txq, *txq_tail; /* waiting for a pool connection */
	struct store_dead_tx dead;        /* transactions rolled back under their owner */
	struct event *pool_ev;            /* a pool connection may be retried */
	struct store_req *answers, *answers_tail;
	struct event *answer_ev; /* answers to run (their done callbacks) */
	struct event *run_ev;    /* end of the turn: send what is queued */
	struct event *retry_ev;  /* reconnect, with backoff */
	struct event *beat_ev;   /* heartbeat and the search for dead nodes */
	double backoff_ms;
	size_t pending;
	int stopping;
	store_wake_fn *wake; /* another daemon announced work or an outcome */
	void *wake_arg;
};

/* pg.c */

/* Answer r on the loop (its done callback runs from the answers list). */
void pg_answer(struct pgstore *st, struct store_req *r);

/* Fail the batch in flight and what is queued: the main connection is lost (st->down_why). */
void pg_batch_lost(struct pgstore *st);

/*
 * Send one statement of the driver's own on the main connection, as a unit
 * of its own; own(st, res) gets its result. -1 when the connection is busy
 * with a batch or down (nothing sent).
 */
int pg_own_send(struct pgstore *st, const char *sql, const struct pg_params *p, pg_own_fn *own);

/* pg-node.c */

/* A new lease: this node in the high 32 bits, a counter in the low. */
int64_t pg_new_lease(struct pgstore *st);

/* A claimed job's lease, kept until its finish or requeue is sent (for awaitd_rejoin). */
void pg_live_add(struct pgstore *st, int64_t lease);
void pg_live_del(struct pgstore *st, int64_t lease);

/* The node's timers (reconnect, heartbeat): made, started, freed with what it keeps. */
int pg_node_init(struct pgstore *st);
void pg_node_beat_start(struct pgstore *st);
void pg_node_free(struct pgstore *st);

/* The main connection went down (up 0: c->err says why) or came up (1): pg_conn's on_state. */
void pg_main_state(struct pg_conn *c, int up);

/* pg-conn.c */

/* Connect c now, blocking (opening the store). Returns 0 or -1 with err. */
int pg_conn_open_blocking(struct pg_conn *c, const char *conninfo, char *err, size_t errlen);

/* Start connecting c without blocking; c->on_state(c, 1) once it is up. */
int pg_conn_start(struct pg_conn *c, const char *conninfo);

/* Watch c's socket on the loop (non-blocking mode, pipeline mode on). Returns 0 or -1. */
int pg_conn_attach(struct pg_conn *c);

/* Close c (what was in flight is not answered here: the caller fails it). */
void pg_conn_close(struct pg_conn *c);

/* Send one statement (pipeline), noting slot. Returns 0 or -1 (c->err). */
int pg_conn_send(struct pg_conn *c, const char *sql, const struct pg_params *p,
                 struct pg_slot slot);

/* pg_conn_send with PQsendQueryParams's types, lengths and formats (application SQL). */
int pg_conn_send_raw(struct pg_conn *c, const char *sql, int n, const Oid *types,
                     const char *const *vals, const int *lens, const int *fmts,
                     struct pg_slot slot);

/*
 * pg_conn_send of statement `which`, prepared on c the first time (its
 * name carries c->prep_gen). Returns 0 or -1.
 */
int pg_conn_send_prep(struct pg_conn *c, enum pg_prep which, const char *sql,
                      const struct pg_params *p, struct pg_slot slot);

/* Forget what c has prepared (a failed batch may have undone or half-done it). */
void pg_conn_forget_prepared(struct pg_conn *c);

/* Send the sync point and flush. Returns 0 or -1. */
int pg_conn_sync(struct pg_conn *c);

/* Run a statement on a connection in blocking mode (opening only). Returns the result or NULL. */
PGresult *pg_exec_blocking(struct pg_conn *c, const char *sql, const struct pg_params *p, char *err,
                           size_t errlen);

/* pg-sql.c */

void pg_params_init(struct pg_params *p);
void pg_param_i64(struct pg_params *p, int64_t v);
void pg_param_opt(struct pg_params *p, int64_t v); /* 0 is NULL */
void pg_param_real(struct pg_params *p, double v);
void pg_param_text(struct pg_params *p, const char *v);

/*
 * Application SQL with '?' placeholders as PostgreSQL's $1, $2... (strings,
 * quoted names and comments left alone). malloc'd; NULL when out of memory.
 */
char *pg_sql_translate(const char *sql, int *nplaceholders);

/*
 * Whether application SQL r->sql may run: not a statement that ends or
 * escapes the store's transaction (BEGIN, COMMIT, SET...), no word naming
 * one of the daemon's tables. Lexical, not a role boundary. 0, or -1 with
 * r failed (invalid).
 */
int pg_sql_allowed(struct store_req *r);

/* r's result set from res (STORE_SQL). Returns 0 or -1 (r failed). */
int pg_rows_collect(struct store_req *r, PGresult *res);

/* Fail r with the PostgreSQL error of res (or of the connection): code "db". */
int pg_fail(struct store_req *r, const char *what, PGresult *res, struct pg_conn *c);

/* A column of a row as malloc'd text (NULL for SQL NULL), or as an integer (0 for NULL). */
char *pg_text(PGresult *res, int row, int col);
int64_t pg_i64(PGresult *res, int row, int col);

/* pg-migrate.c */

/*
 * On c (blocking): take the migration lock, apply the pending migrations,
 * install the driver's functions, register this node and take its lock.
 * Returns 0 or -1 with err naming the file and PostgreSQL's message.
 */
int pg_migrate(struct pgstore *st, struct pg_conn *c, int64_t *requeued, char *err, size_t errlen);

/* A job row's columns, in the order pg-collect.c reads them. */
#define PG_JOB_COLS                                                                                \
	"id, name, state, args, key, priority, attempt, max_attempts, backoff_ms, timeout_ms,"     \
	" run_at, created_at, started_at, finished_at, lease, result, error, wait_seq,"            \
	" wait_for, wait_until, cancelling, progress, progress_msg"
#define PG_JOB_NCOLS 23 /* then, for a claim: has_steps, resumed */

/* pg-ops.c */

/* Send r's statements on c. Returns their count, or -1 with r failed (nothing sent). */
int pg_op_send(struct pgstore *st, struct pg_conn *c, struct store_req *r);

/* pg-many.c */

/* Whether r joins one of the batch's groups (then it is sent by pg_many_send). */
int pg_many_take(struct pgstore *st, struct store_req *r);

/* Send each group's statement. Returns 0 or -1 (c->err). */
int pg_many_send(struct pgstore *st, struct pg_conn *c);

/* Group `which` answered res: each member's outputs. */
void pg_many_collect(struct pgstore *st, int which, PGresult *res);

/* Empty the groups (the batch is over), or free them (closing). */
void pg_many_clear(struct pgstore *st);
void pg_many_free(struct pgstore *st);

/* pg-collect.c */

/* One (kind, id) row of awaitd_finish/awaitd_cancel: changed, or what a dependent became. */
void pg_read_change(struct store_req *r, const char *kind, int64_t id);

/* Statement `step` of r answered res (not an error): fill r's outputs. */
void pg_op_collect(struct store_req *r, int step, PGresult *res);

/* pg-tx.c */

/* Run r (application SQL, or a user transaction's TX_BEGIN/TX_END) on the pool. */
void pg_tx_submit(struct pgstore *st, struct store_req *r);

/* Start the pool's connections (blocking, opening the store). Returns 0 or -1 with err. */
int pg_tx_open(struct pgstore *st, char *err, size_t errlen);

/* Fail what the pool holds and close its connections. */
void pg_tx_close(struct pgstore *st);

/* Roll back the transactions open past tx_timeout_ms (the heartbeat calls it). */
void pg_tx_reap(struct pgstore *st);

/* STEP_GET's and TX_BEGIN's journal row (seq, name, result) into r. */
void pg_read_step(struct store_req *r, PGresult *res);

#endif
