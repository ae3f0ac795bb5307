/*
 * http.c: the Lua "http" module (SPEC section 4) on libcurl's multi-socket
 * interface, driven by the scheduler's libevent loop; nothing here blocks.
 *
 * One http_multi per Lua state (so per scheduler), made on first use and
 * anchored in the registry: it holds the CURLM handle, whose connection
 * cache gives connection reuse, one evtimer for curl's timeout and one
 * struct event per socket curl asks us to watch. The libevent callbacks
 * call curl_multi_socket_action, then collect finished transfers with
 * curl_multi_info_read and wake their tasks (task_wake: the scheduler
 * resumes them on a later turn; no Lua runs inside a libevent callback).
 *
 * One http_xfer per request: a malloc'd record (the easy handle's
 * CURLOPT_PRIVATE) owned by a to-be-closed guard userdata on the calling
 * task's stack. The task suspends with TASK_WAIT_PARK; http_k, its
 * continuation, builds the response while the guard still owns the C side,
 * so a Lua error (memory, cancellation) unwinds through the guard's
 * __close, which aborts the transfer and frees it. Invariants:
 *  - an xfer is in the multi (x->in_multi) only while its task waits for
 *    it; whoever ends the wait first (completion or release) takes it out;
 *  - xfer_release is idempotent, and detaches from a multi already closed;
 *  - on cancellation the transfer is released before the error is raised,
 *    so the connection is closed at once, not at the next collection.
 *
 * Workload: scripts fanning out to a few dozen services at once, each
 * response small (JSON), occasionally a large download bounded by
 * max_size.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "errval.h"
#include "modules.h"
#include "sched.h"
#include "task.h"

#define HTTP_MULTI_MT  "http.Multi"
#define HTTP_XFER_MT   "http.Transfer"
#define HTTP_MULTI_KEY "awaitd.http.multi" /* registry key of the state's http_multi */

#define HTTP_MAX_SIZE_DEFAULT   (16 * 1024 * 1024) /* bytes of body (and of headers) */
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TIMEOUT_MS         30000L
#define HTTP_MAX_REDIRS         5L

struct http_multi;

/* A socket curl asked us to watch. */
struct http_sock {
	struct event *ev; /* EV_PERSIST, re-assigned when curl changes what it wants */
	struct http_multi *m;
	struct http_sock *prev; /* m->socks list, so that closing frees leftovers */
	struct http_sock *next;
};

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
static void guard_release(struct http_guard *g)
{
	xfer_free(g->x);
	g->x = NULL;
}

/* __close and __gc of a guard. */
static int http_guard_close(lua_State *L)
{
	guard_release(luaL_checkudata(L, 1, HTTP_XFER_MT));
	return 0;
}

/*
 * Push a new, empty, to-be-closed guard. Raises only before the caller
 * holds anything; from then on the guard owns what the caller stores in it.
 */
static struct http_guard *guard_new(lua_State *L)
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
static size_t xfer_on_body(char *p, size_t size, size_t n, void *arg)
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
static size_t xfer_on_header(char *p, size_t size, size_t n, void *arg)
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
static struct http_multi *multi_get(lua_State *L)
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

/* ---- requests ---------------------------------------------------------- */

/* A header name: a non-empty token (RFC 9110). */
static int valid_token(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 127 || strchr("\"(),/:;<=>?@[\\]{}", c))
			return 0;
	}
	return 1;
}

/* A header value: no control characters but tab (no CR/LF injection). */
static int valid_value(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < ' ' && c != '\t') || c == 127)
			return 0;
	}
	return 1;
}

/* True when url starts with http:// or https:// (any case). */
static int allowed_scheme(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/*
 * Read field `name` of the options table at 1 as an optional positive
 * number; raises when it has the wrong type. Returns def when absent.
 */
static double opt_number(lua_State *L, const char *name, double def)
{
	double v = def;

	if (lua_getfield(L, 1, name) != LUA_TNIL) {
		if (!lua_isnumber(L, -1))
			luaL_error(L, "http: %s must be a number", name);
		v = lua_tonumber(L, -1);
		if (!(v > 0))
			luaL_error(L, "http: %s must be > 0", name);
	}
	lua_pop(L, 1);
	return v;
}

/* Read field `name` of the table at 1 as an optional string (NULL when absent). */
static const char *opt_string(lua_State *L, const char *name, size_t *len)
{
	const char *s = NULL;

	if (lua_getfield(L, 1, name) != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "http: %s must be a string", name);
		s = lua_tolstring(L, -1, len);
	}
	return s; /* left on the stack, so that s stays valid */
}

/*
 * Turn the headers table at idx (0: none) into x->hdrs. Returns 0, or -1
 * after pushing nil, err (a bad name or value: "invalid"). Raises on wrong
 * types; x is owned by the guard, so that is safe.
 */
