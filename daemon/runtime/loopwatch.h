/*
 * loopwatch.h: how late the event loop answers. A timer asks to run every
 * interval; how much later than asked it runs is the loop's lag at that
 * moment (a callback that held the loop, a slow turn). The lags go into a
 * histogram (seconds), whose sum over a span of time is the lag the loop
 * added in that span: what `stats`, /metrics and the dashboard show.
 *
 * Part runtime. Real time only: `awaitd test` (virtual time) has none.
 */
#ifndef AWAITD_LOOPWATCH_H
#define AWAITD_LOOPWATCH_H

#include <jansson.h>

struct event_base;
struct loopwatch;

/* Start watching base every interval_ms. NULL when out of memory. */
struct loopwatch *loopwatch_new(struct event_base *base, double interval_ms);

/* {"lag": histogram (histo.h, seconds), "last_ms": the latest lag, "max_ms": the largest}. */
json_t *loopwatch_json(const struct loopwatch *lw);

/* Stop and free. NULL is a no-op. */
void loopwatch_free(struct loopwatch *lw);

#endif
