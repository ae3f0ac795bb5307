/*
 * server-int.h: what the two files of the control server share: server.c
 * (the listener: accepting, peer checks, limits, refusals) and conn.c (a
 * connection: its buffers, its lines, its replies and its lifetime).
 */
#ifndef AWAITD_SERVER_INT_H
#define AWAITD_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "server.h"

#define SERVER_MSG_SIZE 512 /* room for a proto_parse or refusal message */

/*
 * A warning a local client could repeat at will (a refused connection):
 * written at most once per SERVER_WARN_EVERY_MS of loop time, the next
 * one counting those left out meanwhile, so a flood cannot fill the log.
 */
struct server_ratelog {
	int64_t last;     /* ms, the loop's clock, of the last warning written; 0: never */
	uint64_t nmissed; /* refusals not written since then */
};

struct server {
	struct event_base *base;
	int listen_fd;            /* -1 once closed */
	struct event *accept_ev;  /* NULL once closed */
	struct event *backoff_ev; /* re-arms accept_ev after EMFILE */
	struct server_limits lim;
	server_request_fn *on_request;
	void *arg;
	struct conn *conns; /* every conn not yet freed; closed ones may wait for releases */
	size_t nclients;    /* open conns in the list */
	uint64_t nrequests; /* request lines received */
	uint64_t next_id;   /* numbers conns in the log */
	struct server_ratelog warn_denied, warn_busy; /* refusals, one per reason */
};

/*
 * Invariants: bev != NULL exactly when !closed; the conn is in
 * srv->conns exactly when srv != NULL; it is freed when closed, refs == 0
 * and depth == 0 all hold.
 */
struct conn {
	struct server *srv;       /* NULL once detached by server_free */
	struct bufferevent *bev;  /* owns the fd; NULL once closed */
	struct conn *prev, *next; /* in srv->conns */
	uint64_t id;              /* for the log */
	int refs;                 /* conn_hold count */
	int depth;                /* callbacks of this conn on the stack */
	int closed;               /* see conn_closed */
	int eof;                  /* the peer shut its write side */
	int discarding;           /* skipping the rest of a too long line */
	size_t scanned;           /* input bytes known to hold no '\n' */
	conn_close_fn *on_close;
	void *on_close_arg;
	conn_sink_fn *sink; /* a connection without a socket (conn_new_sink): its lines go here */
	void *sink_arg;
};

/* Free c if nothing can reach it any more (closed, not held, no callback running). */
void conn_maybe_free(struct conn *c);

/* Close c now (its bufferevent and fd), logging why; the struct waits for conn_maybe_free. */
void conn_close(struct conn *c, const char *why);

/* The bufferevent callbacks of a connection (arg: the struct conn). */
void conn_read_cb(struct bufferevent *bev, void *arg);
void conn_write_cb(struct bufferevent *bev, void *arg);
void conn_event_cb(struct bufferevent *bev, short what, void *arg);

#endif
