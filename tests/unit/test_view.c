/*
 * test_view.c: awaitctl's renderings of the job commands (view.c), each
 * written into an open_memstream buffer with a fixed "now" and width and
 * compared line for line: the jobs table, show, the one-line cancel/retry
 * answer, enqueue, status's job counts, and the trace waterfall (to
 * scale, sequential against parallel work, attempts, a running span, and
 * parents that would make a cycle). Documents without the expected shape
 * must print nothing and return -1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "view.h"

/* 2024-05-01T12:00:00.000Z */
#define T0 1714564800000LL

typedef int view_fn(FILE *f, json_t *result, const struct view_opts *vo);

struct vfx {
	char *out; /* what the last render printed */
	size_t len;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct vfx));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct vfx *fx = *state;

	free(fx->out);
	free(fx);
	return 0;
}

/* Render the JSON document text with fn at now and width; returns fn's rc, fx->out the text. */
static int render(struct vfx *fx, view_fn *fn, const char *doc, json_int_t now, int width)
{
	struct view_opts vo = {now, width};
	json_error_t jerr;
	json_t *v = json_loads(doc, JSON_DECODE_ANY, &jerr);
	FILE *f;
	int rc;

	if (!v)
		fail_msg("bad test document: %s", jerr.text);
	free(fx->out);
	fx->out = NULL;
	f = open_memstream(&fx->out, &fx->len);
	assert_non_null(f);
	rc = fn(f, v, &vo);
	assert_int_equal(fclose(f), 0);
	json_decref(v);
	return rc;
}

/* A job document with the given fields overriding a finished purchase. */
static char *job(const char *id, const char *extra)
{
	char *s = NULL;
	size_t n;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	fprintf(f,
	        "{\"id\": %s, \"name\": \"purchase\", \"state\": \"succeeded\", \"args\": "
	        "{\"order\": 7}, \"key\": null, \"priority\": 0, \"attempt\": 1, \"max_attempts\": "
	        "4, \"run_at\": %lld, \"created_at\": %lld, \"started_at\": %lld, \"finished_at\": "
	        "%lld, \"result\": {\"ok\": true}, \"error\": null%s%s}",
	        id, T0, T0, T0 + 5, T0 + 17, extra ? ", " : "", extra ? extra : "");
	fclose(f);
	return s;
}

static void test_enqueue(void **state)
{
	struct vfx *fx = *state;

	assert_int_equal(render(fx, view_enqueue, "{\"id\": 12, \"created\": true}", T0, 100), 0);
	assert_string_equal(fx->out, "12\n");
	assert_int_equal(render(fx, view_enqueue, "{\"id\": 12, \"created\": false}", T0, 100), 0);
	assert_string_equal(fx->out, "12 (existing job for this key)\n");
	assert_int_equal(render(fx, view_enqueue, "[12]", T0, 100), -1);
	assert_string_equal(fx->out, "");
}

static void test_jobs_table(void **state)
{
	struct vfx *fx = *state;
	char *a = job("14", "\"state\": \"running\", \"started_at\": 1714564800100, "
	                    "\"finished_at\": null, \"result\": null");
	char *b = job("13", "\"name\": \"réport\", \"state\": \"dead\", \"attempt\": 4, "
	                    "\"created_at\": 1714564680000, \"finished_at\": 1714564801405, "
	                    "\"error\": {\"code\": \"http_error\", \"message\": \"502\"}");
	char *c = job("9", "\"created_at\": 1714557600000, \"result\": "
	                   "\"a long result string that does not fit in forty\"");
	char *d = job("2", "\"created_at\": 1714392000000, \"result\": 42");
	char doc[4096];

	snprintf(doc, sizeof doc, "{\"jobs\": [%s, %s, %s, %s]}", a, b, c, d);
	assert_int_equal(render(fx, view_jobs, doc, T0 + 3000, 100), 0);
	/* "réport" is 6 characters in 7 bytes: the columns still line up */
	assert_string_equal(fx->out,
	                    "ID  NAME      STATE      ATTEMPT  CREATED  DURATION  RESULT\n"
	                    "14  purchase  running    1/4      3s ago   -         -\n"
	                    "13  réport    dead       4/4      2m ago   1.4s      http_error\n"
	                    "9   purchase  succeeded  1/4      2h ago   12ms      \"a long result "
	                    "string that does not fit…\n"
	                    "2   purchase  succeeded  1/4      2d ago   12ms      42\n");
	assert_int_equal(render(fx, view_jobs, "{\"jobs\": []}", T0, 100), 0);
	assert_string_equal(fx->out, "No jobs.\n");
	assert_int_equal(render(fx, view_jobs, "{\"jobs\": 3}", T0, 100), -1);
	assert_string_equal(fx->out, "");
	free(a);
	free(b);
	free(c);
	free(d);
}

