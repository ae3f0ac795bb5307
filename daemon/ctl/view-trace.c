/*
 * view-trace.c: the waterfall of `awaitctl trace` (view_trace).
 *
 * Spans are sorted by (attempt, start, task), a span's parent is looked up
 * among the spans of the same attempt, and only a parent sorted before its
 * child counts; any other span is drawn as a root. So the tree has no
 * cycles whatever the daemon sends, and each span's depth is known when it
 * is reached in order.
 */
#include <stdlib.h>
#include <string.h>

#include "humanfmt.h"
#include "view.h"
#include "view-int.h"

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
