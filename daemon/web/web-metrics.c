/*
 * web-metrics.c: /metrics in the Prometheus text exposition format
 * (version 0.0.4), from the `status` (by script) and `stats` results: jobs
 * by script and state (gauge), attempts by script and outcome (counter),
 * attempt durations, store batch sizes, fsync times and the loop's lag
 * (histograms), tasks, Lua memory, the store's commits and syncs, the
 * worker pool, control requests, uptime.
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
    {"awaitd_store_requests_total", "counter", "Requests the store answered.", "store", "requests"},
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

/* s as a label value: backslash, quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* One series of a histogram family (histo_json's object h), labels like "script=\"x\"". */
static void histogram(FILE *f, const char *name, const char *key, const char *val, json_t *h)
{
	json_t *le = json_object_get(h, "le"), *counts = json_object_get(h, "counts");
	size_t n = json_array_size(le);
	char lv[32];

	if (json_array_size(counts) != n + 1)
		return;
	for (size_t i = 0; i <= n; i++) {
		if (i < n)
			snprintf(lv, sizeof lv, "%.15g", json_number_value(json_array_get(le, i)));
		fprintf(f, "%s_bucket{", name);
		if (key) {
			fprintf(f, "%s=\"", key);
			label(f, val);
			fputs("\",", f);
		}
		fprintf(f, "le=\"%s\"} %lld\n", i < n ? lv : "+Inf",
		        (long long)json_integer_value(json_array_get(counts, i)));
	}
	fprintf(f, "%s_sum", name);
	if (key) {
		fprintf(f, "{%s=\"", key);
		label(f, val);
		fputs("\"}", f);
	}
	fprintf(f, " %.17g\n%s_count", num(h, "sum"), name);
	if (key) {
		fprintf(f, "{%s=\"", key);
		label(f, val);
		fputs("\"}", f);
	}
	fprintf(f, " %.17g\n", num(h, "count"));
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The job figures by script: in the store by state, attempts ended, durations. */
static void by_script(FILE *f, json_t *status, json_t *stats)
{
	static const char *const states[] = {"queued",    "running", "waiting", "blocked",
	                                     "succeeded", "failed",  "dead",    "cancelled"};
	json_t *by = json_object_get(status, "jobs_by_script");
	json_t *run = json_object_get(json_object_get(stats, "jobs"), "by_script"), *v, *x;
	const char *k, *o;

	family(f, "awaitd_jobs", "gauge", "Jobs in the store, by script and state.");
	json_object_foreach(by, k, v)
	{
		for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
			fputs("awaitd_jobs{script=\"", f);
			label(f, k);
			fprintf(f, "\",state=\"%s\"} %.17g\n", states[i], num(v, states[i]));
		}
	}
	family(f, "awaitd_job_attempts_total", "counter",
	       "Attempts ended since the start, by script and outcome (retried: failed, to be "
	       "retried; parked: at a durable wait; requeued: stopped by a shutdown).");
	json_object_foreach(run, k, v)
	{
		json_object_foreach(json_object_get(v, "ended"), o, x)
		{
			fputs("awaitd_job_attempts_total{script=\"", f);
			label(f, k);
			fprintf(f, "\",outcome=\"%s\"} %.17g\n", o, json_number_value(x));
		}
	}
	family(f, "awaitd_job_claims_total", "counter",
	       "Claims of ready jobs the engine asked the store for, by script.");
	json_object_foreach(run, k, v)
	{
		fputs("awaitd_job_claims_total{script=\"", f);
		label(f, k);
		fprintf(f, "\"} %.17g\n", num(v, "claims"));
	}
	family(f, "awaitd_job_duration_seconds", "histogram",
	       "Seconds an attempt ran, by script (attempts that ended, not parked).");
	json_object_foreach(run, k, v) histogram(f, "awaitd_job_duration_seconds", "script", k,
	                                         json_object_get(v, "duration_s"));
}

void web_metrics_reply(struct evhttp_request *req, json_t *status, json_t *stats)
{
	json_t *store = json_object_get(stats, "store");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		web_reply_error(req, 500, "out_of_memory", "out of memory");
		return;
	}
	fprintf(f,
	        "# HELP awaitd_info The daemon's version.\n# TYPE awaitd_info gauge\n"
	        "awaitd_info{version=\"%s\"} 1\n",
	        AWAITD_VERSION);
	metric(f, "awaitd_uptime_seconds", "gauge", "Seconds since the daemon started.",
	       num(status, "uptime_s"));
	by_script(f, status, stats);
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
		metric(f, plain[i].name, plain[i].type, plain[i].help,
		       num(json_object_get(stats, plain[i].object), plain[i].key));
	family(f, "awaitd_store_batch_size", "histogram", "Requests per group commit.");
	histogram(f, "awaitd_store_batch_size", NULL, NULL, json_object_get(store, "batch"));
	family(f, "awaitd_store_fsync_seconds", "histogram", "Seconds per fdatasync of the WAL.");
	histogram(f, "awaitd_store_fsync_seconds", NULL, NULL, json_object_get(store, "fsync_s"));
	family(f, "awaitd_loop_lag_seconds", "histogram",
	       "How late the event loop ran a timer due every 100 ms; the sum over a span is the "
	       "lag the loop added in it.");
	histogram(f, "awaitd_loop_lag_seconds", NULL, NULL,
	          json_object_get(json_object_get(stats, "loop"), "lag"));
	if (fclose(f) != 0 || !text) {
		free(text);
		web_reply_error(req, 500, "out_of_memory", "out of memory");
		return;
	}
	web_reply_text(req, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}
