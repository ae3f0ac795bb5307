/*
 * jobs-json.c: a job as the protocol and the Lua jobs module show it
 * (jobs_job_json) and why a finished job did not succeed
 * (jobs_job_failure). Both only read a store_job row.
 *
 * No stored value can make a view too big: args, result and error longer
 * than the caller's bound are shown as a preview (clip.h), marked as
 * truncated with their full size.
 */
#include <stdio.h>
#include <string.h>

#include "clip.h"
#include "jobs.h"
#include "store.h"

static json_t *opt_int(int64_t v)
{
	return v ? json_integer(v) : json_null();
}

/* o.field = text as JSON, or its preview with field_truncated and field_bytes. */
static void set_clipped(json_t *o, const char *field, const char *text, size_t max)
{
	char name[32];
	int clipped;

	json_object_set_new(o, field, clip_json(text, max, &clipped));
	if (!clipped)
		return;
	snprintf(name, sizeof name, "%s_truncated", field);
	json_object_set_new(o, name, json_true());
	snprintf(name, sizeof name, "%s_bytes", field);
	json_object_set_new(o, name, json_integer((json_int_t)strlen(text)));
}

json_t *jobs_job_json(const struct store_job *job, size_t max_value)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_integer(job->id));
	json_object_set_new(o, "name", json_string(job->name ? job->name : ""));
	json_object_set_new(o, "state", json_string(job->state ? job->state : ""));
	set_clipped(o, "args", job->args, max_value);
	json_object_set_new(o, "key", job->key ? json_string(job->key) : json_null());
	json_object_set_new(o, "priority", json_integer(job->priority));
	json_object_set_new(o, "attempt", json_integer(job->attempt));
	json_object_set_new(o, "max_attempts", json_integer(job->max_attempts));
	json_object_set_new(o, "run_at", json_integer(job->run_at));
	json_object_set_new(o, "created_at", json_integer(job->created_at));
	json_object_set_new(o, "started_at", opt_int(job->started_at));
	json_object_set_new(o, "finished_at", opt_int(job->finished_at));
	set_clipped(o, "result", job->result, max_value);
	json_object_set_new(o, "error", clip_error(job->error, max_value));
	if (job->has_progress)
		/* ctx.progress: the attempt's last, as stored (a few times a second at most) */
		json_object_set_new(o, "progress",
		                    json_pack("{sf so}", "fraction", job->progress, "message",
		                              job->progress_msg ? json_string(job->progress_msg)
		                                                : json_null()));
	if (job->state && strcmp(job->state, "waiting") == 0)
		/* what it waits for: a signal (with an optional deadline) or a wake time */
		json_object_set_new(
		    o, "wait",
		    json_pack("{sI so so sb}", "step", (json_int_t)job->wait_seq, "signal",
		              job->wait_for ? json_string(job->wait_for) : json_null(), "until",
		              opt_int(job->wait_until), "cancelling", job->cancelling));
	return o;
}

void jobs_job_failure(const struct store_job *job, char *code, size_t codelen, char *msg,
                      size_t msglen)
{
	/* msg is a few hundred bytes: an error bigger than this is not parsed for it */
	json_t *e = clip_error(job->error, JOBS_FAILURE_PARSE_MAX);
	const char *c = json_string_value(json_object_get(e, "code"));
	const char *m = json_string_value(json_object_get(e, "message"));

	snprintf(code, codelen, "%s", c ? c : job->state ? job->state : "failed");
	snprintf(msg, msglen, "job %lld %s: %s", (long long)job->id, job->state ? job->state : "?",
	         m ? m : "no error recorded");
	json_decref(e);
}
