/*
 * client-args.c: awaitctl's command line (client.h): global options, the
 * command, its positional arguments and options, each turned into the
 * request's args by its type (a string, JSON, an integer in a range, a job
 * id, a flag, a list of job ids). A bad one is a usage error that names it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "errbuf.h"

void client_opts_fini(struct client_opts *o)
{
	json_decref(o->args);
	memset(o, 0, sizeof *o);
}

/* Parse a whole decimal integer in [min, max] into *v; 0, or -1. */
static int client_parse_int(const char *s, long long min, long long max, long long *v)
{
	char *end;
	long long x;

	if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || x < min || x > max)
		return -1;
	*v = x;
	return 0;
}

/* The JSON value of one argument; NULL with err filled when s is not acceptable. */
static json_t *client_arg_value(const struct client_cmd *cmd, const struct client_arg *a,
                                const char *s, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v = NULL;
	char what[32];
	long long x;
	size_t i;

	/* a positional is named as in the usage: "args" is ARGS */
	snprintf(what, sizeof what, "%s", a->opt ? a->opt : a->key);
	for (i = 0; !a->opt && what[i]; i++)
		if (what[i] >= 'a' && what[i] <= 'z')
			what[i] = (char)(what[i] - 'a' + 'A');

	switch (a->type) {
	case CLIENT_ARG_JSON:
		v = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (!v)
			errbuf_set(err, errlen, "%s: %s is not valid JSON: %s (column %d)",
			           cmd->name, what, jerr.text, jerr.column);
		break;
	case CLIENT_ARG_UINT:
	case CLIENT_ARG_INT:
		if (a->max > a->min) {
			if (client_parse_int(s, a->min, a->max, &x) < 0) {
				errbuf_set(
				    err, errlen,
				    "%s: %s must be an integer from %lld to %lld, not \"%s\"",
				    cmd->name, what, a->min, a->max, s);
				break;
			}
		} else if (client_parse_int(s, a->type == CLIENT_ARG_UINT ? 0 : INT_MIN, INT_MAX,
		                            &x) < 0) {
			errbuf_set(err, errlen, "%s: %s must be %s integer, not \"%s\"", cmd->name,
			           what, a->type == CLIENT_ARG_UINT ? "a non-negative" : "an", s);
			break;
		}
		v = json_integer(x);
		break;
	case CLIENT_ARG_ID:
		if (client_parse_int(s, 0, LLONG_MAX, &x) == 0) {
			v = json_integer(x);
			break;
		}
		/* an id that is not a number is sent as a string */
		/* fall through */
	case CLIENT_ARG_STRING:
		if (s[0] == '\0') {
			errbuf_set(err, errlen, "%s: %s must not be empty", cmd->name, what);
			break;
		}
		v = json_string(s);
		if (!v)
			errbuf_set(err, errlen, "%s: %s is not valid UTF-8", cmd->name, what);
		break;
	case CLIENT_ARG_FLAG:
		v = json_true();
		break;
	case CLIENT_ARG_IDS: {
		char buf[32];
		const char *p = s;
		v = json_array();
		while (v && *p) {
			size_t n = strcspn(p, ",");
			int bad = n == 0 || n >= sizeof buf;
			if (!bad) {
				memcpy(buf, p, n);
				buf[n] = 0;
				bad = client_parse_int(buf, 1, LLONG_MAX, &x) < 0;
			}
			if (bad) {
				errbuf_set(err, errlen,
				           "%s: %s must be job ids separated by commas (1,2,3), "
				           "not \"%s\"",
				           cmd->name, what, s);
				json_decref(v);
				v = NULL;
				break;
			}
			json_array_append_new(v, json_integer(x));
			p += n + (p[n] == ',');
		}
		if (v && json_array_size(v) == 0) {
			errbuf_set(err, errlen, "%s: %s must name at least one job", cmd->name,
			           what);
			json_decref(v);
			v = NULL;
		}
		break;
	}
	}
	return v;
}

/* The option named name (length n) of cmd, or NULL. */
static const struct client_arg *client_find_opt(const struct client_cmd *cmd, const char *name,
                                                size_t n)
{
	for (const struct client_arg *a = cmd->args; a && a->key; a++)
		if (a->opt && strlen(a->opt) == n && strncmp(a->opt, name, n) == 0)
			return a;
	return NULL;
}

/* The index-th positional argument of cmd, or NULL. */
static const struct client_arg *client_find_pos(const struct client_cmd *cmd, int index)
{
	for (const struct client_arg *a = cmd->args; a && a->key; a++)
		if (!a->opt && index-- == 0)
			return a;
	return NULL;
}

/* 1 when the option word w (length n) is the global option name. */
static int client_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && strncmp(w, name, n) == 0;
}

