/*
 * store.c: the SQLite store (see store.h): the writer with its group
 * commit, the answer path to the loop, and the life of struct sqlstore. The
 * other concerns live beside it (store-int.h lists the files).
 *
 * The writer runs on the loop thread. A statement costs microseconds in
 * SQLite's page cache, less than handing it to another thread and back,
 * and a transaction's statements follow each other with no thread hop in
 * between. What can take long stays off the loop: fsync (the flusher,
 * store-flush.c), checkpoints (the flusher's own connection: the writer
 * never checkpoints), and application reads outside a transaction (the
 * readers, store-read.c). An application statement that does run on the
 * writer is stopped at max_statement_ms, its task's deadline or
 * tx_timeout_ms, whichever comes first, and never runs longer than
 * loop_statement_ms (store_config).
 *
 * store_submit only queues a request; the queue runs between two task
 * resumes of the scheduler (store_poll) and at the end of the loop's turn
 * (run_ev), never inside a task's own slice:
 *
 *  - a request of the open user transaction runs and is answered at once
 *    (its effects only count when TX_END commits);
 *  - while a user transaction is open, other requests are deferred, in
 *    order, and run when it ends;
 *  - every other answer joins `acks` and is released after the COMMIT of
 *    its batch. A batch commits at the end of the turn when no user
 *    transaction is open, or once it has max_batch requests.
 *
 * With synchronous = full the COMMIT only writes the WAL (SQLite's NORMAL)
 * and the flusher syncs it while the loop goes on: the answers of a batch
 * are released after the fdatasync that covers it.
 *
 * If SQLite rolls the whole transaction back on its own (a full disk, an
 * I/O error) or the COMMIT fails, every unanswered request of the batch
 * fails with the cause: none of it was acknowledged, so nothing
 * acknowledged is lost.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "errbuf.h"
#include "store-drv.h"
#include "store-int.h"

int64_t store_now(void)
{
	return clock_wall_ms();
}

sqlite3 *store_db(struct sqlstore *st)
{
	return st->w.db;
}

int64_t store_new_lease(struct sqlstore *st)
{
	return st->epoch * ((int64_t)1 << 32) + ++st->lease_seq;
}

static int64_t sq_epoch(const struct store *b)
{
	const struct sqlstore *st = (const struct sqlstore *)b;

	return st->epoch;
}

static size_t sq_pending(const struct store *b)
{
	const struct sqlstore *st = (const struct sqlstore *)b;

	return st->pending;
}

static size_t sq_held(const struct store *b)
{
	const struct sqlstore *st = (const struct sqlstore *)b;
	size_t n = 0;

	if (!st->open_tx)
		return 0;
	for (const struct store_req *r = st->later; r; r = r->next)
		n++;
	for (const struct store_req *r = st->acks; r; r = r->next)
		n++;
	return n;
}

static void sq_get_stats(struct store *b, struct store_stats *out)
{
	struct sqlstore *st = (struct sqlstore *)b;

	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	pthread_mutex_unlock(&st->mu);
}

static void wake_loop(struct sqlstore *st)
{
	uint64_t one = 1;

	if (write(st->efd, &one, sizeof one) < 0) {
		/* the counter is saturated: the loop is woken already */
	}
}

/* Append a list to `answered`; 1 when the list was empty (the loop must be told). */
static int append_answers(struct sqlstore *st, struct store_req *head)
{
	int was_empty;

	pthread_mutex_lock(&st->mu);
	was_empty = st->answered == NULL;
	if (st->answered_tail)
		st->answered_tail->next = head;
	else
		st->answered = head;
	while (head) {
		st->answered_tail = head;
		st->stats.requests++;
		head = head->next;
	}
	__atomic_store_n(&st->has_answers, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->mu);
	return was_empty;
}

/* Release answers from another thread (the flusher, a reader): wake the loop. */
void store_answer_list(struct sqlstore *st, struct store_req *head)
{
	if (head && append_answers(st, head))
		wake_loop(st);
}

/* Release answers on the loop thread: they run in this turn, with no system call. */
static void answer_here(struct sqlstore *st, struct store_req *head)
{
	if (head && append_answers(st, head))
		event_active(st->ev, EV_TIMEOUT, 0);
}

static void answer(struct sqlstore *st, struct store_req *r)
{
	r->next = NULL;
	answer_here(st, r);
}

