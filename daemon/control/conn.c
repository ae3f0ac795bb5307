/*
 * conn.c: one control connection: its input split into lines, its
 * replies, and its lifetime.
 *
 * Each connection is a bufferevent with deferred callbacks. Input is split
 * on '\n' as it arrives; a read high watermark of max_line + 2 makes
 * libevent stop reading (and cap each read) once a whole line would not
 * fit, so input never grows past it. A line that does not fit is answered
 * "too_large" once and skipped up to its '\n', however many reads that
 * takes (discarding), and the connection carries on. `scanned` remembers
 * how much of the input is known to hold no '\n', so a long line is
 * searched once, not once per read.
 *
 * Lifetime, as Redis's deferred deletion: closing a connection frees its
 * bufferevent (and fd) at once and marks the struct closed; the struct
 * itself is freed only when it is closed, no command holds it (refs) and
 * none of its callbacks is on the stack (depth). So a command may close
 * it, free the server, or release it from anywhere, including from inside
 * on_request or a close callback. Every path that can drop one of the three
 * conditions calls conn_maybe_free.
 *
 * EOF: the peer shut its write side. A partial line is dropped, reading
 * stops, and the connection closes once no command holds it and its output
 * is flushed. If the peer is gone altogether (POLLHUP: it closed, not just
 * shut down writing) nobody can read an answer, so it closes at once; a
 * reset or any socket error closes it at once too.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "proto.h"
#include "server-int.h"
#include "server.h"

/* Free c if nothing can reach it any more. */
void conn_maybe_free(struct conn *c)
{
	if (!c->closed || c->refs > 0 || c->depth > 0)
		return;
	if (c->srv != NULL && !c->sink) {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			c->srv->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
	}
	free(c);
}

/*
 * Close c: free its bufferevent and fd, then run its close callback. The
 * struct stays until conn_maybe_free, which the caller (or the callback
 * frame around it) runs. Idempotent.
 */
void conn_close(struct conn *c, const char *why)
{
	conn_close_fn *fn = c->on_close;

	if (c->closed)
		return;
	c->closed = 1;
	if (c->bev)
		bufferevent_free(c->bev); /* clears its callbacks: none of ours runs after this */
	c->bev = NULL;
	if (c->srv != NULL && !c->sink)
		c->srv->nclients--;
	log_debug("control: client %llu closed: %s", (unsigned long long)c->id, why);
	if (fn != NULL) {
		c->on_close = NULL;
		c->depth++;
		fn(c, c->on_close_arg);
		c->depth--;
	}
}

/* After EOF: close once nothing is owed to the peer any more. */
static void conn_maybe_finish(struct conn *c)
{
	if (c->closed || !c->eof || c->refs > 0)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c, "end of input");
}

/*
 * Queue one encoded line (malloc'd, freed here) on c, which must be open.
 * Closes c when its output passes the cap.
 */
