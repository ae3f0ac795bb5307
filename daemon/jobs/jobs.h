/*
 * jobs.h: the job engine (SPEC section 4): claims ready jobs from the
 * store within each script's concurrency, runs each attempt as a task,
 * records its outcome (retry with backoff, dead, cancelled, requeued on
 * shutdown), fires cron schedules, prunes old jobs, and tells waiters
 * when a job is finished.
 *
 * Everything here runs on the loop; the store answers through callbacks.
 * A run is in `runs` from its claim's answer until its FINISH (or REQUEUE)
 * is durable, so `jobs_running() == 0` means nothing is left to record;
 * its concurrency slot is free as soon as the attempt has ended.
 *
 * Part jobs (daemon/jobs/): the job engine, job scripts and their sandboxes,
 * cron strings. It may call bindings, store, runtime and
 * base; the control plane and the service call it.
 */
#ifndef AWAITD_JOBS_H
#define AWAITD_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct sched;
struct scripts;
struct store;
struct store_req;
struct store_job;
struct store_err;

struct jobs;

/*
 * What the engine runs on, filled by its owner (the service). The
 * pointers are borrowed and outlive the engine; scripts is read at every
 * claim, so a reload's new versions are used from then on.
 */
struct jobs_env {
	struct event_base *base;
	struct sched *s;
	struct scripts *scripts;
	double keep_jobs_ms;     /* finished jobs are pruned after this; 0 = never */
	size_t max_result_bytes; /* a result's or a step's JSON */
	size_t max_args_bytes;   /* args' JSON at enqueue */
};

/*
 * The engine on env (copied) and st: loads the job runner into env->s's
 * Lua state and registers st for ctx.db and jobs.*. Nothing runs until
 * jobs_start. NULL with err on failure.
 */
struct jobs *jobs_new(const struct jobs_env *env, struct store *st, char *err, size_t errlen);

/* Start claiming, the schedules and the pruning. */
void jobs_start(struct jobs *j);

/* Jobs of any name may be ready (a retry, a cancel, a reload): claim soon. */
void jobs_kick(struct jobs *j);

/* The scripts were reloaded: re-read schedules and limits. */
void jobs_reloaded(struct jobs *j);

/* Stop claiming (drain). Running attempts go on. */
void jobs_drain(struct jobs *j);

/* Shutdown time is up: cancel every running attempt; each is requeued. */
void jobs_cancel_all(struct jobs *j);

/* Attempts running or not yet recorded. */
size_t jobs_running(const struct jobs *j);

/*
 * Enqueue r (STORE_ENQUEUE with name, text, key, run_at, priority,
 * timeout_ms set by the caller; attempts and backoff come from the
 * script), and claim soon. Returns 0 (r->done runs when the job is durable), or -1 with
 * err filled (no_such_script, invalid, stopping, too_large: args JSON over
 * max_args_bytes) and r untouched.
 */
int jobs_enqueue(struct jobs *j, struct store_req *r, struct store_err *err);

/* Longest signal name, in bytes. */
#define JOBS_SIGNAL_NAME_MAX 200

/*
 * Send the signal r->name (text: its payload as JSON, NULL for null) to
 * job r->id: checks the name (1..JOBS_SIGNAL_NAME_MAX bytes) and the
 * payload's size (max_args_bytes), then submits r as STORE_SIGNAL.
 * Returns 0 (r->done runs when it is durable: the caller then calls
 * jobs_signalled), or -1 with err filled (invalid, too_large, stopping)
 * and r untouched.
 */
int jobs_signal(struct jobs *j, struct store_req *r, struct store_err *err);

/* Longest pause key, in bytes (the longest timed pause: STORE_PAUSE_MAX_MS). */
#define JOBS_PAUSE_KEY_MAX 200

