/*
 * store-flush.c: making commits durable off the writer (synchronous = full),
 * and checkpoints.
 *
 * The writer (on the loop thread) commits each batch with SQLite's
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
 * Checkpoints: the writer's WAL hook replaces SQLite's autocheckpoint, so
 * a commit on the loop never runs one (a checkpoint fsyncs the WAL and the
 * database). Once the WAL holds CKPT_FRAMES pages the hook asks the
 * flusher, which checkpoints PASSIVE on a connection of its own: it copies
 * what no reader still needs and never waits for the writer. The writer
 * starts the WAL over from its beginning once a checkpoint has copied all
 * of it. The flusher runs in every synchronous mode for this; it syncs
 * (and holds answers) only with synchronous = full.
 *
 * Threads: `fmu` guards `fq`, `fq_tail`, `fstop` and `ckpt_frames`; the
 * flusher alone uses `wal_fd` and its connection once started.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "errbuf.h"
#include "store-int.h"

static void checkpoint(struct sqlstore *st)
{
	int log = 0, done = 0;

	/* PASSIVE: copies what it can without waiting for the writer or any reader */
	if (sqlite3_wal_checkpoint_v2(st->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
	    SQLITE_OK) {
		pthread_mutex_lock(&st->mu);
		st->stats.checkpoints++;
		pthread_mutex_unlock(&st->mu);
	}
}

static void *flush_main(void *arg)
{
	struct sqlstore *st = arg;

	for (;;) {
		struct store_req *list;
		int stop, ckpt;

		pthread_mutex_lock(&st->fmu);
		while (!st->fq && !st->fstop && !st->ckpt_frames)
			pthread_cond_wait(&st->fcv, &st->fmu);
		list = st->fq;
		st->fq = st->fq_tail = NULL;
		stop = st->fstop;
		ckpt = st->ckpt_frames;
		st->ckpt_frames = 0;
		pthread_mutex_unlock(&st->fmu);
		if (list) {
			double t0 = clock_mono_ms();
			if (fdatasync(st->wal_fd) < 0) {
				/* not the log: its sink belongs to the loop thread */
				fprintf(
				    stderr,
				    "ERROR %s-wal: fdatasync failed: %s; the commits after the "
				    "last good sync cannot be made durable, so awaitd stops now "
				    "(nothing unsynced was acknowledged; the next start recovers "
				    "what is on disk)\n",
				    st->path, strerror(errno));
				_exit(74); /* EX_IOERR */
			}
			pthread_mutex_lock(&st->mu);
			st->stats.syncs++;
			histo_observe(&st->stats.fsync, (clock_mono_ms() - t0) / 1000);
			pthread_mutex_unlock(&st->mu);
			store_answer_list(st, list);
		}
		if (ckpt)
			checkpoint(st);
		if (!list && !ckpt && stop)
			break;
	}
	return NULL;
}

/* The writer's WAL hook (loop thread, after each commit): time to checkpoint? */
static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sqlstore *st = arg;

	(void)db;
	(void)name;
	if (frames >= CKPT_FRAMES) {
		pthread_mutex_lock(&st->fmu);
		st->ckpt_frames = frames;
		pthread_cond_signal(&st->fcv);
		pthread_mutex_unlock(&st->fmu);
	}
	return SQLITE_OK;
}

int store_flush_start(struct sqlstore *st, char *err, size_t errlen)
{
	char sql[64];

	if (store_conn_open(&st->ck, st->path, err, errlen) < 0)
		return -1;
	snprintf(sql, sizeof sql, "PRAGMA synchronous = %s",
	         strcmp(st->synchronous, "full") == 0 ? "normal" : st->synchronous);
	if (sqlite3_exec(st->ck.db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		errbuf_set(err, errlen, "%s: the checkpointer: %s", st->path,
		           sqlite3_errmsg(st->ck.db));
		return -1;
	}
	if (strcmp(st->synchronous, "full") == 0) {
		size_t n = strlen(st->path) + sizeof "-wal";
		char *wal = malloc(n);
		if (!wal) {
			errbuf_set(err, errlen, "out of memory");
			return -1;
		}
		snprintf(wal, n, "%s-wal", st->path);
		/* WAL mode is on and the epoch committed: the file exists and stays while we are
		 * open */
		st->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
		if (st->wal_fd < 0) {
			errbuf_set(err, errlen, "%s: %s", wal, strerror(errno));
			free(wal);
			return -1;
		}
		free(wal);
		/* what opening committed (migrations, the new epoch) is durable before anything
		 * runs */
		if (fdatasync(st->wal_fd) < 0) {
			errbuf_set(err, errlen, "%s-wal: fdatasync: %s", st->path, strerror(errno));
			return -1;
		}
	}
	if (pthread_create(&st->fthread, NULL, flush_main, st) != 0) {
		errbuf_set(err, errlen, "starting the flusher thread: %s", strerror(errno));
		return -1;
	}
	st->fthread_on = 1;
	/* from now on the writer never checkpoints: its commits never wait on an fsync */
	sqlite3_wal_hook(st->w.db, on_wal, st);
	return 0;
}

void store_flush_hand(struct sqlstore *st, struct store_req *head)
{
	if (!head)
		return;
	pthread_mutex_lock(&st->fmu);
	store_list_append(&st->fq, &st->fq_tail, head);
	pthread_cond_signal(&st->fcv);
	pthread_mutex_unlock(&st->fmu);
}

void store_flush_stop(struct sqlstore *st)
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
	store_conn_close(&st->ck);
}
