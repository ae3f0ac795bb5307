/*
 * config.c: the keys, their defaults and validation, and the dump; the
 * file syntax is config-file.c's.
 *
 * Every key is a row of the keys[] table (name, kind, field offset, range),
 * so config_set, config_dump and the "known keys" list cannot drift apart;
 * the table's order is the order of etc/awaitd.conf and of the dump.
 *
 * Invariant: a value reaches a field only after it has been fully
 * validated; on any error the config is left as it was.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config-int.h"
#include "config.h"
#include "errbuf.h"
#include "log.h"
#include "memcap.h"
#include "numparse.h"

#define MIB (1024.0 * 1024.0)

enum config_kind {
	KIND_STRING, /* char *, any text without control characters */
	KIND_LEVEL,  /* int, a log level name */
	KIND_MS,     /* double, milliseconds */
	KIND_MIB,    /* size_t bytes, given in MiB (fractions allowed) */
	KIND_BYTES,  /* size_t, whole bytes */
	KIND_INT,    /* int, whole number */
	KIND_MODE,   /* int, octal permission bits */
	KIND_SYNC,   /* char *, one of sync_names */
};

struct config_key {
	const char *name;
	enum config_kind kind;
	size_t off;      /* offsetof the field in struct config */
	double min, max; /* inclusive range of numeric kinds, in the key's unit */
};

#define KEY(name, kind, field, min, max)                                                           \
	{                                                                                          \
		name, kind, offsetof(struct config, field), min, max                               \
	}

static const struct config_key keys[] = {
    KEY("scripts_dir", KIND_STRING, scripts_dir, 0, 0),
    KEY("db_path", KIND_STRING, db_path, 0, 0),
    KEY("socket_path", KIND_STRING, socket_path, 0, 0),
    KEY("migrations_dir", KIND_STRING, migrations_dir, 0, 0),
    KEY("log_level", KIND_LEVEL, log_level, 0, 0),
    KEY("max_slice_ms", KIND_MS, max_slice_ms, 1, 3600000),
    KEY("max_memory_mb", KIND_MIB, max_memory, 0, 1048576),
    KEY("cancel_grace_ms", KIND_MS, cancel_grace_ms, 0, 3600000),
    KEY("shutdown_timeout_ms", KIND_MS, shutdown_timeout_ms, 0, 86400000),
    KEY("max_line", KIND_BYTES, max_line, 1024, 64 * MIB),
    KEY("output_cap", KIND_BYTES, output_cap, 4096, 1024 * MIB),
    KEY("max_clients", KIND_INT, max_clients, 1, 65536),
    KEY("socket_mode", KIND_MODE, socket_mode, 0, 0777),
    KEY("synchronous", KIND_SYNC, synchronous, 0, 0),
    KEY("tx_timeout_ms", KIND_MS, tx_timeout_ms, 1, 3600000),
    KEY("max_statement_ms", KIND_MS, max_statement_ms, 1, 3600000),
    KEY("keep_jobs_ms", KIND_MS, keep_jobs_ms, 0, 3153600000000.0),
    KEY("max_result_bytes", KIND_BYTES, max_result_bytes, 1024, 1024 * MIB),
    KEY("max_args_bytes", KIND_BYTES, max_args_bytes, 1024, 1024 * MIB),
    KEY("workers", KIND_INT, workers, 0, 256),
    KEY("worker_timeout_ms", KIND_MS, worker_timeout_ms, 1, 86400000),
    KEY("http_listen", KIND_STRING, http_listen, 0, 0),
    KEY("http_token", KIND_STRING, http_token, 0, 0),
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const sync_names[] = {"full", "normal", "off"};

/* value quoted for an error message (errbuf_shown). */
static const char *shown(const char *value, char *out, size_t outlen)
{
	return errbuf_shown(value, strlen(value), out, outlen);
}

/* Whether the key's field is a char * owned by the config. */
static int is_string(const struct config_key *k)
{
	return k->kind == KIND_STRING || k->kind == KIND_SYNC;
}

static char **string_field(struct config *c, const struct config_key *k)
{
	return (char **)((char *)c + k->off);
}

static const char *const *string_field_c(const struct config *c, const struct config_key *k)
{
	return (const char *const *)((const char *)c + k->off);
}

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Index of value in names (case-insensitive), or -1. */
static int find_name(const char *const *names, int n, const char *value)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(names[i], value) == 0)
			return i;
	return -1;
}

