/*
 * test_humanfmt.c: the edges of the human formats: zero, sub-millisecond,
 * the rounding at each unit's end (59.9 s, 999.5 ms, 1023 B / 1 KiB),
 * hours and days, negative and unknown values, and short buffers. Local
 * time is pinned to UTC so the expected text does not depend on the host.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <math.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "humanfmt.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)

#define SEC  1000.0
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static int setup_utc(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static const char *dur(double ms)
{
	static char buf[HUMANFMT_LEN];

	return humanfmt_duration(ms, buf, sizeof buf);
}

static void test_duration_ms(void **state)
{
	(void)state;
	assert_string_equal(dur(0), "0ms");
	assert_string_equal(dur(0.001), "<0.1ms");
	assert_string_equal(dur(0.049), "<0.1ms");
	assert_string_equal(dur(0.34), "0.3ms");
	assert_string_equal(dur(1), "1.0ms");
	assert_string_equal(dur(9.94), "9.9ms");
	assert_string_equal(dur(9.96), "10ms");
	assert_string_equal(dur(340), "340ms");
	assert_string_equal(dur(999.4), "999ms");
}

static void test_duration_seconds_and_up(void **state)
{
	(void)state;
	assert_string_equal(dur(999.5), "1s"); /* not "1000ms" */
	assert_string_equal(dur(1200), "1.2s");
	assert_string_equal(dur(30 * SEC), "30s");
	assert_string_equal(dur(59.9 * SEC), "59.9s");
	assert_string_equal(dur(59.96 * SEC), "1m00s"); /* not "60s" */
	assert_string_equal(dur(125 * SEC), "2m05s");
	assert_string_equal(dur(HOUR - 1), "1h00m");
	assert_string_equal(dur(3 * HOUR + 10 * MIN), "3h10m");
	assert_string_equal(dur(DAY - 1), "1d00h");
	assert_string_equal(dur(2 * DAY + 4 * HOUR), "2d04h");
	assert_string_equal(dur(400 * DAY), "400d00h");
	assert_string_equal(dur(1e15), "11574074d02h");
	assert_string_equal(dur(1e300), "-");
}

static void test_duration_unknown(void **state)
{
	char small[4];

	(void)state;
	assert_string_equal(dur(-1), "-");
	assert_string_equal(dur(-0.001), "-");
	assert_string_equal(dur(NAN), "-");
	assert_string_equal(dur(INFINITY), "-");
	/* a short buffer is cut, never overrun */
	assert_string_equal(humanfmt_duration(340, small, sizeof small), "340");
}

static const char *age(double t, double now)
{
	static char buf[HUMANFMT_LEN];

	return humanfmt_age(t, now, buf, sizeof buf);
}

static void test_age(void **state)
{
	double now = 1714564800000.0; /* 2024-05-01 12:00:00 UTC */

	(void)state;
	assert_string_equal(age(now, now), "now");
	assert_string_equal(age(now - 999, now), "now");
	assert_string_equal(age(now - SEC, now), "1s ago");
	assert_string_equal(age(now - 59.9 * SEC, now), "59s ago");
	assert_string_equal(age(now - 3 * MIN, now), "3m ago");
	assert_string_equal(age(now - 4 * HOUR - 59 * MIN, now), "4h ago");
	assert_string_equal(age(now - 2 * DAY, now), "2d ago");
	assert_string_equal(age(now + 5 * SEC, now), "in 5s");
	assert_string_equal(age(0, now), "19844d ago");
	assert_string_equal(age(NAN, now), "-");
}

static const char *when(double t)
{
	static char buf[HUMANFMT_LEN];

	return humanfmt_time(t, buf, sizeof buf);
}

static void test_time(void **state)
{
	char small[8];

	(void)state;
	assert_string_equal(when(1714564800000.0), "2024-05-01 12:00:00");
	assert_string_equal(when(1714564800999.0), "2024-05-01 12:00:00"); /* cut, not rounded */
	assert_string_equal(when(0), "1970-01-01 00:00:00");
	assert_string_equal(when(-1), "-");
	assert_string_equal(when(NAN), "-");
	assert_string_equal(when(1e300), "-");
	assert_string_equal(humanfmt_time(0, small, sizeof small), "-"); /* no half dates */
}

static void test_time_is_local(void **state)
{
	(void)state;
	setenv("TZ", "XST-2", 1); /* POSIX: two hours east of UTC, no tzdata needed */
	tzset();
	assert_string_equal(when(1714564800000.0), "2024-05-01 14:00:00");
	setup_utc(state);
}

static const char *size(uint64_t n)
{
	static char buf[HUMANFMT_LEN];

	return humanfmt_bytes(n, buf, sizeof buf);
}

static void test_bytes(void **state)
{
	char small[4];

	(void)state;
	assert_string_equal(size(0), "0 B");
	assert_string_equal(size(1023), "1023 B");
	assert_string_equal(size(KIB), "1.0 KiB");
	assert_string_equal(size(1536), "1.5 KiB");
	assert_string_equal(size(10 * KIB - 1), "10 KiB");
	assert_string_equal(size(MIB - 1), "1.0 MiB"); /* not "1024 KiB" */
	assert_string_equal(size(12 * MIB + 300 * KIB), "12 MiB");
	assert_string_equal(size(256 * MIB), "256 MiB");
	assert_string_equal(size(2 * GIB), "2.0 GiB");
	assert_string_equal(size((uint64_t)1 << 40), "1.0 TiB");
	assert_string_equal(size(UINT64_MAX), "16 EiB");
	assert_string_equal(humanfmt_bytes(2 * GIB, small, sizeof small), "2.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_ms),
	    cmocka_unit_test(test_duration_seconds_and_up),
	    cmocka_unit_test(test_duration_unknown),
	    cmocka_unit_test(test_age),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_time_is_local),
	    cmocka_unit_test(test_bytes),
	};
	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
