/*
 * web.c: the HTTP front end (web.h).
 *
 * Each /api/ request is one control command, run on a connection without
 * a socket (conn_new_sink): the command answers as it would on the
 * control socket, and the answer's line comes back to on_line, which
 * turns it into the HTTP response: the result as JSON with 200, or the
 * error object with a status that says what kind it is. /metrics runs
 * `status`, then `stats`, and prints both in the Prometheus text format
 * (web-metrics.c). / is the dashboard, a page and a script embedded in the
 * binary (daemon/web/assets/), which polls /api/. The actions (POST
 * /api/jobs/ID/cancel, retry, signal) run the same commands, only with
 * http_token set and sent as "Authorization: Bearer TOKEN"; else 403.
 * The answer to an /api/ GET serves the same GET for WEB_CACHE_MS
 * (web-cache.c): every open dashboard asks the same paths each second.
 *
 * A request whose client goes away before the answer (evhttp frees it) is
 * marked gone by the connection's close callback; its answer is dropped.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "clock.h"
#include "cmd.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "web.h"
#include "web-int.h"

#include "dashboard_html.h"
#include "dashboard_js.h"

#define WEB_MAX_HEADERS 8192
#define WEB_MAX_BODY    65536

struct webreq;

struct web {
	struct evhttp *http;
	char *token; /* NULL: actions are off */
	struct server *srv;
	const struct cmd_env *env;
	unsigned long requests;
	struct webreq *pending; /* waiting for their command's answer */
	struct web_cache cache; /* answers of /api/ GETs, for the next browser */
};

enum stage { STAGE_API, STAGE_METRICS_STATUS, STAGE_METRICS_STATS };

struct webreq {
	struct web *w;
	struct evhttp_request *req; /* NULL once its client is gone */
	struct conn *c;             /* the command's connection, while it runs */
	enum stage stage;
	int dispatching; /* inside cmd_dispatch: an answer now is handled after it */
	json_t *got;     /* the answer's document */
	char *raw;       /* ... or a success's result as JSON text (STAGE_API) */
	size_t rawlen;
	char *key;                  /* a GET's URI: its answer is cached (web-cache.c) */
	json_t *status;             /* /metrics: the status result, while stats runs */
	struct webreq *prev, *next; /* in w->pending */
};

static void unlink_req(struct webreq *wr)
{
	if (!wr->w) /* its server is gone (web_free) */
		return;
	if (wr->prev)
		wr->prev->next = wr->next;
	else
		wr->w->pending = wr->next;
	if (wr->next)
		wr->next->prev = wr->prev;
}

