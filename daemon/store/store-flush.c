/*
 * store-flush.c: making commits durable off the writer (synchronous = full).
 *
 * The writer (the store thread) commits each batch with SQLite's
 * synchronous = NORMAL: in WAL mode the COMMIT appends the batch's frames
 * to the WAL with write() and does not fsync. It then hands the batch's
 * answers to the flusher thread here, and goes on executing the next
 * batch. The flusher fdatasync()s the WAL file and only then releases the
 * answers of every batch committed before that sync began: group commit
 * as PostgreSQL's WAL writer does it, batch N+1 executing while batch N
 * syncs, one fsync for all the batches that queued behind a slow one.
 *
 * Why this is as durable as synchronous = FULL: fdatasync on any
 * descriptor of a file flushes all of its written data (Linux writes back
 * the inode, not the descriptor), so a sync that starts after a COMMIT
 * returned covers that commit's frames. WAL frames carry a running
 * checksum, so recovery after a crash keeps a prefix of the commits:
 * a batch that is on disk has every batch before it on disk too. And
 * SQLite with synchronous = NORMAL in WAL mode still syncs the WAL before
 * a checkpoint copies it into the database, and the database after
 * (SQLite's documentation of PRAGMA synchronous). A failed fdatasync cannot be retried safely
 * (Linux may have dropped the dirty pages and report success next time), so, as PostgreSQL does,
 * the daemon stops at once; nothing it had not yet answered was acknowledged, and recovery at the
 * next start keeps what is on disk.
 *
 * Threads: `fmu` guards `fq`, `fq_tail` and `fstop`; the flusher alone
 * uses `wal_fd` once started.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"
#include "store-int.h"

static void *flush_main(void *arg)
{
	struct store *st = arg;

	for (;;) {
		struct store_req *list;
		int stop;

		pthread_mutex_lock(&st->fmu);
		while (!st->fq && !st->fstop)
			pthread_cond_wait(&st->fcv, &st->fmu);
		list = st->fq;
		st->fq = st->fq_tail = NULL;
		stop = st->fstop;
		pthread_mutex_unlock(&st->fmu);
		if (!list) {
			if (stop)
				break;
			continue;
		}
		if (fdatasync(st->wal_fd) < 0) {
			/* not the log: its sink belongs to the loop thread */
			fprintf(stderr,
			        "ERROR %s-wal: fdatasync failed: %s; the commits after the last "
			        "good sync cannot be made durable, so awaitd stops now (nothing "
			        "unsynced was acknowledged; the next start recovers what is on "
			        "disk)\n",
			        st->path, strerror(errno));
			_exit(74); /* EX_IOERR */
		}
		pthread_mutex_lock(&st->mu);
		st->stats.syncs++;
		pthread_mutex_unlock(&st->mu);
		store_answer_list(st, list);
	}
	return NULL;
}

int store_flush_start(struct store *st, char *err, size_t errlen)
{
	size_t n = strlen(st->path) + sizeof "-wal";
	char *wal = malloc(n);

	if (!wal) {
		errbuf_set(err, errlen, "out of memory");
		return -1;
	}
	snprintf(wal, n, "%s-wal", st->path);
	/* WAL mode is on and the epoch was committed: the file exists and stays while we are open
	 */
	st->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
	if (st->wal_fd < 0) {
		errbuf_set(err, errlen, "%s: %s", wal, strerror(errno));
		free(wal);
		return -1;
	}
	free(wal);
	/* what opening committed (migrations, the new epoch) is durable before anything runs */
	if (fdatasync(st->wal_fd) < 0) {
		errbuf_set(err, errlen, "%s-wal: fdatasync: %s", st->path, strerror(errno));
		return -1;
	}
	if (pthread_create(&st->fthread, NULL, flush_main, st) != 0) {
		errbuf_set(err, errlen, "starting the flusher thread: %s", strerror(errno));
		return -1;
	}
	st->fthread_on = 1;
	return 0;
}

void store_flush_hand(struct store *st, struct store_req *head)
{
	struct store_req *tail = head;

	if (!head)
		return;
	while (tail->next)
		tail = tail->next;
	pthread_mutex_lock(&st->fmu);
	if (st->fq_tail)
		st->fq_tail->next = head;
	else
		st->fq = head;
	st->fq_tail = tail;
	pthread_cond_signal(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

void store_flush_stop(struct store *st)
{
	if (st->fthread_on) {
		pthread_mutex_lock(&st->fmu);
		st->fstop = 1;
		pthread_cond_signal(&st->fcv);
		pthread_mutex_unlock(&st->fmu);
		pthread_join(st->fthread, NULL);
		st->fthread_on = 0;
	}
	if (st->wal_fd >= 0)
		close(st->wal_fd);
	st->wal_fd = -1;
}
