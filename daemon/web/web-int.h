/*
 * web-int.h: what the files of the web part share: web.c (the server and
 * its requests), web-route.c (paths to commands), web-metrics.c (the
 * Prometheus text). Nothing outside daemon/web/ includes it.
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

/* Reply to /metrics from the status and stats results (borrowed). */
void web_metrics_reply(struct evhttp_request *req, json_t *status, json_t *stats);

#endif