/*
 * Parse a decimal number: optional '-', digits, optional fraction and
 * exponent; no '+', no leading space, no hex, no inf/nan, no trailing
 * junk. Returns 0 and *out, or -1 when value is not such a number.
 * Negative numbers parse, so that the range check can name the range.
 */
static int parse_number(const char *value, double *out)
{
	const char *p = value[0] == '-' ? value + 1 : value;
	char *end;
	double v;

	if (!((*p >= '0' && *p <= '9') || *p == '.') || strpbrk(p, "xX"))
		return -1;
	errno = 0;
	v = strtod(value, &end);
	if (end == value || *end || errno == ERANGE || !isfinite(v))
		return -1;
	*out = v + 0.0; /* -0 becomes 0 */
	return 0;
}

/*
 * Parse a whole number in base 10 or 8, digits only. Returns 0 and *out,
 * -1 when malformed, -2 when negative. A number past UINT64_MAX reads as
 * UINT64_MAX, which every range refuses.
 */
static int parse_whole(const char *value, unsigned base, uint64_t *out)
{
	const char *p = value[0] == '-' ? value + 1 : value, *end = p + strlen(p);
	uint64_t v;

	if (numparse_digits(&p, end, base, UINT64_MAX, &v) < 0 || p != end)
		return -1;
	if (value[0] == '-')
		return -2;
	*out = v;
	return 0;
}

/* Validate value for key k and store it in c; see config_set. */
static int set_value(struct config *c, const struct config_key *k, const char *value, char *err,
                     size_t errlen)
{
	char buf[64];
	const char *unit;
	uint64_t u;
	double d;
	int i, prc;

	if (!value[0]) {
		errbuf_set(err, errlen, "%s: empty value", k->name);
		return -1;
	}
	for (i = 0; value[i]; i++) {
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
			errbuf_set(err, errlen, "%s: value '%s' contains a control character",
			           k->name, shown(value, buf, sizeof buf));
			return -1;
		}
	}

	switch (k->kind) {
	case KIND_STRING: {
		char *s = strdup(value);
		if (!s) {
			errbuf_set(err, errlen, "%s: out of memory", k->name);
			return -1;
		}
		free(*string_field(c, k));
		*string_field(c, k) = s;
		return 0;
	}
	case KIND_SYNC: {
		char *s;
		i = find_name(sync_names, 3, value);
		if (i < 0) {
			errbuf_set(err, errlen, "%s: '%s' is not one of full, normal, off", k->name,
			           shown(value, buf, sizeof buf));
			return -1;
		}
		s = strdup(sync_names[i]); /* canonical lower case */
		if (!s) {
			errbuf_set(err, errlen, "%s: out of memory", k->name);
			return -1;
		}
		free(*string_field(c, k));
		*string_field(c, k) = s;
		return 0;
	}
	case KIND_LEVEL:
		i = log_parse_level(value);
		if (i < 0) {
			errbuf_set(err, errlen, "%s: '%s' is not one of debug, info, warn, error",
			           k->name, shown(value, buf, sizeof buf));
			return -1;
		}
		c->log_level = i;
		return 0;
	case KIND_MS:
	case KIND_MIB:
		unit = k->kind == KIND_MS ? " ms" : " MiB";
		if (k->kind == KIND_MIB && strcasecmp(value, "auto") == 0) {
			c->max_memory = memcap_default(); /* the machine's share, see memcap.h */
			return 0;
		}
		if (parse_number(value, &d) < 0) {
			errbuf_set(err, errlen, "%s: '%s' is not a number of%s%s", k->name,
			           shown(value, buf, sizeof buf), unit,
			           k->kind == KIND_MIB ? " or auto" : "");
			return -1;
		}
		if (d < k->min || d > k->max) {
			errbuf_set(err, errlen, "%s: %s is out of range (%.15g to %.15g%s)",
			           k->name, shown(value, buf, sizeof buf), k->min, k->max, unit);
			return -1;
		}
		if (k->kind == KIND_MS)
			*(double *)((char *)c + k->off) = d;
		else
			c->max_memory = (size_t)(d * MIB + 0.5); /* d >= 0: round to a byte */
		return 0;
	case KIND_BYTES:
	case KIND_INT:
	case KIND_MODE:
		unit = k->kind == KIND_BYTES ? " bytes" : "";
		prc = parse_whole(value, k->kind == KIND_MODE ? 8 : 10, &u);
		if (prc == -1) {
			errbuf_set(err, errlen, "%s: '%s' is not %s", k->name,
			           shown(value, buf, sizeof buf),
			           k->kind == KIND_MODE    ? "an octal mode like 0660"
			           : k->kind == KIND_BYTES ? "a whole number of bytes"
			                                   : "a whole number");
			return -1;
		}
		if (prc == -2 || (double)u < k->min || (double)u > k->max) {
			if (k->kind == KIND_MODE)
				errbuf_set(err, errlen, "%s: %s is out of range (0 to 0777)",
				           k->name, shown(value, buf, sizeof buf));
			else
				errbuf_set(err, errlen, "%s: %s is out of range (%.15g to %.15g%s)",
				           k->name, shown(value, buf, sizeof buf), k->min, k->max,
				           unit);
			return -1;
		}
		if (k->kind == KIND_BYTES)
			*(size_t *)((char *)c + k->off) = (size_t)u;
		else
			*(int *)((char *)c + k->off) = (int)u;
		return 0;
	}
	errbuf_set(err, errlen, "%s: internal error: unknown kind", k->name);
	return -1;
}

