/*
 * enqueue-opts.h: the options of an enqueue (key, delay, at, priority,
 * timeout), checked once for every way in: the socket's `enqueue` and
 * `run` (daemon/cmd-enqueue.c) and the scripts' jobs.enqueue
 * (bindings/jobs.c). Each caller only turns its own values (jansson or
 * Lua) into struct enqueue_val; the rules and the messages live here, so
 * a bad option reads the same wherever it was given.
 *
 * Rules: numbers are integers (an integral float such as 200.0 counts; NaN,
 * infinities and fractions do not) in the ranges below; a key is a
 * non-empty UTF-8 string of at most ENQUEUE_MAX_KEY bytes; delay and at
 * exclude each other; any other option name is refused, so a misspelt
 * `delay_ms` is not silently dropped. This part calls nothing but libc and
 * store.h's request (to fill it).
 */
#ifndef AWAITD_ENQUEUE_OPTS_H
#define AWAITD_ENQUEUE_OPTS_H

#include <stddef.h>
#include <stdint.h>

struct store_req;

#define ENQUEUE_DAY_MS         86400000LL
#define ENQUEUE_MAX_DELAY_MS   (3650 * ENQUEUE_DAY_MS) /* 10 years */
#define ENQUEUE_MAX_PAST_MS    60000LL                 /* how far in the past `at` may be */
#define ENQUEUE_MAX_TIMEOUT_MS (30 * ENQUEUE_DAY_MS)   /* per attempt */
#define ENQUEUE_MIN_PRIORITY   (-1000)
#define ENQUEUE_MAX_PRIORITY   1000 /* `run` uses it: a run goes first */
#define ENQUEUE_MAX_KEY        512  /* bytes of an idempotency key */
#define ENQUEUE_MAX_AFTER      100  /* jobs one job may wait for */

/* What kind of value an option was given, as the caller found it. */
enum enqueue_vtype {
	ENQUEUE_V_INTEGER, /* i */
	ENQUEUE_V_REAL,    /* d, any double (NaN and infinities included) */
	ENQUEUE_V_STRING,  /* s, len: borrowed, need not be NUL-terminated */
	ENQUEUE_V_OTHER,   /* tname names it: "boolean", "null", "table", ... */
};

struct enqueue_val {
	enum enqueue_vtype type;
	int64_t i;
	double d;
	const char *s;
	size_t len;
	const char *tname;
};

/* The options of one enqueue, as checked so far. */
struct enqueue_opts {
	int64_t now;        /* ms, wall: what delay and at are measured from */
	const char *key;    /* borrowed from the caller's value; NULL: none */
	size_t keylen;      /* bytes of key */
	int64_t delay;      /* ms; -1: not given */
	int64_t at;         /* ms, wall; -1: not given */
	int64_t priority;   /* ENQUEUE_MIN_PRIORITY..ENQUEUE_MAX_PRIORITY */
	int64_t timeout_ms; /* ms per attempt; 0: the script's */
	int64_t after[ENQUEUE_MAX_AFTER]; /* the jobs it waits for (each once) */
	size_t nafter;
};

/* No options given yet, measured from now (ms, wall: store_now()). */
void enqueue_opts_init(struct enqueue_opts *o, int64_t now);

/*
 * Check option name (namelen bytes) with value v and record it in o. The
 * option "after" takes one job id a call: a caller given a list calls it
 * for each element.
 * Returns 0, or -1 with err filled ("delay must be ..., not 1e+19",
 * "unknown option \"delay_ms\" (...)") and o as it was. The message names
 * the option and is the one both the socket and Lua give.
 */
int enqueue_opts_set(struct enqueue_opts *o, const char *name, size_t namelen,
                     const struct enqueue_val *v, char *err, size_t errlen);

/*
 * The checks across options, once every one is set: 0, or -1 with err
 * filled (delay and at together).
 */
int enqueue_opts_check(const struct enqueue_opts *o, char *err, size_t errlen);

/* When the job may run: ms, wall; 0 for now (the store reads it as now). */
int64_t enqueue_opts_run_at(const struct enqueue_opts *o);

/*
 * Fill r's key (a copy), run_at, priority, timeout_ms and after (a copy)
 * from o. Returns 0, or -1 when out of memory; r->key and r->after stay
 * NULL.
 */
int enqueue_opts_apply(const struct enqueue_opts *o, struct store_req *r);

#endif
