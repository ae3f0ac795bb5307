/*
 * jobs-int.h: what the files of the job engine share, and nothing outside
 * daemon/jobs/ may include: the engine's state (struct jobs), its
 * concurrency slots and its runs, and the functions one file calls in
 * another. jobs.c owns the engine's life; jobs-claim.c claims; jobs-run.c runs one
 * attempt and records its outcome; jobs-schedule.c fires the scripts'
 * schedules; jobs-wait.c answers waiters; jobs-json.c shows a job;
 * jobs-stats.c counts; jobs-progress.c keeps a run's ctx.progress.
 *
 * Everything here runs on the loop. A run is in j->runs from its claim's
 * answer until its FINISH (or REQUEUE) is durable; its slot's running
 * count drops as soon as the attempt has ended.
 */
#ifndef AWAITD_JOBS_INT_H
#define AWAITD_JOBS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/time.h>

#include <event2/util.h>
#include <lua.h>

#include "histo.h"
#include "jobs.h"
#include "store.h"

#define RETRY_STORE_MS 1000 /* a FINISH the store could not record is tried again */
#define NLAT           4096 /* latencies kept for percentiles */
#define PCT_EVERY_MS   1000 /* their percentiles computed again at most this often */

struct schedule;
struct script;
struct waiter;
struct sched_timer;

/* why a run's tree was cancelled; CANCEL_PARK: it parks at a durable wait */
enum cancel_why { CANCEL_NONE, CANCEL_REQUEST, CANCEL_SHUTDOWN, CANCEL_PARK };

struct slot {
	char *name;
	int running;     /* attempts of this name in runs */
	int claiming;    /* a CLAIM is in flight */
	int idle;        /* its last claim found nothing ready: not asked again until
	                  * something may be (an enqueue of it, a retry, a timer) */
	uint64_t wakes;  /* +1 at each wake: a claim sent before one cannot idle it */
	uint64_t claims; /* CLAIMs sent for it */
	double due_at;   /* ms, monotonic: when its next delayed job, rate window or
	                  * busy limit lock comes due (poll_ev wakes it alone); 0: none */
	/* attempts of this name ended in each state (FINISH: succeeded, failed (to be
	 * retried), dead, cancelled, waiting (parked)); queued: requeued unfinished */
	uint64_t ended[STORE_NSTATES];
	struct histo duration; /* seconds per attempt that ended (not parked nor requeued) */
};

struct run {
	struct jobs *j;
	int64_t id, lease, attempt, max_attempts, backoff_ms;
	char *name;
	struct task *root; /* NULL once settled */
	int root_ref;      /* registry ref keeping root's handle while it runs */
	struct trace *trace;
	enum cancel_why cancel;
	uint64_t serial;    /* unique in this engine: what the runner names its run by */
	int resumed;        /* it continues an attempt that waited (a REQUEUE keeps it waiting) */
	int cancel_parked;  /* `cancel` came while it parked: cancel the waiting job after */
	int64_t park_seq;   /* CANCEL_PARK: the wait's step, */
	char *park_for;     /* the signal's name (NULL: a sleep) */
	int64_t park_until; /* and its deadline (0: none) */
	double started;     /* ms, monotonic */
	int64_t started_at; /* ms, wall */
	int64_t run_at;     /* ms, wall: when it became ready */
	double t0_offset;   /* ms between the job's first start and this attempt's */
	struct store_req *pending; /* FINISH/REQUEUE waiting to be retried */
	/* ctx.progress (jobs-progress.c): the latest, whether it waits to be written,
	 * when the last write was (ms, monotonic), the timer of the next */
	double progress;
	char *progress_msg;
	int progress_dirty, progress_armed;
	int ended; /* its runner called finish: progress is no longer taken */
	double progress_at;
	struct sched_timer *progress_timer;
	struct sched_timer *retry;
	struct run *prev, *next;
};

struct jobs {
	struct jobs_env env;
	struct store *st;
	lua_State *L;
	int runner_ref;
	struct slot *slots;
	size_t nslots;
	struct run *runs;
	size_t nruns;
	struct waiter *waiters;      /* jobs-wait.c's */
	uint64_t done_seen;          /* outcomes seen (jobs_wait_wake): a read out re-reads */
	struct schedule *schedules;  /* jobs-schedule.c's */
	struct event *kick_ev;       /* zero-timeout: coalesces dispatches */
	struct sched_timer *poll_ev; /* (sched timers: virtual time under `awaitd test`) */
	double poll_at;              /* ms, monotonic: when poll_ev fires next */
	double safety_at;            /* ms, monotonic: the next safety poll (wakes every name) */
	struct sched_timer *prune_ev;
	int kicked;
	int started;
	int draining;
	int closing;
	uint64_t rng;
	/* stats */
	uint64_t completed, failed, retried, dead, cancelled, requeued, parked;
	uint64_t next_serial;
	double lat[NLAT], wait[NLAT];
	size_t nlat;
	json_t *pct[2];  /* jobs-stats.c: the percentiles of lat and wait, as computed */
	size_t pct_nlat; /* ... when nlat was this */
	double pct_at;   /* ... at this time (ms, monotonic) */
};

