/*
 * log.c: formatting and filtering of log lines.
 *
 * A line is built in one buffer and written with one write(2), so lines
 * from concurrent writers (the daemon and a test harness sharing stderr)
 * never interleave mid-line. Messages longer than the buffer are cut and
 * marked with "...".
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level min_level = LOG_LEVEL_INFO;
static int journal;
static log_sink_fn *sink;
static void *sink_arg;
static int in_sink; /* a sink that logs would recurse */

static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const int prio[] = {7, 6, 4, 3}; /* syslog: debug, info, warning, err */

void log_set_level(enum log_level level)
{
	min_level = level;
}

int log_parse_level(const char *name)
{
	static const char *const lower[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, lower[i]) == 0)
			return i;
	return -1;
}

void log_set_sink(log_sink_fn *fn, void *arg)
{
	sink = fn;
	sink_arg = arg;
}

void log_set_journal(int on)
{
	journal = on;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[8192];
	size_t n;
	int rc;

	if (level < min_level)
		return;
	if (journal) {
		rc = snprintf(line, sizeof line, "<%d>", prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		rc = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
		              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		              tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
	}
	n = rc > 0 ? (size_t)rc : 0;
	rc = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	if (rc < 0)
		rc = 0;
	if ((size_t)rc >= sizeof line - n - 1) {
		n = sizeof line - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)rc;
	}
	if (sink && !in_sink) {
		in_sink = 1;
		sink(level, line, n, sink_arg);
		in_sink = 0;
	}
	line[n++] = '\n';
	/* stderr is unbuffered; one write keeps the line whole */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
