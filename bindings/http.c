/*
 * http.c: the Lua "http" module (SPEC section 4): request options, request
 * headers and the response as Lua sees them; the transfers themselves run
 * on libcurl's multi-socket interface in http-multi.c, so nothing here
 * blocks.
 *
 * A request makes its http_xfer under a to-be-closed guard on the calling
 * task's stack and suspends with TASK_WAIT_PARK; http_k, its continuation,
 * builds the response while the guard still owns the C side, so a Lua
 * error (memory, cancellation) unwinds through the guard's __close, which
 * aborts the transfer and frees it (the invariants are in http-int.h).
 *
 * Workload: scripts fanning out to a few dozen services at once, each
 * response small (JSON), occasionally a large download bounded by
 * max_size.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "errval.h"
#include "http-int.h"
#include "modules.h"
#include "task.h"

#define HTTP_MAX_SIZE_DEFAULT   (16 * 1024 * 1024) /* bytes of body (and of headers) */
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TIMEOUT_MS         30000L
#define HTTP_MAX_REDIRS         5L

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
		http_guard_release(
		    g);             /* abort now: the connection closes before anything unwinds */
		task_resumed(L, t); /* raises the cancellation */
	}
	if (w == TASK_WAKE_TIMEOUT) {
		/* cannot come (no timer of ours; the timer that ends a
		 * cancellation grace delivers CANCEL), but would end the wait */
		task_resumed(L, t);
		lua_pushnil(L);
		errval_push(L, "timeout", "%s: the wait for the response timed out", x->what);
		http_guard_release(g);
		return 2;
	}
	task_resumed(L, t);
	if (!x->done) /* woken by someone else's _unpark: wait on */
		return task_suspend(L, t, TASK_WAIT_PARK, x, -1, ctx, http_k);
	n = push_outcome(L, x);
	http_guard_release(g);
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
	m = http_multi_get(L);
	if (!m) {
		lua_pushnil(L);
		errval_push(L, "http", "http: cannot create the curl multi handle");
		return 2;
	}

	g = http_guard_new(L);
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
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_xfer_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_xfer_on_header);
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
