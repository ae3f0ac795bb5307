/*
 * histo.h: a histogram of fixed bucket bounds, as Prometheus counts one:
 * how many observations fell at or under each bound, their sum and their
 * count. The bounds are a caller's static array (ascending, the last one
 * finite: +Inf is implied), so a histogram is a few counters and never
 * allocates. Its JSON form is what `awaitctl stats` prints and /metrics
 * reads.
 */
#ifndef AWAITD_HISTO_H
#define AWAITD_HISTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HISTO_MAX_BUCKETS 16

struct histo {
	const double *le; /* upper bounds, ascending */
	size_t n;         /* bounds (<= HISTO_MAX_BUCKETS) */
	uint64_t
	    counts[HISTO_MAX_BUCKETS + 1]; /* per bucket, not cumulative; [n]: above the last */
	uint64_t count;
	double sum;
};

/* A histogram with n bounds le (static storage; n is capped at HISTO_MAX_BUCKETS). */
void histo_init(struct histo *h, const double *le, size_t n);

/* Count v (NaN is ignored). */
void histo_observe(struct histo *h, double v);

/*
 * {"le": [...], "counts": [...cumulative, one per bound, then +Inf], "sum": S,
 * "count": N}: the buckets as Prometheus exposes them. New reference.
 */
json_t *histo_json(const struct histo *h);

/* The bucket bounds the daemon's histograms share. */
extern const double histo_le_seconds[]; /* 1 ms .. 5 min: durations of jobs */
#define HISTO_LE_SECONDS_N 12
extern const double histo_le_fast[]; /* 50 us .. 1 s: fsyncs, loop lag */
#define HISTO_LE_FAST_N 13
extern const double histo_le_count[]; /* 1 .. 4096: sizes of batches */
#define HISTO_LE_COUNT_N 13

#endif