/* ---- jobs.c ---- */

/*
 * A script's backoff as the int64 ms a job row keeps (bounded by
 * ENQUEUE_MAX_DELAY_MS).
 */
int64_t jobs_backoff_ms(const struct script *s);

/* ms (negative: 0) as a timeval for event_add. */
struct timeval jobs_tv_ms(double ms);

/* Is state one a job does not leave (succeeded, dead, cancelled)? NULL is not. */
int jobs_final_state(const char *state);

/* The slot of name, made on first use; NULL when memory runs out. */
struct slot *jobs_slot_get(struct jobs *j, const char *name);

/* ---- jobs-claim.c ---- */

/* Dispatch on a later turn (coalesced); not before the start nor while draining. */
void jobs_dispatch_soon(struct jobs *j);

/* Jobs of name may be ready: wake its slot and dispatch soon. */
void jobs_wake_name(struct jobs *j, const char *name);

/* The store's wake (store_set_wake): another daemon announced work or outcomes. */
void jobs_woken(void *arg, enum store_wake what, const char *payload);

/* kick_ev's callback: dispatch. */
void jobs_kick_cb(evutil_socket_t fd, short what, void *arg);

/* poll_ev's callback: wake the slots that came due (all at a safety poll), dispatch. */
void jobs_poll_cb(void *arg);

/* Arm poll_ev for the first safety poll (at the engine's start). */
void jobs_poll_start(struct jobs *j);

/* ---- jobs-run.c ---- */

/*
 * Start an attempt of job, just claimed: the run joins j->runs and takes
 * a slot of its name. An attempt that cannot start (draining, no loaded
 * script, bad args) is finished at once; without memory the job is left
 * leased and runs again after a restart.
 */
void jobs_run_start(struct jobs *j, const struct store_job *job);

/* Unlink run from its engine and free it (its Lua refs are released already). */
void jobs_run_free(struct run *run);

/* Protected (1: the engine, light): load jobrun.lua with its primitives; leaves the runner. */
int jobs_run_load(lua_State *L);

/* The run of serial in j, or NULL when it has ended. */
struct run *jobs_run_of(struct jobs *j, uint64_t serial);

/* ---- jobs-keys.c ---- */

/*
 * The job's value of each of s's limits and of its fair_by field into
 * r->limit_keys and r->fair_key, from its args (r->text). 0, or -1 with
 * err (invalid: a value that is not a string or a number, a `by` function
 * that failed).
 */
int jobs_job_keys(struct jobs *j, const struct script *s, struct store_req *r,
                  struct store_err *err);

/* ---- jobs-stats.c ---- */

/* An attempt of run ended: its latency and queue wait join the percentiles. */
void jobs_record_latency(struct jobs *j, const struct run *run);

/* The per-script figures of an attempt whose end r recorded, ms after its start. */
void jobs_slot_count(struct slot *sl, const struct store_req *r, double ms);

/* ---- jobs-progress.c ---- */

/* Lua (upvalue 1: the engine): progress(serial, fraction, message|nil) -> recorded. */
int jobs_progress_l(lua_State *L);

/* The attempt ends: write its pending progress now (before its outcome). */
void jobs_progress_flush(struct run *run);

/* Free run's progress (its timer, before the scheduler goes; its message). */
void jobs_progress_free(struct run *run);

/* ---- jobs-schedule.c ---- */

/* (Re)build the schedules from the loaded scripts (frees the old ones). */
void jobs_schedule_load(struct jobs *j);

/* Stop every schedule's timer (the drain). */
void jobs_schedule_stop(struct jobs *j);

/* Free every schedule. */
void jobs_schedule_free(struct jobs *j);

/* ---- jobs-wait.c ---- */

/*
 * Job id reached a final state (here, or another daemon said so): hand its
 * waiters to the store to read it; a waiter whose read is in flight reads
 * again (it may have read the job before that outcome).
 */
void jobs_wait_wake(struct jobs *j, int64_t id);

/* r (FINISH, CANCEL) settled jobs that waited for its job (r->deps): claim and answer them. */
void jobs_deps_changed(struct jobs *j, const struct store_req *r);

/* Job id's progress was recorded: tell its waiters that asked (jobs_wait_watch). */
void jobs_wait_progressed(struct jobs *j, int64_t id, double fraction, const char *message);

#endif
