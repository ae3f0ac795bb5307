/*
 * awaitctl-print.c: awaitctl's generic output, for results that no
 * command-specific view renders: one compact JSON line (--json, events),
 * pretty JSON, plain strings, and an object flattened to aligned
 * "key: value" lines (status, stats), nested keys joined as a.b, numbers
 * shown in the unit their key names ("uptime_s" as a duration, "*_bytes"
 * as a size) and the key without that suffix.
 *
 * Everything goes to stdout; the only failure is running out of memory,
 * told on stderr. The commands' own output functions are in awaitctl.c,
 * job tables and details in view.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awaitctl-int.h"
#include "client.h"
#include "humanfmt.h"
#include "view.h"

/* One "key: value" line of a flattened object. */
struct ctl_kv {
	char *key; /* malloc'd dotted path */
	char *val; /* malloc'd text */
};

struct ctl_kvs {
	struct ctl_kv *v;
	size_t n, cap;
};

/* v as one compact JSON line on stdout. */
void ctl_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/* v pretty-printed, or nothing for null. */
void ctl_print_pretty(json_t *v)
{
	if (!v || json_is_null(v))
		return;
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/* Any result: nothing for null, a string as it is, anything else pretty JSON. */
void ctl_print_generic(json_t *v)
{
	if (json_is_string(v))
		printf("%s\n", json_string_value(v));
	else
		ctl_print_pretty(v);
}

/* Append key/text; both malloc'd, taken over (freed on failure). 0, or -1. */
static int ctl_kvs_add(struct ctl_kvs *kvs, char *key, char *val)
{
	struct ctl_kv *nv;
	size_t ncap;

	if (!key || !val)
		goto fail;
	if (kvs->n == kvs->cap) {
		ncap = kvs->cap ? kvs->cap * 2 : 16;
		nv = realloc(kvs->v, ncap * sizeof *nv);
		if (!nv)
			goto fail;
		kvs->v = nv;
		kvs->cap = ncap;
	}
	kvs->v[kvs->n].key = key;
	kvs->v[kvs->n].val = val;
	kvs->n++;
	return 0;
fail:
	free(key);
	free(val);
	return -1;
}

/* What a number under a key measures, from the key's suffix (the daemon's naming habit). */
enum ctl_unit { CTL_UNIT_NONE, CTL_UNIT_MS, CTL_UNIT_S, CTL_UNIT_BYTES };

/*
 * The unit that key k names ("uptime_s", "latency_ms", "lua_bytes"), or
 * inherited, the unit of its parent (latency_ms.p50). *stem gets how long
 * the key is without that suffix, so that "uptime: 3h10m" does not also
 * say "_s". The memory object counts bytes in every field (lua_peak too).
 */
static enum ctl_unit ctl_unit_of(const char *prefix, const char *k, enum ctl_unit inherited,
                                 size_t *stem)
{
	static const struct {
		const char *suffix;
		enum ctl_unit unit;
	} units[] = {{"_ms", CTL_UNIT_MS}, {"_s", CTL_UNIT_S}, {"_bytes", CTL_UNIT_BYTES}};
	size_t n = strlen(k), m;

	*stem = n;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		m = strlen(units[i].suffix);
		if (n > m && strcmp(k + n - m, units[i].suffix) == 0) {
			*stem = n - m;
			return units[i].unit;
		}
	}
	if (prefix && strcmp(prefix, "memory") == 0)
		return CTL_UNIT_BYTES;
	return inherited;
}

/* v as text for a person: a number in unit as a duration or size; else view_text. Malloc'd. */
static char *ctl_human(json_t *v, enum ctl_unit unit)
{
	char buf[HUMANFMT_LEN];
	double x = json_number_value(v);

	if (!json_is_number(v) || unit == CTL_UNIT_NONE)
		return view_text(v);
	if (unit == CTL_UNIT_BYTES)
		return strdup(humanfmt_bytes(x > 0 ? (uint64_t)x : 0, buf, sizeof buf));
	return strdup(humanfmt_duration(unit == CTL_UNIT_S ? x * 1000 : x, buf, sizeof buf));
}

/*
 * Flatten obj into kvs, nested keys joined with '.' after prefix (NULL at
 * the top); numbers whose key names a unit (inherited from the parent when
 * the key itself does not) are shown in it, the key without the suffix.
 */
static int ctl_flatten(struct ctl_kvs *kvs, const char *prefix, json_t *obj, enum ctl_unit unit)
{
	enum ctl_unit u;
	const char *k;
	json_t *v;
	char *path;
	size_t n, stem;

	json_object_foreach(obj, k, v)
	{
		u = ctl_unit_of(prefix, k, unit, &stem);
		n = (prefix ? strlen(prefix) + 1 : 0) + strlen(k) + 1;
		path = malloc(n);
		if (!path)
			return -1;
		/* the suffix is dropped only where the value is shown in its unit */
		if (!json_is_number(v) && !json_is_object(v) && !json_is_null(v))
			stem = strlen(k);
		snprintf(path, n, "%s%s%.*s", prefix ? prefix : "", prefix ? "." : "", (int)stem,
		         k);
		if (json_is_object(v) && json_object_size(v) > 0) {
			if (ctl_flatten(kvs, path, v, u) < 0) {
				free(path);
				return -1;
			}
			free(path);
		} else if (ctl_kvs_add(kvs, path, ctl_human(v, u)) < 0) {
			return -1;
		}
	}
	return 0;
}

