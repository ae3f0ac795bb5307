/*
 * view.c: human text for the job commands' results, and the text helpers
 * (view_text, view_table) that awaitctl's other output functions use too.
 *
 * Widths are counted in characters (UTF-8 code points), not bytes, so that
 * "…" and the bar blocks of the waterfall line up. Each view_<command>
 * checks the document's shape before printing its first byte: on -1 the
 * caller may print the document as JSON without duplicating anything.
 * The waterfall (view_trace) is view-trace.c's; the helpers both share
 * are in view-int.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "humanfmt.h"
#include "view.h"
#include "view-int.h"

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
size_t view_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* s cut to at most w (>= 1) characters, ending in "…" when cut. Takes s; malloc'd; NULL on NULL. */
char *view_fit(char *s, size_t w)
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
void view_pad(FILE *f, const char *s, size_t w)
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
const char *view_str(json_t *job, const char *key, const char *dflt)
{
	json_t *v = json_object_get(job, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* A job's time or count field into *ms: 1 when it is a number, 0 (and *ms 0) when not. */
int view_num(json_t *job, const char *key, double *ms)
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
	static const char *const states[] = {"queued",    "running", "waiting", "blocked",
	                                     "succeeded", "failed",  "dead",    "cancelled"};
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

/*
 * What a waiting job waits for, into buf: "signal \"go\" (until ..., in
 * 3s)", "wake at ... (in 2h)", with "cancelling: " first once cancel
 * reached it. Long form (show) or short (a table cell).
 */
static const char *view_wait(char *buf, size_t n, json_t *job, json_int_t now, int brief)
{
	json_t *w = json_object_get(job, "wait");
	const char *sig = json_string_value(json_object_get(w, "signal"));
	const char *pre = json_is_true(json_object_get(w, "cancelling")) ? "cancelling: " : "";
	char when[96] = "";
	double t;

	if (view_num(w, "until", &t)) {
		if (brief)
			humanfmt_age(t, (double)now, when, sizeof when);
		else
			view_when(when, sizeof when, t, now);
	}
	if (sig && when[0])
		snprintf(buf, n, "%ssignal \"%s\" %s %s", pre, sig, brief ? "or timeout" : "until",
		         when);
	else if (sig)
		snprintf(buf, n, "%ssignal \"%s\"", pre, sig);
	else
		snprintf(buf, n, "%ssleep, wakes %s", pre, when[0] ? when : "?");
	return buf;
}

/* job.progress.fraction as a whole percent (floored: 100% only when done), or -1. */
static int view_percent(json_t *job)
{
	double f;

	if (!view_num(json_object_get(job, "progress"), "fraction", &f) || !(f >= 0 && f <= 1))
		return -1;
	return (int)(f * 100);
}

/* The state cell: "running 42%" for a running job with progress (malloc'd). */
static char *view_state(json_t *job)
{
	const char *state = view_str(job, "state", "?");
	int pct = view_percent(job);
	char buf[64];

	if (pct < 0 || strcmp(state, "running") != 0)
		return strdup(state);
	snprintf(buf, sizeof buf, "%s %d%%", state, pct);
	return strdup(buf);
}

const char *view_progress_bar(char *buf, size_t n, double fraction, const char *message, int width)
{
	int cells = width > 12 ? (width - 8) / 2 : 4, full;
	size_t len = 0;

	if (!(fraction >= 0))
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	if (cells > 40)
		cells = 40;
	full = (int)(fraction * cells);
	if (n == 0)
		return buf;
	buf[0] = 0;
	if (n > (size_t)cells + 2) {
		buf[len++] = '[';
		for (int i = 0; i < cells; i++)
			buf[len++] = i < full ? '#' : '-';
		buf[len++] = ']';
		buf[len] = 0;
	}
	snprintf(buf + len, n - len, " %3d%%%s%s", (int)(fraction * 100), message ? "  " : "",
	         message ? message : "");
	/* a terminal line: cut to width (on a UTF-8 boundary) */
	if (width > 0 && strlen(buf) > (size_t)width) {
		size_t cut = (size_t)width;
		while (cut > 0 && ((unsigned char)buf[cut] & 0xC0) == 0x80)
			cut--;
		buf[cut] = 0;
	}
	return buf;
}

/* A job's row of the jobs table: ID NAME STATE ATTEMPT CREATED DURATION RESULT. */
static int view_job_row(char **row, json_t *job, json_int_t now)
{
	char buf[64];
	double a, b;
	json_t *err = json_object_get(job, "error");

	row[0] = view_text(json_object_get(job, "id"));
	row[1] = strdup(view_str(job, "name", "?"));
	row[2] = view_state(job);
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
	if (json_is_object(json_object_get(job, "wait")))
		row[6] =
		    view_fit(strdup(view_wait(buf, sizeof buf, job, now, 1)), VIEW_RESULT_CELLS);
	else if (json_is_object(err))
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
	size_t i, w = 0, kw = 0, len;
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
		len = view_len(view_str(st, "kind", "?"));
		if (len > kw)
			kw = len;
	}
	json_array_foreach(steps, i, st)
	{
		strcpy(when, "-");
		if (view_num(st, "at", &t))
			view_when(when, sizeof when, t, now);
		res = view_fit(view_json(json_object_get(st, "result")), VIEW_RESULT_CELLS);
		view_num(st, "seq", &t);
		fprintf(f, "  %3.0f  ", t);
		view_pad(f, view_str(st, "kind", "?"), kw);
		fputs("  ", f);
		view_pad(f, view_str(st, "name", "?"), w);
		fprintf(f, "  %s  %s\n", when, res ? res : "?");
		free(res);
	}
}

/* show's "held:" line: what a job that may not start waits behind. */
static void view_held(FILE *f, json_t *h, json_int_t now)
{
	const char *kind = view_str(h, "kind", ""), *key = view_str(h, "key", "");
	char when[96] = "", dur[HUMANFMT_LEN];
	double t, n, of;

	if (view_num(h, "until", &t))
		view_when(when, sizeof when, t, now);
	view_num(h, "of", &of);
	fputs("held:     ", f);
	if (strcmp(kind, "after") == 0) {
		size_t i;
		json_t *id;
		fputs("after job", f);
		fputs(json_array_size(json_object_get(h, "jobs")) == 1 ? "" : "s", f);
		json_array_foreach(json_object_get(h, "jobs"), i, id)
			fprintf(f, "%s %" JSON_INTEGER_FORMAT, i ? "," : "", json_integer_value(id));
		fputs(" (not succeeded yet)", f);
	} else if (strcmp(kind, "pause") == 0) {
		fprintf(f, "paused%s%s until %s", key[0] ? " for key " : "", key,
		        when[0] ? when : "resumed");
	} else if (strcmp(kind, "limit") == 0 && view_num(h, "running", &n)) {
		fprintf(f, "limit by %s = %s: %.0f of %.0f running", view_str(h, "by", "?"), key, n,
		        of);
	} else if (strcmp(kind, "rate") == 0 && view_num(h, "starts", &n) &&
	           view_num(h, "per", &t)) {
		fprintf(f, "rate limit by %s = %s: %.0f of %.0f starts in %s", view_str(h, "by", "?"),
		        key, n, of, humanfmt_duration(t, dur, sizeof dur));
	} else {
		fputs(kind, f);
	}
	fputc('\n', f);
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
	if (view_percent(job) >= 0) {
		const char *m =
		    json_string_value(json_object_get(json_object_get(job, "progress"), "message"));
		char p[320];
		snprintf(p, sizeof p, "%d%%%s%s", view_percent(job), m ? "  " : "", m ? m : "");
		view_field(f, "progress", p);
	}
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
	if (json_is_object(json_object_get(job, "wait"))) {
		char w[256];
		view_field(f, "waits", view_wait(w, sizeof w, job, vo->now_ms, 0));
	}
	if (json_is_object(json_object_get(job, "held")))
		view_held(f, json_object_get(job, "held"), vo->now_ms);
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
	else if (json_is_object(json_object_get(job, "wait"))) {
		char w[256];
		fprintf(f, " (%s)", view_wait(w, sizeof w, job, view_now_ms(), 1));
	}
	fputc('\n', f);
	free(id);
	return 0;
}
