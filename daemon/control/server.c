/*
 * server.c: accepting control clients and moving their lines.
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
 *
 * Refusals (permission, max_clients) are logged at most once per
 * SERVER_WARN_EVERY_MS per reason, with a count of the ones left out.
 *
 * Accepting: accept4 until EAGAIN. Out of fds (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) the listener is paused for SERVER_ACCEPT_BACKOFF_MS rather than
 * woken again at once by the same pending connection.
 *
 * _GNU_SOURCE for accept4, which glibc hides under strict POSIX.
 */
#define _GNU_SOURCE
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

#include "errbuf.h"
#include "listen.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#define SERVER_ACCEPT_BACKOFF_MS 100
#define SERVER_MSG_SIZE          512   /* room for a proto_parse or refusal message */
#define SERVER_WARN_EVERY_MS     10000 /* at most one refusal warning per reason this often */

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
};

/* Free c if nothing can reach it any more. */
static void conn_maybe_free(struct conn *c)
{
	if (!c->closed || c->refs > 0 || c->depth > 0)
		return;
	if (c->srv != NULL) {
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
static void conn_close(struct conn *c, const char *why)
{
	conn_close_fn *fn = c->on_close;

	if (c->closed)
		return;
	c->closed = 1;
	bufferevent_free(c->bev); /* clears its callbacks: none of ours runs after this */
	c->bev = NULL;
	if (c->srv != NULL)
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
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t earlier = evbuffer_get_length(out), pending, sent = 0;

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

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	c->depth++;
	conn_read(c);
	c->depth--;
	conn_maybe_free(c);
}

/* Output flushed: the last thing an EOF'd connection may be waiting for. */
static void conn_write_cb(struct bufferevent *bev, void *arg)
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

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
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

/*
 * Whether a refusal counted in rl is written now: 1 with more filled ("",
 * or " (312 more refused in the last 10 s)"), or 0 when it is only
 * counted. Time is the loop's cached clock; no extra syscall or thread.
 */
static int server_ratelog_due(struct server *srv, struct server_ratelog *rl, char *more,
                              size_t morelen)
{
	struct timeval tv;
	int64_t now;

	more[0] = '\0';
	if (event_base_gettimeofday_cached(srv->base, &tv) < 0)
		return 1; /* no clock: better a line too many than none */
	now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	/* a clock stepped back counts as the interval having passed */
	if (rl->last && now >= rl->last && now - rl->last < SERVER_WARN_EVERY_MS) {
		rl->nmissed++;
		return 0;
	}
	if (rl->nmissed)
		snprintf(more, morelen, " (%llu more refused in the last %lld s)",
		         (unsigned long long)rl->nmissed,
		         (long long)(now >= rl->last ? (now - rl->last + 500) / 1000 : 0));
	rl->last = now ? now : 1;
	rl->nmissed = 0;
	return 1;
}

/* Write one refusal line to a just-accepted fd and close it. */
static void server_refuse(int fd, const char *code, const char *msg)
{
	size_t len;
	char *line = proto_error(0, 0, code, msg, &len);

	/* a fresh socket's buffer is empty: a short line goes in whole or not at all */
	if (line != NULL && send(fd, line, len, MSG_NOSIGNAL) < 0)
		log_debug("control: refusal not delivered: %s", strerror(errno));
	free(line);
	close(fd);
}

/* Take an accepted fd on as a connection (or refuse it). */
static void server_admit(struct server *srv, int fd)
{
	char msg[SERVER_MSG_SIZE], more[80];
	struct conn *c;
	int rc;

	rc = listen_peer_allowed(fd, srv->lim.allow_gid, msg, sizeof msg);
	if (rc != 1) {
		if (server_ratelog_due(srv, &srv->warn_denied, more, sizeof more))
			log_warn("control: connection refused: %s%s", msg, more);
		server_refuse(fd, SERVER_E_PERMISSION_DENIED,
		              rc == 0 ? "permission denied: not root, the daemon's user or an "
		                        "allowed group"
		                      : "permission denied: the peer's credentials cannot be read");
		return;
	}
	if (srv->nclients >= (size_t)srv->lim.max_clients) {
		if (server_ratelog_due(srv, &srv->warn_busy, more, sizeof more))
			log_warn("control: connection refused: %d clients already (max_clients)%s",
			         srv->lim.max_clients, more);
		snprintf(msg, sizeof msg, "too many clients (%d)", srv->lim.max_clients);
		server_refuse(fd, SERVER_E_BUSY, msg);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		goto err;
	c->bev =
	    bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		goto err;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, srv->lim.max_line + 2);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		goto err;
	c->srv = srv;
	c->id = ++srv->next_id;
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nclients++;
	log_debug("control: client %llu connected", (unsigned long long)c->id);
	return;
err:
	log_error("control: out of memory accepting a client");
	if (c != NULL && c->bev != NULL)
		bufferevent_free(c->bev); /* closes fd */
	else
		close(fd);
	free(c);
}

static void server_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {0, SERVER_ACCEPT_BACKOFF_MS * 1000};

	(void)what;
	while (srv->accept_ev != NULL) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			server_admit(srv, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("control: accept: %s; not accepting for %d ms", strerror(errno),
			         SERVER_ACCEPT_BACKOFF_MS);
			event_del(srv->accept_ev);
			evtimer_add(srv->backoff_ev, &tv);
			return;
		}
		log_error("control: accept: %s", strerror(errno));
		return;
	}
}