static void push(struct store_req **head, struct store_req **tail, struct store_req *r)
{
	r->next = NULL;
	store_list_append(head, tail, r);
}

/* ---- the batch ----------------------------------------------------------------- */

/* Fail every unanswered request of the batch with the cause. */
static void batch_fail(struct sqlstore *st, const char *why)
{
	for (struct store_req *r = st->acks; r; r = r->next)
		if (r->rc == 0)
			store_fail(r, "db", "the write was not committed: %s", why);
	answer_here(st, st->acks);
	st->acks = st->acks_tail = NULL;
	if (st->open_tx) {
		/* SQLite dropped the savepoint with the transaction */
		store_dead_tx_add(&st->dead, st->open_tx);
		st->open_tx = 0;
		event_del(st->tx_ev);
	}
	st->in_batch = 0;
	pthread_mutex_lock(&st->mu);
	st->stats.failed_commits++;
	pthread_mutex_unlock(&st->mu);
}

static void batch_commit(struct sqlstore *st)
{
	size_t n = 0;

	if (!st->in_batch || st->open_tx)
		return;
	if (store_exec(&st->w, "COMMIT") < 0) {
		char why[sizeof st->acks->err.msg];
		snprintf(why, sizeof why, "%s", sqlite3_errmsg(st->w.db));
		if (!sqlite3_get_autocommit(st->w.db))
			store_exec(&st->w, "ROLLBACK");
		batch_fail(st, why);
		return;
	}
	st->in_batch = 0;
	for (const struct store_req *r = st->acks; r; r = r->next)
		n++;
	pthread_mutex_lock(&st->mu);
	st->stats.commits++; /* before the answers: whoever sees them sees the commit counted */
	histo_observe(&st->stats.batch, (double)n);
	pthread_mutex_unlock(&st->mu);
	if (st->wal_fd >= 0)
		store_flush_hand(st, st->acks); /* answered once the WAL is synced */
	else
		answer_here(st, st->acks);
	st->acks = st->acks_tail = NULL;
}

static int batch_begin(struct sqlstore *st, struct store_req *r)
{
	if (st->in_batch)
		return 0;
	if (store_exec(&st->w, "BEGIN IMMEDIATE") < 0)
		return store_fail_db(&st->w, r, "beginning a transaction");
	st->in_batch = 1;
	st->batch_n = 0;
	return 0;
}

/*
 * SQLite ended the transaction on its own (SQLITE_FULL, IOERR...): what the
 * batch did is gone. Fail it, r included, with SQLite's reason.
 */
static int check_batch_alive(struct sqlstore *st, struct store_req *r)
{
	char why[sizeof r->err.msg];

	if (!st->in_batch || !sqlite3_get_autocommit(st->w.db))
		return 0;
	snprintf(why, sizeof why, "%s", r->rc ? r->err.msg : sqlite3_errmsg(st->w.db));
	if (r->rc == 0)
		store_fail(r, "db", "the transaction was rolled back: %s", why);
	batch_fail(st, why);
	return -1;
}

/* A user transaction opened or ended: arm or disarm its deadline. */
static void tx_timer(struct sqlstore *st, int64_t was_open)
{
	if (st->open_tx && st->open_tx != was_open) {
		struct timeval tv;
		double ms = st->cfg.tx_timeout_ms;
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1000) * 1000);
		event_add(st->tx_ev, &tv);
	} else if (!st->open_tx && was_open) {
		event_del(st->tx_ev);
	}
}

/* Run one request; decide when it is answered. */
static void run_one(struct sqlstore *st, struct store_req *r)
{
	int64_t was_open = st->open_tx;
	int now_answer = 0, rc;

	if (store_tx_gone(st, r)) {
		answer(st, r);
		return;
	}
	/*
	 * A plain application write (a reader handed it on) starts a batch of
	 * its own: if it is stopped, SQLite rolls back the whole transaction,
	 * and that must not take the daemon's job transitions with it.
	 */
	if (r->op == STORE_SQL && r->tx == 0 && st->in_batch && !st->open_tx)
		batch_commit(st);
	if (batch_begin(st, r) < 0) {
		answer(st, r);
		return;
	}
	st->batch_n++;
	switch (r->op) {
	case STORE_SQL:
		store_run_sql(&st->w, r);
		now_answer = r->tx != 0;
		break;
	case STORE_TX_BEGIN:
		now_answer = store_tx_begin(st, r);
		break;
	case STORE_TX_END:
		now_answer = store_tx_end(st, r);
		break;
	case STORE_STEP_GET:
		rc = store_journal_get(st, r);
		r->journaled = rc > 0;
		break;
	case STORE_STEP_PUT:
		store_journal_put(st, r, "step");
		break;
	default:
		store_jobs_exec(st, r);
		now_answer = r->tx != 0; /* inside the open transaction: its TX_END commits it */
		break;
	}
	tx_timer(st, was_open);
	if (check_batch_alive(st, r) < 0) {
		answer(st, r);
		return;
	}
	if (now_answer)
		answer(st, r);
	else
		push(&st->acks, &st->acks_tail, r);
}

