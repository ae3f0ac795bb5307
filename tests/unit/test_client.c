/*
 * test_client.c: awaitctl's client side against fake daemons: a real
 * socketpair whose far end the test writes canned reply lines into (events
 * then ok, error replies, garbage, hang-ups), a forked child for replies
 * split across writes and for an oversized line, and real unix sockets in
 * a temporary directory for connect (listening, refused, missing). Also
 * the exit-code mapping and client_parse_args against a command table
 * shaped like awaitctl's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

struct cfx {
	int sv[2];      /* sv[0] the client's end, sv[1] the fake daemon's */
	char dir[64];   /* mkdtemp directory */
	char path[128]; /* dir/ctl.sock */
	char err[1024];
	json_t *events; /* array of the events seen, in order */
	json_t *result;
	json_t *error;
	pid_t child; /* a forked fake daemon, or 0 */
};

static int setup(void **state)
{
	struct cfx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fx->sv), 0);
	strcpy(fx->dir, "/tmp/awaitd-client-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/ctl.sock", fx->dir);
	fx->events = json_array();
	assert_non_null(fx->events);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct cfx *fx = *state;
	int status;

	if (fx->child > 0) {
		kill(fx->child, SIGKILL);
		waitpid(fx->child, &status, 0);
	}
	if (fx->sv[0] >= 0)
		close(fx->sv[0]);
	if (fx->sv[1] >= 0)
		close(fx->sv[1]);
	unlink(fx->path);
	assert_int_equal(rmdir(fx->dir), 0); /* nothing else was left behind */
	json_decref(fx->events);
	json_decref(fx->result);
	json_decref(fx->error);
	free(fx);
	return 0;
}

static void on_event(json_t *ev, void *arg)
{
	struct cfx *fx = arg;

	assert_int_equal(json_array_append(fx->events, ev), 0);
}

/* Write s whole to fd. */
static void put(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	ssize_t w;

	while (off < n) {
		w = write(fd, s + off, n - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
}

/* Parse expected JSON text; fails the test when it is not valid. */
static json_t *J(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (!v)
		fail_msg("bad expected JSON %s: %s", text, jerr.text);
	return v;
}

static void assert_json(json_t *got, const char *expected)
{
	json_t *want = J(expected);
	char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!json_equal(got, want))
		fail_msg("got %s, want %s", g ? g : "(null)", expected);
	free(g);
	json_decref(want);
}

/* The request line the client sent, read from the fake daemon's end. */
static void assert_request(struct cfx *fx, const char *line)
{
	char buf[4096];
	ssize_t n = recv(fx->sv[1], buf, sizeof buf - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, line);
}

/* client_request on the client's end with id 1. */
static int req(struct cfx *fx, const char *cmd, json_t *args, int timeout_ms)
{
	return client_request(fx->sv[0], 1, cmd, args, timeout_ms, on_event, fx, &fx->result,
	                      &fx->error, fx->err, sizeof fx->err);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_events_then_ok(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"id\":7,\"event\":{\"line\":\"INFO one\"}}\n"
	               "{\"id\":7,\"event\":{\"line\":\"WARN two\"}}\n"
	               "{\"id\":7,\"ok\":true,\"result\":{\"lines\":2}}\n");
	assert_int_equal(client_request(fx->sv[0], 7, "logs", J("{\"follow\":false}"), 5000,
	                                on_event, fx, &fx->result, &fx->error, fx->err,
	                                sizeof fx->err),
	                 CLIENT_OK);
	assert_json(fx->events, "[{\"line\":\"INFO one\"},{\"line\":\"WARN two\"}]");
	assert_json(fx->result, "{\"lines\":2}");
	assert_null(fx->error);
	assert_request(fx, "{\"id\":7,\"cmd\":\"logs\",\"args\":{\"follow\":false}}\n");
}

static void test_ok_without_result_is_null(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"id\":1,\"ok\":true}\n");
	assert_int_equal(req(fx, "ping", NULL, 5000), CLIENT_OK);
	assert_true(json_is_null(fx->result));
	assert_request(fx, "{\"id\":1,\"cmd\":\"ping\",\"args\":{}}\n");
}

static void test_error_reply(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"no_such_script\","
	               "\"message\":\"no script nope\"}}\n");
	assert_int_equal(req(fx, "run", J("{\"name\":\"nope\"}"), 5000), CLIENT_REPLY_ERROR);
	assert_null(fx->result);
	assert_json(fx->error, "{\"code\":\"no_such_script\",\"message\":\"no script nope\"}");
	assert_int_equal(client_exit_code(json_string_value(json_object_get(fx->error, "code"))),
	                 4);
	assert_int_equal(json_array_size(fx->events), 0);
}