static void conn_write(struct conn *c, char *line, size_t len)
{
	struct evbuffer *out;
	size_t earlier, pending, sent = 0;

	if (c->sink) {
		c->depth++;
		c->sink(c, c->sink_arg, line, len);
		c->depth--;
		free(line);
		conn_maybe_free(c);
		return;
	}
	out = bufferevent_get_output(c->bev);
	earlier = evbuffer_get_length(out);

	/*
	 * Nothing queued: try the socket at once. A reply that fits (the
	 * usual case) then costs one send(2), not two epoll_ctl calls and a
	 * deferred write pass; what does not fit is queued as before.
	 */
	if (evbuffer_get_length(out) == 0) {
		ssize_t n = send(bufferevent_getfd(c->bev), line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			sent = (size_t)n;
		if (sent == len) {
			free(line);
			if (c->eof)
				conn_maybe_finish(c);
			return;
		}
	}
	if (bufferevent_write(c->bev, line + sent, len - sent) < 0) {
		free(line);
		log_error("control: client %llu: out of memory queueing %zu bytes",
		          (unsigned long long)c->id, len);
		conn_close(c, "out of memory");
		return;
	}
	free(line);
	pending = evbuffer_get_length(out);
	if (pending > c->srv->lim.output_cap) {
		/* a single response never gets here (conn_fits refused it): this is a backlog */
		log_warn("control: client %llu: %zu bytes of output pending (%zu of them from "
		         "earlier responses it has not read, %zu of a new one), over output_cap = "
		         "%zu bytes: closed, the client does not read its answers",
		         (unsigned long long)c->id, pending, earlier, len - sent,
		         c->srv->lim.output_cap);
		conn_close(c, "output cap");
	}
}

/* Send an error whose message is already formatted; closes c if even that fails. */
static void conn_error_str(struct conn *c, json_int_t id, int has_id, const char *code,
                           const char *msg)
{
	size_t len;
	char *line;

	if (c->closed)
		return;
	line = proto_error(id, has_id, code, msg, &len);
	if (line == NULL) {
		log_error("control: client %llu: out of memory encoding an error",
		          (unsigned long long)c->id);
		conn_close(c, "out of memory");
		return;
	}
	conn_write(c, line, len);
}

/*
 * Whether one encoded response of len bytes may be queued: one bigger than
 * output_cap alone would pass the cap with a client that reads perfectly
 * well, and be blamed on it. Logs and returns 0 when it may not.
 */
static int conn_fits(struct conn *c, const char *what, size_t len)
{
	if (len <= c->srv->lim.output_cap)
		return 1;
	log_warn("control: client %llu: %s of %zu bytes is over output_cap = %zu bytes: not sent",
	         (unsigned long long)c->id, what, len, c->srv->lim.output_cap);
	return 0;
}

void conn_ok(struct conn *c, json_int_t id, int has_id, json_t *result)
{
	size_t len;
	char *line;

	if (c->closed) {
		json_decref(result);
		return;
	}
	line = proto_ok(id, has_id, result, &len);
	if (line == NULL) {
		log_error("control: client %llu: cannot encode a result (out of memory or invalid "
		          "UTF-8)",
		          (unsigned long long)c->id);
		conn_error_str(c, id, has_id, SERVER_E_INTERNAL, "the result could not be encoded");
		return;
	}
	if (!conn_fits(c, "a response", len)) {
		char msg[SERVER_MSG_SIZE];
		free(line);
		snprintf(msg, sizeof msg,
		         "the response is %zu bytes, over the daemon's output_cap of %zu bytes per "
		         "connection: not sent (raise output_cap, or ask for less)",
		         len, c->srv->lim.output_cap);
		conn_error_str(c, id, has_id, PROTO_E_TOO_LARGE, msg);
		return;
	}
	conn_write(c, line, len);
}

void conn_error(struct conn *c, json_int_t id, int has_id, const char *code, const char *fmt, ...)
{
	char buf[SERVER_MSG_SIZE], *msg = buf;
	va_list ap;
	int n;

	if (c->closed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf[0] = 0;
	} else if ((size_t)n >= sizeof buf) {
		msg = malloc((size_t)n + 1);
		if (msg != NULL) {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)n + 1, fmt, ap);
			va_end(ap);
		} else {
			msg = buf; /* truncated beats nothing */
		}
	}
	conn_error_str(c, id, has_id, code, msg);
	if (msg != buf)
		free(msg);
}

void conn_event(struct conn *c, json_int_t id, json_t *event)
{
	size_t len;
	char *line;

	if (c->closed) {
		json_decref(event);
		return;
	}
	line = proto_event(id, event, &len);
	if (line == NULL) {
		/* an event is not an answer: the final response still comes */
		log_error("control: client %llu: cannot encode an event (out of memory or invalid "
		          "UTF-8): dropped",
		          (unsigned long long)c->id);
		return;
	}
	if (!conn_fits(c, "an event", len)) {
		free(line); /* an event is not an answer: the final response still comes */
		return;
	}
	conn_write(c, line, len);
}

struct conn *conn_new_sink(struct server *srv, conn_sink_fn *sink, void *arg)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->srv = srv;
	c->sink = sink;
	c->sink_arg = arg;
	c->refs = 1;
	return c;
}

void conn_end(struct conn *c)
{
	conn_close(c, "done");
	conn_maybe_free(c);
}

struct conn *conn_hold(struct conn *c)
{
	c->refs++;
	return c;
}

void conn_release(struct conn *c)
{
	if (c->refs <= 0) {
		log_error("control: client %llu: conn_release without conn_hold",
		          (unsigned long long)c->id);
		return;
	}
	c->refs--;
	if (c->refs == 0)
		conn_maybe_finish(c);
	conn_maybe_free(c);
}

int conn_closed(const struct conn *c)
{
	return c->closed;
}