/* Take the requests the readers handed on into the queue. */
static void take_handed(struct sqlstore *st)
{
	struct store_req *r;

	if (!__atomic_load_n(&st->queue, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&st->mu);
	r = st->queue;
	st->queue = st->queue_tail = NULL;
	pthread_mutex_unlock(&st->mu);
	store_list_append(&st->inq, &st->inq_tail, r);
}

/*
 * Run what is queued, in order. Once no user transaction holds the writer,
 * the deferred requests go back in front of the queue; a request of
 * another transaction than the open one is deferred (again). A batch that
 * has grown to max_batch commits on the way.
 */
static void run_queue(struct sqlstore *st)
{
	take_handed(st);
	for (;;) {
		struct store_req *r;
		if (!st->open_tx && st->later) { /* the deferred go first */
			store_list_append(&st->later, &st->later_tail, st->inq);
			st->inq = st->later;
			st->inq_tail = st->later_tail;
			st->later = st->later_tail = NULL;
		}
		r = store_list_pop(&st->inq, &st->inq_tail);
		if (!r)
			break;
		if (st->open_tx && r->tx != st->open_tx) {
			push(&st->later, &st->later_tail, r);
			continue;
		}
		run_one(st, r);
		if (!st->open_tx && st->in_batch && st->batch_n >= st->cfg.max_batch)
			batch_commit(st);
	}
}

/* ---- the loop side --------------------------------------------------------------- */

static void take_answers(struct sqlstore *st)
{
	struct store_req *r, *next;

	pthread_mutex_lock(&st->mu);
	r = st->answered;
	st->answered = st->answered_tail = NULL;
	__atomic_store_n(&st->has_answers, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->mu);
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		st->pending--;
		if (r->done)
			r->done(r);
		else
			store_req_free(r);
	}
}

/* End of the turn: run what is queued, commit the batch unless a user tx holds it. */
static void on_run(evutil_socket_t fd, short what, void *arg)
{
	struct sqlstore *st = arg;

	(void)fd;
	(void)what;
	run_queue(st);
	batch_commit(st);
	if (__atomic_load_n(&st->has_answers, __ATOMIC_ACQUIRE))
		take_answers(st);
}

static void schedule_run(struct sqlstore *st)
{
	event_active(st->run_ev, EV_TIMEOUT, 0); /* once per turn however often it is called */
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct sqlstore *st = arg;
	uint64_t n;

	if ((what & EV_READ) && read(fd, &n, sizeof n) < 0) {
		/* EAGAIN: a spurious wake */
	}
	if (__atomic_load_n(&st->queue, __ATOMIC_ACQUIRE))
		schedule_run(st);
	take_answers(st);
}

/* The open user transaction held the writer past tx_timeout_ms: take it back. */
static void on_tx_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sqlstore *st = arg;

	(void)fd;
	(void)what;
	if (!st->open_tx)
		return;
	store_tx_abandon(st);
	schedule_run(st);
}

static void sq_poll(struct store *b)
{
	struct sqlstore *st = (struct sqlstore *)b;

	if (st->inq)
		run_queue(st);
	if (__atomic_load_n(&st->has_answers, __ATOMIC_ACQUIRE))
		take_answers(st);
}

void store_hand_to_writer(struct sqlstore *st, struct store_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&st->mu);
	if (st->queue_tail)
		st->queue_tail->next = r;
	else
		__atomic_store_n(&st->queue, r, __ATOMIC_RELEASE);
	st->queue_tail = r;
	pthread_mutex_unlock(&st->mu);
	wake_loop(st);
}

