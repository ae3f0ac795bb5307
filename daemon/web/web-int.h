/*
 * web-int.h: what the files of the web part share: web.c (the server and
 * its requests), web-route.c (paths to commands), web-metrics.c (the
 * Prometheus text), web-cache.c (answers kept a moment). Nothing outside
 * daemon/web/ includes it.
 */
#ifndef AWAITD_WEB_INT_H
#define AWAITD_WEB_INT_H

#include <stddef.h>

#include <jansson.h>

struct evhttp_request;
struct evhttp_uri;

enum web_route_kind {
	WEB_ROUTE_NONE,
	WEB_ROUTE_BAD,
	WEB_ROUTE_API,
	WEB_ROUTE_METRICS,
	WEB_ROUTE_PAGE,   /* the dashboard's HTML */
	WEB_ROUTE_SCRIPT, /* ... and its JavaScript */
	WEB_ROUTE_ACTION, /* a command that changes a job (POST, with the token) */
};

struct web_route {
	const char *cmd; /* the control command of an API path */
	json_t *args;    /* its args (new reference, the caller's) */
};

/*
 * What uri asks for: an API command with its args, an action (cancel,
 * retry, signal: args {id}; a signal's name and payload come in the body),
 * /metrics, a bad request (msg says why: a bad id, a bad query parameter)
 * or nothing (msg names the paths there are).
 */
enum web_route_kind web_route_of(const struct evhttp_uri *uri, struct web_route *out, char *msg,
                                 size_t msglen);

/* Reply with doc as JSON (borrowed), with an error object, or with text. */
void web_reply_json(struct evhttp_request *req, int code, json_t *doc);
void web_reply_error(struct evhttp_request *req, int code, const char *ecode, const char *msg);
void web_reply_text(struct evhttp_request *req, const char *type, const char *text, size_t len);

/* ---- web-cache.c: answers of /api/ GETs, kept a moment for the next browser ---- */

#define WEB_CACHE_N   16           /* answers kept */
#define WEB_CACHE_MS  200          /* for this long (ms) */
#define WEB_CACHE_MAX (256 * 1024) /* bigger ones are not kept */

struct web_cache_entry {
	char *key; /* the request's URI; NULL: a free entry */
	char *body;
	size_t len;
	double at; /* ms, monotonic: when it was answered */
};

struct web_cache {
	struct web_cache_entry e[WEB_CACHE_N];
};

/* The answer to key made less than WEB_CACHE_MS before now, or NULL. */
const struct web_cache_entry *web_cache_get(const struct web_cache *c, const char *key,
                                            double now);

/* Keep body (copied) as the answer to key made at now. */
void web_cache_put(struct web_cache *c, const char *key, const char *body, size_t len,
                   double now);

/* Forget every answer (an action changed something; the server goes). */
void web_cache_clear(struct web_cache *c);

/* Reply to /metrics from the status and stats results (borrowed). */
void web_metrics_reply(struct evhttp_request *req, json_t *status, json_t *stats);

#endif
