/*
 * test_cron.c: cron expressions: every field form, names, macros, "@every",
 * the day-of-month/day-of-week rule, month and year rollover, Feb 29,
 * impossible schedules, "strictly after", a minute-by-minute sweep of 2024
 * against hand-written predicates, and every parse error with its message
 * and the schedule left unchanged.
 *
 * Expected times are written as calendar dates and converted by utc()
 * (timegm on a struct tm filled by hand), which test_utc_helper pins to
 * known epoch values.
 */
#define _DEFAULT_SOURCE /* timegm, which strict POSIX hides */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

/* ms since the epoch of Y-M-D h:m UTC (M is 1-12). */
static int64_t utc(int y, int mon, int d, int h, int mi)
{
	struct tm tm = {0};

	tm.tm_year = y - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000;
}

static struct cron parse_ok(const char *expr)
{
	struct cron c;
	char err[256] = "";

	if (cron_parse(&c, expr, err, sizeof err) != 0)
		fail_msg("cron_parse(\"%s\"): %s", expr, err);
	return c;
}

/* The next fire of expr after the given time. */
static int64_t next(const char *expr, int64_t after_ms)
{
	struct cron c = parse_ok(expr);

	return cron_next(&c, after_ms);
}

static void test_utc_helper(void **state)
{
	(void)state;
	assert_int_equal(utc(1970, 1, 1, 0, 0), 0);
	assert_int_equal(utc(2024, 2, 29, 0, 0), INT64_C(1709164800000));
	assert_int_equal(utc(2025, 1, 1, 10, 1), INT64_C(1735725660000));
}

static void test_minute_and_hour_forms(void **state)
{
	(void)state;
	/* "*" and a bare number */
	assert_int_equal(next("* * * * *", utc(2025, 1, 1, 10, 0) + 30000), utc(2025, 1, 1, 10, 1));
	assert_int_equal(next("5 * * * *", utc(2025, 1, 1, 10, 5)), utc(2025, 1, 1, 11, 5));
	assert_int_equal(next("5 * * * *", utc(2025, 1, 1, 10, 4)), utc(2025, 1, 1, 10, 5));
	/* "*" with a step */
	assert_int_equal(next("*/15 * * * *", utc(2025, 1, 1, 10, 16)), utc(2025, 1, 1, 10, 30));
	assert_int_equal(next("*/15 * * * *", utc(2025, 1, 1, 10, 45)), utc(2025, 1, 1, 11, 0));
	/* a range, with and without a step */
	assert_int_equal(next("10-50/10 * * * *", utc(2025, 1, 1, 10, 9)), utc(2025, 1, 1, 10, 10));
	assert_int_equal(next("10-50/10 * * * *", utc(2025, 1, 1, 10, 50)),
	                 utc(2025, 1, 1, 11, 10));
	assert_int_equal(next("20-22 * * * *", utc(2025, 1, 1, 10, 22)), utc(2025, 1, 1, 11, 20));
	/* "N/STEP" is N-59/STEP: 5, 20, 35, 50 */
	assert_int_equal(next("5/15 * * * *", utc(2025, 1, 1, 10, 35)), utc(2025, 1, 1, 10, 50));
	assert_int_equal(next("5/15 * * * *", utc(2025, 1, 1, 10, 51)), utc(2025, 1, 1, 11, 5));
	/* a list mixing forms */
	assert_int_equal(next("1,2,58-59 * * * *", utc(2025, 1, 1, 10, 2)),
	                 utc(2025, 1, 1, 10, 58));
	assert_int_equal(next("1,2,58-59 * * * *", utc(2025, 1, 1, 10, 59)),
	                 utc(2025, 1, 1, 11, 1));
	/* hours 9, 13, 17 */
	assert_int_equal(next("0 9-17/4 * * *", utc(2025, 1, 1, 13, 0)), utc(2025, 1, 1, 17, 0));
	assert_int_equal(next("0 9-17/4 * * *", utc(2025, 1, 1, 17, 0)), utc(2025, 1, 2, 9, 0));
	/* blanks: tabs and runs of spaces between and around the fields */
	assert_int_equal(next("  0\t9-17/4   * * *\t", utc(2025, 1, 1, 13, 0)),
	                 utc(2025, 1, 1, 17, 0));
}

