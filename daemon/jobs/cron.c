/*
 * cron.c: the cron expression parser and the next-fire search.
 *
 * A five-field schedule is parsed into one bit set per field (struct
 * cron); cron_next then walks the calendar forward from the minute after
 * `after`, skipping a whole month, day or hour at a time when that unit
 * does not match, so a search costs at most a few thousand steps.
 * Calendar arithmetic is left to timegm/gmtime_r: a step only bumps one
 * struct tm field and lets timegm normalise it (Jan 32 -> Feb 1).
 *
 * Invariants:
 *  - cron_parse fills a local struct and copies it out only on success.
 *  - Error messages quote user text through errbuf_shown(): at most 40
 *    bytes, non-printable bytes as '?'.
 */
#define _DEFAULT_SOURCE /* timegm, which strict POSIX hides */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cron.h"
#include "errbuf.h"
#include "numparse.h"

#define MINUTE_MS    INT64_C(60000)
#define SEARCH_YEARS 8       /* Feb 29 can be 8 years apart: 2096, then 2104 */
#define NUMBER_CAP   1000000 /* larger numbers stop growing: out of range anyway */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* One of the five fields; name i of names stands for the value min + i. */
struct field {
	const char *name;         /* in messages */
	int min, max;             /* inclusive */
	const char *const *names; /* three-letter names, or NULL */
	int nnames;
	const char *expect; /* what a value looks like, for messages */
};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0, "a number"},
    {"hour", 0, 23, NULL, 0, "a number"},
    {"day-of-month", 1, 31, NULL, 0, "a number"},
    {"month", 1, 12, month_names, 12, "a number or a name (jan..dec)"},
    {"day-of-week", 0, 7, wday_names, 7, "a number or a name (sun..sat)"},
};

