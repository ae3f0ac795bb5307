/*
 * store-read.c: application reads outside a transaction (db:query,
 * db:one, db:exec of a SELECT) on reader connections, each on a thread of
 * its own, so that a long analytical read holds up neither the writer nor
 * the job transitions behind it (WAL lets readers run beside the writer).
 *
 * Each STORE_SQL request with no user transaction goes to the readers'
 * queue first. A reader prepares it under the same authorizer as the
 * writer (the boundary of store-sql.c holds here too) and runs it when
 * SQLite says the statement cannot write (sqlite3_stmt_readonly); any
 * other statement is handed on to the writer's queue unchanged. A reader
 * sees the database as last committed. Its answer leaves the same way as
 * the writer's: with synchronous = full through the flusher, so what it
 * read is on disk before a task sees it (the next fdatasync covers every
 * commit the read could have seen); otherwise at once.
 *
 * Readers stop their statement at its deadline, when its waiter is gone,
 * and when the store closes. Threads: `rmu` guards `rq`, `rq_tail` and
 * `rstop`; each reader's connection belongs to its thread alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "store-int.h"

static void *read_main(void *arg)
{
	struct store_conn *c = arg;
	struct sqlstore *st = c->st;

	for (;;) {
		struct store_req *r;

		pthread_mutex_lock(&st->rmu);
		while (!st->rq && !st->rstop)
			pthread_cond_wait(&st->rcv, &st->rmu);
		r = store_list_pop(&st->rq, &st->rq_tail);
		pthread_mutex_unlock(&st->rmu);
		if (!r)
			break; /* stopping, and nothing is left */
		if (__atomic_load_n(&st->rstop, __ATOMIC_RELAXED))
			store_fail(r, "stopping", "the store is closing");
		else if (store_run_sql(c, r) > 0) {
			store_hand_to_writer(st, r); /* it may write: the writer runs it */
			continue;
		}
		pthread_mutex_lock(&st->mu);
		st->stats.reads++;
		pthread_mutex_unlock(&st->mu);
		r->next = NULL;
		if (st->wal_fd >= 0)
			store_flush_hand(st, r);
		else
			store_answer_list(st, r);
	}
	return NULL;
}

int store_read_start(struct sqlstore *st, char *err, size_t errlen)
{
	for (int i = 0; i < STORE_READERS; i++) {
		struct store_conn *c = &st->readers[i];
		c->st = st;
		c->reader = 1;
		if (store_conn_open(c, st->path, err, errlen) < 0)
			return -1;
		if (sqlite3_exec(c->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
			errbuf_set(err, errlen, "%s: a reader: %s", st->path,
			           sqlite3_errmsg(c->db));
			return -1;
		}
		if (pthread_create(&st->rthreads[i], NULL, read_main, c) != 0) {
			errbuf_set(err, errlen, "starting a reader thread: %s", strerror(errno));
			return -1;
		}
		st->nreaders++;
	}
	return 0;
}

void store_read_submit(struct sqlstore *st, struct store_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&st->rmu);
	store_list_append(&st->rq, &st->rq_tail, r);
	pthread_cond_signal(&st->rcv);
	pthread_mutex_unlock(&st->rmu);
}

void store_read_stop(struct sqlstore *st)
{
	pthread_mutex_lock(&st->rmu);
	__atomic_store_n(&st->rstop, 1, __ATOMIC_RELAXED); /* the progress handlers read it */
	pthread_cond_broadcast(&st->rcv);
	pthread_mutex_unlock(&st->rmu);
	for (int i = 0; i < st->nreaders; i++)
		pthread_join(st->rthreads[i], NULL);
	st->nreaders = 0;
	for (int i = 0; i < STORE_READERS; i++)
		store_conn_close(&st->readers[i]);
}
