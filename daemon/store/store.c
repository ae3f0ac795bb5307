/*
 * store.c: the SQLite store (see store.h): the store thread with its group
 * commit, the answer path to the loop, and the life of struct store. The
 * other concerns live beside it (store-int.h lists the files).
 *
 * Threads: the loop thread only calls store_submit (appends to `queue`
 * under `mu`, signals `cv`) and runs answers from `answered` in an event
 * woken through an eventfd. The store thread owns the connection and
 * everything below "store thread only"; it takes the queue in one swap and
 * works through it:
 *
 *  - a request of the open user transaction runs at once and is answered
 *    at once (its effects only count when TX_END commits);
 *  - while a user transaction is open, other requests are deferred, in
 *    order, and run when it ends;
 *  - every other answer joins `acks` and is released after the COMMIT of
 *    its batch. A batch commits when the store runs out of work with no
 *    user transaction open, or has grown past max_batch / max_batch_ms.
 *
 * If SQLite rolls the whole transaction back on its own (a full disk, an
 * I/O error) or the COMMIT fails, every unanswered request of the batch
 * fails with the cause: none of it was acknowledged, so nothing
 * acknowledged is lost.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "errbuf.h"
#include "store-int.h"

#define SPIN_MS 0.05 /* how long the writer looks for its owner's next request */

int64_t store_now(void)
{
	return clock_wall_ms();
}

sqlite3 *store_db(struct store *st)
{
	return st->w.db;
}

int64_t store_new_lease(struct store *st)
{
	return st->epoch * ((int64_t)1 << 32) + ++st->lease_seq;
}

int64_t store_epoch(const struct store *st)
{
	return st->epoch;
}

size_t store_pending(const struct store *st)
{
	return st->pending;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	pthread_mutex_unlock(&st->mu);
}

/* ---- the batch ----------------------------------------------------------------- */

/* Release answers in one go; wake the loop only if none were waiting (its
 * on_answers takes the whole list, so a later append is taken with it). */
void store_answer_list(struct store *st, struct store_req *head)
{
	uint64_t one = 1;
	int wake;

	if (!head)
		return;
	pthread_mutex_lock(&st->mu);
	wake = st->answered == NULL;
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
	if (wake && write(st->efd, &one, sizeof one) < 0) {
		/* the counter is saturated: the loop is woken already */
	}
}

/* Release one answer now (the loop is woken unless answers already wait). */
static void answer(struct store *st, struct store_req *r)
{
	r->next = NULL;
	store_answer_list(st, r);
}

static void ack_later(struct store *st, struct store_req *r)
{
	r->next = NULL;
	if (st->acks_tail)
		st->acks_tail->next = r;
	else
		st->acks = r;
	st->acks_tail = r;
}

/* Fail every unanswered request of the batch with the cause. */
static void batch_fail(struct store *st, const char *why)
{
	for (struct store_req *r = st->acks; r; r = r->next)
		if (r->rc == 0)
			store_fail(r, "db", "the write was not committed: %s", why);
	store_answer_list(st, st->acks);
	st->acks = st->acks_tail = NULL;
	if (st->open_tx) {
		/* SQLite dropped the savepoint with the transaction */
		if (st->ndead < DEAD_TX)
			st->dead_tx[st->ndead++] = st->open_tx;
		st->open_tx = 0;
	}
	st->in_batch = 0;
	pthread_mutex_lock(&st->mu);
	st->stats.failed_commits++;
	pthread_mutex_unlock(&st->mu);
}