static void reply(struct evhttp_request *req, int code, const char *type, const char *body,
                  size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (strncmp(type, "text/html", 9) == 0)
		/* the page runs only its own script; data is never markup (textContent) */
		evhttp_add_header(
		    h, "Content-Security-Policy",
		    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'");
	if (buf)
		evbuffer_add(buf, body, len);
	evhttp_send_reply(req, code, NULL, buf);
	if (buf)
		evbuffer_free(buf);
}

void web_reply_json(struct evhttp_request *req, int code, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	if (!text) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"cannot "
		                          "encode the answer\"}}";
		reply(req, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	reply(req, code, "application/json", text, strlen(text));
	free(text);
}

void web_reply_error(struct evhttp_request *req, int code, const char *ecode, const char *msg)
{
	json_t *e = json_pack("{s{ss ss}}", "error", "code", ecode, "message", msg);

	web_reply_json(req, code, e);
	json_decref(e);
}

void web_reply_text(struct evhttp_request *req, const char *type, const char *text, size_t len)
{
	reply(req, 200, type, text, len);
}

/* The HTTP status of a command's error code. */
static int status_of(const char *code)
{
	if (!code)
		return 500;
	if (strcmp(code, "no_such_job") == 0 || strcmp(code, "no_such_script") == 0)
		return 404;
	if (strcmp(code, "invalid_request") == 0 || strcmp(code, "invalid") == 0)
		return 400;
	if (strcmp(code, "finished") == 0)
		return 409;
	if (strcmp(code, "too_large") == 0)
		return 413;
	if (strcmp(code, "stopping") == 0 || strcmp(code, "busy") == 0)
		return 503;
	if (strcmp(code, "timeout") == 0)
		return 504;
	return 500;
}

static void on_gone(struct evhttp_connection *evcon, void *arg)
{
	struct webreq *wr = arg;

	(void)evcon;
	wr->req = NULL;
}

static void web_call(struct webreq *wr, const char *cmd, json_t *args);

/* The command's answer is in wr->got or wr->raw: the next stage, or the reply. */
static void after_answer(struct webreq *wr)
{
	json_t *doc = wr->got, *result = json_object_get(doc, "result");

	wr->got = NULL;
	conn_end(wr->c);
	conn_release(wr->c);
	wr->c = NULL;
	if (wr->raw) {
		if (wr->req)
			reply(wr->req, 200, "application/json", wr->raw, wr->rawlen);
		if (wr->key && wr->w)
			web_cache_put(&wr->w->cache, wr->key, wr->raw, wr->rawlen, clock_mono_ms());
		free(wr->raw);
	} else if (wr->req && !json_is_true(json_object_get(doc, "ok"))) {
		json_t *e = json_object_get(doc, "error");
		json_t *body = json_pack("{sO}", "error", e ? e : json_null());
		web_reply_json(wr->req, status_of(json_string_value(json_object_get(e, "code"))),
		               body);
		json_decref(body);
	} else if (wr->req && wr->stage == STAGE_METRICS_STATUS) {
		wr->status = json_incref(result);
		wr->stage = STAGE_METRICS_STATS;
		json_decref(doc);
		web_call(wr, "stats", NULL);
		return;
	} else if (wr->req && wr->stage == STAGE_METRICS_STATS) {
		web_metrics_reply(wr->req, wr->status, result);
	} else if (wr->req) {
		web_reply_json(wr->req, 200, result);
	}
	if (wr->req)
		evhttp_connection_set_closecb(evhttp_request_get_connection(wr->req), NULL, NULL);
	json_decref(doc);
	json_decref(wr->status);
	unlink_req(wr);
	free(wr->key);
	free(wr);
}

/* A line the command sent: events are dropped, the answer ends the call. */
static void on_line(struct conn *c, void *arg, const char *line, size_t len)
{
	struct webreq *wr = arg;
	const char *r = NULL;
	size_t rlen = 0;
	json_t *doc = NULL;

	(void)c;
	/* a success of an API path goes out as the command encoded it */
	if (wr->stage == STAGE_API && !wr->raw && (r = proto_ok_result(line, len, &rlen))) {
		if (!(wr->raw = malloc(rlen ? rlen : 1)))
			r = NULL;
		else {
			memcpy(wr->raw, r, rlen);
			wr->rawlen = rlen;
		}
	}
	if (!r && (!(doc = json_loadb(line, len, 0, NULL)) || json_object_get(doc, "event"))) {
		json_decref(doc);
		return;
	}
	if (doc) {
		json_decref(wr->got);
		wr->got = doc;
	}
	if (!wr->dispatching)
		after_answer(wr);
}

/* Run command cmd with args (stolen; NULL: none) for wr. */
static void web_call(struct webreq *wr, const char *cmd, json_t *args)
{
	struct proto_request pr;

	memset(&pr, 0, sizeof pr);
	pr.cmd = cmd;
	pr.args = args ? args : json_object();
	wr->c = conn_new_sink(wr->w->srv, on_line, wr);
	if (!wr->c || !pr.args) {
		if (wr->req)
			web_reply_error(wr->req, 500, "out_of_memory", "out of memory");
		json_decref(pr.args);
		json_decref(wr->status);
		unlink_req(wr);
		free(wr->key);
		free(wr);
		return;
	}
	wr->dispatching = 1;
	cmd_dispatch(wr->c, &pr, (void *)wr->w->env);
	wr->dispatching = 0;
	json_decref(pr.args);
	if (wr->got || wr->raw)
		after_answer(wr);
}

/* Start the command behind an API path for req; key: cache its answer under this. */
static void start(struct web *w, struct evhttp_request *req, enum stage stage, const char *cmd,
                  json_t *args, const char *key)
{
	struct webreq *wr = calloc(1, sizeof *wr);

	if (wr && key)
		wr->key = strdup(key); /* without memory: answered, not cached */
	if (!wr) {
		json_decref(args);
		web_reply_error(req, 500, "out_of_memory", "out of memory");
		return;
	}
	wr->w = w;
	wr->req = req;
	wr->stage = stage;
	wr->next = w->pending;
	if (w->pending)
		w->pending->prev = wr;
	w->pending = wr;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_gone, wr);
	web_call(wr, cmd, args);
}

/* Equal, in a time that does not tell how much of a matched. */
static int same_secret(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char d = na != nb;

	for (size_t i = 0; i < na; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb ? nb : 1)];
	return d == 0;
}

