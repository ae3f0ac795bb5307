/*
 * http-multi.c: the transfers of the "http" module and libcurl's
 * multi-socket interface, driven by the scheduler's libevent loop;
 * nothing here blocks and no Lua runs inside its callbacks.
 *
 * The state's http_multi is made on first use and anchored in the
 * registry: it holds the CURLM handle, whose connection cache gives
 * connection reuse, one evtimer for curl's timeout and one struct event
 * per socket curl asks us to watch. The libevent callbacks call
 * curl_multi_socket_action, then collect finished transfers with
 * curl_multi_info_read and wake their tasks (task_wake: the scheduler
 * resumes them on a later turn). An http_xfer is a malloc'd record (the
 * easy handle's CURLOPT_PRIVATE) with the buffers curl's callbacks fill;
 * the guard userdata that owns it frees it exactly once (http-int.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "http-int.h"
#include "sched.h"
#include "task.h"

#define HTTP_MULTI_MT  "http.Multi"
#define HTTP_XFER_MT   "http.Transfer"
#define HTTP_MULTI_KEY "awaitd.http.multi" /* registry key of the state's http_multi */

/* A socket curl asked us to watch. */
struct http_sock {
	struct event *ev; /* EV_PERSIST, re-assigned when curl changes what it wants */
	struct http_multi *m;
	struct http_sock *prev; /* m->socks list, so that closing frees leftovers */
	struct http_sock *next;
};

/* ---- buffers ----------------------------------------------------------- */

/* Append n bytes; 0, or -1 when memory runs out (buf unchanged). */
static int buf_append(struct http_buf *b, const char *p, size_t n)
{
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 1024;
		char *data;

		while (cap - b->len < n)
			cap *= 2;
		data = realloc(b->data, cap);
		if (!data)
			return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static void buf_fini(struct http_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- transfers --------------------------------------------------------- */

/* Take x out of its multi (the connection goes back to the cache, or is
 * closed when the transfer did not finish) and out of m's list. */
static void xfer_detach(struct http_xfer *x)
{
	struct http_multi *m = x->m;

	if (!m)
		return;
	if (x->in_multi)
		curl_multi_remove_handle(m->multi, x->easy);
	x->in_multi = 0;
	if (x->prev)
		x->prev->next = x->next;
	else
		m->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	x->m = NULL;
}

/* Abort (if still running) and free everything x holds. x may be NULL. */
static void xfer_free(struct http_xfer *x)
{
	if (!x)
		return;
	xfer_detach(x);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->what);
	buf_fini(&x->body);
	buf_fini(&x->head);
	free(x);
}

/* Release what a guard owns (idempotent). */
void http_guard_release(struct http_guard *g)
{
	xfer_free(g->x);
	g->x = NULL;
}

/* __close and __gc of a guard. */
static int http_guard_close(lua_State *L)
{
	http_guard_release(luaL_checkudata(L, 1, HTTP_XFER_MT));
	return 0;
}

/*
 * Push a new, empty, to-be-closed guard. Raises only before the caller
 * holds anything; from then on the guard owns what the caller stores in it.
 */
struct http_guard *http_guard_new(lua_State *L)
{
	struct http_guard *g = lua_newuserdatauv(L, sizeof *g, 0);

	g->x = NULL;
	if (luaL_newmetatable(L, HTTP_XFER_MT)) {
		lua_pushcfunction(L, http_guard_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, http_guard_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return g;
}

/* curl's write callback: the body, bounded by max_size. */
size_t http_xfer_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;

	if (len > x->max_size - x->body.len) {
		x->too_big = 1;
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	}
	if (buf_append(&x->body, p, len) < 0) {
		x->nomem = 1;
		return 0;
	}
	return len;
}

/*
 * curl's header callback: one line at a time, the status line first. A new
 * status line (after a 1xx or a followed redirect) starts a new response,
 * whose headers replace the previous ones.
 */
size_t http_xfer_on_header(char *p, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		x->head.len = 0;
		return len;
	}
	if (len > x->max_size - x->head.len) {
		x->too_big = 1;
		return 0;
	}
	if (buf_append(&x->head, p, len) < 0) {
		x->nomem = 1;
		return 0;
	}
	return len;
}

/* ---- the multi handle on libevent -------------------------------------- */

static void multi_check_done(struct http_multi *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left))) {
		struct http_xfer *x = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		x->result = rc;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->status);
		/* msg is invalid from here on; the connection is reusable at once */
		curl_multi_remove_handle(m->multi, easy);
		x->in_multi = 0;
		x->done = 1;
		task_wake(x->t, TASK_WAKE_SIGNAL);
	}
}

