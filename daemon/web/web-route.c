/*
 * web-route.c: which control command an HTTP path asks for (web-int.h).
 *
 *   /api/status, /api/stats, /api/scripts     status, stats, scripts
 *   /api/jobs?state=S&name=N&limit=L&before=ID jobs (before: older than job ID)
 *   /api/jobs/ID, /api/jobs/ID/trace          show, trace
 *   POST /api/jobs/ID/cancel|retry|signal     cancel, retry, signal (actions)
 *   /metrics                                  (status and stats)
 *   /, /dashboard.js                          the dashboard (daemon/web/assets/)
 *
 * Query values are checked here only for form (a limit is digits); the
 * command checks their meaning and answers as it does on the socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "web-int.h"

#define PATHS                                                                                      \
	"/ (the dashboard), /api/status, /api/stats, /api/scripts, /api/jobs, "                    \
	"/api/jobs/ID, /api/jobs/ID/trace, /metrics; POST /api/jobs/ID/cancel, "                   \
	"/api/jobs/ID/retry, /api/jobs/ID/signal"

/* A job id of the path (all digits, > 0), or -1. */
static json_int_t id_of(const char *s, size_t n)
{
	json_int_t v = 0;

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > 0 ? v : -1;
}

/* /api/jobs' query into args; 0, or -1 with msg. */
static int jobs_query(const char *query, json_t *args, char *msg, size_t msglen)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	int rc = 0;

	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) < 0) {
		snprintf(msg, msglen, "the query string is malformed");
		return -1;
	}
	for (kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcmp(kv->key, "state") == 0 || strcmp(kv->key, "name") == 0) {
			json_object_set_new(args, kv->key, json_string(kv->value));
		} else if (strcmp(kv->key, "limit") == 0 || strcmp(kv->key, "before") == 0) {
			json_int_t n = id_of(kv->value, strlen(kv->value));
			if (n < 0) {
				snprintf(msg, msglen, "%s must be a number > 0", kv->key);
				rc = -1;
				break;
			}
			json_object_set_new(args, kv->key, json_integer(n));
		} else {
			snprintf(
			    msg, msglen,
			    "unknown query parameter (state, name, limit and before are known)");
			rc = -1;
			break;
		}
	}
	evhttp_clear_headers(&q);
	return rc;
}

enum web_route_kind web_route_of(const struct evhttp_uri *uri, struct web_route *out, char *msg,
                                 size_t msglen)
{
	const char *path = evhttp_uri_get_path(uri), *rest;
	size_t n;
	json_int_t id;

	out->cmd = NULL;
	out->args = NULL;
	snprintf(msg, msglen, "no such page: the paths are " PATHS);
	if (!path)
		return WEB_ROUTE_NONE;
	if (strcmp(path, "/metrics") == 0)
		return WEB_ROUTE_METRICS;
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
		return WEB_ROUTE_PAGE;
	if (strcmp(path, "/dashboard.js") == 0)
		return WEB_ROUTE_SCRIPT;
	if (strcmp(path, "/api/status") == 0 || strcmp(path, "/api/stats") == 0 ||
	    strcmp(path, "/api/scripts") == 0) {
		out->cmd = path + 5;
		return WEB_ROUTE_API;
	}
	if (strcmp(path, "/api/jobs") == 0) {
		out->cmd = "jobs";
		out->args = json_object();
		if (!out->args ||
		    jobs_query(evhttp_uri_get_query(uri), out->args, msg, msglen) < 0) {
			json_decref(out->args);
			out->args = NULL;
			return WEB_ROUTE_BAD;
		}
		return WEB_ROUTE_API;
	}
	if (strncmp(path, "/api/jobs/", 10) != 0)
		return WEB_ROUTE_NONE;
	rest = path + 10;
	n = strcspn(rest, "/");
	if ((id = id_of(rest, n)) < 0) {
		snprintf(msg, msglen, "a job id is a number > 0");
		return WEB_ROUTE_BAD;
	}
	static const char *const actions[] = {"cancel", "retry", "signal"};
	enum web_route_kind kind = WEB_ROUTE_API;

	if (rest[n] == 0)
		out->cmd = "show";
	else if (strcmp(rest + n, "/trace") == 0)
		out->cmd = "trace";
	for (size_t i = 0; !out->cmd && rest[n] == '/' && i < 3; i++)
		if (strcmp(rest + n + 1, actions[i]) == 0) {
			out->cmd = actions[i];
			kind = WEB_ROUTE_ACTION;
		}
	if (!out->cmd)
		return WEB_ROUTE_NONE;
	out->args = json_pack("{sI}", "id", id);
	return kind;
}