static void test_day_and_month_forms(void **state)
{
	(void)state;
	assert_int_equal(next("0 0 1,15 * *", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 15, 0, 0));
	assert_int_equal(next("0 0 * 3 *", utc(2025, 1, 10, 0, 0)), utc(2025, 3, 1, 0, 0));
	assert_int_equal(next("0 0 * 3-4/1 *", utc(2025, 3, 31, 0, 0)), utc(2025, 4, 1, 0, 0));
	assert_int_equal(next("0 0 * 3-4/1 *", utc(2025, 4, 30, 0, 0)), utc(2026, 3, 1, 0, 0));
	/* 2025-01-01 is a Wednesday */
	assert_int_equal(next("0 0 * * 1", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 6, 0, 0));
	assert_int_equal(next("0 0 * * 0", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 5, 0, 0));
	assert_int_equal(next("0 0 * * 7", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 5, 0, 0));
	/* Fri, Sat, Sun through 7 */
	assert_int_equal(next("0 0 * * 5-7", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 3, 0, 0));
	assert_int_equal(next("0 0 * * 5-7", utc(2025, 1, 4, 0, 0)), utc(2025, 1, 5, 0, 0));
	assert_int_equal(next("0 0 * * 5-7", utc(2025, 1, 5, 0, 0)), utc(2025, 1, 10, 0, 0));
}

static void assert_same_schedule(const char *a, const char *b)
{
	struct cron ca = parse_ok(a), cb = parse_ok(b);

	assert_int_equal(ca.minutes, cb.minutes);
	assert_int_equal(ca.hours, cb.hours);
	assert_int_equal(ca.mdays, cb.mdays);
	assert_int_equal(ca.months, cb.months);
	assert_int_equal(ca.wdays, cb.wdays);
	assert_int_equal(ca.mday_star, cb.mday_star);
	assert_int_equal(ca.wday_star, cb.wday_star);
	assert_int_equal(ca.every, cb.every);
	assert_int_equal(ca.every_ms, cb.every_ms);
}

static void test_names(void **state)
{
	struct cron c;

	(void)state;
	assert_same_schedule("0 0 * jan,MAR,Dec *", "0 0 * 1,3,12 *");
	assert_same_schedule("0 0 * Jun-aug *", "0 0 * 6-8 *");
	assert_same_schedule("0 0 * feb/3 *", "0 0 * 2,5,8,11 *");
	assert_same_schedule("0 0 * * Mon-FRI", "0 0 * * 1-5");
	assert_same_schedule("0 0 * * sun", "0 0 * * 0");
	assert_same_schedule("0 0 * * 7", "0 0 * * 0");
	assert_same_schedule("0 0 * * thu-7", "0 0 * * 4,5,6,0");
	assert_same_schedule("0 0 * * sat-7", "0 0 * * 0,6");

	c = parse_ok("0 0 * * mon-fri");
	assert_int_equal(c.wdays, 0x3e); /* bits 1-5 */
	c = parse_ok("0 0 * feb *");
	assert_int_equal(c.months, 1 << 2);
	assert_int_equal(next("0 0 * * sat", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 4, 0, 0));
	assert_int_equal(next("0 0 1 jun-aug *", utc(2025, 6, 1, 0, 0)), utc(2025, 7, 1, 0, 0));
}

static void test_macros(void **state)
{
	(void)state;
	assert_same_schedule("@yearly", "0 0 1 1 *");
	assert_same_schedule("@annually", "0 0 1 1 *");
	assert_same_schedule("@monthly", "0 0 1 * *");
	assert_same_schedule("@weekly", "0 0 * * 0");
	assert_same_schedule("@daily", "0 0 * * *");
	assert_same_schedule("@midnight", "0 0 * * *");
	assert_same_schedule("@hourly", "0 * * * *");
	assert_same_schedule("  @DAILY\t", "0 0 * * *");

	assert_int_equal(next("@yearly", utc(2025, 6, 1, 0, 0)), utc(2026, 1, 1, 0, 0));
	assert_int_equal(next("@monthly", utc(2025, 1, 31, 12, 0)), utc(2025, 2, 1, 0, 0));
	assert_int_equal(next("@weekly", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 5, 0, 0));
	assert_int_equal(next("@daily", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 2, 0, 0));
	assert_int_equal(next("@hourly", utc(2025, 1, 1, 23, 0)), utc(2025, 1, 2, 0, 0));
}

