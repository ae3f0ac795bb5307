/*
 * humanfmt.c: durations, ages, local times and sizes for people (see
 * humanfmt.h). Pure functions of their arguments and of the process's
 * time zone (humanfmt_time uses localtime_r), so tests pin TZ.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "humanfmt.h"

/* "%.1f" of v with a trailing ".0" dropped, then unit. */
static void humanfmt_tenths(char *buf, size_t len, double v, const char *unit)
{
	char num[HUMANFMT_LEN];
	size_t n;

	snprintf(num, sizeof num, "%.1f", v);
	n = strlen(num);
	if (n > 2 && strcmp(num + n - 2, ".0") == 0)
		num[n - 2] = '\0';
	snprintf(buf, len, "%s%s", num, unit);
}

const char *humanfmt_duration(double ms, char *buf, size_t len)
{
	double s;

	/* 1e15 ms is some 31,700 years: beyond that a duration is a bug, not a wait */
	if (!isfinite(ms) || ms < 0 || ms > 1e15) {
		snprintf(buf, len, "-");
		return buf;
	}
	/* each branch holds what rounds below the next one's threshold, so 59.96 s is "1m00s" */
	if (ms == 0) {
		snprintf(buf, len, "0ms");
	} else if (ms < 0.05) {
		snprintf(buf, len, "<0.1ms");
	} else if (ms < 9.95) {
		snprintf(buf, len, "%.1fms", ms);
	} else if (ms < 999.5) {
		snprintf(buf, len, "%.0fms", ms);
	} else if (ms < 59950) {
		humanfmt_tenths(buf, len, ms / 1000, "s");
	} else if ((s = floor(ms / 1000 + 0.5)) < 3600) {
		snprintf(buf, len, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
	} else if ((s = floor(ms / 60000 + 0.5)) < 24 * 60) { /* s: minutes from here */
		snprintf(buf, len, "%.0fh%02.0fm", floor(s / 60), fmod(s, 60));
	} else {
		s = floor(ms / 3600000 + 0.5); /* hours */
		snprintf(buf, len, "%.0fd%02.0fh", floor(s / 24), fmod(s, 24));
	}
	return buf;
}

const char *humanfmt_age(double t, double now_ms, char *buf, size_t len)
{
	double d = now_ms - t, a = fabs(d) / 1000, v;
	const char *unit;

	if (isnan(d)) {
		snprintf(buf, len, "-");
		return buf;
	}
	if (a < 1) {
		snprintf(buf, len, "now");
		return buf;
	}
	if (a < 60) {
		v = a, unit = "s";
	} else if (a < 3600) {
		v = a / 60, unit = "m";
	} else if (a < 86400) {
		v = a / 3600, unit = "h";
	} else {
		v = a / 86400, unit = "d";
	}
	if (v > 1e9) /* years beyond counting: still a short, honest cell */
		v = 1e9;
	snprintf(buf, len, d < 0 ? "in %.0f%s" : "%.0f%s ago", floor(v), unit);
	return buf;
}

const char *humanfmt_time(double t, char *buf, size_t len)
{
	struct tm tm;
	time_t sec;

	/* 1e15 ms is year ~33658: past that a time is a bug, not a date */
	if (isnan(t) || t < 0 || t > 1e15)
		goto unknown;
	sec = (time_t)(t / 1000);
	if (!localtime_r(&sec, &tm) || len < 20 || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		goto unknown;
	return buf;
unknown:
	snprintf(buf, len, "-");
	return buf;
}

const char *humanfmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	/* 1023.6 KiB would print as "1024 KiB": it is 1.0 MiB */
	while (v >= 1023.5 && u < 5) {
		v /= 1024.0;
		u++;
	}
	/* "9.96 KiB" would print as "10.0": switch to whole numbers where the rounding lands */
	if (v < 9.95)
		snprintf(buf, len, "%.1f %s", v, units[u]);
	else
		snprintf(buf, len, "%.0f %s", v, units[u]);
	return buf;
}
