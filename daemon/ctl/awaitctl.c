/*
 * awaitctl.c: the control client's main: the command table, one output
 * function per command, and the exit code (SPEC section 6).
 *
 * One request per process: parse the command line (client_parse_args),
 * connect, send the command, print each event line as it arrives, then
 * print the result: human text by default, with --json exactly the result
 * document (or the error object) as one compact JSON line, after the events
 * as JSON lines. Every failure prints "awaitctl: CODE: MESSAGE" on stderr;
 * client-side failures use the codes "unreachable", "permission_denied",
 * "timeout" and "protocol".
 *
 * A command is one entry of ctl_cmds: its positional arguments and options
 * and the request keys they fill (parsed generically by client.c), and the
 * function that prints its result. The job commands (enqueue, jobs, show,
 * cancel, retry, signal, trace) render through view.c; a result without the
 * expected shape is printed as JSON instead. The generic output (JSON
 * lines, "key: value" lists with units) is in awaitctl-print.c.
 *
 * Signals: SIGPIPE is ignored (writes use MSG_NOSIGNAL too, but stdout may
 * be a closed pipe). For `logs -f` SIGINT gets a handler without
 * SA_RESTART, so the wait returns CLIENT_INTERRUPTED and we exit 0; for
 * every other command SIGINT keeps its default action.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "awaitctl-int.h"
#include "client.h"
#include "enqueue-opts.h"
#include "humanfmt.h"
#include "proto.h"
#include "view.h"

#ifndef AWAITD_VERSION
#define AWAITD_VERSION "unknown"
#endif

static int ctl_ping(const struct client_opts *o, json_t *result)
{
	if (o->json)
		ctl_print_json(result);
	else
		ctl_print_generic(result);
	return CLIENT_EXIT_OK;
}

static int ctl_version(const struct client_opts *o, json_t *result)
{
	json_t *proto = json_object_get(result, "protocol");
	char *v;

	if (o->json) {
		ctl_print_json(result);
		return CLIENT_EXIT_OK;
	}
	v = view_text(json_object_get(result, "version"));
	printf("awaitd %s (protocol %" JSON_INTEGER_FORMAT ")\n", v ? v : "?",
	       json_integer_value(proto));
	printf("awaitctl %s (protocol %d)\n", AWAITD_VERSION, PROTO_VERSION);
	free(v);
	return CLIENT_EXIT_OK;
}

static int ctl_status(const struct client_opts *o, json_t *result)
{
	char *counts;
	json_t *copy;
	int rc;

	if (o->json) {
		ctl_print_json(result);
		return CLIENT_EXIT_OK;
	}
	/* jobs by state as one line, "jobs: 3 queued, 1 running, ...", in its place */
	counts = view_job_counts(json_object_get(result, "jobs"));
	copy = counts ? json_copy(result) : NULL;
	if (!copy || json_object_set_new(copy, "jobs", json_string(counts)) < 0) {
		free(counts);
		json_decref(copy);
		return ctl_print_kv(result, 0);
	}
	json_object_del(copy, "nodes"); /* a table of their own, below */
	rc = ctl_print_kv(copy, 0);
	ctl_print_nodes(json_object_get(result, "nodes"), json_object_get(result, "epoch"));
	free(counts);
	json_decref(copy);
	return rc;
}

static int ctl_stats(const struct client_opts *o, json_t *result)
{
	if (o->json) {
		ctl_print_json(result);
		return CLIENT_EXIT_OK;
	}
	return ctl_print_kv(result, 1);
}

static int ctl_scripts(const struct client_opts *o, json_t *result)
{
	static const char *const head[] = {"NAME",    "VERSION",  "CONCURRENCY",
	                                   "TIMEOUT", "SCHEDULE", "LOADED"};
	static const char *const keys[] = {"name",    "version",  "concurrency",
	                                   "timeout", "schedule", "loaded_at"};
	enum { NCOL = sizeof head / sizeof head[0] };
	size_t nrow, r, c;
	char **cells = NULL;
	json_t *s;
	int rc = CLIENT_EXIT_FAILED;

	if (o->json || !json_is_array(result)) {
		o->json ? ctl_print_json(result) : ctl_print_generic(result);
		return CLIENT_EXIT_OK;
	}
	nrow = json_array_size(result);
	cells = calloc(nrow * NCOL + 1, sizeof *cells);
	if (!cells)
		goto oom;
	json_array_foreach(result, r, s)
	{
		for (c = 0; c < NCOL; c++) {
			json_t *v = json_object_get(s, keys[c]);
			char buf[HUMANFMT_LEN];
			/* timeout is ms, loaded_at s since the epoch (0: never loaded) */
			if (c == 3 && json_is_number(v))
				cells[r * NCOL + c] = strdup(
				    humanfmt_duration(json_number_value(v), buf, sizeof buf));
			else if (c == 5 && json_is_number(v) && json_number_value(v) > 0)
				cells[r * NCOL + c] = strdup(
				    humanfmt_time(json_number_value(v) * 1000, buf, sizeof buf));
			else if (c == 5)
				cells[r * NCOL + c] = strdup("-");
			else
				cells[r * NCOL + c] = view_text(v);
			if (!cells[r * NCOL + c])
				goto oom;
		}
	}
	view_table(stdout, head, NCOL, cells, nrow);
	ctl_print_coordination(result);
	ctl_print_errors(result);
	rc = CLIENT_EXIT_OK;
	goto out;
oom:
	fprintf(stderr, "awaitctl: out of memory\n");
out:
	if (cells)
		for (r = 0; r < nrow * NCOL; r++)
			free(cells[r]);
	free(cells);
	return rc;
}