static void assert_every(const char *expr, int64_t ms)
{
	struct cron c = parse_ok(expr);
	int64_t t = utc(2025, 1, 1, 10, 0) + 123;

	assert_int_equal(c.every, 1);
	assert_int_equal(c.every_ms, ms);
	assert_int_equal(cron_next(&c, t), t + ms);
	assert_int_equal(cron_next(&c, 0), ms);
}

static void test_every(void **state)
{
	(void)state;
	assert_every("@every 30s", 30000);
	assert_every("@every 500ms", 500);
	assert_every("@every 1ms", 1);
	assert_every("@every 5m", 300000);
	assert_every("@every 2h", 7200000);
	assert_every("@every 2d", 172800000);
	assert_every("@every 1h30m", 5400000);
	assert_every("@every 1m30s250ms", 90250);
	assert_every("@every 90m", 5400000);
	assert_every("@EVERY   10s ", 10000);
	assert_every("@every 36500d", CRON_EVERY_MAX_MS);
}

static void test_dom_dow_rule(void **state)
{
	(void)state;
	/* Both restricted: the 13th OR a Friday (Jan 3, 10, 17 2025 are Fridays). */
	assert_int_equal(next("0 0 13 * 5", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 3, 0, 0));
	assert_int_equal(next("0 0 13 * 5", utc(2025, 1, 10, 0, 0)), utc(2025, 1, 13, 0, 0));
	assert_int_equal(next("0 0 13 * 5", utc(2025, 1, 13, 0, 0)), utc(2025, 1, 17, 0, 0));
	assert_int_equal(next("0 0 13 * fri", utc(2025, 1, 13, 0, 0)), utc(2025, 1, 17, 0, 0));
	/* One of them "*": only the other counts. */
	assert_int_equal(next("0 0 13 * *", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 13, 0, 0));
	assert_int_equal(next("0 0 * * 5", utc(2025, 1, 3, 0, 0)), utc(2025, 1, 10, 0, 0));
	/*
	 * A stepped "*" counts as unrestricted (Vixie): days 1, 11, 21, 31 AND
	 * a Friday: Jan 31 2025. Written as a range it is restricted: days
	 * 1, 11, 21, 31 OR a Friday: Jan 3.
	 */
	assert_int_equal(next("0 0 */10 * 5", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 31, 0, 0));
	assert_int_equal(next("0 0 1-31/10 * 5", utc(2025, 1, 1, 0, 0)), utc(2025, 1, 3, 0, 0));
}

static void test_rollover(void **state)
{
	(void)state;
	/* minute -> hour -> day -> month -> year */
	assert_int_equal(next("* * * * *", utc(2025, 12, 31, 23, 59)), utc(2026, 1, 1, 0, 0));
	assert_int_equal(next("0 0 1 1 *", utc(2026, 1, 1, 0, 0) - 1), utc(2026, 1, 1, 0, 0));
	assert_int_equal(next("59 23 31 12 *", utc(2025, 12, 31, 23, 59)),
	                 utc(2026, 12, 31, 23, 59));
	assert_int_equal(next("30 2 * * *", utc(2025, 2, 28, 3, 0)), utc(2025, 3, 1, 2, 30));
	/* months without a 31st are skipped */
	assert_int_equal(next("0 0 31 * *", utc(2025, 1, 31, 0, 0)), utc(2025, 3, 31, 0, 0));
	assert_int_equal(next("0 0 31 * *", utc(2025, 8, 31, 0, 0)), utc(2025, 10, 31, 0, 0));
	/* the year's last matching month is behind: next year's first */
	assert_int_equal(next("0 12 15 3,6 *", utc(2025, 6, 15, 12, 0)), utc(2026, 3, 15, 12, 0));
}