static void multi_on_event(evutil_socket_t fd, short kind, void *arg)
{
	struct http_sock *sk = arg;
	struct http_multi *m = sk->m; /* sk may be freed by the call below */
	int action =
	    (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(m->multi, fd, action, &running);
	multi_check_done(m);
}

static void multi_on_timer(evutil_socket_t fd, short kind, void *arg)
{
	struct http_multi *m = arg;
	int running;

	(void)fd;
	(void)kind;
	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	multi_check_done(m);
}

static void sock_free(struct http_sock *sk)
{
	struct http_multi *m = sk->m;

	event_free(sk->ev);
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		m->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	free(sk);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for `what`, or stop watching it. */
static int multi_on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct http_multi *m = arg;
	struct http_sock *sk = sockp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sk)
			sock_free(sk);
		return 0;
	}
	if (!sk) {
		sk = calloc(1, sizeof *sk);
		if (!sk)
			return -1;
		sk->ev = event_new(m->base, fd, EV_READ, multi_on_event, sk);
		if (!sk->ev) {
			free(sk);
			return -1;
		}
		sk->m = m;
		sk->next = m->socks;
		if (m->socks)
			m->socks->prev = sk;
		m->socks = sk;
		curl_multi_assign(m->multi, fd, sk);
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	event_del(sk->ev);
	event_assign(sk->ev, m->base, fd, kind, multi_on_event, sk);
	return event_add(sk->ev, NULL);
}

/* CURLMOPT_TIMERFUNCTION: (re)arm the one timer; -1 disarms it. */
static int multi_on_timeout(CURLM *multi, long timeout_ms, void *arg)
{
	struct http_multi *m = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(m->timer);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(m->timer, &tv);
}

/* __gc of the multi (lua_close): detach what is left, then close. */
static int http_multi_gc(lua_State *L)
{
	struct http_multi *m = luaL_checkudata(L, 1, HTTP_MULTI_MT);

	while (m->xfers)
		xfer_detach(m->xfers);
	if (m->multi)
		curl_multi_cleanup(m->multi); /* may call multi_on_socket(REMOVE) */
	m->multi = NULL;
	while (m->socks)
		sock_free(m->socks);
	if (m->timer)
		event_free(m->timer);
	m->timer = NULL;
	return 0;
}

/*
 * The state's multi, made on first use on the scheduler's event_base.
 * Returns NULL when curl or libevent cannot provide one; raises only on
 * Lua memory errors, while nothing is held outside the userdata.
 */
struct http_multi *http_multi_get(lua_State *L)
{
	static int curl_ready; /* curl_global_init done (the loop thread only) */
	struct http_multi *m;

	if (lua_getfield(L, LUA_REGISTRYINDEX, HTTP_MULTI_KEY) == LUA_TUSERDATA) {
		m = lua_touserdata(L, -1);
		lua_pop(L, 1);
		return m;
	}
	lua_pop(L, 1);
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		curl_ready = 1;
	}
	m = lua_newuserdatauv(L, sizeof *m, 0);
	memset(m, 0, sizeof *m);
	if (luaL_newmetatable(L, HTTP_MULTI_MT)) {
		lua_pushcfunction(L, http_multi_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2); /* from here __gc frees what m holds */
	m->base = sched_of(L)->base;
	m->timer = evtimer_new(m->base, multi_on_timer, m);
	m->multi = curl_multi_init();
	if (!m->timer || !m->multi) {
		lua_pop(L, 1); /* the collector frees the half-built multi */
		return NULL;
	}
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, multi_on_socket);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, multi_on_timeout);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	lua_setfield(L, LUA_REGISTRYINDEX, HTTP_MULTI_KEY);
	return m;
}