int client_parse_args(int argc, char **argv, const struct client_cmd *cmds, struct client_opts *o,
                      char *err, size_t errlen)
{
	const struct client_arg *a;
	const char *w, *val, *env;
	json_t *v;
	long long x;
	size_t n;
	int i, npos = 0, ended = 0, rc = -1;

	memset(o, 0, sizeof *o);
	o->timeout_ms = -1;
	env = getenv(CLIENT_SOCKET_ENV);
	o->socket = env && env[0] ? env : CLIENT_DEFAULT_SOCKET;
	o->args = json_object();
	if (!o->args) {
		errbuf_set(err, errlen, "out of memory");
		goto out;
	}

	for (i = 1; i < argc; i++) {
		w = argv[i];
		if (ended || w[0] != '-' || w[1] == '\0' || (w[1] >= '0' && w[1] <= '9')) {
			if (!o->cmd) {
				for (const struct client_cmd *c = cmds; c->name; c++)
					if (strcmp(c->name, w) == 0)
						o->cmd = c;
				if (!o->cmd) {
					errbuf_set(err, errlen, "unknown command \"%s\"", w);
					goto out;
				}
				continue;
			}
			a = client_find_pos(o->cmd, npos);
			if (!a || npos >= o->cmd->max_pos) {
				errbuf_set(err, errlen, "%s: unexpected argument \"%s\"",
				           o->cmd->name, w);
				goto out;
			}
			v = client_arg_value(o->cmd, a, w, err, errlen);
			if (!v || json_object_set_new(o->args, a->key, v) < 0)
				goto out;
			npos++;
			continue;
		}
		if (strcmp(w, "--") == 0) {
			ended = 1;
			continue;
		}
		/* "--opt=value" for long options */
		val = w[1] == '-' ? strchr(w, '=') : NULL;
		n = val ? (size_t)(val - w) : strlen(w);
		if (val)
			val++;

		a = o->cmd ? client_find_opt(o->cmd, w, n) : NULL;
		if (client_is(w, n, "-h") || client_is(w, n, "--help")) {
			o->help = 1;
			continue;
		}
		if (!a && client_is(w, n, "--json")) {
			if (val) {
				errbuf_set(err, errlen, "--json takes no value");
				goto out;
			}
			o->json = 1;
			continue;
		}
		if (!a && !client_is(w, n, "-s") && !client_is(w, n, "--socket") &&
		    !client_is(w, n, "--timeout")) {
			if (o->cmd)
				errbuf_set(err, errlen, "%s: unknown option %.*s", o->cmd->name,
				           (int)n, w);
			else
				errbuf_set(err, errlen, "unknown option %.*s", (int)n, w);
			goto out;
		}
		if (a && a->type == CLIENT_ARG_FLAG) {
			if (val) {
				errbuf_set(err, errlen, "%s: %s takes no value", o->cmd->name,
				           a->opt);
				goto out;
			}
			json_object_set_new(o->args, a->key, json_true());
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				errbuf_set(err, errlen, "option %.*s needs a value", (int)n, w);
				goto out;
			}
			val = argv[++i];
		}
		if (a) {
			v = client_arg_value(o->cmd, a, val, err, errlen);
			if (!v || json_object_set_new(o->args, a->key, v) < 0)
				goto out;
		} else if (client_is(w, n, "--timeout")) {
			if (client_parse_int(val, 0, INT_MAX, &x) < 0) {
				errbuf_set(
				    err, errlen,
				    "--timeout must be a non-negative integer (ms), not \"%s\"",
				    val);
				goto out;
			}
			o->timeout_ms = (int)x;
		} else {
			if (val[0] == '\0') {
				errbuf_set(err, errlen, "-s: the socket path is empty");
				goto out;
			}
			o->socket = val;
		}
	}

	if (o->help) {
		rc = 0;
		goto out;
	}
	if (!o->cmd) {
		errbuf_set(err, errlen, "no command given");
		goto out;
	}
	if (npos < o->cmd->min_pos) {
		errbuf_set(err, errlen, "%s: missing argument (usage: %s)", o->cmd->name,
		           o->cmd->usage);
		goto out;
	}
	for (a = o->cmd->args; a && a->key; a++)
		if (a->type == CLIENT_ARG_FLAG && !json_object_get(o->args, a->key) &&
		    json_object_set_new(o->args, a->key, json_false()) < 0)
			goto out;
	if (o->cmd->deadline_key && o->timeout_ms >= 0 &&
	    !json_object_get(o->args, o->cmd->deadline_key) &&
	    json_object_set_new(o->args, o->cmd->deadline_key, json_integer(o->timeout_ms)) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		client_opts_fini(o);
	return rc;
}
