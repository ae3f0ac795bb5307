/*
 * trace.h: the spans of one job attempt, for `awaitctl trace` (SPEC
 * section 6): every task of the job's tree and every step or transaction,
 * with start, duration and outcome.
 *
 * A trace is reference-counted: the job run holds one reference and every
 * traced task one (a detached task does not inherit its parent's trace),
 * so a late-settling task never writes into freed memory. At most
 * TRACE_MAX_SPANS spans are kept; later ones are counted, not stored.
 */
#ifndef AWAITD_TRACE_H
#define AWAITD_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_MAX_SPANS 1000

struct trace_span {
	int64_t task;        /* the task, or the task that ran the step */
	int64_t parent;      /* parent task, 0 for the root */
	char name[48];       /* "run", "task", "step debit", "tx receipt" */
	char where[80];      /* "purchase.lua:12" */
	double start;        /* ms, monotonic */
	double end;          /* ms, monotonic; 0 while open */
	const char *outcome; /* static: "done", "failed", "cancelled", "waiting" (a durable
	                      * wait parked the job); NULL while open */
};

struct trace {
	int refs;
	double t0; /* ms, monotonic: the attempt's start */
	struct trace_span *spans;
	size_t n, cap;
	size_t dropped;
};

/* A new trace starting now (one reference). NULL when out of memory. */
struct trace *trace_new(double t0);

void trace_ref(struct trace *tr);

/* Drop a reference; frees at zero. NULL is a no-op. */
void trace_unref(struct trace *tr);

/* Open a span; returns its index, or -1 when full or out of memory. */
int trace_open(struct trace *tr, int64_t task, int64_t parent, const char *name, const char *where,
               double now);

/* Give span i a new name, cut to fit (ignored for -1): async.name. */
void trace_rename(struct trace *tr, int i, const char *name);

/* Close span i (ignored for -1 or a closed span). */
void trace_close(struct trace *tr, int i, const char *outcome, double now);

/*
 * The spans as a JSON array text, times relative to t0_job (ms; the
 * job's first start, so attempts share one axis): [{"task", "parent",
 * "name", "where", "start", "ms", "outcome", "attempt"}]. Spans still open
 * are reported with outcome "running" up to now. Malloc'd; NULL when out
 * of memory.
 */
char *trace_json(const struct trace *tr, double offset_ms, int64_t attempt, double now);

#endif
