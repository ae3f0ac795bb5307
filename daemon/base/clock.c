/* clock.c: see clock.h. clock_gettime cannot fail for these clocks on Linux. */
#include <math.h>
#include <time.h>

#include "clock.h"

static int64_t skipped_us; /* atomic: clock_skip's total */

static double skipped_ms(void)
{
	return (double)__atomic_load_n(&skipped_us, __ATOMIC_RELAXED) / 1000.0;
}

void clock_skip(double ms)
{
	/* rounded up: a clock read after the skip is past the time skipped to */
	__atomic_add_fetch(&skipped_us, (int64_t)ceil(ms * 1000.0), __ATOMIC_RELAXED);
}

static double ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC) + skipped_ms();
}

double clock_mono_coarse_ms(void)
{
	return ms_of(CLOCK_MONOTONIC_COARSE) + skipped_ms();
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	       __atomic_load_n(&skipped_us, __ATOMIC_RELAXED) / 1000;
}

double clock_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + skipped_ms() / 1000.0;
}