/* The daemon answers a request it could not parse without an id. */
static void test_error_reply_without_id(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"big\"}}\n");
	assert_int_equal(req(fx, "ping", NULL, 5000), CLIENT_REPLY_ERROR);
	assert_json(fx->error, "{\"code\":\"too_large\",\"message\":\"big\"}");
	assert_int_equal(client_exit_code("too_large"), 1);
}

/* The daemon answers and hangs up before reading the request: the answer wins. */
static void test_answer_before_hangup(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"ok\":false,\"error\":{\"code\":\"permission_denied\",\"message\":\"uid "
	               "1000\"}}\n");
	close(fx->sv[1]);
	fx->sv[1] = -1;
	assert_int_equal(req(fx, "status", NULL, 5000), CLIENT_REPLY_ERROR);
	assert_string_equal(json_string_value(json_object_get(fx->error, "code")),
	                    "permission_denied");
	assert_int_equal(client_exit_code("permission_denied"), 5);
}

static void test_reply_split_across_writes(void **state)
{
	struct cfx *fx = *state;
	char buf[256];
	int status;

	fx->child = fork();
	assert_true(fx->child >= 0);
	if (fx->child == 0) {
		/* read the request, then answer in three pieces with pauses */
		close(fx->sv[0]);
		if (read(fx->sv[1], buf, sizeof buf) <= 0)
			_exit(1);
		put(fx->sv[1], "{\"id\":1,\"eve");
		pause_ms(30);
		put(fx->sv[1], "nt\":\"half\"}\n{\"id\":1,\"ok\":tr");
		pause_ms(30);
		put(fx->sv[1], "ue,\"result\":\"pong\"}\n");
		_exit(0);
	}
	assert_int_equal(req(fx, "ping", NULL, 5000), CLIENT_OK);
	assert_string_equal(json_string_value(fx->result), "pong");
	assert_json(fx->events, "[\"half\"]");
	assert_int_equal(waitpid(fx->child, &status, 0), fx->child);
	fx->child = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_no_reply_times_out(void **state)
{
	struct cfx *fx = *state;
	long long t0 = now_ms(), dt;

	/* an event does not extend the deadline */
	put(fx->sv[1], "{\"id\":1,\"event\":{\"line\":\"x\"}}\n");
	assert_int_equal(req(fx, "run", J("{\"name\":\"slow\"}"), 150), CLIENT_TIMEOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 150);
	assert_true(dt < 3000);
	assert_non_null(strstr(fx->err, "150 ms"));
	assert_null(fx->result);
	assert_null(fx->error);
	assert_int_equal(json_array_size(fx->events), 1);
}

static void test_hangup_before_reply(void **state)
{
	struct cfx *fx = *state;

	put(fx->sv[1], "{\"id\":1,\"event\":{\"line\":\"x\"}}\n{\"id\":1,\"ok\":tr");
	shutdown(fx->sv[1], SHUT_WR);
	assert_int_equal(req(fx, "logs", NULL, 5000), CLIENT_TRANSPORT);
	assert_non_null(strstr(fx->err, "closed the connection"));
	assert_null(fx->result);
}

/* One canned garbage reply; the request fails as a transport error naming it. */
static void assert_garbage(struct cfx *fx, const char *reply, const char *msg)
{
	put(fx->sv[1], reply);
	assert_int_equal(req(fx, "ping", NULL, 5000), CLIENT_TRANSPORT);
	if (!strstr(fx->err, msg))
		fail_msg("reply %s: error \"%s\" lacks \"%s\"", reply, fx->err, msg);
	assert_null(fx->result);
	assert_null(fx->error);
}

static void test_garbage_not_json(void **state)
{
	assert_garbage(*state, "hello\n", "malformed reply");
}

static void test_garbage_not_object(void **state)
{
	assert_garbage(*state, "[1,2]\n", "not a JSON object");
}

static void test_garbage_other_id(void **state)
{
	assert_garbage(*state, "{\"id\":2,\"ok\":true,\"result\":1}\n", "not for request 1");
}

static void test_garbage_no_ok(void **state)
{
	assert_garbage(*state, "{\"id\":1,\"result\":1}\n", "no \"ok\"");
}

static void test_garbage_error_without_code(void **state)
{
	assert_garbage(*state, "{\"id\":1,\"ok\":false,\"error\":{\"message\":\"m\"}}\n",
	               "lacks a code");
}

static void test_garbage_binary(void **state)
{
	assert_garbage(*state, "\x01\xff\xfe{\n", "malformed reply");
}

/* A line over CLIENT_MAX_LINE is refused without waiting for its end. */
static void test_reply_line_too_long(void **state)
{
	struct cfx *fx = *state;
	static char chunk[1 << 16];
	size_t sent = 0;
	ssize_t w;
	int status;

	fx->child = fork();
	assert_true(fx->child >= 0);
	if (fx->child == 0) {
		close(fx->sv[0]); /* else the client's end stays open here */
		signal(SIGPIPE, SIG_IGN);
		memset(chunk, 'x', sizeof chunk);
		chunk[0] = '"';
		while (sent < 2 * CLIENT_MAX_LINE) {
			w = write(fx->sv[1], chunk, sizeof chunk);
			if (w <= 0)
				_exit(0); /* the client hung up: expected */
			sent += (size_t)w;
		}
		_exit(1);
	}
	close(fx->sv[1]);
	fx->sv[1] = -1;
	assert_int_equal(req(fx, "run", NULL, 30000), CLIENT_TRANSPORT);
	assert_non_null(strstr(fx->err, "longer than 67108864 bytes"));
	close(fx->sv[0]);
	fx->sv[0] = -1;
	assert_int_equal(waitpid(fx->child, &status, 0), fx->child);
	fx->child = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int bound_socket(const char *path, int backlog)
{
	struct sockaddr_un sun;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
	if (backlog >= 0)
		assert_int_equal(listen(s, backlog), 0);
	return s;
}

static void test_connect_listening(void **state)
{
	struct cfx *fx = *state;
	int l = bound_socket(fx->path, 4), c;

	c = client_connect(fx->path, fx->err, sizeof fx->err);
	assert_true(c >= 0);
	assert_int_equal(write(c, "x", 1), 1);
	close(c);
	close(l);
}

static void test_connect_refused(void **state)
{
	struct cfx *fx = *state;
	int s = bound_socket(fx->path, -1); /* bound, not listening: a crashed daemon */

	errno = 0;
	assert_int_equal(client_connect(fx->path, fx->err, sizeof fx->err), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(client_connect_exit_code(errno), 3);
	assert_non_null(strstr(fx->err, fx->path));
	assert_non_null(strstr(fx->err, "awaitd --socket"));
	close(s);
}

static void test_connect_missing(void **state)
{
	struct cfx *fx = *state;

	errno = 0;
	assert_int_equal(client_connect(fx->path, fx->err, sizeof fx->err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(client_connect_exit_code(errno), 3);
	assert_non_null(strstr(fx->err, fx->path));
}

static void test_connect_path_too_long(void **state)
{
	struct cfx *fx = *state;
	char path[200];

	memset(path, 'a', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	assert_int_equal(client_connect(path, fx->err, sizeof fx->err), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(client_connect_exit_code(errno), 3);
	assert_non_null(strstr(fx->err, "longer than"));
}

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(client_exit_code(NULL), 0);
	assert_int_equal(client_exit_code("not_available"), 1);
	assert_int_equal(client_exit_code("job_failed"), 1);
	assert_int_equal(client_exit_code(""), 1);
	assert_int_equal(client_exit_code("no_such_script"), 4);
	assert_int_equal(client_exit_code("no_such_job"), 4);
	assert_int_equal(client_exit_code("permission_denied"), 5);
	assert_int_equal(client_exit_code("timeout"), 124);
	assert_int_equal(client_connect_exit_code(EACCES), 5);
	assert_int_equal(client_connect_exit_code(EPERM), 5);
	assert_int_equal(client_connect_exit_code(ENOENT), 3);
	assert_int_equal(client_connect_exit_code(ECONNREFUSED), 3);
}

/* A table shaped like awaitctl's. */
static const struct client_arg args_none[] = {{NULL, NULL, CLIENT_ARG_STRING, 0, 0}};
static const struct client_arg args_run[] = {
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},
    {NULL, "args", CLIENT_ARG_JSON, 0, 0},
    {"--timeout", "timeout", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};
static const struct client_arg args_enqueue[] = {
    {NULL, "name", CLIENT_ARG_STRING, 0, 0},          {NULL, "args", CLIENT_ARG_JSON, 0, 0},
    {"--key", "key", CLIENT_ARG_STRING, 0, 0},        {"--delay", "delay", CLIENT_ARG_UINT, 0, 0},
    {"--priority", "priority", CLIENT_ARG_INT, 0, 0}, {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};
static const struct client_arg args_show[] = {
    {NULL, "id", CLIENT_ARG_ID, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};
static const struct client_arg args_logs[] = {
    {"-f", "follow", CLIENT_ARG_FLAG, 0, 0},
    {"-n", "lines", CLIENT_ARG_UINT, 0, 0},
    {NULL, NULL, CLIENT_ARG_STRING, 0, 0},
};
static const struct client_cmd cmds[] = {
    {"ping", 0, 0, args_none, NULL, "ping", NULL},
    {"run", 1, 2, args_run, NULL, "run NAME [ARGS_JSON] [--timeout MS]", "timeout"},
    {"enqueue", 1, 2, args_enqueue, NULL, "enqueue NAME [ARGS_JSON]", NULL},
    {"show", 1, 1, args_show, NULL, "show ID", NULL},
    {"logs", 0, 0, args_logs, NULL, "logs [-f] [-n N]", NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* Parse a NULL-terminated argument list (argv[0] included). */
static int parse(struct cfx *fx, struct client_opts *o, const char *const *words)
{
	char *argv[32];
	int argc = 0;

	while (words[argc]) {
		assert_true(argc < 31);
		argv[argc] = (char *)words[argc];
		argc++;
	}
	argv[argc] = NULL;
	return client_parse_args(argc, argv, cmds, o, fx->err, sizeof fx->err);
}

static void test_parse_run(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const w[] = {"awaitctl",      "-s",        "/tmp/x.sock", "run",    "hello",
	                         "{\"a\":[1,2]}", "--timeout", "250",         "--json", NULL};

	assert_int_equal(parse(fx, &o, w), 0);
	assert_string_equal(o.cmd->name, "run");
	assert_string_equal(o.socket, "/tmp/x.sock");
	assert_int_equal(o.json, 1);
	assert_int_equal(o.timeout_ms, -1); /* --timeout after run is the daemon's */
	assert_int_equal(o.help, 0);
	assert_json(o.args, "{\"name\":\"hello\",\"args\":{\"a\":[1,2]},\"timeout\":250}");
	client_opts_fini(&o);
	assert_null(o.args);
	client_opts_fini(&o); /* twice is safe */
}

static void test_parse_deadline_passed_to_run(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const w[] = {"awaitctl", "--timeout=500", "run", "hello", NULL};
	const char *const p[] = {"awaitctl", "--timeout", "500", "ping", NULL};

	assert_int_equal(parse(fx, &o, w), 0);
	assert_int_equal(o.timeout_ms, 500);
	assert_json(o.args, "{\"name\":\"hello\",\"timeout\":500}");
	client_opts_fini(&o);

	assert_int_equal(parse(fx, &o, p), 0);
	assert_int_equal(o.timeout_ms, 500);
	assert_json(o.args, "{}");
	client_opts_fini(&o);
}

static void test_parse_socket_default_and_env(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const w[] = {"awaitctl", "ping", NULL};
	const char *const s[] = {"awaitctl", "ping", "--socket=/b.sock", NULL};

	unsetenv("AWAITD_SOCKET");
	assert_int_equal(parse(fx, &o, w), 0);
	assert_string_equal(o.socket, "./awaitd.sock");
	assert_int_equal(o.json, 0);
	assert_int_equal(o.timeout_ms, -1);
	client_opts_fini(&o);

	setenv("AWAITD_SOCKET", "/a.sock", 1);
	assert_int_equal(parse(fx, &o, w), 0);
	assert_string_equal(o.socket, "/a.sock");
	client_opts_fini(&o);

	assert_int_equal(parse(fx, &o, s), 0);
	assert_string_equal(o.socket, "/b.sock");
	client_opts_fini(&o);
	unsetenv("AWAITD_SOCKET");
}

static void test_parse_logs_flags(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const f[] = {"awaitctl", "logs", "-f", "-n", "20", NULL};
	const char *const plain[] = {"awaitctl", "logs", NULL};

	assert_int_equal(parse(fx, &o, f), 0);
	assert_json(o.args, "{\"follow\":true,\"lines\":20}");
	client_opts_fini(&o);
	assert_int_equal(parse(fx, &o, plain), 0);
	assert_json(o.args, "{\"follow\":false}");
	client_opts_fini(&o);
}

static void test_parse_enqueue_and_ids(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const e[] = {"awaitctl", "enqueue",    "mail", "-5",          "--key",
	                         "k1",       "--priority", "-3",   "--delay=100", NULL};
	const char *const num[] = {"awaitctl", "show", "42", NULL};
	const char *const str[] = {"awaitctl", "show", "--", "-ab", NULL};

	assert_int_equal(parse(fx, &o, e), 0);
	assert_json(o.args, "{\"name\":\"mail\",\"args\":-5,\"key\":\"k1\",\"priority\":-3,"
	                    "\"delay\":100}");
	client_opts_fini(&o);
	assert_int_equal(parse(fx, &o, num), 0);
	assert_json(o.args, "{\"id\":42}");
	client_opts_fini(&o);
	assert_int_equal(parse(fx, &o, str), 0);
	assert_json(o.args, "{\"id\":\"-ab\"}");
	client_opts_fini(&o);
}

static void test_parse_help(void **state)
{
	struct cfx *fx = *state;
	struct client_opts o;
	const char *const w[] = {"awaitctl", "--help", NULL};

	assert_int_equal(parse(fx, &o, w), 0);
	assert_int_equal(o.help, 1);
	assert_null(o.cmd);
	client_opts_fini(&o);
}

/* Each of these is a usage error (exit 2) with a message containing msg. */
static void assert_usage(struct cfx *fx, const char *const *w, const char *msg)
{
	struct client_opts o;

	fx->err[0] = '\0';
	assert_int_equal(parse(fx, &o, w), -1);
	assert_null(o.args);
	assert_null(o.cmd);
	if (!strstr(fx->err, msg))
		fail_msg("error \"%s\" lacks \"%s\"", fx->err, msg);
}

static void test_parse_usage_errors(void **state)
{
	struct cfx *fx = *state;
	const char *const none[] = {"awaitctl", NULL};
	const char *const unknown[] = {"awaitctl", "frobnicate", NULL};
	const char *const badjson[] = {"awaitctl", "run", "x", "{bad", NULL};
	const char *const toomany[] = {"awaitctl", "run", "x", "1", "2", NULL};
	const char *const missing[] = {"awaitctl", "show", NULL};
	const char *const extra[] = {"awaitctl", "ping", "now", NULL};
	const char *const badopt[] = {"awaitctl", "ping", "--frob", NULL};
	const char *const badglobal[] = {"awaitctl", "-x", "ping", NULL};
	const char *const novalue[] = {"awaitctl", "run", "x", "--timeout", NULL};
	const char *const badtimeout[] = {"awaitctl", "--timeout", "soon", "ping", NULL};
	const char *const negtimeout[] = {"awaitctl", "run", "x", "--timeout", "-1", NULL};
	const char *const flagvalue[] = {"awaitctl", "--json=yes", "ping", NULL};
	const char *const emptysock[] = {"awaitctl", "-s", "", "ping", NULL};
	const char *const emptyname[] = {"awaitctl", "run", "", NULL};

	assert_usage(fx, none, "no command");
	assert_usage(fx, unknown, "unknown command \"frobnicate\"");
	assert_usage(fx, badjson, "ARGS is not valid JSON");
	assert_usage(fx, toomany, "unexpected argument \"2\"");
	assert_usage(fx, missing, "missing argument (usage: show ID)");
	assert_usage(fx, extra, "unexpected argument \"now\"");
	assert_usage(fx, badopt, "ping: unknown option --frob");
	assert_usage(fx, badglobal, "unknown option -x");
	assert_usage(fx, novalue, "--timeout needs a value");
	assert_usage(fx, badtimeout, "--timeout must be a non-negative integer");
	assert_usage(fx, negtimeout, "--timeout must be a non-negative integer");
	assert_usage(fx, flagvalue, "--json takes no value");
	assert_usage(fx, emptysock, "socket path is empty");
	assert_usage(fx, emptyname, "NAME must not be empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_events_then_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ok_without_result_is_null, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply_without_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answer_before_hangup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reply_split_across_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_reply_times_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hangup_before_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_not_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_not_object, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_other_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_no_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_error_without_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_binary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reply_line_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_listening, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_path_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_deadline_passed_to_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_socket_default_and_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_logs_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_enqueue_and_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_help, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_usage_errors, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