static int ctl_run(const struct client_opts *o, json_t *result)
{
	if (o->json)
		ctl_print_json(result);
	else
		ctl_print_pretty(result);
	return CLIENT_EXIT_OK;
}

static int ctl_reload(const struct client_opts *o, json_t *result)
{
	json_int_t failed = json_integer_value(json_object_get(result, "failed"));

	if (o->json) {
		ctl_print_json(result);
	} else {
		printf("reloaded: %" JSON_INTEGER_FORMAT " scripts, %" JSON_INTEGER_FORMAT
		       " failed\n",
		       json_integer_value(json_object_get(result, "loaded")), failed);
		ctl_print_errors(json_object_get(result, "errors"));
	}
	return failed > 0 ? CLIENT_EXIT_FAILED : CLIENT_EXIT_OK;
}

static int ctl_logs(const struct client_opts *o, json_t *result)
{
	/* the lines came as events; the result only counts them */
	if (o->json)
		ctl_print_json(result);
	return CLIENT_EXIT_OK;
}

static int ctl_shutdown(const struct client_opts *o, json_t *result)
{
	if (o->json)
		ctl_print_json(result);
	else
		printf("stopping\n");
	return CLIENT_EXIT_OK;
}

typedef int ctl_view_fn(FILE *f, json_t *result, const struct view_opts *vo);

/* The job commands: the raw result with --json, else view.c's text, or JSON it cannot render. */
static int ctl_view(const struct client_opts *o, json_t *result, ctl_view_fn *fn)
{
	struct view_opts vo = {view_now_ms(), view_columns(STDOUT_FILENO)};

	if (o->json)
		ctl_print_json(result);
	else if (fn(stdout, result, &vo) < 0)
		ctl_print_generic(result);
	return CLIENT_EXIT_OK;
}

static int ctl_enqueue(const struct client_opts *o, json_t *result)
{
	return ctl_view(o, result, view_enqueue);
}

static int ctl_jobs(const struct client_opts *o, json_t *result)
{
	return ctl_view(o, result, view_jobs);
}

static int ctl_show(const struct client_opts *o, json_t *result)
{
	return ctl_view(o, result, view_show);
}

static int ctl_job_line(const struct client_opts *o, json_t *result)
{
	return ctl_view(o, result, view_job_line);
}

/* "paused NAME [key K]" / "resumed ...", with "(already)" when nothing changed. */
static int ctl_pause(const struct client_opts *o, json_t *result)
{
	const char *key = json_string_value(json_object_get(result, "key"));

	if (o->json) {
		ctl_print_json(result);
		return CLIENT_EXIT_OK;
	}
	printf(
	    "%s %s%s%s%s\n", json_is_true(json_object_get(result, "paused")) ? "paused" : "resumed",
	    json_string_value(json_object_get(result, "name")), key ? " key " : "", key ? key : "",
	    json_is_false(json_object_get(result, "changed")) ? " (it was already)" : "");
	return CLIENT_EXIT_OK;
}

static int ctl_trace(const struct client_opts *o, json_t *result)
{
	return ctl_view(o, result, view_trace);
}

/*
 * The finished job's result, printed as run prints it. A failed job comes
 * as an error response; a job that ended otherwise (cancelled) is a failure
 * too, told on stderr.
 */
static int ctl_wait(const struct client_opts *o, json_t *result)
{
	const char *state = json_string_value(json_object_get(result, "state"));
	struct view_opts vo = {0, 0};

	if (o->json)
		ctl_print_json(result);
	else if (!state)
		ctl_print_generic(result);
	else if (strcmp(state, "succeeded") == 0)
		ctl_print_pretty(json_object_get(result, "result"));
	else
		view_job_line(stderr, result, &vo);
	return state && strcmp(state, "succeeded") != 0 ? CLIENT_EXIT_FAILED : CLIENT_EXIT_OK;
}

