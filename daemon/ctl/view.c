/*
 * view.c: human text for the job commands' results, and the text helpers
 * (view_text, view_table) that awaitctl's other output functions use too.
 *
 * Widths are counted in characters (UTF-8 code points), not bytes, so that
 * "…" and the bar blocks of the waterfall line up. Each view_<command>
 * checks the document's shape before printing its first byte: on -1 the
 * caller may print the document as JSON without duplicating anything.
 *
 * The waterfall (view_trace): spans are sorted by (attempt, start, task),
 * a span's parent is looked up among the spans of the same attempt, and
 * only a parent sorted before its child counts; any other span is drawn
 * as a root. So the tree has no cycles whatever the daemon sends, and
 * each span's depth is known when it is reached in order.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "humanfmt.h"
#include "view.h"

#define VIEW_RESULT_CELLS 40 /* characters of a result or error in a table cell */
#define VIEW_INFO_CELLS   18 /* characters of the waterfall's "duration outcome" column */

json_int_t view_now_ms(void)
{
	return clock_wall_ms();
}

int view_columns(int fd)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;
	long n;

	if (env && *env) {
		n = strtol(env, NULL, 10);
		if (n > 0 && n < 10000)
			return (int)n;
	}
	if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return VIEW_DEFAULT_WIDTH;
}