static int build_headers(lua_State *L, int idx, struct http_xfer *x)
{
	int has_expect = 0;

	lua_pushnil(L);
	while (idx && lua_next(L, idx)) {
		size_t nlen, vlen;
		const char *name, *value;
		struct curl_slist *l;

		if (lua_type(L, -2) != LUA_TSTRING)
			return luaL_error(L, "http: header names must be strings");
		if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
			return luaL_error(L, "http: header values must be strings or numbers");
		name = lua_tolstring(L, -2, &nlen);
		value = luaL_tolstring(L, -1, &vlen); /* a copy: lua_next needs the key intact */
		if (!valid_token(name, nlen) || !valid_value(value, vlen)) {
			lua_pop(L, 3);
			lua_pushnil(L);
			errval_push(L, "invalid", "http: bad header %s", name);
			return -1;
		}
		if (nlen == 6 && strncasecmp(name, "expect", 6) == 0)
			has_expect = 1;
		/* "Name;" is curl's way to send a header with an empty value */
		lua_pushfstring(L, vlen ? "%s: %s" : "%s;", name, value);
		l = curl_slist_append(x->hdrs, lua_tostring(L, -1));
		lua_pop(L, 3);
		if (!l)
			return luaL_error(L, "http: out of memory");
		x->hdrs = l;
	}
	if (!has_expect) {
		/* no "Expect: 100-continue" round trip before large bodies */
		struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
		if (!l)
			return luaL_error(L, "http: out of memory");
		x->hdrs = l;
	}
	return 0;
}

/*
 * Push the headers in x->head as a table: lower-cased names, values
 * trimmed, repeated headers joined with ", ". Lower-cases x->head in place.
 */
static void push_headers(lua_State *L, struct http_xfer *x)
{
	char *p = x->head.data, *end = p + x->head.len;

	lua_newtable(L);
	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		char *line_end = eol ? eol : end, *colon, *v, *ve;

		colon = memchr(p, ':', (size_t)(line_end - p));
		if (colon && colon > p) {
			for (char *c = p; c < colon; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			v = colon + 1;
			ve = line_end;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			lua_pushlstring(L, p, (size_t)(colon - p)); /* name */
			lua_pushvalue(L, -1);
			if (lua_rawget(L, -3) == LUA_TSTRING) { /* name, old */
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(ve - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(ve - v));
			}
			lua_rawset(L, -3);
		}
		p = line_end + 1;
	}
}

/* Push the outcome of the finished transfer x: the response, or nil, err. */
static int push_outcome(lua_State *L, struct http_xfer *x)
{
	const char *why;

	if (x->too_big || x->result == CURLE_FILESIZE_EXCEEDED) {
		lua_pushnil(L);
		errval_push(L, "http", "%s: response larger than max_size (%zu bytes)", x->what,
		            x->max_size);
		return 2;
	}
	if (x->nomem) {
		lua_pushnil(L);
		errval_push(L, "http", "%s: out of memory reading the response", x->what);
		return 2;
	}
	if (x->result != CURLE_OK) {
		/* curl's own words: the code's meaning, and the error buffer's detail */
		why = curl_easy_strerror(x->result);
		lua_pushnil(L);
		if (x->result == CURLE_OPERATION_TIMEDOUT)
			errval_push(L, "timeout", "%s: %s", x->what,
			            x->errbuf[0] ? x->errbuf : why);
		else if (x->errbuf[0])
			errval_push(L, "http", "%s: %s (%s)", x->what, why, x->errbuf);
		else
			errval_push(L, "http", "%s: %s", x->what, why);
		return 2;
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, x->status);
	lua_setfield(L, -2, "status");
	push_headers(L, x);
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
	lua_setfield(L, -2, "body");
	return 1;
}

/*
 * Continuation of a request (ctx: the guard's stack index). Checks the
 * wake reason before task_resumed can raise, so that a cancelled transfer
 * is aborted and freed before the error unwinds.
 */
static int http_k(lua_State *L, int status, lua_KContext ctx)
{
	struct task *t = task_current(L);
	struct http_guard *g = lua_touserdata(L, (int)ctx);
	struct http_xfer *x = g->x;
	enum task_wake w = t->wake;
	int n;

	(void)status;
	if (w == TASK_WAKE_CANCEL) {
		guard_release(g);   /* abort now: the connection closes before anything unwinds */
		task_resumed(L, t); /* raises the cancellation */
	}
	if (w == TASK_WAKE_TIMEOUT) {
		/* cannot come (no timer of ours; the timer that ends a
		 * cancellation grace delivers CANCEL), but would end the wait */
		task_resumed(L, t);
		lua_pushnil(L);
		errval_push(L, "timeout", "%s: the wait for the response timed out", x->what);
		guard_release(g);
		return 2;
	}
	task_resumed(L, t);
	if (!x->done) /* woken by someone else's _unpark: wait on */
		return task_suspend(L, t, TASK_WAIT_PARK, x, -1, ctx, http_k);
	n = push_outcome(L, x);
	guard_release(g);
	return n;
}

/*
 * The request described by the options table at index 1 (the only value
 * on the stack): starts the transfer and suspends the task until it ends.
 */