void config_init(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->scripts_dir = strdup("./scripts");
	c->db_path = strdup("./awaitd.db");
	c->socket_path = strdup("./awaitd.sock");
	c->migrations_dir = strdup("./migrations");
	c->log_level = LOG_LEVEL_INFO;
	c->max_slice_ms = 100;
	c->max_memory = memcap_default();
	c->cancel_grace_ms = 1000;
	c->shutdown_timeout_ms = 30000;
	c->max_line = 1024 * 1024;
	c->output_cap = 8 * 1024 * 1024;
	c->max_clients = 1024;
	c->socket_mode = 0660;
	c->synchronous = strdup("full");
	c->tx_timeout_ms = 5000;
	c->max_statement_ms = 1000;
	c->keep_jobs_ms = 7 * 86400000.0;
	c->max_result_bytes = 1024 * 1024;
	c->max_args_bytes = 1024 * 1024;
	c->workers = 0;
	c->worker_timeout_ms = 30000;
	c->http_listen = strdup("off");
	c->http_token = NULL;
}

void config_fini(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (is_string(&keys[i]))
			free(*string_field(c, &keys[i]));
	memset(c, 0, sizeof *c);
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen)
{
	const struct config_key *k = find_key(key);
	char buf[64];

	if (!k) {
		char known[512];
		size_t n = 0;
		known[0] = 0;
		for (size_t i = 0; i < NKEYS && n < sizeof known; i++)
			n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "",
			                      keys[i].name);
		errbuf_set(err, errlen, "unknown key '%s' (known keys: %s)",
		           shown(key, buf, sizeof buf), known);
		return -1;
	}
	return set_value(c, k, value, err, errlen);
}

int config_copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	for (size_t i = 0; i < NKEYS; i++)
		if (is_string(&keys[i]))
			*string_field(dst, &keys[i]) = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *s;
		if (!is_string(&keys[i]) || !(s = *string_field_c(src, &keys[i])))
			continue;
		if (!(*string_field(dst, &keys[i]) = strdup(s))) {
			config_fini(dst);
			return -1;
		}
	}
	return 0;
}

/* Shortest of %.15g and %.17g that reads back as exactly d. */
static void dump_double(double d, FILE *f)
{
	char buf[64];

	snprintf(buf, sizeof buf, "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, sizeof buf, "%.17g", d);
	fputs(buf, f);
}

void config_dump(const struct config *c, FILE *f)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &keys[i];
		const void *field = (const char *)c + k->off;

		if (k->off == offsetof(struct config, http_token)) {
			/* a secret: never printed */
			if (c->http_token)
				fprintf(f, "# http_token is set (not shown)\n");
			continue;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->kind) {
		case KIND_STRING:
		case KIND_SYNC:
			config_file_put_string(*string_field_c(c, k) ? *string_field_c(c, k) : "",
			                       f);
			break;
		case KIND_LEVEL:
			fputs(c->log_level >= 0 && c->log_level < 4 ? level_names[c->log_level]
			                                            : "info",
			      f);
			break;
		case KIND_MS:
			dump_double(*(const double *)field, f);
			break;
		case KIND_MIB:
			/* bytes / 2^20 is exact in a double, so this reads back exactly. */
			dump_double((double)c->max_memory / MIB, f);
			break;
		case KIND_BYTES:
			fprintf(f, "%zu", *(const size_t *)field);
			break;
		case KIND_INT:
			fprintf(f, "%d", *(const int *)field);
			break;
		case KIND_MODE:
			fprintf(f, "0%03o", (unsigned)*(const int *)field);
			break;
		}
		putc('\n', f);
	}
}