static int ctl_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctl_kv *)a)->key, ((const struct ctl_kv *)b)->key);
}

/* An object as aligned "key: value" lines, nested keys as a.b; sorted when asked. */
int ctl_print_kv(json_t *obj, int sorted)
{
	struct ctl_kvs kvs = {NULL, 0, 0};
	size_t i, w = 0;
	int rc = CLIENT_EXIT_FAILED;

	if (!json_is_object(obj)) {
		ctl_print_generic(obj);
		return CLIENT_EXIT_OK;
	}
	if (ctl_flatten(&kvs, NULL, obj, CTL_UNIT_NONE) < 0) {
		fprintf(stderr, "awaitctl: out of memory\n");
		goto out;
	}
	if (sorted && kvs.n > 1)
		qsort(kvs.v, kvs.n, sizeof *kvs.v, ctl_kv_cmp);
	for (i = 0; i < kvs.n; i++)
		if (strlen(kvs.v[i].key) > w)
			w = strlen(kvs.v[i].key);
	for (i = 0; i < kvs.n; i++)
		printf("%s:%*s%s\n", kvs.v[i].key, (int)(w - strlen(kvs.v[i].key) + 1), "",
		       kvs.v[i].val);
	rc = CLIENT_EXIT_OK;
out:
	for (i = 0; i < kvs.n; i++) {
		free(kvs.v[i].key);
		free(kvs.v[i].val);
	}
	free(kvs.v);
	return rc;
}

/* "NAME: ERROR" for each entry of arr whose error is a non-empty string. */
void ctl_print_errors(json_t *arr)
{
	json_t *e, *name, *msg;
	size_t i;

	json_array_foreach(arr, i, e)
	{
		name = json_object_get(e, "name");
		msg = json_object_get(e, "error");
		if (json_is_string(msg) && json_string_length(msg) > 0)
			printf("%s: %s\n", json_is_string(name) ? json_string_value(name) : "?",
			       json_string_value(msg));
	}
}

void ctl_print_coordination(json_t *arr)
{
	json_t *s, *x;
	size_t i, k;
	char buf[HUMANFMT_LEN];

	json_array_foreach(arr, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		json_array_foreach(json_object_get(s, "limits"), k, x)
		{
			json_t *c = json_object_get(x, "concurrency"),
			       *r = json_object_get(x, "rate");
			printf("%s: limit by %s:", name ? name : "?",
			       json_is_string(json_object_get(x, "by"))
			           ? json_string_value(json_object_get(x, "by"))
			           : "(function)");
			if (json_is_integer(c))
				printf(" %" JSON_INTEGER_FORMAT " at a time",
				       json_integer_value(c));
			if (json_is_integer(r))
				printf(
				    "%s %" JSON_INTEGER_FORMAT " per %s",
				    json_is_integer(c) ? "," : "", json_integer_value(r),
				    humanfmt_duration(json_number_value(json_object_get(x, "per")),
				                      buf, sizeof buf));
			putchar('\n');
		}
		json_array_foreach(json_object_get(s, "paused"), k, x)
		{
			json_t *key = json_object_get(x, "key"),
			       *until = json_object_get(x, "until");
			printf("%s: paused%s%s", name ? name : "?",
			       json_is_string(key) ? " for key " : "",
			       json_is_string(key) ? json_string_value(key) : "");
			if (json_is_number(until))
				printf(" until %s",
				       humanfmt_time(json_number_value(until), buf, sizeof buf));
			else
				fputs(" until resumed", stdout);
			putchar('\n');
		}
	}
}

void ctl_print_nodes(json_t *nodes, json_t *self)
{
	json_t *n;
	size_t i;
	char started[HUMANFMT_LEN];

	if (!json_is_array(nodes))
		return;
	printf("nodes:          %zu\n", json_array_size(nodes));
	json_array_foreach(nodes, i, n)
	{
		json_t *id = json_object_get(n, "node");
		const char *host = json_string_value(json_object_get(n, "host"));
		humanfmt_time(json_number_value(json_object_get(n, "started")), started,
		              sizeof started);
		printf("  node %" JSON_INTEGER_FORMAT "  %s  pid %" JSON_INTEGER_FORMAT
		       "  started %s  running %" JSON_INTEGER_FORMAT "%s\n",
		       json_integer_value(id), host ? host : "?",
		       json_integer_value(json_object_get(n, "pid")), started,
		       json_integer_value(json_object_get(n, "running")),
		       json_equal(id, self) ? "  (this daemon)" : "");
	}
}
