/*
 * vclock.c: timers in virtual time (vclock.h).
 *
 * The heap is a binary min-heap of the armed entries, ordered by (due,
 * seq): seq counts arming, so timers due at the same time fire in the
 * order they were armed, as libevent's do. Each entry knows its index, so
 * disarming is O(log n).
 */
#include <math.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "clock.h"
#include "sched.h"
#include "vclock.h"

static int before(const struct sched_vt *a, const struct sched_vt *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(struct sched *s, size_t i, struct sched_vt *v)
{
	s->vheap[i] = v;
	v->idx = (long)i;
}

static void sift_up(struct sched *s, size_t i)
{
	struct sched_vt *v = s->vheap[i];

	while (i > 0 && before(v, s->vheap[(i - 1) / 2])) {
		place(s, i, s->vheap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(s, i, v);
}

static void sift_down(struct sched *s, size_t i)
{
	struct sched_vt *v = s->vheap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->nvheap)
			break;
		if (c + 1 < s->nvheap && before(s->vheap[c + 1], s->vheap[c]))
			c++;
		if (!before(s->vheap[c], v))
			break;
		place(s, i, s->vheap[c]);
		i = c;
	}
	place(s, i, v);
}

void sched_vclock_on(struct sched *s)
{
	s->vclock = 1;
}

int sched_vclock(const struct sched *s)
{
	return s->vclock;
}

size_t sched_vclock_armed(const struct sched *s)
{
	return s->nvheap;
}

void sched_vt_init(struct sched_vt *v, void (*fire)(void *arg), void *arg)
{
	v->due = 0;
	v->seq = 0;
	v->idx = -1;
	v->fire = fire;
	v->arg = arg;
}

void sched_vt_del(struct sched *s, struct sched_vt *v)
{
	size_t i = (size_t)v->idx;
	struct sched_vt *last;

	if (v->idx < 0)
		return;
	v->idx = -1;
	last = s->vheap[--s->nvheap];
	if (i == s->nvheap)
		return;
	place(s, i, last);
	if (i > 0 && before(last, s->vheap[(i - 1) / 2]))
		sift_up(s, i);
	else
		sift_down(s, i);
}

int sched_vt_add(struct sched *s, struct sched_vt *v, double ms)
{
	sched_vt_del(s, v);
	if (s->nvheap == s->capvheap) {
		size_t cap = s->capvheap ? s->capvheap * 2 : 64;
		struct sched_vt **h = realloc(s->vheap, cap * sizeof *h);
		if (!h)
			return -1;
		s->vheap = h;
		s->capvheap = cap;
	}
	v->due = sched_now() + (ms > 0 ? ms : 0);
	v->seq = ++s->vseq;
	s->vheap[s->nvheap] = v;
	v->idx = (long)s->nvheap++;
	sift_up(s, s->nvheap - 1);
	return 0;
}

size_t sched_vclock_advance(struct sched *s)
{
	size_t n = 0;
	double now;

	if (!s->nvheap)
		return 0;
	now = sched_now();
	if (s->vheap[0]->due > now)
		clock_skip(s->vheap[0]->due - now);
	now = sched_now();
	while (s->nvheap && s->vheap[0]->due <= now) {
		struct sched_vt *v = s->vheap[0];
		sched_vt_del(s, v);
		v->fire(v->arg);
		n++;
	}
	return n;
}

/* ---- sched_timer ------------------------------------------------------------------------ */

struct sched_timer {
	struct sched *s;
	struct event *ev; /* real time */
	struct sched_vt vt;
	void (*fire)(void *arg);
	void *arg;
};

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct sched_timer *tm = arg;

	(void)fd;
	(void)what;
	tm->fire(tm->arg);
}

struct sched_timer *sched_timer_new(struct sched *s, void (*fire)(void *arg), void *arg)
{
	struct sched_timer *tm = calloc(1, sizeof *tm);

	if (!tm)
		return NULL;
	tm->s = s;
	tm->fire = fire;
	tm->arg = arg;
	sched_vt_init(&tm->vt, fire, arg);
	if (!s->vclock && !(tm->ev = evtimer_new(s->base, on_event, tm))) {
		free(tm);
		return NULL;
	}
	return tm;
}

void sched_timer_add(struct sched_timer *tm, double ms)
{
	struct timeval tv;

	if (!tm)
		return;
	if (ms < 0)
		ms = 0;
	if (tm->s->vclock) {
		sched_vt_add(tm->s, &tm->vt, ms);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)fmod(ms * 1000, 1e6);
	evtimer_add(tm->ev, &tv);
}

void sched_timer_del(struct sched_timer *tm)
{
	if (!tm)
		return;
	if (tm->s->vclock)
		sched_vt_del(tm->s, &tm->vt);
	else
		evtimer_del(tm->ev);
}

void sched_timer_free(struct sched_timer *tm)
{
	if (!tm)
		return;
	sched_timer_del(tm);
	if (tm->ev)
		event_free(tm->ev);
	free(tm);
}