static const struct client_arg ctl_args_none[] = {{NULL, NULL, CLIENT_ARG_STRING, 0, 0}};

static const struct client_arg ctl_args_run[] = {
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},
    {NULL, "args", CLIENT_ARG_JSON, 0, 0},
    {"--timeout", "timeout", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

/* the daemon's ranges (enqueue-opts.h), so a bad value is a usage error here */
static const struct client_arg ctl_args_enqueue[] = {
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},
    {NULL, "args", CLIENT_ARG_JSON, 0, 0},
    {"--key", "key", CLIENT_ARG_STRING, 0, 0},
    {"--delay", "delay", CLIENT_ARG_UINT, 0, ENQUEUE_MAX_DELAY_MS},
    {"--priority", "priority", CLIENT_ARG_INT, ENQUEUE_MIN_PRIORITY, ENQUEUE_MAX_PRIORITY},
    {"--after", "after", CLIENT_ARG_IDS, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_jobs[] = {
    {"--state", "state", CLIENT_ARG_STRING, 0, 0},
    {"--name", "name", CLIENT_ARG_STRING, 0, 0},
    {"--limit", "limit", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_id[] = {
    {NULL, "id", CLIENT_ARG_ID, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_wait[] = {
    {NULL, "id", CLIENT_ARG_ID, 0, 0},
    {"--timeout", "timeout", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_signal[] = {
    {NULL, "id", CLIENT_ARG_ID, 0, 0},
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},
    {NULL, "payload", CLIENT_ARG_JSON, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_pause[] = {
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},
    {"--key", "key", CLIENT_ARG_STRING, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_arg ctl_args_logs[] = {
    {"-f", "follow", CLIENT_ARG_FLAG, 0, 0}, {"--follow", "follow", CLIENT_ARG_FLAG, 0, 0},
    {"-n", "lines", CLIENT_ARG_UINT, 0, 0},  {"--lines", "lines", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};

static const struct client_cmd ctl_cmds[] = {
    {"ping", 0, 0, ctl_args_none, ctl_ping, "ping", NULL},
    {"version", 0, 0, ctl_args_none, ctl_version, "version", NULL},
    {"status", 0, 0, ctl_args_none, ctl_status, "status", NULL},
    {"scripts", 0, 0, ctl_args_none, ctl_scripts, "scripts", NULL},
    {"run", 1, 2, ctl_args_run, ctl_run, "run NAME [ARGS_JSON] [--timeout MS]", "timeout"},
    {"enqueue", 1, 2, ctl_args_enqueue, ctl_enqueue,
     "enqueue NAME [ARGS_JSON] [--key K] [--delay MS] [--priority N] [--after ID,...]", NULL},
    {"jobs", 0, 0, ctl_args_jobs, ctl_jobs, "jobs [--state S] [--name N] [--limit N]", NULL},
    {"show", 1, 1, ctl_args_id, ctl_show, "show ID", NULL},
    {"wait", 1, 1, ctl_args_wait, ctl_wait, "wait ID [--timeout MS]", "timeout"},
    {"cancel", 1, 1, ctl_args_id, ctl_job_line, "cancel ID", NULL},
    {"retry", 1, 1, ctl_args_id, ctl_job_line, "retry ID", NULL},
    {"signal", 2, 3, ctl_args_signal, ctl_job_line, "signal ID NAME [PAYLOAD_JSON]", NULL},
    {"trace", 1, 1, ctl_args_id, ctl_trace, "trace ID", NULL},
    {"pause", 1, 1, ctl_args_pause, ctl_pause, "pause NAME [--key VALUE]", NULL},
    {"resume", 1, 1, ctl_args_pause, ctl_pause, "resume NAME [--key VALUE]", NULL},
    {"logs", 0, 0, ctl_args_logs, ctl_logs, "logs [-f] [-n N]", NULL},
    {"stats", 0, 0, ctl_args_none, ctl_stats, "stats", NULL},
    {"reload", 0, 0, ctl_args_none, ctl_reload, "reload", NULL},
    {"shutdown", 0, 0, ctl_args_none, ctl_shutdown, "shutdown", NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: awaitctl [-s SOCKET] [--json] [--timeout MS] COMMAND [ARGS...]\n"
	           "\n"
	           "SOCKET defaults to $" CLIENT_SOCKET_ENV " or " CLIENT_DEFAULT_SOCKET
	           "; --timeout MS gives up\n"
	           "(exit 124) when no reply comes within MS milliseconds.\n"
	           "\n"
	           "commands:\n");
	for (const struct client_cmd *c = ctl_cmds; c->name; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f, "\nexit: 0 ok, 1 failed, 2 usage, 3 daemon unreachable, 4 no such job or "
	           "script,\n      5 permission denied, 124 timed out\n");
}

/* Each event as it arrives: a raw line for {"line":...} and strings, else JSON. */
static int ctl_bar_shown; /* `wait` drew a progress bar on the terminal */

/* Erase the progress bar before anything else is printed. */
static void ctl_bar_clear(void)
{
	if (ctl_bar_shown)
		fputs("\r\033[K", stdout);
	ctl_bar_shown = 0;
}

static void ctl_on_event(json_t *ev, void *arg)
{
	const struct client_opts *o = arg;
	json_t *line = json_object_get(ev, "line"), *progress = json_object_get(ev, "progress");

	if (!o->json && json_is_number(progress)) {
		/* `wait` on a terminal: redraw the bar in place */
		char bar[512];
		const char *msg = json_string_value(json_object_get(ev, "message"));
		printf("\r%s\033[K", view_progress_bar(bar, sizeof bar, json_number_value(progress),
		                                       msg, view_columns(STDOUT_FILENO) - 1));
		ctl_bar_shown = 1;
		fflush(stdout);
		return;
	}
	ctl_bar_clear();
	if (o->json)
		ctl_print_json(ev);
	else if (json_is_string(line))
		printf("%s\n", json_string_value(line));
	else if (json_is_string(ev))
		printf("%s\n", json_string_value(ev));
	else
		ctl_print_json(ev);
	fflush(stdout);
}

/* Report a failure: "awaitctl: CODE: MESSAGE" on stderr, and the error object with --json. */
static void ctl_fail(const struct client_opts *o, const char *code, const char *message)
{
	json_t *e;

	fprintf(stderr, "awaitctl: %s: %s\n", code, message);
	if (!o->json)
		return;
	e = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (e)
		ctl_print_json(e);
	json_decref(e);
}

static void ctl_on_sigint(int sig)
{
	(void)sig; /* only to make poll() return EINTR */
}

int main(int argc, char **argv)
{
	struct client_opts o;
	struct sigaction sa;
	json_t *result = NULL, *error = NULL;
	char err[1024];
	int fd = -1, rc, ex = CLIENT_EXIT_FAILED, follow;

	signal(SIGPIPE, SIG_IGN);
	if (client_parse_args(argc, argv, ctl_cmds, &o, err, sizeof err) < 0) {
		fprintf(stderr, "awaitctl: %s\n", err);
		ctl_usage(stderr);
		return CLIENT_EXIT_USAGE;
	}
	if (o.help) {
		ctl_usage(stdout);
		ex = CLIENT_EXIT_OK;
		goto out;
	}

	follow = json_is_true(json_object_get(o.args, "follow"));
	if (follow) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = ctl_on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	fd = client_connect(o.socket, err, sizeof err);
	if (fd < 0) {
		ex = client_connect_exit_code(errno);
		ctl_fail(&o, ex == CLIENT_EXIT_DENIED ? "permission_denied" : "unreachable", err);
		goto out;
	}
	if (strcmp(o.cmd->name, "wait") == 0 && !o.json && isatty(STDOUT_FILENO))
		/* a bar on a terminal; piped output stays the result alone */
		json_object_set_new(o.args, "progress", json_true());
	rc = client_request(fd, 1, o.cmd->name, json_incref(o.args), o.timeout_ms, ctl_on_event, &o,
	                    &result, &error, err, sizeof err);
	ctl_bar_clear();
	switch (rc) {
	case CLIENT_OK:
		ex = o.cmd->fn(&o, result);
		break;
	case CLIENT_REPLY_ERROR:
		ex = client_exit_code(json_string_value(json_object_get(error, "code")));
		fprintf(stderr, "awaitctl: %s: %s\n",
		        json_string_value(json_object_get(error, "code")),
		        json_string_value(json_object_get(error, "message")));
		if (o.json)
			ctl_print_json(error);
		break;
	case CLIENT_TIMEOUT:
		ex = CLIENT_EXIT_TIMEOUT;
		ctl_fail(&o, "timeout", err);
		break;
	case CLIENT_INTERRUPTED:
		/* following is ended by the user: a success */
		ex = follow ? CLIENT_EXIT_OK : CLIENT_EXIT_FAILED;
		if (!follow)
			ctl_fail(&o, "interrupted", err);
		break;
	default:
		ex = CLIENT_EXIT_FAILED;
		ctl_fail(&o, "protocol", err);
		break;
	}
out:
	if (fflush(stdout) != 0 && ex == CLIENT_EXIT_OK) {
		fprintf(stderr, "awaitctl: writing the output: %s\n", strerror(errno));
		ex = CLIENT_EXIT_FAILED;
	}
	if (fd >= 0)
		close(fd);
	json_decref(result);
	json_decref(error);
	client_opts_fini(&o);
	return ex;
}