static void test_show(void **state)
{
	struct vfx *fx = *state;
	char *j =
	    job("12", "\"key\": \"order-7\", \"state\": \"failed\", \"attempt\": 2, "
	              "\"result\": null, \"error\": {\"code\": \"http_error\", \"message\": "
	              "\"502 from payments\"}, \"steps\": [{\"seq\": 1, \"name\": \"debit\", "
	              "\"kind\": \"tx\", \"at\": 1714564800009, \"result\": {\"balance\": 880}}, "
	              "{\"seq\": 2, \"name\": \"notify_all\", \"kind\": \"step\", \"at\": "
	              "1714564800015, \"result\": null}]");

	assert_int_equal(render(fx, view_show, j, T0 + 4 * 3600 * 1000 + 1000, 100), 0);
	assert_string_equal(fx->out,
	                    "id:       12\n"
	                    "name:     purchase\n"
	                    "state:    failed\n"
	                    "attempt:  2/4\n"
	                    "priority: 0\n"
	                    "key:      order-7\n"
	                    "created:  2024-05-01 12:00:00 (4h ago)\n"
	                    "started:  2024-05-01 12:00:00 (4h ago)\n"
	                    "finished: 2024-05-01 12:00:00 (4h ago)\n"
	                    "took:     12ms\n"
	                    "args:     {\"order\":7}\n"
	                    "error:    http_error: 502 from payments\n"
	                    "steps:\n"
	                    "    1  tx    debit       2024-05-01 12:00:00 (4h ago)  "
	                    "{\"balance\":880}\n"
	                    "    2  step  notify_all  2024-05-01 12:00:00 (4h ago)  -\n");
	free(j);

	/* queued later: run at ahead of now, nothing started, no steps */
	j = job("13", "\"state\": \"queued\", \"run_at\": 1714564805000, \"started_at\": null, "
	              "\"finished_at\": null, \"result\": null, \"steps\": []");
	assert_int_equal(render(fx, view_show, j, T0, 100), 0);
	assert_non_null(strstr(fx->out, "\nrun at:   2024-05-01 12:00:05 (in 5s)\n"));
	assert_non_null(strstr(fx->out, "\nstarted:  -\nfinished: -\nargs:"));
	assert_non_null(strstr(fx->out, "\nresult:   -\nsteps:    none\n"));
	assert_null(strstr(fx->out, "took:"));
	free(j);

	/* a value too big to show: its stored size as a size, not a byte count */
	j = job("14", "\"args_truncated\": true, \"args_bytes\": 1234567, \"result\": null, "
	              "\"error\": {\"code\": \"x\", \"message\": \"m\", \"truncated\": true, "
	              "\"bytes\": 2048}, \"steps\": []");
	assert_int_equal(render(fx, view_show, j, T0, 100), 0);
	assert_non_null(strstr(fx->out, "\nargs:     {\"order\":7} [truncated: 1.2 MiB stored]\n"));
	assert_non_null(strstr(fx->out, "\nerror:    x: m [truncated: 2.0 KiB stored]\n"));
	free(j);
	assert_int_equal(render(fx, view_show, "\"nope\"", T0, 100), -1);
}

