/*
 * web-metrics.c: /metrics in the Prometheus text exposition format
 * (version 0.0.4), from the `status` and `stats` results: jobs by state
 * (gauge), job outcomes (counters), tasks, Lua memory, the store's
 * commits and syncs, the worker pool, control requests, uptime.
 * Names follow Prometheus' conventions: awaitd_ prefix, _total for
 * counters, base units (seconds, bytes).
 */
#include <stdio.h>
#include <stdlib.h>

#include "web-int.h"

/* o.key as a number (0 when absent). */
static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* The metrics that are one figure of the stats result: stats[object][key]. */
static const struct {
	const char *name, *type, *help, *object, *key;
} plain[] = {
    {"awaitd_jobs_running", "gauge", "Attempts running or being recorded.", "jobs", "running"},
    {"awaitd_tasks_running", "gauge", "Lua tasks not yet settled.", "tasks", "live"},
    {"awaitd_tasks_spawned_total", "counter", "Lua tasks spawned.", "tasks", "spawned"},
    {"awaitd_lua_memory_bytes", "gauge", "Bytes held by the Lua state.", "memory", "lua_bytes"},
    {"awaitd_store_commits_total", "counter", "Group commits of the store.", "store", "commits"},
    {"awaitd_store_syncs_total", "counter", "fdatasync calls of the store's WAL.", "store",
     "syncs"},
    {"awaitd_store_requests_total", "counter", "Requests the store answered.", "store",
     "requests"},
    {"awaitd_store_failed_commits_total", "counter", "Group commits that failed.", "store",
     "failed_commits"},
    {"awaitd_workers", "gauge", "async.worker threads.", "workers", "size"},
    {"awaitd_workers_busy", "gauge", "async.worker threads running a call.", "workers", "busy"},
    {"awaitd_worker_calls_total", "counter", "async.worker calls finished.", "workers", "calls"},
    {"awaitd_control_requests_total", "counter", "Control socket requests.", "requests", "total"},
    {"awaitd_control_clients", "gauge", "Open control connections.", "requests", "clients"},
};

static void metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void web_metrics_reply(struct evhttp_request *req, json_t *status, json_t *stats)
{
	static const char *const outcomes[][2] = {
	    {"completed", "succeeded"}, {"failed", "failed"},       {"retried", "retried"},
	    {"dead", "dead"},           {"cancelled", "cancelled"}, {"requeued", "requeued"},
	    {"parked", "parked"},
	};
	json_t *jobs = json_object_get(status, "jobs"), *v, *js = json_object_get(stats, "jobs");
	const char *k;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		web_reply_error(req, 500, "out_of_memory", "out of memory");
		return;
	}
	fprintf(f, "# HELP awaitd_info The daemon's version.\n# TYPE awaitd_info gauge\n"
	           "awaitd_info{version=\"%s\"} 1\n",
	        AWAITD_VERSION);
	metric(f, "awaitd_uptime_seconds", "gauge", "Seconds since the daemon started.",
	       num(status, "uptime_s"));
	fprintf(f, "# HELP awaitd_jobs Jobs in the store, by state.\n# TYPE awaitd_jobs gauge\n");
	json_object_foreach(jobs, k, v)
	{
		if (json_is_integer(v))
			fprintf(f, "awaitd_jobs{state=\"%s\"} %lld\n", k,
			        (long long)json_integer_value(v));
	}
	fprintf(f, "# HELP awaitd_job_outcomes_total Attempt outcomes recorded since the start.\n"
	           "# TYPE awaitd_job_outcomes_total counter\n");
	for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
		fprintf(f, "awaitd_job_outcomes_total{outcome=\"%s\"} %.17g\n", outcomes[i][1],
		        num(js, outcomes[i][0]));
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		metric(f, plain[i].name, plain[i].type, plain[i].help,
		       num(json_object_get(stats, plain[i].object), plain[i].key));
	if (fclose(f) != 0 || !text) {
		free(text);
		web_reply_error(req, 500, "out_of_memory", "out of memory");
		return;
	}
	web_reply_text(req, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}
