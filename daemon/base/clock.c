/* clock.c: see clock.h. clock_gettime cannot fail for these clocks on Linux. */
#include <time.h>

#include "clock.h"

static double ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}

double clock_mono_coarse_ms(void)
{
	return ms_of(CLOCK_MONOTONIC_COARSE);
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double clock_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
