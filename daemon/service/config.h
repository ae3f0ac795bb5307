/*
 * config.h: the daemon's configuration: built-in defaults, the config file
 * (etc/awaitd.conf) and command-line flags, all through one setter.
 *
 * The file format is "key = value" per line, '#' comments (a whole line,
 * or after whitespace in an unquoted value), blank lines, and values that
 * may be double-quoted with \" and \\ escapes. Keys are the field names
 * below, except max_memory, which is set in MiB by max_memory_mb.
 *
 * Invariants:
 *  - After config_init, every field holds a valid value: config_set and
 *    config_load either store a value that passed validation or leave the
 *    config exactly as it was (config_load applies a whole file or nothing).
 *  - String fields are owned by the config (malloc'd, freed by config_fini
 *    or when replaced) and never contain control characters, so
 *    config_dump's output always loads back to the same values.
 */
#ifndef AWAITD_CONFIG_H
#define AWAITD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
	char *scripts_dir;          /* job scripts; default "./scripts" */
	char *db_path;              /* SQLite database; default "./awaitd.db" */
	char *socket_path;          /* control socket; default "./awaitd.sock" */
	char *migrations_dir;       /* NNNN_name.sql files; default "./migrations" */
	int log_level;              /* enum log_level (log.h); default LOG_LEVEL_INFO */
	double max_slice_ms;        /* ms a task may run without suspending; default 100 */
	size_t max_memory;          /* bytes, key max_memory_mb; 0 = no cap; default a
	                             * quarter of RAM, 64 MiB to 4 GiB (memcap.h) */
	double cancel_grace_ms;     /* ms a cancelled task may still await; default 1000 */
	double shutdown_timeout_ms; /* ms running jobs get on SIGTERM; default 30000 */
	size_t max_line;            /* bytes, longest control request line; default 1 MiB */
	size_t output_cap;          /* bytes pending per control connection; default 8 MiB */
	int max_clients;            /* concurrent control connections; default 1024 */
	int socket_mode;            /* permission bits of the socket; default 0660 */
	char *synchronous;          /* SQLite synchronous: "full" (default), "normal", "off" */
	double tx_timeout_ms;       /* ms a db:tx may hold the writer; default 5000 */
	double max_statement_ms;    /* ms one ctx.db statement may run; default 1000 */
	double keep_jobs_ms;        /* ms finished jobs are kept; 0 = forever; default 7 days */
	size_t max_result_bytes;    /* bytes of a job result's or step's JSON; default 1 MiB */
	size_t max_args_bytes;      /* bytes of a job's args JSON at enqueue; default 1 MiB */
	int workers;                /* async.worker threads; 0 = one per core (default) */
	double worker_timeout_ms;   /* ms an async.worker call may run; default 30000 */
	char *http_listen;          /* "ADDR:PORT" of the web server, or "off" (default) */
	char *http_token;           /* bearer token of the web server; NULL: none (default) */
};

/*
 * Fill c with the built-in defaults. The strings are malloc'd; if malloc
 * fails they are left NULL and config_fini is still safe, but the config
 * must not be used (a caller that cares checks c->scripts_dir etc.).
 */
void config_init(struct config *c);

/* Free the strings and zero c. Safe on a zeroed or initialised config. */
void config_fini(struct config *c);

/*
 * Set one key from its text value, as written in the file or given as a
 * command-line flag (the value is taken as is: no trimming, no quotes).
 * Returns 0, or -1 with c unchanged and a message in err (which may be
 * NULL; the message is cut to errlen): unknown key (the known ones are
 * listed), empty value, a value with a control character, a number that
 * is malformed, not whole, or out of range (the range is given), or an
 * enum value that is not one of the listed ones; or out of memory.
 * A replaced string is freed.
 */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen);

/*
 * Read the config file at path, applying its keys in order (a later key
 * overrides an earlier one). Returns 0, or -1 with c unchanged and err
 * (may be NULL) filled with "PATH:LINE: message": missing '=', missing
 * key, unknown key, bad value (as config_set), unterminated quote, bad
 * escape, text after a closing quote, a NUL byte, a line longer than 4096
 * bytes, or a read error; "PATH: cannot open: REASON" when it cannot be
 * opened. A missing file is an error here: the caller decides whether a
 * missing default file is fine (errno is left as fopen set it).
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/*
 * Write every key with its current value to f, one "key = value" line
 * each, in the order of etc/awaitd.conf. Strings are quoted when they
 * need to be; the output loads back to the same values with config_load.
 */
void config_dump(const struct config *c, FILE *f);

#endif