static const struct {
	const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static const struct {
	const char *name; /* longest first where one is a prefix of another */
	int64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Digits at *p (at least one) into *out, capped at NUMBER_CAP; -1 when none. */
static int parse_digits(const char **p, const char *end, int *out)
{
	uint64_t v;

	if (numparse_digits(p, end, 10, NUMBER_CAP, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* A number, or a name of f, at *p; -1 when neither. */
static int parse_value(const struct field *f, const char **p, const char *end, int *out)
{
	const char *q = *p;

	if (parse_digits(p, end, out) == 0)
		return 0;
	while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
		q++;
	for (int i = 0; i < f->nnames && q - *p == 3; i++) {
		if (strncasecmp(*p, f->names[i], 3) == 0) {
			*out = f->min + i;
			*p = q;
			return 0;
		}
	}
	return -1;
}

/* One list item s[0..n) of field f ("*", "N", "A-B", each with "/STEP") into *bits. */
static int parse_item(const struct field *f, const char *s, size_t n, uint64_t *bits, char *err,
                      size_t errlen)
{
	const char *p = s, *end = s + n;
	int lo, hi, step = 1, span = f->max - f->min + 1;
	char buf[64], rest[64];

	errbuf_shown(s, n, buf, sizeof buf);
	if (p < end && *p == '*') {
		lo = f->min;
		hi = f->max;
		p++;
	} else {
		if (parse_value(f, &p, end, &lo) < 0)
			goto bad_value;
		hi = lo;
		if (p < end && *p == '-') {
			p++;
			if (parse_value(f, &p, end, &hi) < 0)
				goto bad_value;
		} else if (p < end && *p == '/') {
			hi = f->max; /* "N/STEP" is "N-max/STEP" */
		}
	}
	if (p < end && *p == '/') {
		p++;
		if (parse_digits(&p, end, &step) < 0) {
			errbuf_set(err, errlen, "%s field \"%s\": step must be a number", f->name,
			           buf);
			return -1;
		}
	}
	if (p != end) {
		errbuf_set(err, errlen, "%s field \"%s\": unexpected \"%s\"", f->name, buf,
		           errbuf_shown(p, (size_t)(end - p), rest, sizeof rest));
		return -1;
	}
	if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
		errbuf_set(err, errlen, "%s field \"%s\": out of range %d-%d", f->name, buf, f->min,
		           f->max);
		return -1;
	}
	if (lo > hi) {
		errbuf_set(err, errlen, "%s field \"%s\": range is reversed", f->name, buf);
		return -1;
	}
	if (step < 1) {
		errbuf_set(err, errlen, "%s field \"%s\": step must be at least 1", f->name, buf);
		return -1;
	}
	if (step > span) { /* a step past the whole field is surely a typo */
		errbuf_set(err, errlen, "%s field \"%s\": step out of range 1-%d", f->name, buf,
		           span);
		return -1;
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;

bad_value:
	errbuf_set(err, errlen, "%s field \"%s\": expected %s", f->name, buf, f->expect);
	return -1;
}

/* Field f's text s[0..n), a comma list, into *bits. */
static int parse_field(const struct field *f, const char *s, size_t n, uint64_t *bits, char *err,
                       size_t errlen)
{
	const char *p = s, *end = s + n;
	char buf[64];

	*bits = 0;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;

		if (stop == p) {
			errbuf_set(err, errlen, "%s field \"%s\": empty list item", f->name,
			           errbuf_shown(s, n, buf, sizeof buf));
			return -1;
		}
		if (parse_item(f, p, (size_t)(stop - p), bits, err, errlen) < 0)
			return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* The duration of "@every D" (s, NUL-terminated, not empty) into c. */
static int parse_every(struct cron *c, const char *s, char *err, size_t errlen)
{
	const char *p = s, *end = s + strlen(s);
	int64_t total = 0;
	char buf[64];

	errbuf_shown(s, (size_t)(end - s), buf, sizeof buf);
	while (p < end) {
		uint64_t u;
		int64_t v;
		size_t i, len = 0;

		/* capped: past the max is too long anyway */
		if (numparse_digits(&p, end, 10, CRON_EVERY_MAX_MS + 1, &u) < 0)
			goto bad;
		v = (int64_t)u;
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			len = strlen(units[i].name);
			if ((size_t)(end - p) >= len && strncmp(p, units[i].name, len) == 0)
				break;
		}
		if (i == sizeof units / sizeof units[0])
			goto bad;
		p += len;
		if (v > CRON_EVERY_MAX_MS / units[i].ms ||
		    (total += v * units[i].ms) > CRON_EVERY_MAX_MS) {
			errbuf_set(err, errlen, "@every \"%s\": duration too long (max 36500d)",
			           buf);
			return -1;
		}
	}
	if (total < 1) {
		errbuf_set(err, errlen, "@every \"%s\": duration must be at least 1ms", buf);
		return -1;
	}
	c->every = 1;
	c->every_ms = total;
	return 0;

bad:
	errbuf_set(err, errlen,
	           "@every \"%s\": expected a duration like 30s, 500ms or 1h30m "
	           "(units ms, s, m, h, d)",
	           buf);
	return -1;
}

/* A macro or "@every D" (s, trimmed, starts with '@') into c. */
static int parse_macro(struct cron *c, const char *s, char *err, size_t errlen)
{
	size_t n = 0;
	const char *arg;
	char buf[64];

	while (s[n] && !is_blank(s[n]))
		n++;
	for (arg = s + n; is_blank(*arg); arg++)
		;
	if (n == 6 && strncasecmp(s, "@every", 6) == 0) {
		if (!*arg) {
			errbuf_set(err, errlen, "@every: missing duration (like 30s or 1h30m)");
			return -1;
		}
		return parse_every(c, arg, err, errlen);
	}
	for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
		if (strlen(macros[i].name) != n || strncasecmp(s, macros[i].name, n) != 0)
			continue;
		if (*arg) {
			errbuf_set(err, errlen, "%s takes no arguments", macros[i].name);
			return -1;
		}
		return cron_parse(c, macros[i].expr, err, errlen);
	}
	errbuf_set(err, errlen,
	           "unknown macro \"%s\" (known: @yearly, @annually, @monthly, @weekly, "
	           "@daily, @midnight, @hourly, @every)",
	           errbuf_shown(s, n, buf, sizeof buf));
	return -1;
}

int cron_parse(struct cron *c, const char *expr, char *err, size_t errlen)
{
	char text[CRON_EXPR_MAX + 1];
	const char *start[5];
	size_t len[5], n = 0, nfields = 0;
	uint64_t bits[5];
	struct cron tmp = {0};

	while (expr && is_blank(*expr))
		expr++;
	if (expr)
		n = strlen(expr);
	while (n > 0 && is_blank(expr[n - 1]))
		n--;
	if (n == 0) {
		errbuf_set(err, errlen, "empty expression");
		return -1;
	}
	if (n > CRON_EXPR_MAX) {
		errbuf_set(err, errlen, "expression too long (%zu bytes, max %d)", n,
		           CRON_EXPR_MAX);
		return -1;
	}
	memcpy(text, expr, n);
	text[n] = 0;

	if (text[0] == '@') {
		if (parse_macro(&tmp, text, err, errlen) < 0)
			return -1;
		*c = tmp;
		return 0;
	}

	for (size_t i = 0; i < n;) {
		size_t at = i;

		if (is_blank(text[i])) {
			i++;
			continue;
		}
		while (i < n && !is_blank(text[i]))
			i++;
		if (nfields < 5) {
			start[nfields] = text + at;
			len[nfields] = i - at;
		}
		nfields++;
	}
	if (nfields != 5) {
		errbuf_set(
		    err, errlen,
		    "expected 5 fields (minute hour day-of-month month day-of-week), got %zu",
		    nfields);
		return -1;
	}
	for (int i = 0; i < 5; i++)
		if (parse_field(&fields[i], start[i], len[i], &bits[i], err, errlen) < 0)
			return -1;

	tmp.minutes = bits[0];
	tmp.hours = (uint32_t)bits[1];
	tmp.mdays = (uint32_t)bits[2];
	tmp.months = (uint16_t)bits[3];
	tmp.wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 is Sunday, like 0 */
	tmp.mday_star = start[2][0] == '*';
	tmp.wday_star = start[4][0] == '*';
	*c = tmp;
	return 0;
}

/* The day rule of cron.h: OR when both day fields are restricted, else AND. */
static int day_matches(const struct cron *c, const struct tm *tm)
{
	int mday = (int)(c->mdays >> tm->tm_mday & 1);
	int wday = (int)(c->wdays >> tm->tm_wday & 1);

	return c->mday_star || c->wday_star ? mday && wday : mday || wday;
}

int64_t cron_next(const struct cron *c, int64_t after_ms)
{
	time_t t;
	struct tm tm;
	int last_year;

	if (after_ms < 0 || after_ms > CRON_MAX_MS)
		return -1;
	if (c->every)
		return after_ms + c->every_ms; /* both bounded: no overflow */

	t = (time_t)(after_ms / MINUTE_MS + 1) * 60; /* the next whole minute */
	if (!gmtime_r(&t, &tm))
		return -1;
	last_year = tm.tm_year + SEARCH_YEARS;
	while (tm.tm_year <= last_year) {
		if (!(c->months >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!(c->hours >> tm.tm_hour & 1)) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!(c->minutes >> tm.tm_min & 1)) {
			tm.tm_min++;
		} else {
			return (int64_t)t * 1000;
		}
		t = timegm(&tm);
		if (t == (time_t)-1 || !gmtime_r(&t, &tm)) /* sets tm_wday too */
			return -1;
	}
	return -1;
}