static void server_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->accept_ev != NULL)
		event_add(srv->accept_ev, NULL);
}

struct server *server_new(struct event_base *base, int listen_fd, const struct server_limits *lim,
                          server_request_fn *on_request, void *arg, char *err, size_t errlen)
{
	struct server *srv = NULL;

	if (lim->max_line == 0 || lim->max_line > SIZE_MAX / 2 || lim->output_cap == 0 ||
	    lim->max_clients < 1) {
		errbuf_set(err, errlen,
		           "control server: bad limits (max_line %zu, output_cap %zu, max_clients "
		           "%d): each must be positive",
		           lim->max_line, lim->output_cap, lim->max_clients);
		return NULL;
	}
	srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		goto err;
	srv->base = base;
	srv->listen_fd = listen_fd;
	srv->lim = *lim;
	srv->on_request = on_request;
	srv->arg = arg;
	srv->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST, server_accept_cb, srv);
	if (srv->accept_ev == NULL)
		goto err;
	srv->backoff_ev = evtimer_new(base, server_backoff_cb, srv);
	if (srv->backoff_ev == NULL)
		goto err;
	if (event_add(srv->accept_ev, NULL) < 0)
		goto err;
	return srv;
err:
	errbuf_set(err, errlen, "control server: out of memory");
	if (srv != NULL) {
		if (srv->backoff_ev != NULL)
			event_free(srv->backoff_ev);
		if (srv->accept_ev != NULL)
			event_free(srv->accept_ev);
		free(srv);
	}
	return NULL;
}

void server_stop_accepting(struct server *srv)
{
	if (srv->accept_ev == NULL)
		return;
	event_free(srv->accept_ev);
	srv->accept_ev = NULL;
	event_del(srv->backoff_ev);
	close(srv->listen_fd);
	srv->listen_fd = -1;
}

void server_free(struct server *srv)
{
	struct conn *c;

	if (srv == NULL)
		return;
	server_stop_accepting(srv);
	/*
	 * Detach each conn before closing it: a close callback may release
	 * (and so free) any conn, so the list is re-read from its head.
	 */
	while ((c = srv->conns) != NULL) {
		srv->conns = c->next;
		if (c->next != NULL)
			c->next->prev = NULL;
		c->srv = NULL;
		c->prev = c->next = NULL;
		conn_close(c, "server stopped");
		conn_maybe_free(c);
	}
	event_free(srv->backoff_ev);
	free(srv);
}

size_t server_nclients(const struct server *srv)
{
	return srv->nclients;
}

uint64_t server_nrequests(const struct server *srv)
{
	return srv->nrequests;
}

size_t server_pending_output(const struct server *srv)
{
	size_t n = 0;

	for (const struct conn *c = srv->conns; c; c = c->next)
		if (!c->closed && c->bev)
			n += evbuffer_get_length(bufferevent_get_output(c->bev));
	return n;
}