static void sq_submit(struct store *b, struct store_req *r)
{
	struct sqlstore *st = (struct sqlstore *)b;

	st->pending++;
	if (st->stopping) {
		store_fail(r, "stopping", "the store is closing");
		answer(st, r);
		return;
	}
	if (r->op == STORE_SQL && r->tx == 0 && st->nreaders > 0) {
		store_read_submit(st, r); /* a read runs there; a write comes back to the writer */
		return;
	}
	push(&st->inq, &st->inq_tail, r);
	schedule_run(st);
}

/* ---- opening and closing ------------------------------------------------------------- */

static void sq_close(struct store *b);

static const struct store_ops sqlite_ops = {
    .close = sq_close,
    .epoch = sq_epoch,
    .submit = sq_submit,
    .poll = sq_poll,
    .pending = sq_pending,
    .held = sq_held,
    .get_stats = sq_get_stats,
};

struct store *store_sqlite_open(struct event_base *base, const struct store_config *cfg,
                                int64_t *requeued, char *err, size_t errlen)
{
	struct sqlstore *st = calloc(1, sizeof *st);

	if (!st) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	st->drv.ops = &sqlite_ops;
	st->cfg = *cfg;
	st->base = base;
	st->w.st = st;
	st->ck.st = st;
	st->lock_fd = -1;
	st->efd = -1;
	st->wal_fd = -1;
	histo_init(&st->stats.batch, histo_le_count, HISTO_LE_COUNT_N);
	histo_init(&st->stats.fsync, histo_le_fast, HISTO_LE_FAST_N);
	st->path = strdup(cfg->path);
	st->migrations_dir = strdup(cfg->migrations_dir);
	st->synchronous = strdup(cfg->synchronous);
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->fmu, NULL);
	pthread_cond_init(&st->fcv, NULL);
	pthread_mutex_init(&st->rmu, NULL);
	pthread_cond_init(&st->rcv, NULL);
	if (!st->path || !st->migrations_dir || !st->synchronous) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	st->ev = st->efd >= 0 ? event_new(base, st->efd, EV_READ | EV_PERSIST, on_wake, st) : NULL;
	st->run_ev = event_new(base, -1, 0, on_run, st);
	st->tx_ev = evtimer_new(base, on_tx_timeout, st);
	if (!st->ev || !st->run_ev || !st->tx_ev || event_add(st->ev, NULL) < 0) {
		errbuf_set(err, errlen, "the store's wake-up: %s", strerror(errno));
		goto fail;
	}
	if (store_open_db(st, requeued, err, errlen) < 0 ||
	    store_flush_start(st, err, errlen) < 0 || store_read_start(st, err, errlen) < 0)
		goto fail;
	return &st->drv;
fail:
	sq_close(&st->drv);
	return NULL;
}

static void sq_close(struct store *b)
{
	struct sqlstore *st = (struct sqlstore *)b;

	store_read_stop(st); /* first: a read may still hand a write on to the writer */
	if (st->w.db) {
		/*
		 * What was submitted runs; a transaction still open is rolled
		 * back, and so is one that a deferred TX_BEGIN opens meanwhile,
		 * until nothing is deferred and the batch can commit.
		 */
		run_queue(st);
		while (st->open_tx) {
			store_tx_abandon(st);
			run_queue(st);
		}
		batch_commit(st);
	}
	st->stopping = 1;
	store_flush_stop(st); /* after the writer: it syncs what the last commit handed it */
	/* the last answers: their owners release what they hold (and get "stopping" now) */
	store_list_append(&st->inq, &st->inq_tail, st->later); /* empty here; never lost */
	st->later = st->later_tail = NULL;
	while (st->answered || st->inq) {
		struct store_req *r;
		while ((r = store_list_pop(&st->inq, &st->inq_tail))) {
			store_fail(r, "stopping", "the store is closing");
			answer(st, r);
		}
		take_answers(st);
	}
	if (st->ev)
		event_free(st->ev);
	if (st->run_ev)
		event_free(st->run_ev);
	if (st->tx_ev)
		event_free(st->tx_ev);
	if (st->efd >= 0)
		close(st->efd);
	store_conn_close(&st->w);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->fcv);
	pthread_mutex_destroy(&st->fmu);
	pthread_cond_destroy(&st->rcv);
	pthread_mutex_destroy(&st->rmu);
	free(st->path);
	free(st->migrations_dir);
	free(st->synchronous);
	free(st);
}