static int http_do(lua_State *L)
{
	struct task *t = task_current(L);
	const char *method, *url, *body;
	size_t body_len = 0;
	double timeout_ms, max_size;
	int follow, headers, guard;
	struct http_multi *m;
	struct http_guard *g;
	struct http_xfer *x;
	CURL *e;

	if (!t)
		return luaL_error(L, "http: requests must be made inside a task");
	/* every check that raises first, while nothing is held */
	method = opt_string(L, "method", NULL);
	url = opt_string(L, "url", NULL);
	body = opt_string(L, "body", &body_len);
	if (!url)
		return luaL_error(L, "http: url must be a string");
	if (!method)
		method = "GET";
	timeout_ms = opt_number(L, "timeout", (double)HTTP_TIMEOUT_MS);
	max_size = opt_number(L, "max_size", (double)HTTP_MAX_SIZE_DEFAULT);
	lua_getfield(L, 1, "follow_redirects");
	follow = lua_toboolean(L, -1);
	lua_pop(L, 1);
	headers = lua_getfield(L, 1, "headers") == LUA_TNIL ? 0 : lua_gettop(L);
	if (headers)
		luaL_checktype(L, headers, LUA_TTABLE);
	if (!allowed_scheme(url)) {
		lua_pushnil(L);
		errval_push(L, "invalid", "http: %s: only http:// and https:// URLs are allowed",
		            url);
		return 2;
	}
	if (!valid_token(method, strlen(method))) {
		lua_pushnil(L);
		errval_push(L, "invalid", "http: bad method \"%s\"", method);
		return 2;
	}
	m = multi_get(L);
	if (!m) {
		lua_pushnil(L);
		errval_push(L, "http", "http: cannot create the curl multi handle");
		return 2;
	}

	g = guard_new(L);
	guard = lua_gettop(L);
	x = calloc(1, sizeof *x);
	if (!x)
		return luaL_error(L, "http: out of memory");
	g->x = x;
	x->t = t;
	x->max_size = max_size >= (double)SIZE_MAX ? SIZE_MAX : (size_t)max_size;
	x->m = m;
	x->next = m->xfers;
	if (m->xfers)
		m->xfers->prev = x;
	m->xfers = x;
	x->what = malloc(strlen(method) + strlen(url) + 2);
	x->easy = e = curl_easy_init();
	if (!x->what || !e)
		return luaL_error(L, "http: out of memory");
	sprintf(x->what, "%s %s", method, url);
	if (build_headers(L, headers, x) < 0)
		return 2;

	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "awaitd/" AWAITD_VERSION);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	/* curl reads 0 as "no timeout": a sub-millisecond one is 1 ms */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
	                 timeout_ms >= (double)LONG_MAX ? LONG_MAX
	                 : timeout_ms < 1               ? 1L
	                                                : (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	                 (curl_off_t)(max_size >= 9e18 ? 9e18 : max_size));
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, HTTP_MAX_REDIRS);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, xfer_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, xfer_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0) {
		/* before COPYPOSTFIELDS, which copies this many bytes */
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "") != CURLE_OK)
			return luaL_error(L, "http: out of memory");
		if (strcmp(method, "GET") == 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
	}
	if (curl_multi_add_handle(m->multi, e) != CURLM_OK) {
		lua_pushnil(L);
		errval_push(L, "http", "%s: cannot start the transfer", x->what);
		return 2;
	}
	x->in_multi = 1;
	return task_suspend(L, t, TASK_WAIT_PARK, x, -1, guard, http_k);
}

/* http.request{method, url, headers, body, timeout, max_size, follow_redirects} */
static int http_request(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	return http_do(L);
}

/*
 * Make index 1 a fresh options table: a shallow copy of the table at
 * opts (0: none) with url and method set; the stack holds only it.
 */
static void make_opts(lua_State *L, int opts, const char *method)
{
	lua_newtable(L);
	if (opts) {
		lua_pushnil(L);
		while (lua_next(L, opts)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
	}
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "url");
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
}

/* http.get(url [, opts]) */
static int http_get(lua_State *L)
{
	luaL_checkstring(L, 1);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	make_opts(L, lua_istable(L, 2) ? 2 : 0, "GET");
	lua_replace(L, 1);
	lua_settop(L, 1);
	return http_do(L);
}

/* http.post(url, body [, opts]) */
static int http_post(lua_State *L)
{
	luaL_checkstring(L, 1);
	luaL_checkstring(L, 2);
	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	make_opts(L, lua_istable(L, 3) ? 3 : 0, "POST");
	lua_pushvalue(L, 2);
	lua_setfield(L, -2, "body");
	lua_replace(L, 1);
	lua_settop(L, 1);
	return http_do(L);
}

static const luaL_Reg http_funcs[] = {
    {"request", http_request},
    {"get", http_get},
    {"post", http_post},
    {NULL, NULL},
};

int luaopen_http(lua_State *L)
{
	luaL_newlib(L, http_funcs);
	return 1;
}
