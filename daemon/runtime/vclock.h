/*
 * vclock.h: timers of the loop that can run in virtual time.
 *
 * Normally a timer is a libevent timer. Under `awaitd test` the scheduler
 * is made with a virtual clock (sched_vclock_on): timers then wait in the
 * scheduler's heap instead, and when nothing else can happen the test
 * runner calls sched_vclock_advance, which moves every clock (clock.h) to
 * the earliest timer and fires the timers due, in order of due time and,
 * for equal times, of arming. A test that sleeps an hour takes no time.
 *
 * Everything here runs on the loop thread.
 */
#ifndef AWAITD_VCLOCK_H
#define AWAITD_VCLOCK_H

#include <stddef.h>
#include <stdint.h>

struct sched;

/* A timer entry of the virtual heap, embedded in its owner (a task). */
struct sched_vt {
	double due;
	uint64_t seq;
	long idx; /* in the heap; -1 when not armed */
	void (*fire)(void *arg);
	void *arg;
};

/* Switch s to virtual time (before any timer is armed). */
void sched_vclock_on(struct sched *s);

/* Is s on virtual time? */
int sched_vclock(const struct sched *s);

void sched_vt_init(struct sched_vt *v, void (*fire)(void *arg), void *arg);

/* Arm v to fire in ms (re-arms an armed one). 0, or -1 when out of memory. */
int sched_vt_add(struct sched *s, struct sched_vt *v, double ms);

/* Disarm v (no-op when it is not armed). */
void sched_vt_del(struct sched *s, struct sched_vt *v);

/*
 * Skip the clocks to the earliest armed timer (never backwards) and fire
 * every timer due then. Returns the number fired; 0 when none is armed.
 */
size_t sched_vclock_advance(struct sched *s);

/* Timers armed in the heap. */
size_t sched_vclock_armed(const struct sched *s);

/*
 * A one-shot timer for the parts above the runtime (the job engine's
 * polls, retries, schedules): a libevent timer, or a virtual one when s
 * is on virtual time.
 */
struct sched_timer;

struct sched_timer *sched_timer_new(struct sched *s, void (*fire)(void *arg), void *arg);

/* Arm to fire in ms (negative: 0); re-arms an armed one. NULL is a no-op. */
void sched_timer_add(struct sched_timer *tm, double ms);

void sched_timer_del(struct sched_timer *tm);

/* Disarm and free, before the scheduler is freed. NULL is a no-op. */
void sched_timer_free(struct sched_timer *tm);

#endif
