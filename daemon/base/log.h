/*
 * log.h: the daemon's log, one line per message on stderr.
 *
 * Lines are "LEVEL message"; when running under systemd (JOURNAL_STREAM
 * set) they carry a "<N>" syslog priority prefix instead, so the journal
 * keeps the level. log_set_level filters what is written.
 */
#ifndef AWAITD_LOG_H
#define AWAITD_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Set the minimum level written. */
void log_set_level(enum log_level level);

/* Parse "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_parse_level(const char *name);

/* Use "<N>" priority prefixes (journald) instead of level names. */
void log_set_journal(int on);

/*
 * A sink sees every line written (after filtering), without its newline:
 * the daemon keeps the recent ones for `awaitctl logs`. NULL removes it.
 * The sink must not log.
 */
typedef void log_sink_fn(enum log_level level, const char *line, size_t len, void *arg);
void log_set_sink(log_sink_fn *fn, void *arg);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
