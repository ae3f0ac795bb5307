/*
 * trace.c: the spans of a job attempt (see trace.h), kept in one growing
 * array and serialised with jansson when the attempt ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trace.h"

struct trace *trace_new(double t0)
{
	struct trace *tr = calloc(1, sizeof *tr);

	if (tr) {
		tr->refs = 1;
		tr->t0 = t0;
	}
	return tr;
}

void trace_ref(struct trace *tr)
{
	tr->refs++;
}

void trace_unref(struct trace *tr)
{
	if (!tr || --tr->refs > 0)
		return;
	free(tr->spans);
	free(tr);
}

int trace_open(struct trace *tr, int64_t task, int64_t parent, const char *name, const char *where,
               double now)
{
	struct trace_span *sp;

	if (tr->n == TRACE_MAX_SPANS) {
		tr->dropped++;
		return -1;
	}
	if (tr->n == tr->cap) {
		size_t ncap = tr->cap ? tr->cap * 2 : 8;
		struct trace_span *nv = realloc(tr->spans, ncap * sizeof *nv);
		if (!nv) {
			tr->dropped++;
			return -1;
		}
		tr->spans = nv;
		tr->cap = ncap;
	}
	sp = &tr->spans[tr->n];
	memset(sp, 0, sizeof *sp);
	sp->task = task;
	sp->parent = parent;
	snprintf(sp->name, sizeof sp->name, "%s", name ? name : "task");
	snprintf(sp->where, sizeof sp->where, "%s", where ? where : "");
	sp->start = now;
	return (int)tr->n++;
}

void trace_rename(struct trace *tr, int i, const char *name)
{
	if (i < 0 || (size_t)i >= tr->n)
		return;
	snprintf(tr->spans[i].name, sizeof tr->spans[i].name, "%s", name);
}

void trace_close(struct trace *tr, int i, const char *outcome, double now)
{
	if (i < 0 || (size_t)i >= tr->n || tr->spans[i].outcome)
		return;
	tr->spans[i].end = now;
	tr->spans[i].outcome = outcome;
}

char *trace_json(const struct trace *tr, double offset_ms, int64_t attempt, double now)
{
	json_t *arr = json_array();
	char *text;

	if (!arr)
		return NULL;
	for (size_t i = 0; i < tr->n; i++) {
		const struct trace_span *sp = &tr->spans[i];
		double end = sp->outcome ? sp->end : now;
		json_t *o = json_pack(
		    "{sI sI ss ss sf sf ss sI}", "task", (json_int_t)sp->task, "parent",
		    (json_int_t)sp->parent, "name", sp->name, "where", sp->where, "start",
		    offset_ms + (sp->start - tr->t0), "ms", end - sp->start, "outcome",
		    sp->outcome ? sp->outcome : "running", "attempt", (json_int_t)attempt);
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
		if (!sp->parent)
			json_object_set_new(o, "parent", json_null());
	}
	/* microseconds are enough: shorter text in every job row */
	text = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(arr);
	return text;
}
