/*
 * cmd.c: the command table and dispatch, and what the commands that
 * answer later share: a held connection (cmd_later), a store request
 * answered on the connection (cmd_store), waiting for a job to finish
 * (cmd_wait_job: `wait` and `run`).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clip.h"
#include "cmd.h"
#include "jobs.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "store.h"

static const struct cmd_entry *const table[] = {
    &cmd_ping_entry,     &cmd_version_entry, &cmd_status_entry, &cmd_scripts_entry,
    &cmd_run_entry,      &cmd_reload_entry,  &cmd_logs_entry,   &cmd_stats_entry,
    &cmd_shutdown_entry, &cmd_enqueue_entry, &cmd_jobs_entry,   &cmd_show_entry,
    &cmd_wait_entry,     &cmd_cancel_entry,  &cmd_retry_entry,  &cmd_trace_entry,
    &cmd_signal_entry,   &cmd_pause_entry,   &cmd_resume_entry,
};

const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

/* A hold on c for the reply to request id; NULL after an error reply when out of memory. */
static struct cmd_later *later_new(const struct cmd_env *env, struct conn *c, json_int_t id,
                                   int has_id)
{
	struct cmd_later *l = calloc(1, sizeof *l);

	if (!l) {
		conn_error(c, id, has_id, "out_of_memory", "out of memory");
		return NULL;
	}
	l->env = env;
	l->c = conn_hold(c);
	l->id = id;
	l->has_id = has_id;
	return l;
}

struct cmd_later *cmd_later_new(const struct cmd_ctx *ctx)
{
	return later_new(ctx->env, ctx->c, ctx->id, ctx->has_id);
}

struct cmd_later *cmd_later_again(const struct cmd_later *l)
{
	return later_new(l->env, l->c, l->id, l->has_id);
}

void cmd_later_free(struct cmd_later *l)
{
	if (!l)
		return;
	if (l->timer)
		event_free(l->timer);
	json_decref(l->doc);
	conn_release(l->c);
	free(l);
}

void cmd_later_error(struct cmd_later *l, const struct store_req *r)
{
	conn_error(l->c, l->id, l->has_id, r->err.code[0] ? r->err.code : "db", "%s", r->err.msg);
}

const struct store_job *cmd_later_job(struct cmd_later *l, const struct store_req *r)
{
	if (r->rc) {
		cmd_later_error(l, r);
		return NULL;
	}
	if (!r->njobs) {
		conn_error(l->c, l->id, l->has_id, "no_such_job", "no job %lld", (long long)r->id);
		return NULL;
	}
	return &r->jobs[0];
}

int64_t cmd_job_id(struct cmd_ctx *ctx)
{
	json_t *v = json_object_get(ctx->args, "id");

	if (json_is_integer(v) && json_integer_value(v) > 0)
		return json_integer_value(v);
	conn_error(ctx->c, ctx->id, ctx->has_id, "invalid_request",
	           "args.id must be a job id (an integer > 0)");
	return -1;
}

void cmd_store_answered(struct store_req *r)
{
	struct cmd_later *l = r->arg;

	l->answer(l, r);
	store_req_free(r);
	cmd_later_free(l);
}

/* Hold ctx's connection for r's answer (answer(l, r) then frees both); NULL: r freed. */
static struct cmd_later *hold_for(struct cmd_ctx *ctx, struct store_req *r,
                                  void (*answer)(struct cmd_later *l, struct store_req *r))
{
	struct cmd_later *l = cmd_later_new(ctx);

	if (!l) {
		store_req_free(r);
		return NULL;
	}
	l->answer = answer;
	r->done = cmd_store_answered;
	r->arg = l;
	return l;
}

void cmd_store(struct cmd_ctx *ctx, struct store_req *r,
               void (*answer)(struct cmd_later *l, struct store_req *r))
{
	if (hold_for(ctx, r, answer))
		store_submit(ctx->env->st, r);
}

void cmd_jobs_submit(struct cmd_ctx *ctx, struct store_req *r,
                     int (*submit)(struct jobs *j, struct store_req *r, struct store_err *err),
                     void (*answer)(struct cmd_later *l, struct store_req *r))
{
	struct cmd_later *l = hold_for(ctx, r, answer);
	struct store_err err;

	if (l && submit(ctx->env->jobs, r, &err) < 0) {
		conn_error(ctx->c, ctx->id, ctx->has_id, err.code, "%s", err.msg);
		store_req_free(r);
		cmd_later_free(l);
	}
}