/* May req change jobs? 1, or 0 after a 403 that says why. */
static int authorized(struct web *w, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (!w->token) {
		web_reply_error(req, 403, "forbidden",
		                "actions are off: set http_token in awaitd.conf, then send "
		                "\"Authorization: Bearer TOKEN\"");
		return 0;
	}
	if (!h || strncmp(h, "Bearer ", 7) != 0 || !same_secret(h + 7, w->token)) {
		web_reply_error(req, 403, "forbidden",
		                "an action needs \"Authorization: Bearer TOKEN\" with http_token");
		return 0;
	}
	return 1;
}

/* A signal's name and payload from the body {"name": N, "payload": JSON} into args. */
static int signal_body(struct evhttp_request *req, json_t *args, char *msg, size_t msglen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *text = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	json_error_t je;
	json_t *body = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	json_t *name = json_object_get(body, "name");

	if (!json_is_object(body) || !json_is_string(name)) {
		snprintf(msg, msglen,
		         "the body must be a JSON object {\"name\": SIGNAL, \"payload\": JSON}%s%s",
		         body || !text ? "" : ": ", body || !text ? "" : je.text);
		json_decref(body);
		return -1;
	}
	json_object_set(args, "name", name);
	if (json_object_get(body, "payload"))
		json_object_set(args, "payload", json_object_get(body, "payload"));
	json_decref(body);
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	enum web_route_kind kind;
	const struct web_cache_entry *hit;
	struct web_route route;
	char msg[256];

	w->requests++;
	kind = web_route_of(evhttp_request_get_evhttp_uri(req), &route, msg, sizeof msg);
	if (kind == WEB_ROUTE_ACTION && m != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		web_reply_error(req, 405, "method_not_allowed", "an action is a POST");
		json_decref(route.args);
		return;
	}
	if (kind != WEB_ROUTE_ACTION && m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		web_reply_error(req, 405, "method_not_allowed",
		                "only the actions (POST /api/jobs/ID/cancel, retry, signal) change "
		                "anything: this path takes GET and HEAD");
		json_decref(route.args);
		return;
	}
	if (kind == WEB_ROUTE_ACTION) {
		if (!authorized(w, req)) {
			json_decref(route.args);
			return;
		}
		if (strcmp(route.cmd, "signal") == 0 &&
		    signal_body(req, route.args, msg, sizeof msg) < 0) {
			json_decref(route.args);
			web_reply_error(req, 400, "invalid_request", msg);
			return;
		}
		char *peer = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
		log_info("web: %s of job %lld, asked by %s:%u", route.cmd,
		         (long long)json_integer_value(json_object_get(route.args, "id")),
		         peer ? peer : "?", (unsigned)port);
		web_cache_clear(&w->cache); /* what it changes shows at once */
		start(w, req, STAGE_API, route.cmd, route.args, NULL);
		return;
	}
	switch (kind) {
	case WEB_ROUTE_METRICS:
		start(w, req, STAGE_METRICS_STATUS, "status", json_pack("{sb}", "by_script", 1),
		      NULL);
		break;
	case WEB_ROUTE_PAGE:
		reply(req, 200, "text/html; charset=utf-8", (const char *)dashboard_html,
		      dashboard_html_len);
		break;
	case WEB_ROUTE_SCRIPT:
		reply(req, 200, "text/javascript; charset=utf-8", (const char *)dashboard_js,
		      dashboard_js_len);
		break;
	case WEB_ROUTE_API:
		if (m == EVHTTP_REQ_GET &&
		    (hit =
		         web_cache_get(&w->cache, evhttp_request_get_uri(req), clock_mono_ms()))) {
			json_decref(route.args);
			reply(req, 200, "application/json", hit->body, hit->len);
			break;
		}
		start(w, req, STAGE_API, route.cmd, route.args,
		      m == EVHTTP_REQ_GET ? evhttp_request_get_uri(req) : NULL);
		break;
	case WEB_ROUTE_BAD:
		web_reply_error(req, 400, "invalid_request", msg);
		break;
	default:
		web_reply_error(req, 404, "not_found", msg);
		break;
	}
}