char *view_text(json_t *v)
{
	char num[64];

	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(num);
	}
	if (json_is_real(v)) {
		snprintf(num, sizeof num, "%g", json_real_value(v));
		return strdup(num);
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

/* v as compact JSON (a string keeps its quotes), "-" for NULL and null; malloc'd. */
static char *view_json(json_t *v)
{
	if (!v || json_is_null(v))
		return strdup("-");
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

/* Characters in s: UTF-8 continuation bytes do not count. */
static size_t view_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* s cut to at most w (>= 1) characters, ending in "…" when cut. Takes s; malloc'd; NULL on NULL. */
static char *view_fit(char *s, size_t w)
{
	size_t i, n = 0;
	char *t;

	if (!s || view_len(s) <= w)
		return s;
	/* i: the byte where character w-1 begins, which "…" replaces */
	for (i = 0; s[i]; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80 && n++ == w - 1)
			break;
	t = malloc(i + sizeof "…");
	if (t) {
		memcpy(t, s, i);
		memcpy(t + i, "…", sizeof "…");
	}
	free(s);
	return t;
}

/* s, then blanks up to w characters. */
static void view_pad(FILE *f, const char *s, size_t w)
{
	size_t n = view_len(s);

	fputs(s, f);
	for (; n < w; n++)
		fputc(' ', f);
}

void view_table(FILE *f, const char *const *head, size_t ncol, char *const *cells, size_t nrow)
{
	size_t w[16], r, c, len;

	if (ncol > sizeof w / sizeof w[0])
		ncol = sizeof w / sizeof w[0];
	for (c = 0; c < ncol; c++)
		w[c] = view_len(head[c]);
	for (r = 0; r < nrow; r++)
		for (c = 0; c < ncol; c++) {
			len = view_len(cells[r * ncol + c]);
			if (len > w[c])
				w[c] = len;
		}
	/* the last column is not padded, so lines carry no trailing blanks */
	for (r = 0; r <= nrow; r++)
		for (c = 0; c < ncol; c++) {
			const char *cell = r == 0 ? head[c] : cells[(r - 1) * ncol + c];
			if (c + 1 < ncol) {
				view_pad(f, cell, w[c]);
				fputs("  ", f);
			} else {
				fprintf(f, "%s\n", cell);
			}
		}
}

/* A job's field as a string, or dflt. */
static const char *view_str(json_t *job, const char *key, const char *dflt)
{
	json_t *v = json_object_get(job, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* A job's time or count field into *ms: 1 when it is a number, 0 (and *ms 0) when not. */
static int view_num(json_t *job, const char *key, double *ms)
{
	json_t *v = json_object_get(job, key);

	*ms = json_is_number(v) ? json_number_value(v) : 0;
	return json_is_number(v);
}

/* "2024-05-01 14:00:00 (3s ago)", local time, for epoch ms t. */
static void view_when(char *buf, size_t n, double t, json_int_t now)
{
	char age[HUMANFMT_LEN], when[HUMANFMT_LEN];

	snprintf(buf, n, "%s (%s)", humanfmt_time(t, when, sizeof when),
	         humanfmt_age(t, (double)now, age, sizeof age));
}

char *view_job_counts(json_t *jobs)
{
	static const char *const states[] = {"queued", "running", "succeeded",
	                                     "failed", "dead",    "cancelled"};
	char buf[512];
	size_t i, len = 0;
	json_t *v;

	buf[0] = 0;
	for (i = 0; i < sizeof states / sizeof states[0]; i++) {
		v = json_object_get(jobs, states[i]);
		if (json_is_integer(v) && len < sizeof buf)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			                        "%s%" JSON_INTEGER_FORMAT " %s", len ? ", " : "",
			                        json_integer_value(v), states[i]);
	}
	return len ? strdup(buf) : NULL;
}

int view_enqueue(FILE *f, json_t *result, const struct view_opts *vo)
{
	json_t *id = json_object_get(result, "id");

	(void)vo;
	if (!json_is_integer(id) && !json_is_string(id))
		return -1;
	if (json_is_integer(id))
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
	else
		fputs(json_string_value(id), f);
	fputs(json_is_false(json_object_get(result, "created")) ? " (existing job for this key)\n"
	                                                        : "\n",
	      f);
	return 0;
}

/*
 * job[field] as JSON text (malloc'd, NULL when out of memory); when the
 * daemon sent a preview of a value too big to show (field_truncated), with
 * the size it has stored.
 */
static char *view_clipped(json_t *job, const char *field)
{
	char name[32], size[HUMANFMT_LEN], *s, *out;
	double n = 0;
	size_t len;

	s = view_json(json_object_get(job, field));
	snprintf(name, sizeof name, "%s_truncated", field);
	if (!s || !json_is_true(json_object_get(job, name)))
		return s;
	snprintf(name, sizeof name, "%s_bytes", field);
	view_num(job, name, &n);
	len = strlen(s) + 64;
	out = malloc(len);
	if (out)
		snprintf(out, len, "%s [truncated: %s stored]", s,
		         humanfmt_bytes(n > 0 ? (uint64_t)n : 0, size, sizeof size));
	free(s);
	return out;
}

/* A job's row of the jobs table: ID NAME STATE ATTEMPT CREATED DURATION RESULT. */
static int view_job_row(char **row, json_t *job, json_int_t now)
{
	char buf[64];
	double a, b;
	json_t *err = json_object_get(job, "error");

	row[0] = view_text(json_object_get(job, "id"));
	row[1] = strdup(view_str(job, "name", "?"));
	row[2] = strdup(view_str(job, "state", "?"));
	view_num(job, "attempt", &a);
	view_num(job, "max_attempts", &b);
	snprintf(buf, sizeof buf, "%.0f/%.0f", a, b);
	row[3] = strdup(buf);
	strcpy(buf, "-");
	if (view_num(job, "created_at", &a))
		humanfmt_age(a, (double)now, buf, sizeof buf);
	row[4] = strdup(buf);
	strcpy(buf, "-");
	if (view_num(job, "started_at", &a) && view_num(job, "finished_at", &b))
		humanfmt_duration(b - a, buf, sizeof buf);
	row[5] = strdup(buf);
	if (json_is_object(err))
		row[6] = strdup(view_str(err, "code", "error"));
	else
		row[6] = view_fit(view_json(json_object_get(job, "result")), VIEW_RESULT_CELLS);
	for (int c = 0; c < 7; c++)
		if (!row[c])
			return -1;
	return 0;
}

int view_jobs(FILE *f, json_t *result, const struct view_opts *vo)
{
	static const char *const head[] = {"ID",      "NAME",     "STATE", "ATTEMPT",
	                                   "CREATED", "DURATION", "RESULT"};
	enum { NCOL = sizeof head / sizeof head[0] };
	json_t *jobs = json_object_get(result, "jobs"), *job;
	char **cells;
	size_t nrow, r;
	int rc = -1;

	if (!json_is_array(jobs))
		return -1;
	nrow = json_array_size(jobs);
	if (nrow == 0) {
		fputs("No jobs.\n", f);
		return 0;
	}
	cells = calloc(nrow * NCOL, sizeof *cells);
	if (!cells)
		return -1;
	json_array_foreach(jobs, r, job)
	{
		if (view_job_row(cells + r * NCOL, job, vo->now_ms) < 0)
			goto out;
	}
	view_table(f, head, NCOL, cells, nrow);
	rc = 0;
out:
	for (r = 0; r < nrow * NCOL; r++)
		free(cells[r]);
	free(cells);
	return rc;
}

/* "name:     value" of view_show; value NULL (out of memory) prints "?". */
static void view_field(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s:%*s%s\n", name, (int)(9 - strlen(name)), "", value ? value : "?");
}

/* A time field of view_show: local time and age, or "-". */
static void view_time_field(FILE *f, const char *name, json_t *job, const char *key, json_int_t now)
{
	char buf[96] = "-";
	double t;

	if (view_num(job, key, &t))
		view_when(buf, sizeof buf, t, now);
	view_field(f, name, buf);
}

/* show's "steps:" section: "  SEQ  KIND  NAME  TIME  RESULT" lines. */
static void view_steps(FILE *f, json_t *steps, json_int_t now)
{
	size_t i, w = 0, len;
	char when[96], *res;
	json_t *st;
	double t;

	if (json_array_size(steps) == 0) {
		fputs("steps:    none\n", f);
		return;
	}
	fputs("steps:\n", f);
	json_array_foreach(steps, i, st)
	{
		len = view_len(view_str(st, "name", "?"));
		if (len > w)
			w = len;
	}
	json_array_foreach(steps, i, st)
	{
		strcpy(when, "-");
		if (view_num(st, "at", &t))
			view_when(when, sizeof when, t, now);
		res = view_fit(view_json(json_object_get(st, "result")), VIEW_RESULT_CELLS);
		view_num(st, "seq", &t);
		fprintf(f, "  %3.0f  %-4s  ", t, view_str(st, "kind", "?"));
		view_pad(f, view_str(st, "name", "?"), w);
		fprintf(f, "  %s  %s\n", when, res ? res : "?");
		free(res);
	}
}

int view_show(FILE *f, json_t *job, const struct view_opts *vo)
{
	json_t *err = json_object_get(job, "error");
	char buf[96], *s;
	double a, b;

	if (!json_is_object(job) || !json_object_get(job, "id"))
		return -1;
	s = view_text(json_object_get(job, "id"));
	view_field(f, "id", s);
	free(s);
	view_field(f, "name", view_str(job, "name", "?"));
	view_field(f, "state", view_str(job, "state", "?"));
	view_num(job, "attempt", &a);
	view_num(job, "max_attempts", &b);
	snprintf(buf, sizeof buf, "%.0f/%.0f", a, b);
	view_field(f, "attempt", buf);
	s = view_text(json_object_get(job, "priority"));
	view_field(f, "priority", s);
	free(s);
	view_field(f, "key", view_str(job, "key", "-"));
	if (strcmp(view_str(job, "state", ""), "queued") == 0)
		view_time_field(f, "run at", job, "run_at", vo->now_ms);
	view_time_field(f, "created", job, "created_at", vo->now_ms);
	view_time_field(f, "started", job, "started_at", vo->now_ms);
	view_time_field(f, "finished", job, "finished_at", vo->now_ms);
	if (view_num(job, "started_at", &a) && view_num(job, "finished_at", &b)) {
		view_field(f, "took", humanfmt_duration(b - a, buf, sizeof buf));
	}
	s = view_clipped(job, "args");
	view_field(f, "args", s);
	free(s);
	if (json_is_object(err)) {
		double n;
		fprintf(f, "error:    %s: %s", view_str(err, "code", "error"),
		        view_str(err, "message", ""));
		if (json_is_true(json_object_get(err, "truncated")) && view_num(err, "bytes", &n))
			fprintf(f, " [truncated: %s stored]",
			        humanfmt_bytes(n > 0 ? (uint64_t)n : 0, buf, sizeof buf));
		putc('\n', f);
	} else {
		s = view_clipped(job, "result");
		view_field(f, "result", s);
		free(s);
	}
	view_steps(f, json_object_get(job, "steps"), vo->now_ms);
	return 0;
}

int view_job_line(FILE *f, json_t *job, const struct view_opts *vo)
{
	const char *state = view_str(job, "state", "?");
	char *id;
	double a, b;

	(void)vo;
	if (!json_is_object(job) || !json_object_get(job, "id"))
		return -1;
	id = view_text(json_object_get(job, "id"));
	fprintf(f, "job %s %s: %s", id ? id : "?", view_str(job, "name", "?"), state);
	if ((!strcmp(state, "queued") || !strcmp(state, "running")) &&
	    view_num(job, "attempt", &a) && a >= 1 && view_num(job, "max_attempts", &b))
		fprintf(f, " (attempt %.0f of %.0f)", a, b);
	fputc('\n', f);
	free(id);
	return 0;
}

/* One span of the waterfall. Indices are into the sorted array; -1 for none. */
struct view_span {
	json_t *o;                /* borrowed */
	json_int_t task, attempt; /* the span's identity within the trace */
	double start, ms;         /* ms: since the job's first start; long */
	long parent, child, next; /* the tree: first child, next sibling */
	int depth;
	int open; /* no "ms" came: drawn to the end, no duration printed */
};

/* Order of the waterfall: attempt, then start, then task (a parent spawns before its child). */
static int view_span_cmp(const void *pa, const void *pb)
{
	const struct view_span *a = pa, *b = pb;

	if (a->attempt != b->attempt)
		return a->attempt < b->attempt ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return (a->task > b->task) - (a->task < b->task);
}

/* Index of the span of attempt with task id task before index i, or -1. */
static long view_span_find(const struct view_span *sp, long i, json_int_t attempt, json_int_t task)
{
	/* linear, but the parent usually starts shortly before its child: search backwards */
	while (--i >= 0)
		if (sp[i].task == task && sp[i].attempt == attempt)
			return i;
	return -1;
}

/* One waterfall line: label, bar at scale (cells per ms) in t cells, duration and outcome. */
static void view_span_line(FILE *f, const struct view_span *s, size_t lw, int t, double scale)
{
	const char *outcome = view_str(s->o, "outcome", "?"),
	           *where = view_str(s->o, "where", NULL);
	char dur[32], *label;
	size_t n;
	int b, e, c;

	/* "fetch_user dashboard.lua:12": the file without its folders, which
	 * would otherwise take the whole column ("scripts/dashboard.l…") */
	if (where && strrchr(where, '/'))
		where = strrchr(where, '/') + 1;
	if (where && !*where)
		where = NULL;
	n = 2 * (size_t)s->depth + strlen(view_str(s->o, "name", "?")) +
	    (where ? strlen(where) + 1 : 0) + 1;
	label = malloc(n);
	if (label)
		snprintf(label, n, "%*s%s%s%s", 2 * s->depth, "", view_str(s->o, "name", "?"),
		         where ? " " : "", where ? where : "");
	label = view_fit(label, lw);
	view_pad(f, label ? label : "?", lw);
	free(label);
	fputc(' ', f);
	b = (int)(s->start * scale);
	if (b > t - 1)
		b = t - 1;
	e = (int)((s->start + s->ms) * scale + 0.5);
	if (e <= b)
		e = b + 1;
	if (e > t)
		e = t;
	for (c = 0; c < t; c++)
		fputs(c >= b && c < e ? "█" : " ", f);
	humanfmt_duration(s->ms, dur, sizeof dur);
	fprintf(f, " %s%s%s\n", s->open ? "" : dur, s->open ? "" : " ",
	        strcmp(outcome, "done") == 0 ? "ok" : outcome);
}

int view_trace(FILE *f, json_t *result, const struct view_opts *vo)
{
	json_t *job = json_object_get(result, "job"), *spans = json_object_get(result, "spans"), *o;
	struct view_span *sp;
	double total = 0;
	char dur[32], *id;
	size_t n, i, lw;
	long r, k, p;
	int width = vo->width > 0 ? vo->width : VIEW_DEFAULT_WIDTH, t;

	if (!json_is_array(spans) || !json_is_object(job))
		return -1;
	n = json_array_size(spans);
	id = view_text(json_object_get(job, "id"));
	if (n == 0) {
		fprintf(f, "No trace recorded for job %s.\n", id ? id : "?");
		free(id);
		return 0;
	}
	sp = calloc(n, sizeof *sp);
	if (!sp) {
		free(id);
		return -1;
	}
	json_array_foreach(spans, i, o)
	{
		sp[i].o = o;
		sp[i].task = json_integer_value(json_object_get(o, "task"));
		sp[i].attempt = json_integer_value(json_object_get(o, "attempt"));
		view_num(o, "start", &sp[i].start);
		if (sp[i].start < 0)
			sp[i].start = 0;
		if (!view_num(o, "ms", &sp[i].ms) || sp[i].ms < 0)
			sp[i].ms = -1;
		if (sp[i].start + (sp[i].ms > 0 ? sp[i].ms : 0) > total)
			total = sp[i].start + (sp[i].ms > 0 ? sp[i].ms : 0);
	}
	qsort(sp, n, sizeof *sp, view_span_cmp);

	/* the tree: parents sort before their children, so depths are known in order */
	for (i = 0; i < n; i++) {
		sp[i].child = sp[i].next = -1;
		o = json_object_get(sp[i].o, "parent");
		sp[i].parent = json_is_integer(o) ? view_span_find(sp, (long)i, sp[i].attempt,
		                                                   json_integer_value(o))
		                                  : -1;
		sp[i].depth = sp[i].parent < 0 ? 0 : sp[sp[i].parent].depth + 1;
		if (sp[i].ms < 0) { /* no duration: up to the end of what is known */
			sp[i].open = 1;
			sp[i].ms = total - sp[i].start;
		}
	}
	for (r = (long)n - 1; r >= 0; r--) /* prepend backwards: children in order */
		if ((p = sp[r].parent) >= 0) {
			sp[r].next = sp[p].child;
			sp[p].child = r;
		}

	lw = (size_t)width * 3 / 10;
	lw = lw < 12 ? 12 : lw > 40 ? 40 : lw;
	t = width - (int)lw - VIEW_INFO_CELLS - 2;
	if (t < 10)
		t = 10;
	humanfmt_duration(total, dur, sizeof dur);
	fprintf(f, "job %s %s: %s, %s\n", id ? id : "?", view_str(job, "name", "?"),
	        view_str(job, "state", "?"), dur);
	view_pad(f, "", lw);
	fputs(" 0", f);
	for (k = 1 + (long)strlen(dur); k < t; k++)
		fputs("─", f);
	fprintf(f, "%s\n", dur);

	/* preorder walk of each root's tree, roots in order */
	for (r = 0; r < (long)n; r++) {
		if (sp[r].parent >= 0)
			continue;
		if (sp[0].attempt != sp[n - 1].attempt &&
		    (r == 0 || sp[r].attempt != sp[r - 1].attempt))
			fprintf(f, "attempt %" JSON_INTEGER_FORMAT "\n", sp[r].attempt);
		for (k = r;;) {
			view_span_line(f, &sp[k], lw, t, t / (total > 0 ? total : 1));
			if (sp[k].child >= 0) {
				k = sp[k].child;
				continue;
			}
			while (k != r && sp[k].next < 0)
				k = sp[k].parent;
			if (k == r)
				break;
			k = sp[k].next;
		}
	}
	free(sp);
	free(id);
	return 0;
}
