/*
 * web-cache.c: answers of /api/ GETs kept for WEB_CACHE_MS (web-int.h).
 *
 * Every open dashboard asks the same few paths once a second; within a
 * fifth of a second one answer serves them all, so fifty browsers cost
 * the loop about what one does. Entries are few and small (WEB_CACHE_N of
 * at most WEB_CACHE_MAX bytes); a new one takes the place of the same path's
 * or of the oldest. An action (POST) clears them all, so the page that made
 * it shows its effect at once.
 */
#include <stdlib.h>
#include <string.h>

#include "web-int.h"

const struct web_cache_entry *web_cache_get(const struct web_cache *c, const char *key, double now)
{
	for (size_t i = 0; i < WEB_CACHE_N; i++) {
		const struct web_cache_entry *e = &c->e[i];
		if (e->key && now - e->at < WEB_CACHE_MS && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

void web_cache_put(struct web_cache *c, const char *key, const char *body, size_t len, double now)
{
	struct web_cache_entry *e = &c->e[0];
	char *k, *b;

	if (len > WEB_CACHE_MAX)
		return;
	for (size_t i = 0; i < WEB_CACHE_N; i++) {
		if (c->e[i].key && strcmp(c->e[i].key, key) == 0) {
			e = &c->e[i];
			break;
		}
		if (!c->e[i].key || c->e[i].at < e->at)
			e = &c->e[i];
	}
	k = strdup(key);
	b = malloc(len ? len : 1);
	if (!k || !b) {
		free(k);
		free(b);
		return; /* not cached: the next request asks again */
	}
	memcpy(b, body, len);
	free(e->key);
	free(e->body);
	*e = (struct web_cache_entry){k, b, len, now};
}

void web_cache_clear(struct web_cache *c)
{
	for (size_t i = 0; i < WEB_CACHE_N; i++) {
		free(c->e[i].key);
		free(c->e[i].body);
		c->e[i] = (struct web_cache_entry){0};
	}
}
