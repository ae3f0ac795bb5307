/*
 * server.h: the control server, connections and the lines that cross them.
 *
 * The server accepts clients on a listening unix socket, checks each peer
 * with SO_PEERCRED, splits what a client sends into lines, parses each with
 * proto_parse and hands every valid request to one callback, in order per
 * connection; malformed lines are answered here and never reach it. A
 * command answers through conn_ok / conn_error / conn_event, at once or
 * later: one that answers later (run, wait, logs -f) holds the connection
 * with conn_hold and lets it go with conn_release.
 *
 * Invariants: a connection never buffers more than max_line + 2 bytes of
 * input (the line, a '\r' and the '\n'); its pending output never stays
 * above output_cap (past it the connection is closed); a struct conn stays
 * valid while it is held or while one of its callbacks is running, and
 * after it is closed every reply to it is dropped silently, so a command
 * never needs to know whether its client is still there. The process must
 * ignore SIGPIPE (libevent writes with writev), as the daemon does.
 */
#ifndef AWAITD_SERVER_H
#define AWAITD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "proto.h"

/* Error codes the server sends on its own, next to proto.h's PROTO_E_*. */
#define SERVER_E_BUSY              "busy"              /* max_clients reached */
#define SERVER_E_PERMISSION_DENIED "permission_denied" /* SO_PEERCRED refused */
#define SERVER_E_INTERNAL          "internal"          /* a response could not be encoded */

struct server;
struct conn;

/*
 * A valid request line. req and everything it points to are valid only
 * during the call: copy what is kept (json_incref req->args to keep it).
 * The callback may reply, hold the connection, close it (server_free) or
 * free the server.
 */
typedef void server_request_fn(struct conn *c, const struct proto_request *req, void *arg);

/* Called once when a connection closes (see conn_on_close). */
typedef void conn_close_fn(struct conn *c, void *arg);

/* Where a connection without a socket puts each line it would send (len bytes, with "\n"). */
typedef void conn_sink_fn(struct conn *c, void *arg, const char *line, size_t len);

/*
 * A connection without a socket, for another front end (the web server):
 * the commands answer on it as on any connection, and each line they send
 * goes to sink. It belongs to srv's limits but is not one of its clients.
 * Returned held (conn_hold): the caller closes it (conn_close) and
 * releases it when done.
 */
struct conn *conn_new_sink(struct server *srv, conn_sink_fn *sink, void *arg);

/* conn_close for the outside: close c now (a sink connection whose front end is done). */
void conn_end(struct conn *c);

struct server_limits {
	size_t max_line;   /* bytes of a request line, without "\r\n" (PROTO_MAX_LINE) */
	size_t output_cap; /* bytes of pending output per connection; past it, closed */
	int max_clients;   /* open connections; past it a client gets "busy" and is closed */
	int allow_gid;     /* extra group allowed by listen_peer_allowed, -1 for none */
};

/*
 * Serve listen_fd (a non-blocking listening unix stream socket, e.g. from
 * listen_unix) on base, calling on_request(c, req, arg) for each valid
 * request line. On success the server owns listen_fd and closes it in
 * server_stop_accepting or server_free (the socket's path is the caller's
 * to unlink). Returns NULL with err filled (errlen bytes; err may be NULL
 * when errlen is 0) when lim is unusable or out of memory; listen_fd is
 * then left open and still the caller's.
 */
struct server *server_new(struct event_base *base, int listen_fd, const struct server_limits *lim,
                          server_request_fn *on_request, void *arg, char *err, size_t errlen);

/* Drain: close the listener; open connections are served on. Idempotent. */
void server_stop_accepting(struct server *srv);

/*
 * Close the listener and every connection (their close callbacks run) and
 * free the server. Held connections stay allocated, closed, until their
 * last conn_release. NULL is a no-op. May be called from on_request.
 */
void server_free(struct server *srv);

/* Open connections. */
size_t server_nclients(const struct server *srv);

/* Request lines received (blank lines aside), valid or not, since server_new. */
uint64_t server_nrequests(const struct server *srv);

/* Bytes of replies not yet written to their clients (the drain waits for 0). */
size_t server_pending_output(const struct server *srv);

/*
 * Replies. Each writes one line and steals its json_t (decref'd whatever
 * happens). Dropped when c is closed. A result or event that cannot be
 * encoded (out of memory, invalid UTF-8 from json_string_nocheck) is
 * logged, and for conn_ok replaced by an "internal" error, so the client
 * is not left waiting; when even that fails the connection is closed.
 * One response longer than output_cap by itself is not sent: conn_ok
 * answers "too_large" naming its size and the cap instead (an event that
 * long is dropped and logged), so a client that reads is never closed for
 * it. A write that takes the pending output past output_cap (a backlog:
 * earlier responses not read) closes c, and the log says how many bytes
 * were pending.
 */
void conn_ok(struct conn *c, json_int_t id, int has_id, json_t *result);
void conn_error(struct conn *c, json_int_t id, int has_id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void conn_event(struct conn *c, json_int_t id, json_t *event);

/*
 * Keep c allocated (and, after the peer's EOF, open) until the matching
 * conn_release: a command that answers later holds its connection. Returns c.
 */
struct conn *conn_hold(struct conn *c);
void conn_release(struct conn *c);

/* 1 when c is closed: peer gone, a limit hit, or server_free; else 0. */
int conn_closed(const struct conn *c);

/*
 * Call fn(c, arg) once when c closes (e.g. a `logs -f` follower
 * unsubscribes). One slot: a later call replaces fn, and fn NULL clears
 * it. When c is already closed, fn is called at once. fn may release c.
 */
void conn_on_close(struct conn *c, conn_close_fn *fn, void *arg);

#endif
