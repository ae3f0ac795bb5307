/*
 * cmd.h: the control commands, one per file (cmd-<name>.c, tmux style),
 * found by name in the table of cmd.c.
 *
 * A command answers with conn_ok/conn_error on ctx->c, now or later (it
 * then holds the connection with conn_hold and releases it after its
 * reply). ctx is valid only during the call; args is borrowed.
 *
 * Part control (daemon/control/): the control socket (listening, peer
 * credentials, socket activation), the wire protocol, the server and one
 * file per command. It may call jobs, store, runtime and base; the service
 * wires it, and gives the commands what they may use as a struct cmd_env.
 */
#ifndef AWAITD_CMD_H
#define AWAITD_CMD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct conn;
struct event_base;
struct jobs;
struct logbook;
struct proto_request;
struct sched;
struct scripts;
struct server;
struct store;

/*
 * What the commands may read and do, filled by the service, which owns
 * everything behind the pointers: the commands never see the daemon's
 * own struct. reload and drain are the service's (svc their argument).
 */
struct loopwatch;

struct cmd_env {
	struct event_base *base;
	struct sched *s;
	struct store *st;
	struct jobs *jobs;
	struct scripts *scripts;
	struct server *srv;
	struct logbook *logs;
	const char *db_path;
	size_t output_cap;     /* bytes of one response */
	double started_mono;   /* ms, monotonic: when the daemon started */
	const int *draining;   /* the service's: a graceful stop is under way */
	const uint64_t *reloads;
	int (*reload)(void *svc, const char *why); /* scripts that failed to load */
	void (*drain)(void *svc, const char *why);
	json_t *(*workers)(void *svc); /* the worker pool's figures, a new object */
	const struct loopwatch *loop;  /* the loop's lag (NULL: not watched) */
	void *svc;
};

struct cmd_ctx {
	const struct cmd_env *env;
	struct conn *c;
	json_int_t id;
	int has_id;
	json_t *args; /* an object, possibly empty */
};

struct cmd_entry {
	const char *name;
	void (*fn)(struct cmd_ctx *ctx);
};

extern const struct cmd_entry cmd_ping_entry, cmd_version_entry, cmd_status_entry,
    cmd_scripts_entry, cmd_run_entry, cmd_reload_entry, cmd_logs_entry, cmd_stats_entry,
    cmd_shutdown_entry, cmd_enqueue_entry, cmd_jobs_entry, cmd_show_entry, cmd_wait_entry,
    cmd_cancel_entry, cmd_retry_entry, cmd_trace_entry, cmd_signal_entry, cmd_pause_entry,
    cmd_resume_entry;

#include "store.h"

/* A reply that comes later: the held connection and the request's id. */
struct cmd_later {
	const struct cmd_env *env;
	struct conn *c;
	json_int_t id;
	int has_id;
	void (*answer)(struct cmd_later *l, struct store_req *r); /* cmd_store's continuation */
	struct event *timer;                                      /* cmd_wait_job's timeout */
	struct store_req *r; /* cmd_wait_job's waiting request */
	int timed_out;
	int want_result; /* cmd_wait_job: reply with the result (run), not the job (wait) */
	int progress;    /* cmd_wait_job: send the job's progress as events */
	json_t *doc;     /* a reply built before a second store request (freed with l) */
};

/* Hold ctx's connection for a later reply. NULL (and an error reply) when out of memory. */
struct cmd_later *cmd_later_new(const struct cmd_ctx *ctx);

/* Release the connection and free l. */
void cmd_later_free(struct cmd_later *l);

/* Reply with r's error (code and message). */
void cmd_later_error(struct cmd_later *l, const struct store_req *r);

/*
 * The job of a store answer about one job (r->jobs[0]), or NULL after
 * replying with r's error or no_such_job ("no job ID").
 */
const struct store_job *cmd_later_job(struct cmd_later *l, const struct store_req *r);

/* args.id as a job id > 0, or -1 after an invalid_request reply. */
int64_t cmd_job_id(struct cmd_ctx *ctx);

/*
 * Send r to the store; answer(l, r) runs with the answer, then r and l
 * are freed. Replies "stopping" at once when the daemon has no store.
 */
void cmd_store(struct cmd_ctx *ctx, struct store_req *r,
               void (*answer)(struct cmd_later *l, struct store_req *r));

/* The store_done_fn behind cmd_store (r->arg: a cmd_later with answer set). */
void cmd_store_answered(struct store_req *r);

/*
 * Enqueue the job a request's args {name, args, key, delay, at, priority,
 * timeout} describe (priority, when not 0, overrides), answering with
 * answer(l, r) once it is durable; bad args and refusals are replied at
 * once (cmd-enqueue.c, also for `run`).
 */
void cmd_enqueue_start(struct cmd_ctx *ctx, int64_t priority,
                       void (*answer)(struct cmd_later *l, struct store_req *r));

/*
 * Hand r to one of the job engine's submits (jobs_enqueue, jobs_signal,
 * jobs_pause): answer(l, r) runs once it is durable, then r and l are
 * freed; a refusal (its err) is replied at once. Takes r.
 */
struct jobs;
void cmd_jobs_submit(struct cmd_ctx *ctx, struct store_req *r,
                     int (*submit)(struct jobs *j, struct store_req *r, struct store_err *err),
                     void (*answer)(struct cmd_later *l, struct store_req *r));

/* A second hold on l's connection and request, for a reply that comes later still. */
struct cmd_later *cmd_later_again(const struct cmd_later *l);

/*
 * The common job command: args.id, a request op (flag set) for it, and
 * answer(l, r) with the store's answer (cmd_store).
 */
void cmd_store_job(struct cmd_ctx *ctx, enum store_op op, int flag,
                   void (*answer)(struct cmd_later *l, struct store_req *r));

/*
 * Reply when job id is final (succeeded, dead, cancelled), or "timeout"
 * after timeout_ms (<= 0: none), or no_such_job. With want_result, a
 * success replies with the job's result and a failure with its error
 * (`run`); otherwise with the job object (`wait`). With l->progress set,
 * each progress of the job recorded meanwhile is sent as an event
 * {"progress": FRACTION, "message": TEXT}. Takes l.
 */
void cmd_wait_job(struct cmd_later *l, int64_t id, double timeout_ms, int want_result);

/*
 * Bytes of one stored value (args, result, error, a step's journal) that a
 * response shows whole: output_cap / 8, so a job's values together stay
 * well under one response's limit; longer ones are previewed (clip.h).
 */
size_t cmd_value_max(const struct cmd_env *env);

/* The command named name, or NULL. */
const struct cmd_entry *cmd_find(const char *name);

/* server_request_fn: dispatch a request to its command (arg: the struct cmd_env). */
void cmd_dispatch(struct conn *c, const struct proto_request *req, void *arg);

#endif