void cmd_store_job(struct cmd_ctx *ctx, enum store_op op, int flag,
                   void (*answer)(struct cmd_later *l, struct store_req *r))
{
	int64_t id = cmd_job_id(ctx);
	struct store_req *r;

	if (id < 0)
		return;
	r = store_req_new(op);
	if (!r) {
		conn_error(ctx->c, ctx->id, ctx->has_id, "out_of_memory", "out of memory");
		return;
	}
	r->id = id;
	r->flag = flag;
	r->now = store_now();
	cmd_store(ctx, r, answer);
}

/* ---- waiting for a job ------------------------------------------------------------- */

static void reply_final(struct cmd_later *l, struct store_req *r)
{
	const struct store_job *job = cmd_later_job(l, r);
	char code[64], msg[512];
	json_t *v;

	if (!job)
		return;
	if (!l->want_result) {
		conn_ok(l->c, l->id, l->has_id, jobs_job_json(job, cmd_value_max(l->env)));
		return;
	}
	if (strcmp(job->state, "succeeded") == 0) {
		/* a result too big for a response (an old row) comes as its preview */
		int clipped;
		v = clip_json(job->result, cmd_value_max(l->env), &clipped);
		if (clipped)
			log_warn("job %lld: its result is %zu bytes, more than a response shows "
			         "(output_cap / 8): answered with a preview",
			         (long long)job->id, strlen(job->result));
		conn_ok(l->c, l->id, l->has_id, v ? v : json_null());
		return;
	}
	jobs_job_failure(job, code, sizeof code, msg, sizeof msg);
	conn_error(l->c, l->id, l->has_id, code, "%s", msg);
}

static void wait_answered(struct store_req *r)
{
	struct cmd_later *l = r->arg;

	if (l->timed_out)
		conn_error(l->c, l->id, l->has_id, "timeout", "job %lld is not finished yet",
		           (long long)r->id);
	else
		reply_final(l, r);
	store_req_free(r);
	cmd_later_free(l);
}

static void wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cmd_later *l = arg;

	(void)fd;
	(void)what;
	if (jobs_withdraw(l->r, l->env->jobs)) {
		conn_error(l->c, l->id, l->has_id, "timeout", "job %lld is not finished yet",
		           (long long)l->r->id);
		store_req_free(l->r);
		cmd_later_free(l);
		return;
	}
	l->timed_out = 1; /* the store has it: the answer replies */
}

static void wait_progress(void *arg, double fraction, const char *message)
{
	struct cmd_later *l = arg;

	conn_event(l->c, l->id, json_pack("{s:f, s:s?}", "progress", fraction, "message", message));
}

void cmd_wait_job(struct cmd_later *l, int64_t id, double timeout_ms, int want_result)
{
	struct store_req *r = store_req_new(STORE_GET);

	if (!r) {
		conn_error(l->c, l->id, l->has_id, "out_of_memory", "out of memory");
		cmd_later_free(l);
		return;
	}
	l->want_result = want_result;
	l->r = r;
	r->id = id;
	r->done = wait_answered;
	r->arg = l;
	if (timeout_ms > 0) {
		struct timeval tv;
		tv.tv_sec = (time_t)(timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)((timeout_ms - (double)tv.tv_sec * 1000) * 1000);
		l->timer = evtimer_new(l->env->base, wait_timeout, l);
		if (l->timer)
			evtimer_add(l->timer, &tv);
	}
	jobs_wait_watch(r, l->env->jobs, l->progress ? wait_progress : NULL, l);
}

void cmd_dispatch(struct conn *c, const struct proto_request *req, void *arg)
{
	const struct cmd_entry *e = cmd_find(req->cmd);
	struct cmd_ctx ctx;

	if (!e) {
		conn_error(c, req->id, req->has_id, "unknown_command", "no command '%s'", req->cmd);
		return;
	}
	ctx.env = arg;
	ctx.c = c;
	ctx.id = req->id;
	ctx.has_id = req->has_id;
	ctx.args = req->args;
	e->fn(&ctx);
}

size_t cmd_value_max(const struct cmd_env *env)
{
	return env->output_cap / 8;
}
