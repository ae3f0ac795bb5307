/*
 * server.c: the control server's listener: accepting clients, checking
 * their credentials and the client limit, refusing the rest; the
 * connections it admits live in conn.c.
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
#include "server-int.h"
#include "server.h"

#define SERVER_ACCEPT_BACKOFF_MS 100
#define SERVER_WARN_EVERY_MS     10000 /* at most one refusal warning per reason this often */

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
