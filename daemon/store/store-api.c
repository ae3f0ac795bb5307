/*
 * store-api.c: store.h's calls, handed to the driver that store_open
 * chose: PostgreSQL for a libpq connection string (a postgres:// or
 * postgresql:// URI, or "key=value" words such as "host=... dbname=..."),
 * SQLite for anything else, a file path.
 */
#include <stdio.h>
#include <string.h>

#include "store-drv.h"

int store_path_is_pg(const char *path)
{
	static const char *const words[] = {"host=",
	                                    "hostaddr=",
	                                    "port=",
	                                    "dbname=",
	                                    "user=",
	                                    "password=",
	                                    "service=",
	                                    "sslmode=",
	                                    "passfile=",
	                                    "connect_timeout=",
	                                    "application_name=",
	                                    "options="};

	if (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11))
		return 1;
	/* libpq's keyword form, "host=/run/pg dbname=app": a file path never starts so */
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (!strncmp(path, words[i], strlen(words[i])))
			return 1;
	return 0;
}

const char *store_path_shown(const char *path, char *out, size_t outlen)
{
	const char *at, *colon, *pw;
	size_t n;

	snprintf(out, outlen, "%s", path);
	if (!store_path_is_pg(path))
		return out;
	/* postgresql://user:SECRET@host/... */
	const char *scheme = strstr(path, "://");
	if (scheme && (at = strchr(path, '@')) && (colon = strchr(scheme + 3, ':')) && colon < at) {
		n = (size_t)(colon - path) + 1;
		snprintf(out, outlen, "%.*s***%s", (int)n, path, at);
		return out;
	}
	/* host=... password=SECRET ..., or a URI's ?password=SECRET&... */
	if ((pw = strstr(path, "password=")) && (pw == path || strchr(" ?&", pw[-1]))) {
		const char *end = pw + 9 + strcspn(pw + 9, " &");
		n = (size_t)(pw - path) + 9;
		snprintf(out, outlen, "%.*s***%s", (int)n, path, end);
	}
	return out;
}

struct store *store_open(struct event_base *base, const struct store_config *cfg, int64_t *requeued,
                         char *err, size_t errlen)
{
	if (store_path_is_pg(cfg->path))
		return store_pg_open(base, cfg, requeued, err, errlen);
	return store_sqlite_open(base, cfg, requeued, err, errlen);
}

void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

int64_t store_epoch(const struct store *st)
{
	return st->ops->epoch(st);
}

void store_submit(struct store *st, struct store_req *r)
{
	st->ops->submit(st, r);
}

void store_poll(void *arg)
{
	struct store *st = arg;

	st->ops->poll(st);
}

size_t store_pending(const struct store *st)
{
	return st->ops->pending(st);
}

size_t store_held(const struct store *st)
{
	return st->ops->held(st);
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	st->ops->get_stats(st, out);
}

void store_set_wake(struct store *st, store_wake_fn *fn, void *arg)
{
	if (st->ops->set_wake)
		st->ops->set_wake(st, fn, arg);
}
