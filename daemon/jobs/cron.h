/*
 * cron.h: cron schedules: parsing an expression and finding its next fire
 * time. Pure computation: no allocation, no clock, no time zone.
 *
 * An expression is one of:
 *  - five fields, "minute hour day-of-month month day-of-week", each a
 *    comma list of "*", "N" or "A-B", each with an optional "/STEP"
 *    ("10-50/10" is 10,20,..,50; "5/15" means 5-59/15; a step after "*"
 *    walks the whole range from its start). Months may be named
 *    jan..dec and days sun..sat, in any case; day-of-week 7 is Sunday, like 0.
 *  - a macro: @yearly (= @annually) "0 0 1 1 *", @monthly "0 0 1 * *",
 *    @weekly "0 0 * * 0", @daily (= @midnight) "0 0 * * *", @hourly "0 * * * *".
 *  - "@every D": D is a sum of whole numbers with units ms, s, m, h, d
 *    ("500ms", "30s", "1h30m"), from 1 ms to 36500 days.
 *
 * Day rule (Vixie cron): when both day fields are restricted, a day
 * matches if EITHER matches ("0 0 13 * 5" fires on the 13th and on every
 * Friday); otherwise both must. As in Vixie cron, a field counts as
 * unrestricted when it starts with '*', even with a step: a stepped "*"
 * in one day field still ANDs with the other.
 *
 * Fire times of five-field schedules are whole minutes in UTC: "0 9 * * *"
 * fires at 09:00 UTC whatever the host's time zone, so there are no
 * daylight-saving gaps or repeats.
 */
#ifndef AWAITD_CRON_H
#define AWAITD_CRON_H

#include <stddef.h>
#include <stdint.h>

#define CRON_EXPR_MAX     512                      /* bytes, longest expression */
#define CRON_EVERY_MAX_MS INT64_C(3153600000000)   /* ms, 36500 days */
#define CRON_MAX_MS       INT64_C(253402300799999) /* ms, last of 9999-12-31 UTC */

/* A parsed schedule. Bit n of a set means value n matches. */
struct cron {
	uint64_t minutes; /* bits 0-59 */
	uint32_t hours;   /* bits 0-23 */
	uint32_t mdays;   /* bits 1-31, days of the month */
	uint16_t months;  /* bits 1-12 */
	uint8_t wdays;    /* bits 0-6, 0 = Sunday (7 is folded into 0) */
	int mday_star;    /* day-of-month field starts with '*' (the day rule) */
	int wday_star;    /* day-of-week field starts with '*' */
	int every;        /* 1: an "@every" schedule; only every_ms applies */
	int64_t every_ms; /* ms between fires of "@every", 1 to CRON_EVERY_MAX_MS */
};

/*
 * Parse expr (leading and trailing blanks ignored). Returns 0 with c
 * filled, or -1 with c unchanged and a message in err (may be NULL; cut
 * to errlen bytes) naming the field and the bad text, like
 * "minute field \"61\": out of range 0-59": an empty or over-long
 * expression, a field count other than 5, a malformed item or step, a
 * step of 0, a reversed range, a value out of range, an unknown macro,
 * or a malformed, zero or too long "@every" duration.
 */
int cron_parse(struct cron *c, const char *expr, char *err, size_t errlen);

/*
 * The first fire time strictly after after_ms (ms since the Unix epoch).
 * Five-field schedules fire on whole minutes, in UTC; "@every D" fires at
 * after_ms + D. Returns -1 when after_ms is outside 0..CRON_MAX_MS, or
 * when nothing matches in the rest of after_ms's year and the 8 years
 * after it (enough for Feb 29 across 2100, which is no leap year; "0 0 30
 * 2 *" never matches).
 */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
