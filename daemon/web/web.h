/*
 * web.h: the daemon's HTTP front end (SPEC section 8), on its own libevent
 * loop through evhttp: no second loop, no thread.
 *
 * JSON under /api/ (the documents `awaitctl --json` prints: the same
 * commands answer, through a connection without a socket), /metrics in
 * the Prometheus text format, the dashboard. Read-only but for the
 * actions (cancel, retry, signal), which need the token. It binds a
 * loopback address only, unless a token is set.
 *
 * Part web (daemon/web/): the HTTP server, its routes and the metrics. It
 * may call control, jobs, store, runtime and base; the service wires it.
 */
#ifndef AWAITD_WEB_H
#define AWAITD_WEB_H

#include <stddef.h>

struct cmd_env;
struct event_base;
struct server;
struct web;

struct web_config {
	const char *listen; /* "ADDR:PORT" ("[v6]:PORT" for IPv6) */
	const char *token;  /* NULL or "": none (loopback only, no actions) */
};

/*
 * Serve on cfg->listen. env is the control commands' (borrowed, outlives
 * the web server); srv the control server whose limits the web requests
 * share. NULL with err: a bad address, one that is not loopback without
 * a token, or one that cannot be bound.
 */
struct web *web_new(struct event_base *base, const struct web_config *cfg, struct server *srv,
                    const struct cmd_env *env, char *err, size_t errlen);

/* Requests answered (for stats). */
unsigned long web_requests(const struct web *w);

/* Stop serving and free; requests still waiting for an answer get none. NULL is a no-op. */
void web_free(struct web *w);

#endif