/*
 * Pause (r->flag 1) or resume (0) script r->name, or only its jobs one of
 * whose limit values is r->key (NULL: the whole script); a pause ends by
 * itself at r->run_at (epoch ms; 0: when resumed). Checks the name (a
 * script there is) and the key, then submits r as STORE_PAUSE. Returns 0
 * (r->done runs when it is durable: the caller then calls jobs_paused),
 * or -1 with err filled and r untouched.
 */
int jobs_pause(struct jobs *j, struct store_req *r, struct store_err *err);

/* Fill r's limit_caps, rates and pers from script s's limits (NULL: none). */
struct script;
void jobs_script_limits(const struct script *s, struct store_req *r);

/* A STORE_PAUSE was answered: a resumed script's jobs are claimed soon. */
void jobs_paused(struct jobs *j, const struct store_req *r);

/* A STORE_SIGNAL was answered: a job that waited for it is claimed soon. */
void jobs_signalled(struct jobs *j, const struct store_req *r);

/*
 * Why a STORE_SIGNAL answered without error stored nothing: code
 * ("no_such_job" or "finished") and message into the buffers; 0 when it
 * was stored.
 */
int jobs_signal_refused(const struct store_req *r, char *code, size_t codelen, char *msg,
                        size_t msglen);

/*
 * r is a STORE_GET of r->id with done/arg set: it is answered once the
 * job is succeeded, dead or cancelled (or does not exist). ud: the jobs.
 */
void jobs_wait(struct store_req *r, void *ud);

/* Told of a job's progress: its fraction (0..1) and message (NULL: none). */
typedef void jobs_progress_fn(void *arg, double fraction, const char *message);

/*
 * jobs_wait, and while r waits fn(arg, ...) runs with the job's progress
 * as stored when the wait begins (if any) and each time a new one is
 * recorded. fn must not withdraw r.
 */
void jobs_wait_watch(struct store_req *r, void *ud, jobs_progress_fn *fn, void *arg);

/* Take back a waiting r (1: taken, the caller owns it; 0: with the store). */
int jobs_withdraw(struct store_req *r, void *ud);

/*
 * Job r->id was made final outside the engine (a queued job cancelled in
 * the store, r that request): its waiters are answered, and the jobs that
 * waited for it (r->deps) are claimed or answered too.
 */
void jobs_finished(struct jobs *j, const struct store_req *r);

/* Cancel the running attempt of job id here (1) or say it does not run here (0). */
int jobs_cancel_running(struct jobs *j, int64_t id);

/*
 * The job as the protocol's JSON object (store.h's row). Args, result and
 * error whose stored JSON is longer than max_value bytes are shown as a
 * preview (clip.h) with "args_truncated"/"result_truncated": true and
 * "args_bytes"/"result_bytes" (an error gets "truncated" and "bytes"), so
 * that no stored value can make a response too big; SIZE_MAX shows all.
 */
json_t *jobs_job_json(const struct store_job *job, size_t max_value);

/* Bytes of a stored value a list view (`jobs`) shows, at most. */
#define JOBS_LIST_PREVIEW 200

/* Errors longer than this are not parsed for jobs_job_failure's message. */
#define JOBS_FAILURE_PARSE_MAX (64 * 1024)

/* Longest error message stored for an attempt; longer ones are cut, with their size. */
#define JOBS_ERROR_MESSAGE_MAX (16 * 1024)

/*
 * Why a finished job did not succeed: code (its error's, else its state)
 * and "job N STATE: message", into the caller's buffers.
 */
void jobs_job_failure(const struct store_job *job, char *code, size_t codelen, char *msg,
                      size_t msglen);

/* Counters and latency percentiles for `stats`. New reference. */
json_t *jobs_stats_json(struct jobs *j);

/* Answer every waiter with "stopping" (before the control server closes). */
void jobs_fail_waiters(struct jobs *j);

/* Release the engine's Lua references (before the Lua state closes). */
void jobs_close_lua(struct jobs *j);

/* Free the engine (after the store is closed). NULL is a no-op. */
void jobs_free(struct jobs *j);

#endif