static void test_job_line(void **state)
{
	struct vfx *fx = *state;
	char *j = job("12", "\"state\": \"cancelled\"");

	assert_int_equal(render(fx, view_job_line, j, T0, 100), 0);
	assert_string_equal(fx->out, "job 12 purchase: cancelled\n");
	free(j);
	j = job("11", "\"state\": \"queued\", \"attempt\": 2");
	assert_int_equal(render(fx, view_job_line, j, T0, 100), 0);
	assert_string_equal(fx->out, "job 11 purchase: queued (attempt 2 of 4)\n");
	free(j);
	assert_int_equal(render(fx, view_job_line, "null", T0, 100), -1);
}

static void test_job_counts(void **state)
{
	json_t *jobs =
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "cancelled", (json_int_t)0, "dead",
	              (json_int_t)2, "failed", (json_int_t)0, "succeeded", (json_int_t)120,
	              "running", (json_int_t)1, "queued", (json_int_t)3);
	char *s = view_job_counts(jobs);

	(void)state;
	/* state order, whatever the order of the keys */
	assert_string_equal(s, "3 queued, 1 running, 120 succeeded, 0 failed, 2 dead, 0 cancelled");
	free(s);
	json_decref(jobs);
	jobs = json_pack("{s:I}", "running", (json_int_t)1);
	s = view_job_counts(jobs);
	assert_string_equal(s, "1 running");
	free(s);
	json_decref(jobs);
	assert_null(view_job_counts(NULL));
}

/* A span of a trace document. */
#define SPAN(task, parent, name, start, ms, outcome, attempt)                                      \
	"{\"task\": " #task ", \"parent\": " #parent ", \"name\": \"" name                         \
	"\", \"where\": \"scripts/purchase.lua:1\", \"start\": " #start ", \"ms\": " #ms                   \
	", \"outcome\": \"" outcome "\", \"attempt\": " #attempt "}"

