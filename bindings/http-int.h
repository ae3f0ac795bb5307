/*
 * http-int.h: what the two files of the Lua "http" module share: http.c
 * (the Lua API: options, request headers, the response) and http-multi.c
 * (transfer records, their guard, and curl's multi handle on libevent).
 *
 * One http_multi per Lua state (so per scheduler); one http_xfer per
 * request, owned by a to-be-closed guard userdata on the calling task's
 * stack. Invariants:
 *  - an xfer is in the multi (x->in_multi) only while its task waits for
 *    it; whoever ends the wait first (completion or release) takes it out;
 *  - http_guard_release is idempotent, and detaches from a multi already
 *    closed;
 *  - on cancellation the transfer is released before the error is raised,
 *    so the connection is closed at once, not at the next collection.
 */
#ifndef AWAITD_HTTP_INT_H
#define AWAITD_HTTP_INT_H

#include <stddef.h>

#include <curl/curl.h>
#include <lua.h>

struct event;
struct event_base;
struct task;

struct http_sock;
struct http_xfer;

struct http_multi {
	CURLM *multi; /* NULL once closed */
	struct event_base *base;
	struct event *timer;     /* curl's one timeout */
	struct http_sock *socks; /* every watched socket */
	struct http_xfer *xfers; /* every transfer not yet released */
};

/* A growing byte buffer; data is malloc'd, NULL while empty. */
struct http_buf {
	char *data;
	size_t len; /* bytes */
	size_t cap; /* bytes */
};

struct http_xfer {
	struct http_multi *m;   /* NULL once detached (released, or multi closed) */
	struct http_xfer *prev; /* m->xfers list */
	struct http_xfer *next;
	CURL *easy;              /* NULL once released */
	struct curl_slist *hdrs; /* request headers */
	struct task *t;          /* the task waiting for it */
	char *what;              /* "METHOD url", for messages */
	struct http_buf body;    /* response body */
	struct http_buf head;    /* response header lines of the last response */
	size_t max_size;         /* bytes, for body and for headers */
	long status;             /* HTTP status */
	CURLcode result;
	unsigned in_multi : 1; /* added to m->multi and not yet removed */
	unsigned done : 1;     /* curl finished it: result and status are set */
	unsigned too_big : 1;  /* the response went over max_size */
	unsigned nomem : 1;    /* a buffer could not grow */
	char errbuf[CURL_ERROR_SIZE];
};

/* The guard userdata: owns x. */
struct http_guard {
	struct http_xfer *x;
};

/*
 * Push a new, empty, to-be-closed guard. Raises only before the caller
 * holds anything; from then on the guard owns what the caller stores in it.
 */
struct http_guard *http_guard_new(lua_State *L);

/* Abort (if still running) and free the transfer a guard owns (idempotent). */
void http_guard_release(struct http_guard *g);

/*
 * The state's multi, made on first use on the scheduler's event_base.
 * Returns NULL when curl or libevent cannot provide one; raises only on
 * Lua memory errors, while nothing is held outside the userdata.
 */
struct http_multi *http_multi_get(lua_State *L);

/* curl's write callback (CURLOPT_WRITEFUNCTION, data: the xfer): the body, bounded by max_size. */
size_t http_xfer_on_body(char *p, size_t size, size_t n, void *arg);

/* curl's header callback (CURLOPT_HEADERFUNCTION, data: the xfer): the last response's headers. */
size_t http_xfer_on_header(char *p, size_t size, size_t n, void *arg);

#endif