static void batch_commit(struct store *st)
{
	if (!st->in_batch)
		return;
	if (sqlite3_exec(st->w.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		char why[sizeof st->acks->err.msg];
		snprintf(why, sizeof why, "%s", sqlite3_errmsg(st->w.db));
		if (!sqlite3_get_autocommit(st->w.db))
			store_exec(&st->w, "ROLLBACK");
		batch_fail(st, why);
		return;
	}
	st->in_batch = 0;
	pthread_mutex_lock(&st->mu);
	st->stats.commits++; /* before the answers: whoever sees them sees the commit counted */
	pthread_mutex_unlock(&st->mu);
	if (st->wal_fd >= 0)
		store_flush_hand(st, st->acks); /* answered once the WAL is synced */
	else
		store_answer_list(st, st->acks);
	st->acks = st->acks_tail = NULL;
}

static int batch_begin(struct store *st, struct store_req *r)
{
	if (st->in_batch)
		return 0;
	if (sqlite3_exec(st->w.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(&st->w, r, "beginning a transaction");
	st->in_batch = 1;
	st->batch_n = 0;
	st->batch_started = clock_mono_ms();
	return 0;
}

/*
 * SQLite ended the transaction on its own (SQLITE_FULL, IOERR...): what the
 * batch did is gone. Fail it, r included, with SQLite's reason.
 */
static int check_batch_alive(struct store *st, struct store_req *r)
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

/* Run one request; decide when it is answered. */
static void run_one(struct store *st, struct store_req *r)
{
	int now_answer = 0, rc;

	if (store_tx_gone(st, r)) {
		answer(st, r);
		return;
	}
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
	if (check_batch_alive(st, r) < 0) {
		answer(st, r);
		return;
	}
	if (now_answer) {
		answer(st, r);
	} else {
		ack_later(st, r);
	}
}

/* Move the deferred requests in front of list. */
static struct store_req *take_later(struct store *st, struct store_req *list)
{
	struct store_req *head = st->later;

	if (!head)
		return list;
	st->later_tail->next = list;
	st->later = st->later_tail = NULL;
	return head;
}

static void *store_main(void *arg)
{
	struct store *st = arg;
	struct store_req *list = NULL;

	for (;;) {
		if (st->open_tx) {
			/*
			 * The writer waits for its owner's next request, which is
			 * usually a few microseconds away: look for it a little
			 * before sleeping (a futex sleep and wake-up cost more).
			 */
			double until = clock_mono_ms() + SPIN_MS;
			while (!__atomic_load_n(&st->queue, __ATOMIC_ACQUIRE) &&
			       clock_mono_ms() < until)
				sched_yield();
		}
		pthread_mutex_lock(&st->mu);
		while (!st->queue && !st->stopping) {
			if (st->open_tx) {
				double left =
				    st->tx_started + st->cfg.tx_timeout_ms - clock_mono_ms();
				struct timespec ts;
				if (left <= 0)
					break;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += (time_t)(left / 1000);
				ts.tv_nsec +=
				    (long)((left - (double)(time_t)(left / 1000) * 1000) * 1e6);
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&st->cv, &st->mu, &ts);
			} else {
				pthread_cond_wait(&st->cv, &st->mu);
			}
		}
		list = st->queue;
		__atomic_store_n(&st->queue, NULL, __ATOMIC_RELAXED);
		st->queue_tail = NULL;
		if (!list && st->stopping && !st->open_tx && !st->later) {
			pthread_mutex_unlock(&st->mu);
			break;
		}
		pthread_mutex_unlock(&st->mu);

		if (!list && st->open_tx) {
			/* the owner is late (or the store stops): take the writer back */
			store_tx_abandon(st);
			list = take_later(st, NULL);
		}
		while (list) {
			struct store_req *r = list;
			list = r->next;
			r->next = NULL;
			if (st->open_tx && r->tx != st->open_tx) {
				if (st->later_tail)
					st->later_tail->next = r;
				else
					st->later = r;
				st->later_tail = r;
				continue;
			}
			run_one(st, r);
			if (!st->open_tx) {
				list = take_later(st, list);
				if (st->in_batch &&
				    (st->batch_n >= st->cfg.max_batch ||
				     clock_mono_ms() - st->batch_started >= st->cfg.max_batch_ms))
					batch_commit(st);
			}
		}
		if (!st->open_tx)
			batch_commit(st);
	}
	batch_commit(st);
	return NULL;
}

/* ---- the loop side --------------------------------------------------------------- */

static void on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_req *r, *next;
	uint64_t n;

	(void)what;
	if (fd >= 0 && read(fd, &n, sizeof n) < 0) {
		/* EAGAIN: a spurious wake */
	}
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

void store_poll(void *arg)
{
	struct store *st = arg;

	if (__atomic_load_n(&st->has_answers, __ATOMIC_ACQUIRE))
		on_answers(-1, 0, st);
}

void store_submit_writer(struct store *st, struct store_req *r)
{
	int stopping;

	r->next = NULL;
	pthread_mutex_lock(&st->mu);
	stopping = st->stopping;
	if (!stopping) {
		if (st->queue_tail)
			st->queue_tail->next = r;
		else /* atomic: the store thread's spin reads it without the lock */
			__atomic_store_n(&st->queue, r, __ATOMIC_RELEASE);
		st->queue_tail = r;
		pthread_cond_signal(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
	if (stopping) {
		store_fail(r, "stopping", "the store is closing");
		answer(st, r);
	}
}

void store_submit(struct store *st, struct store_req *r)
{
	st->pending++;
	if (r->op == STORE_SQL && r->tx == 0 && st->nreaders > 0)
		store_read_submit(st, r); /* a read runs there; a write comes back to the writer */
	else
		store_submit_writer(st, r);
}

/* ---- opening and closing ------------------------------------------------------------- */

struct store *store_open(struct event_base *base, const struct store_config *cfg, int64_t *requeued,
                         char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof *st);

	if (!st) {
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	st->cfg = *cfg;
	st->w.st = st;
	st->lock_fd = -1;
	st->efd = -1;
	st->wal_fd = -1;
	st->path = strdup(cfg->path);
	st->migrations_dir = strdup(cfg->migrations_dir);
	st->synchronous = strdup(cfg->synchronous);
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_mutex_init(&st->fmu, NULL);
	pthread_cond_init(&st->fcv, NULL);
	pthread_mutex_init(&st->rmu, NULL);
	pthread_cond_init(&st->rcv, NULL);
	if (!st->path || !st->migrations_dir || !st->synchronous) {
		errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	if (store_open_db(st, requeued, err, errlen) < 0)
		goto fail;
	if (strcmp(st->synchronous, "full") == 0 && store_flush_start(st, err, errlen) < 0)
		goto fail;
	if (store_read_start(st, err, errlen) < 0)
		goto fail;
	st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	st->ev =
	    st->efd >= 0 ? event_new(base, st->efd, EV_READ | EV_PERSIST, on_answers, st) : NULL;
	if (!st->ev || event_add(st->ev, NULL) < 0) {
		errbuf_set(err, errlen, "the store's wake-up: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&st->thread, NULL, store_main, st) != 0) {
		errbuf_set(err, errlen, "starting the store thread: %s", strerror(errno));
		goto fail;
	}
	st->thread_on = 1;
	return st;
fail:
	store_close(st);
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_read_stop(st); /* first: a read may still hand a write on to the writer */
	if (st->thread_on) {
		pthread_mutex_lock(&st->mu);
		st->stopping = 1;
		pthread_cond_signal(&st->cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->thread, NULL);
	}
	store_flush_stop(st); /* after the writer: it syncs what the last commit handed it */
	if (st->thread_on) {
		/* the last answers: their owners release what they hold */
		while (st->answered)
			on_answers(st->efd, 0, st);
	}
	if (st->ev)
		event_free(st->ev);
	if (st->efd >= 0)
		close(st->efd);
	store_conn_close(&st->w);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->cv);
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