/* {"job": job, "spans": [spans...]} into buf; spans ends at NULL. */
static const char *trace_doc(char *buf, size_t n, const char *job, const char *const *spans)
{
	size_t len = (size_t)snprintf(buf, n, "{\"job\": %s, \"spans\": [", job);

	for (size_t i = 0; spans[i]; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", spans[i]);
	snprintf(buf + len, n - len, "]}");
	assert_true(len + 2 < n);
	return buf;
}

/*
 * A tx step then three parallel http calls, at width 60: label 18
 * columns, timeline 22 cells for 100 ms (4.55 ms a cell). The spans come
 * out of order; the waterfall orders them by start under their parents,
 * so the step and its tx share cells 0-3 and the http calls all begin at
 * cell 4 (20 ms), overlapping, each as long as it took.
 */
static void test_trace_waterfall(void **state)
{
	static const char *const spans[] = {
	    SPAN(7, 3, "http b", 20.0, 80.0, "done", 1),
	    SPAN(3, null, "run", 0.0, 100.0, "done", 1),
	    SPAN(5, 4, "tx", 0.5, 19.0, "done", 1),
	    SPAN(4, 3, "step debit", 0.2, 19.5, "done", 1),
	    SPAN(6, 3, "http a", 20.0, 40.0, "done", 1),
	    SPAN(8, 3, "http c", 20.5, 20.0, "failed", 1),
	    NULL,
	};
	struct vfx *fx = *state;
	char *j = job("12", NULL), doc[4096];

	assert_int_equal(render(fx, view_trace, trace_doc(doc, sizeof doc, j, spans), T0, 60), 0);
	/* the label shows the file without its folder (scripts/) */
	assert_string_equal(fx->out, "job 12 purchase: succeeded, 100ms\n"
	                             "                   0────────────────100ms\n"
	                             "run purchase.lua:1 ██████████████████████ 100ms ok\n"
	                             "  step debit purc… ████                   20ms ok\n"
	                             "    tx purchase.l… ████                   19ms ok\n"
	                             "  http a purchase…     █████████          40ms ok\n"
	                             "  http b purchase…     ██████████████████ 80ms ok\n"
	                             "  http c purchase…     █████              20ms failed\n");
	free(j);
}

/* Two attempts on one axis, a span with no duration yet, a span shorter than a cell. */
static void test_trace_attempts(void **state)
{
	static const char *const spans[] = {
	    SPAN(9, null, "run", 60, null, "running", 2),
	    SPAN(10, 9, "sleep", 61, 39, "done", 2),
	    SPAN(3, null, "run", 0, 10, "failed", 1),
	    SPAN(4, 3, "tick", 1, 0.01, "done", 1),
	    NULL,
	};
	struct vfx *fx = *state;
	char *j = job("11", "\"state\": \"running\""), doc[4096];

	assert_int_equal(render(fx, view_trace, trace_doc(doc, sizeof doc, j, spans), T0, 60), 0);
	assert_string_equal(fx->out, "job 11 purchase: running, 100ms\n"
	                             "                   0────────────────100ms\n"
	                             "attempt 1\n"
	                             "run purchase.lua:1 ██                     10ms failed\n"
	                             "  tick purchase.l… █                      <0.1ms ok\n"
	                             "attempt 2\n"
	                             "run purchase.lua:1              █████████ running\n"
	                             "  sleep purchase.…              █████████ 39ms ok\n");
	free(j);
}

/* Parents that name themselves, each other or nothing known: every span drawn once. */
static void test_trace_bad_parents(void **state)
{
	static const char *const spans[] = {
	    SPAN(3, 3, "self", 0, 10, "done", 1), SPAN(4, 5, "a", 1, 10, "done", 1),
	    SPAN(5, 4, "b", 2, 10, "done", 1),    SPAN(6, 99, "orphan", 3, 10, "done", 1),
	    SPAN(7, 3, "late", 4, 10, "done", 2), NULL,
	};
	struct vfx *fx = *state;
	char *j = job("12", NULL), doc[4096], *p;
	int n = 0;

	assert_int_equal(render(fx, view_trace, trace_doc(doc, sizeof doc, j, spans), T0, 80), 0);
	for (p = fx->out; (p = strstr(p, "purchase.lua:1")); p++)
		n++;
	assert_int_equal(n, 5);
	assert_non_null(strstr(fx->out, "\nself purchase.lua:1"));
	assert_non_null(strstr(fx->out, "\na purchase.lua:1"));
	assert_non_null(strstr(fx->out, "\n  b purchase.lua:1")); /* b's parent a comes first */
	assert_non_null(strstr(fx->out, "\norphan purchase.lua:1"));
	/* a parent of another attempt does not count */
	assert_non_null(strstr(fx->out, "\nattempt 2\nlate purchase.lua:1"));
	free(j);
}

static void test_trace_empty(void **state)
{
	static const char *const none[] = {NULL};
	struct vfx *fx = *state;
	char *j = job("15", NULL), doc[2048];

	assert_int_equal(render(fx, view_trace, trace_doc(doc, sizeof doc, j, none), T0, 100), 0);
	assert_string_equal(fx->out, "No trace recorded for job 15.\n");
	assert_int_equal(render(fx, view_trace, "{\"spans\": []}", T0, 100), -1);
	assert_string_equal(fx->out, "");
	free(j);
}

static void test_columns(void **state)
{
	int fd[2];

	(void)state;
	assert_int_equal(pipe(fd), 0);
	setenv("COLUMNS", "132", 1);
	assert_int_equal(view_columns(fd[1]), 132);
	setenv("COLUMNS", "wide", 1);
	assert_int_equal(view_columns(fd[1]), VIEW_DEFAULT_WIDTH); /* not a tty either */
	unsetenv("COLUMNS");
	assert_int_equal(view_columns(fd[1]), VIEW_DEFAULT_WIDTH);
	close(fd[0]);
	close(fd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_enqueue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jobs_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_show, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_waterfall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_bad_parents, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_columns, setup, teardown),
	};

	/* times are shown in local time: pin it */
	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