static void test_leap_day(void **state)
{
	(void)state;
	assert_int_equal(next("0 0 29 2 *", utc(2025, 3, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
	assert_int_equal(next("0 0 29 2 *", utc(2024, 2, 29, 0, 0)), utc(2028, 2, 29, 0, 0));
	assert_int_equal(next("0 0 29 2 *", utc(2024, 1, 1, 0, 0)), utc(2024, 2, 29, 0, 0));
	/* 2100 is no leap year: eight years to the next Feb 29 */
	assert_int_equal(next("0 0 29 feb *", utc(2096, 3, 1, 0, 0)), utc(2104, 2, 29, 0, 0));
}

static void test_impossible(void **state)
{
	(void)state;
	assert_int_equal(next("0 0 30 2 *", utc(2025, 1, 1, 0, 0)), -1);
	assert_int_equal(next("0 0 31 4,6,9,11 *", utc(2025, 1, 1, 0, 0)), -1);
	assert_int_equal(next("0 0 31 apr *", 0), -1);
	/* with a restricted weekday the OR rule makes it possible: Mondays in Feb */
	assert_int_equal(next("0 0 30 2 1", utc(2025, 1, 1, 0, 0)), utc(2025, 2, 3, 0, 0));
}

static void test_strictly_after(void **state)
{
	struct cron c = parse_ok("0 12 * * *");
	struct cron every = parse_ok("@every 1s");
	int64_t noon = utc(2025, 5, 5, 12, 0);

	(void)state;
	assert_int_equal(cron_next(&c, noon - 1), noon);
	assert_int_equal(cron_next(&c, noon), utc(2025, 5, 6, 12, 0));
	assert_int_equal(cron_next(&c, noon + 1), utc(2025, 5, 6, 12, 0));
	assert_int_equal(next("* * * * *", noon), noon + 60000);
	assert_int_equal(next("* * * * *", noon + 59999), noon + 60000);
	assert_int_equal(cron_next(&every, noon), noon + 1000);
	/* chained: each fire is the "after" of the next */
	assert_int_equal(cron_next(&c, cron_next(&c, noon - 1)), utc(2025, 5, 6, 12, 0));
}

static void test_after_out_of_range(void **state)
{
	struct cron c = parse_ok("* * * * *");
	struct cron every = parse_ok("@every 1s");

	(void)state;
	assert_int_equal(cron_next(&c, -1), -1);
	assert_int_equal(cron_next(&every, -1), -1);
	assert_int_equal(cron_next(&c, CRON_MAX_MS + 1), -1);
	assert_int_equal(cron_next(&c, 0), 60000);
	/* the last valid "after" still finds its fire, in year 10000 */
	assert_int_equal(cron_next(&c, CRON_MAX_MS), CRON_MAX_MS + 1);
	assert_int_equal(cron_next(&every, CRON_MAX_MS), CRON_MAX_MS + 1000);
}

/*
 * Sweep 2024 (a leap year) minute by minute: chaining cron_next from the
 * start must land on exactly the minutes the hand-written predicate
 * accepts, in order.
 */
static int pred_or(const struct tm *tm)
{
	return tm->tm_min % 7 == 0 && tm->tm_hour >= 3 && tm->tm_hour <= 5 &&
	       (tm->tm_mday == 1 || tm->tm_mday == 15 || tm->tm_wday == 1);
}

static int pred_and(const struct tm *tm)
{
	return tm->tm_min == 30 && tm->tm_hour % 6 == 0 && (tm->tm_mon == 1 || tm->tm_mon == 7) &&
	       (tm->tm_wday == 0 || tm->tm_wday == 6);
}

static int pred_month_end(const struct tm *tm)
{
	return (tm->tm_min <= 4 || tm->tm_min == 58) && tm->tm_hour == 23 && tm->tm_mday >= 29;
}

static void sweep(const char *expr, int (*pred)(const struct tm *))
{
	struct cron c = parse_ok(expr);
	int64_t start = utc(2024, 1, 1, 0, 0), end = utc(2025, 1, 1, 0, 0);
	int64_t prev = start - 1, t;
	int nfires = 0;

	for (t = start; t < end; t += 60000) {
		time_t s = (time_t)(t / 1000);
		struct tm tm;

		assert_non_null(gmtime_r(&s, &tm));
		if (!pred(&tm))
			continue;
		assert_int_equal(cron_next(&c, prev), t);
		prev = t;
		nfires++;
	}
	assert_true(nfires > 0);
	assert_true(cron_next(&c, prev) >= end);
}

static void test_sweep_2024(void **state)
{
	(void)state;
	sweep("*/7 3-5 1,15 * mon", pred_or);
	sweep("30 */6 * feb,aug sat,sun", pred_and);
	sweep("0-4,58 23 29-31 * *", pred_month_end);
}

static void test_bad_expressions(void **state)
{
	static const struct {
		const char *expr, *msg; /* msg: a substring of the error */
	} bad[] = {
	    {"", "empty expression"},
	    {" \t ", "empty expression"},
	    {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
	    {"* * * * * *",
	     "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
	    {"0 0 * * * extra words", "got 7"},
	    {"61 * * * *", "minute field \"61\": out of range 0-59"},
	    {"1,60 * * * *", "minute field \"60\": out of range 0-59"},
	    {"99999999999999 * * * *", "minute field \"99999999999999\": out of range 0-59"},
	    {"* 24 * * *", "hour field \"24\": out of range 0-23"},
	    {"* * 0 * *", "day-of-month field \"0\": out of range 1-31"},
	    {"* * 32 * *", "day-of-month field \"32\": out of range 1-31"},
	    {"* * * 0 *", "month field \"0\": out of range 1-12"},
	    {"* * * 13 *", "month field \"13\": out of range 1-12"},
	    {"* * * * 8", "day-of-week field \"8\": out of range 0-7"},
	    {"* * * * 5-8", "day-of-week field \"5-8\": out of range 0-7"},
	    {"*/0 * * * *", "minute field \"*/0\": step must be at least 1"},
	    {"* 1-5/0 * * *", "hour field \"1-5/0\": step must be at least 1"},
	    {"*/61 * * * *", "minute field \"*/61\": step out of range 1-60"},
	    {"*/ * * * *", "minute field \"*/\": step must be a number"},
	    {"*/x * * * *", "minute field \"*/x\": step must be a number"},
	    {"50-10 * * * *", "minute field \"50-10\": range is reversed"},
	    {"* * * dec-jan *", "month field \"dec-jan\": range is reversed"},
	    {"* * * * sat-sun",
	     "day-of-week field \"sat-sun\": range is reversed"}, /* sat-7 works */
	    {"x * * * *", "minute field \"x\": expected a number"},
	    {"-5 * * * *", "minute field \"-5\": expected a number"},
	    {"5- * * * *", "minute field \"5-\": expected a number"},
	    {"mon * * * *", "minute field \"mon\": expected a number"},
	    {"* * * foo *", "month field \"foo\": expected a number or a name (jan..dec)"},
	    {"* * * january *", "month field \"january\": expected a number or a name"},
	    {"* * * * funday",
	     "day-of-week field \"funday\": expected a number or a name (sun..sat)"},
	    {"5x * * * *", "minute field \"5x\": unexpected \"x\""},
	    {"1-5-7 * * * *", "minute field \"1-5-7\": unexpected \"-7\""},
	    {"*/5/2 * * * *", "minute field \"*/5/2\": unexpected \"/2\""},
	    {"** * * * *", "minute field \"**\": unexpected \"*\""},
	    {"1,,2 * * * *", "minute field \"1,,2\": empty list item"},
	    {"1, * * * *", "minute field \"1,\": empty list item"},
	    {", * * * *", "minute field \",\": empty list item"},
	    {"0 0 * * *\n", "day-of-week field \"*?\": unexpected \"?\""},
	    {"@foo", "unknown macro \"@foo\" (known: @yearly, @annually, @monthly, @weekly, "
	             "@daily, @midnight, @hourly, @every)"},
	    {"@", "unknown macro \"@\""},
	    {"@daily 5", "@daily takes no arguments"},
	    {"@every", "@every: missing duration"},
	    {"@every   ", "@every: missing duration"},
	    {"@every 0s", "@every \"0s\": duration must be at least 1ms"},
	    {"@every 0h0m", "@every \"0h0m\": duration must be at least 1ms"},
	    {"@every 30", "@every \"30\": expected a duration like 30s, 500ms or 1h30m"},
	    {"@every 5x", "@every \"5x\": expected a duration"},
	    {"@every s", "@every \"s\": expected a duration"},
	    {"@every -5s", "@every \"-5s\": expected a duration"},
	    {"@every 1.5h", "@every \"1.5h\": expected a duration"},
	    {"@every 1h 30m", "@every \"1h 30m\": expected a duration"},
	    {"@every 5S", "@every \"5S\": expected a duration"},
	    {"@every 36500d1ms", "@every \"36500d1ms\": duration too long (max 36500d)"},
	    {"@every 99999999999999999999d", "duration too long"},
	    {"@every 99999999999999999999ms", "duration too long"},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cron c, before;

		memset(&c, 0xab, sizeof c);
		before = c;
		strcpy(err, "(untouched)");
		if (cron_parse(&c, bad[i].expr, err, sizeof err) != -1)
			fail_msg("\"%s\" parsed", bad[i].expr);
		if (!strstr(err, bad[i].msg))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].expr, err, bad[i].msg);
		assert_memory_equal(&c, &before, sizeof c);
	}
}

static void test_long_and_hostile_input(void **state)
{
	char expr[CRON_EXPR_MAX + 32], err[256];
	struct cron c;
	size_t n = 0;

	(void)state;
	/* NULL is an empty expression */
	assert_int_equal(cron_parse(&c, NULL, err, sizeof err), -1);
	assert_string_equal(err, "empty expression");

	/* the longest list that fits parses; one byte more does not */
	while (n + 2 <= CRON_EXPR_MAX - 8)
		n += (size_t)sprintf(expr + n, "%d,", (int)(n / 2) % 10);
	expr[n - 1] = 0;
	strcat(expr, " * * * *");
	assert_int_equal(strlen(expr), CRON_EXPR_MAX - 1);
	parse_ok(expr);
	strcat(expr, "*");
	assert_int_equal(strlen(expr), CRON_EXPR_MAX);
	assert_int_equal(cron_parse(&c, expr, err, sizeof err), -1); /* "**": bad, not too long */
	assert_non_null(strstr(err, "day-of-week field \"**\""));
	strcat(expr, "*");
	assert_int_equal(cron_parse(&c, expr, err, sizeof err), -1);
	assert_string_equal(err, "expression too long (513 bytes, max 512)");

	/* a long bad item is cut to 40 bytes in the message */
	memset(expr, 'z', 100);
	strcpy(expr + 100, " * * * *");
	assert_int_equal(cron_parse(&c, expr, err, sizeof err), -1);
	assert_string_equal(err, "minute field \"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...\": "
	                         "expected a number");
}

static void test_error_buffer_null_or_small(void **state)
{
	struct cron c;
	char small[8];

	(void)state;
	assert_int_equal(cron_parse(&c, "61 * * * *", NULL, 0), -1);
	assert_int_equal(cron_parse(&c, "61 * * * *", small, 0), -1);
	assert_int_equal(cron_parse(&c, "61 * * * *", small, sizeof small), -1);
	assert_string_equal(small, "minute ");
	assert_int_equal(cron_parse(&c, "* * * * *", NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utc_helper),
	    cmocka_unit_test(test_minute_and_hour_forms),
	    cmocka_unit_test(test_day_and_month_forms),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_macros),
	    cmocka_unit_test(test_every),
	    cmocka_unit_test(test_dom_dow_rule),
	    cmocka_unit_test(test_rollover),
	    cmocka_unit_test(test_leap_day),
	    cmocka_unit_test(test_impossible),
	    cmocka_unit_test(test_strictly_after),
	    cmocka_unit_test(test_after_out_of_range),
	    cmocka_unit_test(test_sweep_2024),
	    cmocka_unit_test(test_bad_expressions),
	    cmocka_unit_test(test_long_and_hostile_input),
	    cmocka_unit_test(test_error_buffer_null_or_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
