/* loopwatch.c: the loop's lag, measured by a timer that runs late (loopwatch.h). */
#include <stdlib.h>

#include <event2/event.h>

#include "clock.h"
#include "histo.h"
#include "loopwatch.h"

struct loopwatch {
	struct event_base *base;
	struct event *ev;
	double interval_ms;
	double due; /* ms, monotonic: when the timer asked to run */
	double last_ms, max_ms;
	struct histo lag;
};

static void arm(struct loopwatch *lw)
{
	struct timeval tv = {0, (suseconds_t)(lw->interval_ms * 1000)};

	/* libevent times from the turn's cached clock: make it now, so due is the timer's */
	event_base_update_cache_time(lw->base);
	lw->due = clock_mono_ms() + lw->interval_ms;
	evtimer_add(lw->ev, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loopwatch *lw = arg;
	double late = clock_mono_ms() - lw->due;

	(void)fd;
	(void)what;
	if (late < 0)
		late = 0;
	lw->last_ms = late;
	if (late > lw->max_ms)
		lw->max_ms = late;
	histo_observe(&lw->lag, late / 1000);
	arm(lw);
}

struct loopwatch *loopwatch_new(struct event_base *base, double interval_ms)
{
	struct loopwatch *lw = calloc(1, sizeof *lw);

	if (!lw)
		return NULL;
	/* under a second, so the timeval above needs no seconds */
	lw->interval_ms = interval_ms > 0 && interval_ms < 1000 ? interval_ms : 100;
	lw->base = base;
	histo_init(&lw->lag, histo_le_fast, HISTO_LE_FAST_N);
	lw->ev = evtimer_new(base, on_tick, lw);
	if (!lw->ev) {
		free(lw);
		return NULL;
	}
	arm(lw);
	return lw;
}

json_t *loopwatch_json(const struct loopwatch *lw)
{
	if (!lw)
		return json_null();
	return json_pack("{s:o, s:f, s:f}", "lag", histo_json(&lw->lag), "last_ms", lw->last_ms,
	                 "max_ms", lw->max_ms);
}

void loopwatch_free(struct loopwatch *lw)
{
	if (!lw)
		return;
	event_free(lw->ev);
	free(lw);
}