void conn_on_close(struct conn *c, conn_close_fn *fn, void *arg)
{
	if (c->closed) {
		if (fn != NULL) {
			c->depth++;
			fn(c, arg);
			c->depth--;
			conn_maybe_free(c);
		}
		return;
	}
	c->on_close = fn;
	c->on_close_arg = arg;
}

/*
 * Answer the line of len bytes at data (no "\r\n"), then drain the
 * consumed bytes it sits in. It is parsed before the drain, so it is never
 * copied (proto_parse keeps nothing of it), and dispatched after, since
 * on_request may close c and so free the buffer.
 */
static void conn_line(struct conn *c, const char *data, size_t len, size_t consumed)
{
	struct server *srv = c->srv;
	char code[PROTO_CODE_SIZE], msg[SERVER_MSG_SIZE];
	struct proto_request req;
	json_int_t id;
	int has_id, rc;

	srv->nrequests++;
	rc = proto_parse(data, len, srv->lim.max_line, &req, &id, &has_id, code, sizeof code, msg,
	                 sizeof msg);
	evbuffer_drain(bufferevent_get_input(c->bev), consumed);
	if (rc < 0) {
		conn_error_str(c, id, has_id, code, msg);
		return;
	}
	/* srv may be freed by the callback (server_free): nothing of it is read after */
	srv->on_request(c, &req, srv->arg);
	proto_request_fini(&req);
}

/* Consume every complete line in c's input, as long as c stays open. */
static void conn_read(struct conn *c)
{
	while (!c->closed && !c->eof) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t avail = evbuffer_get_length(in), n;
		struct evbuffer_ptr p;
		unsigned char *data;

		p.pos = -1;
		if (c->scanned < avail &&
		    evbuffer_ptr_set(in, &p, c->scanned, EVBUFFER_PTR_SET) == 0)
			p = evbuffer_search_eol(in, &p, NULL, EVBUFFER_EOL_LF);
		if (p.pos < 0) {
			if (c->discarding) {
				evbuffer_drain(in, avail);
				c->scanned = 0;
			} else if (avail > c->srv->lim.max_line + 1) {
				/* +1: a max_line line may still await its "\n" after a '\r' */
				evbuffer_drain(in, avail);
				c->scanned = 0;
				c->discarding = 1;
				conn_error(c, 0, 0, PROTO_E_TOO_LARGE,
				           "request line longer than %zu bytes",
				           c->srv->lim.max_line);
			} else {
				c->scanned = avail;
			}
			return;
		}
		n = (size_t)p.pos; /* bytes before the '\n' */
		c->scanned = 0;
		if (c->discarding) {
			evbuffer_drain(in, n + 1);
			c->discarding = 0;
			continue;
		}
		data = evbuffer_pullup(in, (ev_ssize_t)n + 1);
		if (data == NULL) {
			log_error("control: client %llu: out of memory reading a %zu byte line",
			          (unsigned long long)c->id, n);
			conn_close(c, "out of memory");
			return;
		}
		if (n > 0 && data[n - 1] == '\r')
			n--;
		if (n == 0) {
			evbuffer_drain(in, (size_t)p.pos + 1);
			continue;
		}
		conn_line(c, (const char *)data, n, (size_t)p.pos + 1);
	}
}

void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	c->depth++;
	conn_read(c);
	c->depth--;
	conn_maybe_free(c);
}

/* Output flushed: the last thing an EOF'd connection may be waiting for. */
void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	c->depth++;
	conn_maybe_finish(c);
	c->depth--;
	conn_maybe_free(c);
}

/* 1 when the peer closed its socket (not just its write side). */
static int conn_peer_gone(struct conn *c)
{
	struct pollfd pfd;

	pfd.fd = bufferevent_getfd(c->bev);
	pfd.events = POLLOUT;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) < 0)
		return 0;
	return (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[128];

	(void)bev;
	c->depth++;
	if (what & BEV_EVENT_EOF) {
		/* lines before the EOF were consumed by the read callback, which runs first */
		c->eof = 1;
		bufferevent_disable(c->bev, EV_READ);
		evbuffer_drain(bufferevent_get_input(c->bev),
		               evbuffer_get_length(bufferevent_get_input(c->bev)));
		if (conn_peer_gone(c))
			conn_close(c, "peer closed");
		else
			conn_maybe_finish(c);
	} else if (what & BEV_EVENT_ERROR) {
		snprintf(why, sizeof why, "%s error: %s",
		         (what & BEV_EVENT_WRITING) ? "write" : "read",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_close(c, why);
	}
	c->depth--;
	conn_maybe_free(c);
}
