/*
 * clock.h: the daemon's clocks, in the units its parts count in. The
 * monotonic clock measures durations and deadlines; the wall clock stamps
 * what is stored or shown (job times, log lines, uptime's start).
 */
#ifndef AWAITD_CLOCK_H
#define AWAITD_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
double clock_mono_ms(void);

/* Monotonic milliseconds at the tick's precision (CLOCK_MONOTONIC_COARSE): cheaper. */
double clock_mono_coarse_ms(void);

/* Unix epoch milliseconds (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

/* Unix epoch seconds, with the fraction (CLOCK_REALTIME). */
double clock_wall_s(void);

/*
 * Move every clock above forward by ms (`awaitd test`'s virtual time: the
 * runtime skips to its next timer instead of waiting for it). 0 until
 * then. Any thread may read the clocks meanwhile.
 */
void clock_skip(double ms);

#endif