/* "ADDR:PORT" or "[ADDR]:PORT" into host and port; 0, or -1 with err. */
static int split_listen(const char *s, char *host, size_t hostlen, unsigned short *port, char *err,
                        size_t errlen)
{
	const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	size_t n;
	char *end;
	long p;

	if (!colon || colon == s) {
		snprintf(err, errlen, "http_listen = \"%s\": expected ADDR:PORT", s);
		return -1;
	}
	n = (size_t)(colon - s) - (s[0] == '[');
	if (n + 1 > hostlen) {
		snprintf(err, errlen, "http_listen = \"%s\": the address is too long", s);
		return -1;
	}
	memcpy(host, s + (s[0] == '['), n);
	host[n] = 0;
	colon += s[0] == '[' ? 2 : 1;
	p = strtol(colon, &end, 10);
	if (*colon == 0 || *end || p < 1 || p > 65535) {
		snprintf(err, errlen, "http_listen = \"%s\": the port must be 1 to 65535", s);
		return -1;
	}
	*port = (unsigned short)p;
	return 0;
}

/* Is host a loopback address (127.0.0.0/8, ::1, "localhost")? */
static int loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
	return 0;
}

struct web *web_new(struct event_base *base, const struct web_config *cfg, struct server *srv,
                    const struct cmd_env *env, char *err, size_t errlen)
{
	struct web *w;
	char host[256];
	unsigned short port;

	if (split_listen(cfg->listen, host, sizeof host, &port, err, errlen) < 0)
		return NULL;
	if (!loopback(host) && !(cfg->token && cfg->token[0])) {
		snprintf(err, errlen,
		         "http_listen = \"%s\" is not a loopback address: set http_token to serve "
		         "beyond this machine",
		         cfg->listen);
		return NULL;
	}
	w = calloc(1, sizeof *w);
	if (!w || !(w->http = evhttp_new(base))) {
		free(w);
		snprintf(err, errlen, "cannot create the HTTP server");
		return NULL;
	}
	w->srv = srv;
	w->env = env;
	if (cfg->token && cfg->token[0] && !(w->token = strdup(cfg->token))) {
		snprintf(err, errlen, "out of memory");
		web_free(w);
		return NULL;
	}
	evhttp_set_max_headers_size(w->http, WEB_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, WEB_MAX_BODY);
	evhttp_set_timeout(w->http, 60);
	evhttp_set_gencb(w->http, on_request, w);
	if (!evhttp_bind_socket_with_handle(w->http, host, port)) {
		snprintf(err, errlen,
		         "http_listen = \"%s\": cannot listen there (in use, or no such "
		         "address)",
		         cfg->listen);
		web_free(w);
		return NULL;
	}
	log_info("web: serving the dashboard, /api/ and /metrics on http://%s (actions %s)",
	         cfg->listen, w->token ? "on, with the token" : "off: no http_token");
	return w;
}

unsigned long web_requests(const struct web *w)
{
	return w ? w->requests : 0;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	/* their answers may still come: they reply to no one */
	for (struct webreq *wr = w->pending, *next; wr; wr = next) {
		next = wr->next;
		if (wr->req)
			evhttp_connection_set_closecb(evhttp_request_get_connection(wr->req), NULL,
			                              NULL);
		wr->req = NULL;
		wr->w = NULL;
	}
	evhttp_free(w->http);
	web_cache_clear(&w->cache);
	free(w->token);
	free(w);
}
