/*
 * test_server.c: the control server on a real event_base and a real unix
 * socket in a temporary directory. Clients are plain blocking sockets in
 * this process: a test writes, then pumps the loop (EVLOOP_NONBLOCK with
 * short sleeps) until the reply lines it expects arrive or a deadline
 * passes. The peer-credential refusal needs another uid, so that test
 * forks a client that drops to nobody, and is skipped unless run as root.
 *
 * The request handler understands a few test commands: echo (answers its
 * cmd and args at once), later (holds the conn, answers 50 ms later from a
 * timer), stream (holds the conn and writes events from a timer until the
 * conn is closed), hold (holds the conn and keeps it in the fixture),
 * follow (holds the conn until its close callback releases it, as
 * `logs -f` will) and quit (server_free from inside the callback).
 *
 * _GNU_SOURCE for setgroups() in the forked client.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "listen.h"
#include "log.h"
#include "server.h"

#define TEST_NOBODY   65534
#define TEST_DEADLINE 5000 /* ms to wait for anything that should come */

struct client {
	int fd;
	char buf[1 << 16]; /* bytes received and not yet returned as lines */
	size_t len;
};

struct sfx {
	char dir[64];   /* mkdtemp directory */
	char path[128]; /* dir/ctl.sock */
	struct event_base *base;
	struct server *srv;
	struct server_limits lim;
	int nrequests;      /* on_request calls */
	struct conn *held;  /* by "hold" */
	int late_sent;      /* "later" timers that fired */
	int late_closed;    /* ... and found their conn closed */
	int stream_done;    /* the stream timer saw its conn closed */
	long stream_events; /* events it wrote */
	int nclose_calls;   /* close callbacks of "follow" */
};

/* A "later" reply or a "stream" in progress, owned by its timer. */
struct pending {
	struct sfx *fx;
	struct conn *c;
	json_int_t id;
	struct event *ev;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pump(struct sfx *fx)
{
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

static void pump_sleep(struct sfx *fx)
{
	struct timespec ts = {0, 500 * 1000};

	pump(fx);
	nanosleep(&ts, NULL);
}

/* Pump for ms milliseconds. */
static void pump_for(struct sfx *fx, int ms)
{
	double end = now_ms() + ms;

	while (now_ms() < end)
		pump_sleep(fx);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	p->fx->late_sent++;
	if (conn_closed(p->c))
		p->fx->late_closed++;
	conn_ok(p->c, p->id, 1, json_pack("{s:b}", "late", 1));
	conn_release(p->c);
	event_free(p->ev);
	free(p);
}

/* Write 16 events of about 1 KiB per tick (well under the cap) until the conn is closed. */
static void stream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	char chunk[1024];

	(void)fd;
	(void)what;
	memset(chunk, 'x', sizeof chunk - 1);
	chunk[sizeof chunk - 1] = 0;
	for (int i = 0; i < 16 && !conn_closed(p->c); i++) {
		conn_event(p->c, p->id, json_string(chunk));
		p->fx->stream_events++;
	}
	if (!conn_closed(p->c))
		return;
	p->fx->stream_done = 1;
	conn_release(p->c);
	event_free(p->ev);
	free(p);
}

static void follow_closed(struct conn *c, void *arg)
{
	struct sfx *fx = arg;

	fx->nclose_calls++;
	conn_release(c);
}

static struct pending *pending_new(struct sfx *fx, struct conn *c, json_int_t id,
                                   event_callback_fn cb, short flags, int ms)
{
	struct pending *p = calloc(1, sizeof *p);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	assert_non_null(p);
	p->fx = fx;
	p->c = conn_hold(c);
	p->id = id;
	p->ev = event_new(fx->base, -1, flags, cb, p);
	assert_non_null(p->ev);
	assert_int_equal(event_add(p->ev, &tv), 0);
	return p;
}

static void on_request(struct conn *c, const struct proto_request *req, void *arg)
{
	struct sfx *fx = arg;

	fx->nrequests++;
	if (strcmp(req->cmd, "echo") == 0) {
		conn_ok(c, req->id, req->has_id,
		        json_pack("{s:s,s:O}", "cmd", req->cmd, "args", req->args));
	} else if (strcmp(req->cmd, "big") == 0) {
		/* one result of 100000 bytes of text, more than a 64 KiB output_cap */
		char *text = malloc(100001);
		assert_non_null(text);
		memset(text, 'x', 100000);
		text[100000] = 0;
		conn_ok(c, req->id, req->has_id, json_string(text));
		free(text);
	} else if (strcmp(req->cmd, "later") == 0) {
		pending_new(fx, c, req->id, later_cb, 0, 50);
	} else if (strcmp(req->cmd, "stream") == 0) {
		pending_new(fx, c, req->id, stream_cb, EV_PERSIST, 1);
	} else if (strcmp(req->cmd, "hold") == 0) {
		fx->held = conn_hold(c);
	} else if (strcmp(req->cmd, "follow") == 0) {
		conn_hold(c);
		conn_on_close(c, follow_closed, fx);
		conn_event(c, req->id, json_string("following"));
	} else if (strcmp(req->cmd, "quit") == 0) {
		conn_ok(c, req->id, req->has_id, json_null()); /* never sent: freed just below */
		server_free(fx->srv);
		fx->srv = NULL;
	} else {
		conn_error(c, req->id, req->has_id, "unknown_command", "no command %s", req->cmd);
	}
}

static int setup(void **state)
{
	struct sfx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/awaitd-server-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/ctl.sock", fx->dir);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->lim.max_line = PROTO_MAX_LINE;
	fx->lim.output_cap = 4u << 20;
	fx->lim.max_clients = 64;
	fx->lim.allow_gid = -1;
	log_set_level(LOG_LEVEL_ERROR);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *fx = *state;

	server_free(fx->srv);
	event_base_free(fx->base);
	unlink(fx->path);
	assert_int_equal(rmdir(fx->dir), 0);
	log_set_level(LOG_LEVEL_INFO);
	free(fx);
	return 0;
}

/* Listen on fx->path with fx->lim and start the server. */
static void start(struct sfx *fx, int mode)
{
	char err[256];
	int lfd = listen_unix(fx->path, mode, err, sizeof err);

	if (lfd < 0)
		fail_msg("listen_unix: %s", err);
	fx->srv = server_new(fx->base, lfd, &fx->lim, on_request, fx, err, sizeof err);
	if (fx->srv == NULL)
		fail_msg("server_new: %s", err);
}

/* A blocking client connected to path, or -1 with errno set. */
static int connect_path(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static struct client *client_new(struct sfx *fx)
{
	struct client *cl = calloc(1, sizeof *cl);

	assert_non_null(cl);
	cl->fd = connect_path(fx->path);
	assert_true(cl->fd >= 0);
	return cl;
}

static void client_free(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl);
}

/* Send all of buf, pumping the loop whenever the socket is full. */
static void client_send(struct sfx *fx, struct client *cl, const void *buf, size_t len)
{
	const char *p = buf;
	double end = now_ms() + TEST_DEADLINE;

	while (len > 0) {
		ssize_t n = send(cl->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		assert_true(now_ms() < end);
		pump_sleep(fx);
	}
}

static void client_sends(struct sfx *fx, struct client *cl, const char *s)
{
	client_send(fx, cl, s, strlen(s));
}

/*
 * The next line (without '\n') into out, pumping the loop until it comes.
 * Returns its length; -1 at EOF or reset, -2 after ms without a line.
 */
static int client_line_wait(struct sfx *fx, struct client *cl, char *out, size_t outlen, int ms)
{
	double end = now_ms() + ms;

	for (;;) {
		char *nl = memchr(cl->buf, '\n', cl->len);
		ssize_t n;

		if (nl != NULL) {
			size_t k = (size_t)(nl - cl->buf);

			assert_true(k < outlen);
			memcpy(out, cl->buf, k);
			out[k] = 0;
			memmove(cl->buf, nl + 1, cl->len - k - 1);
			cl->len -= k + 1;
			return (int)k;
		}
		assert_true(cl->len < sizeof cl->buf);
		n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, MSG_DONTWAIT);
		if (n > 0) {
			cl->len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		if (now_ms() >= end)
			return -2;
		pump_sleep(fx);
	}
}

static void client_line(struct sfx *fx, struct client *cl, char *out, size_t outlen)
{
	int n = client_line_wait(fx, cl, out, outlen, TEST_DEADLINE);

	if (n < 0)
		fail_msg("no line from the server (%s)", n == -1 ? "EOF" : "timed out");
}

/* Assert that the next line is exactly want. */
static void expect_line(struct sfx *fx, struct client *cl, const char *want)
{
	char got[4096];

	client_line(fx, cl, got, sizeof got);
	assert_string_equal(got, want);
}

/* Assert that the server closes cl (after any lines still queued, which are skipped). */
static void expect_eof(struct sfx *fx, struct client *cl)
{
	char got[4096];
	int n;

	while ((n = client_line_wait(fx, cl, got, sizeof got, TEST_DEADLINE)) >= 0)
		;
	assert_int_equal(n, -1);
}

/* Pump until fn(fx) holds, or fail. */
#define pump_until(fx, cond)                                                                       \
	do {                                                                                       \
		double end_ = now_ms() + TEST_DEADLINE;                                            \
		while (!(cond)) {                                                                  \
			if (now_ms() >= end_)                                                      \
				fail_msg("timed out waiting for %s", #cond);                       \
			pump_sleep(fx);                                                            \
		}                                                                                  \
	} while (0)

/* stderr into a temporary file while the code under test logs. */
struct capture {
	int saved;
	FILE *tmp;
};

static void capture_begin(struct capture *cap)
{
	fflush(stderr);
	cap->tmp = tmpfile();
	assert_non_null(cap->tmp);
	cap->saved = dup(2);
	assert_true(cap->saved >= 0);
	assert_true(dup2(fileno(cap->tmp), 2) >= 0);
}

static void capture_end(struct capture *cap, char *buf, size_t len)
{
	size_t n;

	fflush(stderr);
	dup2(cap->saved, 2);
	close(cap->saved);
	rewind(cap->tmp);
	n = fread(buf, 1, len - 1, cap->tmp);
	buf[n] = 0;
	fclose(cap->tmp);
}

static int count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = strstr(s, sub); p != NULL; p = strstr(p + 1, sub))
		n++;
	return n;
}

static void test_echo(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;

	start(fx, 0600);
	cl = client_new(fx);
	client_sends(fx, cl, "{\"id\":1,\"cmd\":\"echo\",\"args\":{\"a\":[1,\"two\"]}}\n");
	expect_line(
	    fx, cl,
	    "{\"id\":1,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{\"a\":[1,\"two\"]}}}");
	/* no id: none in the answer; absent args: an empty object */
	client_sends(fx, cl, "{\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	client_sends(fx, cl, "{\"id\":3,\"cmd\":\"nope\"}\n");
	expect_line(
	    fx, cl,
	    "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"unknown_command\",\"message\":\"no "
	    "command nope\"}}");
	assert_int_equal(fx->nrequests, 3);
	assert_int_equal(server_nrequests(fx->srv), 3);
	assert_int_equal(server_nclients(fx->srv), 1);
	client_free(cl);
	pump_until(fx, server_nclients(fx->srv) == 0);
}

static void test_pipelined(void **state)
{
	struct sfx *fx = *state;
	char *buf = malloc(100 * 64), line[256], want[256];
	struct client *cl;
	size_t off = 0;

	assert_non_null(buf);
	start(fx, 0600);
	cl = client_new(fx);
	for (int i = 1; i <= 100; i++)
		off += (size_t)sprintf(
		    buf + off, "{\"id\":%d,\"cmd\":\"echo\",\"args\":{\"n\":%d}}\n", i, i * 7);
	client_send(fx, cl, buf, off); /* one write */
	for (int i = 1; i <= 100; i++) {
		client_line(fx, cl, line, sizeof line);
		snprintf(
		    want, sizeof want,
		    "{\"id\":%d,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{\"n\":%d}}}", i,
		    i * 7);
		assert_string_equal(line, want);
	}
	assert_int_equal(fx->nrequests, 100);
	assert_int_equal(server_nrequests(fx->srv), 100);
	free(buf);
	client_free(cl);
}

static void test_split_writes(void **state)
{
	struct sfx *fx = *state;
	const char *req = "{\"id\":5,\"cmd\":\"echo\",\"args\":{\"k\":\"v\"}}\r\n";
	struct client *cl;
	char line[256];

	start(fx, 0600);
	cl = client_new(fx);
	for (size_t i = 0; req[i] != 0; i++) {
		client_send(fx, cl, req + i, 1);
		pump_for(fx, 1);
		if (req[i + 1] != 0) /* nothing before the '\n' */
			assert_int_equal(client_line_wait(fx, cl, line, sizeof line, 0), -2);
	}
	expect_line(fx, cl,
	            "{\"id\":5,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{\"k\":\"v\"}}}");
	/* the end of one request and the start of the next in one write */
	client_sends(fx, cl, "{\"id\":6,\"cmd\":");
	pump_for(fx, 5);
	client_sends(fx, cl, "\"echo\"}\n{\"id\":7,");
	pump_for(fx, 5);
	client_sends(fx, cl, "\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"id\":6,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	expect_line(fx, cl, "{\"id\":7,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	assert_int_equal(fx->nrequests, 3);
	client_free(cl);
}

static void test_invalid(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;
	char line[1024];
	json_t *doc;

	start(fx, 0600);
	cl = client_new(fx);
	/* blank lines are skipped without an answer or a count */
	client_sends(fx, cl, "\n\r\n\n");
	client_sends(fx, cl, "{\"id\":7,\"cmd\":5}\n");
	expect_line(fx, cl,
	            "{\"id\":7,\"ok\":false,\"error\":{\"code\":\"invalid_request\",\"message\":"
	            "\"\\\"cmd\\\" must be a string\"}}");
	client_sends(fx, cl, "{\"id\":9,\"cmd\":\"echo\",\"args\":[]}\n");
	client_line(fx, cl, line, sizeof line);
	doc = json_loads(line, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "id")), 9);
	assert_true(json_is_false(json_object_get(doc, "ok")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(doc, "error"), "code")),
	    "invalid_request");
	json_decref(doc);
	client_sends(fx, cl, "not json\n");
	client_line(fx, cl, line, sizeof line);
	assert_non_null(strstr(line, "\"code\":\"invalid_json\""));
	assert_true(strncmp(line, "{\"ok\":false,", 12) == 0); /* no id to recover */
	client_sends(fx, cl, "{\"id\":\"x\",\"cmd\":\"echo\"}\n[1,2]\n");
	client_line(fx, cl, line, sizeof line);
	assert_true(strncmp(line, "{\"ok\":false,\"error\":{\"code\":\"invalid_request\"", 45) ==
	            0);
	client_line(fx, cl, line, sizeof line);
	assert_true(strncmp(line, "{\"ok\":false,\"error\":{\"code\":\"invalid_request\"", 45) ==
	            0);
	client_sends(fx, cl, "{\"id\":10,\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"id\":10,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	assert_int_equal(fx->nrequests, 1); /* only the valid one reached on_request */
	assert_int_equal(server_nrequests(fx->srv), 6);
	client_free(cl);
}

static void test_too_large(void **state)
{
	struct sfx *fx = *state;
	size_t big = 2u << 20;
	char *buf = malloc(big + 1);
	struct client *cl;

	assert_non_null(buf);
	start(fx, 0600);
	cl = client_new(fx);
	memset(buf, 'a', big);
	buf[big] = '\n';
	client_send(fx, cl, buf, big);
	/* answered once, while the line is still coming */
	expect_line(fx, cl,
	            "{\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"request line "
	            "longer than 1048576 bytes\"}}");
	/* its end and the next request in one write */
	client_sends(fx, cl, "tail of the long line\n{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"id\":2,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	/* a second long line that arrives in one piece with its '\n' */
	client_send(fx, cl, buf, big + 1);
	client_sends(fx, cl, "{\"id\":3,\"cmd\":\"echo\"}\n");
	expect_line(fx, cl,
	            "{\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"request line "
	            "longer than 1048576 bytes\"}}");
	expect_line(fx, cl, "{\"id\":3,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	assert_int_equal(fx->nrequests, 2);
	assert_int_equal(server_nclients(fx->srv), 1); /* not closed */
	free(buf);
	client_free(cl);
}

/* max_line itself is accepted, one byte more is not; "\r\n" does not count. */
static void test_line_limit_boundary(void **state)
{
	struct sfx *fx = *state;
	const char *head = "{\"id\":1,\"cmd\":\"echo\",\"args\":{\"s\":\"";
	size_t max = 1000, hl = strlen(head);
	char line[2048], req[1100];
	struct client *cl;

	fx->lim.max_line = max;
	start(fx, 0600);
	cl = client_new(fx);
	/* exactly max bytes: head, padding, "\"}}" */
	memcpy(req, head, hl);
	memset(req + hl, 'p', max - hl - 3);
	memcpy(req + max - 3, "\"}}\r\n", 5);
	client_send(fx, cl, req, max + 2);
	client_line(fx, cl, line, sizeof line);
	assert_true(strncmp(line, "{\"id\":1,\"ok\":true,", 18) == 0);
	/* max + 1 bytes: whole in the buffer, so proto_parse names its size */
	memcpy(req, head, hl);
	memset(req + hl, 'p', max + 1 - hl - 3);
	memcpy(req + max + 1 - 3, "\"}}\n", 4);
	client_send(fx, cl, req, max + 2);
	expect_line(fx, cl,
	            "{\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"request line "
	            "of 1001 bytes is longer than 1000\"}}");
	client_sends(fx, cl, "{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"id\":2,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	client_free(cl);
}

static void test_binary_garbage(void **state)
{
	struct sfx *fx = *state;
	size_t len = 256 * 1024, nlines = 0, cur = 0;
	unsigned char *buf = malloc(len);
	uint32_t x = 12345;
	struct client *cl;
	char line[4096];
	int n;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
		if (i % 97 == 0)
			buf[i] = 0;
	}
	buf[len - 1] = '\n';
	/* expected answers: lines that are not empty once a final '\r' is cut */
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n') {
			cur++;
			continue;
		}
		if (cur > 1 || (cur == 1 && buf[i - 1] != '\r'))
			nlines++;
		cur = 0;
	}
	assert_true(nlines > 100);
	start(fx, 0600);
	cl = client_new(fx);
	client_send(fx, cl, buf, len);
	client_sends(fx, cl, "{\"id\":4242,\"cmd\":\"echo\"}\n");
	for (size_t i = 0; i < nlines; i++) {
		client_line(fx, cl, line, sizeof line);
		assert_true(strncmp(line, "{\"ok\":false,\"error\":{\"code\":\"invalid_", 36) == 0);
	}
	n = client_line_wait(fx, cl, line, sizeof line, TEST_DEADLINE);
	assert_true(n > 0);
	assert_string_equal(line,
	                    "{\"id\":4242,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	assert_int_equal(fx->nrequests, 1);
	assert_int_equal(server_nrequests(fx->srv), nlines + 1);
	free(buf);
	client_free(cl);
}

static void test_half_request_hangup(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;

	start(fx, 0600);
	cl = client_new(fx);
	client_sends(fx, cl, "{\"id\":1,\"cmd\":\"ec");
	pump_until(fx, server_nclients(fx->srv) == 1);
	pump_for(fx, 5);
	client_free(cl);
	pump_until(fx, server_nclients(fx->srv) == 0);
	assert_int_equal(fx->nrequests, 0);
	assert_int_equal(server_nrequests(fx->srv), 0);
}

/* shutdown(SHUT_WR): the answers still come, then the server closes. */
static void test_half_close(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;

	start(fx, 0600);
	cl = client_new(fx);
	client_sends(fx, cl,
	             "{\"id\":1,\"cmd\":\"echo\"}\n{\"id\":2,\"cmd\":\"later\"}\n{\"id\":3,");
	assert_int_equal(shutdown(cl->fd, SHUT_WR), 0);
	expect_line(fx, cl, "{\"id\":1,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	expect_line(fx, cl, "{\"id\":2,\"ok\":true,\"result\":{\"late\":true}}");
	expect_eof(fx, cl);
	assert_int_equal(fx->late_closed, 0);
	assert_int_equal(fx->nrequests, 2); /* the partial third is dropped */
	pump_until(fx, server_nclients(fx->srv) == 0);
	client_free(cl);
}

static void test_async_reply(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;
	double t0;

	start(fx, 0600);
	cl = client_new(fx);
	t0 = now_ms();
	client_sends(fx, cl, "{\"id\":11,\"cmd\":\"later\"}\n{\"id\":12,\"cmd\":\"echo\"}\n");
	/* the echo overtakes the held request */
	expect_line(fx, cl, "{\"id\":12,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	expect_line(fx, cl, "{\"id\":11,\"ok\":true,\"result\":{\"late\":true}}");
	assert_true(now_ms() - t0 >= 45);
	assert_int_equal(fx->late_sent, 1);
	assert_int_equal(fx->late_closed, 0);
	client_free(cl);
	pump_until(fx, server_nclients(fx->srv) == 0);
}

static void test_async_after_hangup(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;

	start(fx, 0600);
	cl = client_new(fx);
	client_sends(fx, cl, "{\"id\":1,\"cmd\":\"later\"}\n");
	pump_until(fx, fx->nrequests == 1);
	client_free(cl);
	/* the peer is gone: closed at once although held, well before the reply */
	pump_until(fx, server_nclients(fx->srv) == 0);
	assert_int_equal(fx->late_sent, 0);
	pump_until(fx, fx->late_sent == 1);
	assert_int_equal(fx->late_closed, 1); /* the reply was dropped; ASan checks the free */
}

static void test_max_clients(void **state)
{
	struct sfx *fx = *state;
	struct client *a, *b, *c;

	fx->lim.max_clients = 2;
	start(fx, 0600);
	a = client_new(fx);
	b = client_new(fx);
	client_sends(fx, a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	client_sends(fx, b, "{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_line(fx, a, "{\"id\":1,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	expect_line(fx, b, "{\"id\":2,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	c = client_new(fx);
	expect_line(
	    fx, c,
	    "{\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many clients (2)\"}}");
	expect_eof(fx, c);
	client_free(c);
	assert_int_equal(server_nclients(fx->srv), 2);
	/* a place frees up */
	client_free(a);
	pump_until(fx, server_nclients(fx->srv) == 1);
	c = client_new(fx);
	client_sends(fx, c, "{\"id\":3,\"cmd\":\"echo\"}\n");
	expect_line(fx, c, "{\"id\":3,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	client_free(b);
	client_free(c);
}

static void test_output_cap(void **state)
{
	struct sfx *fx = *state;
	struct client *slow, *other;
	struct capture cap;
	char log[8192];

	fx->lim.output_cap = 64 * 1024;
	start(fx, 0600);
	slow = client_new(fx);
	other = client_new(fx);
	log_set_level(LOG_LEVEL_WARN);
	capture_begin(&cap);
	client_sends(fx, slow, "{\"id\":1,\"cmd\":\"stream\"}\n");
	pump_until(fx, fx->stream_done);
	capture_end(&cap, log, sizeof log);
	/* past what the socket holds, then past the cap */
	assert_true(fx->stream_events * 1024 > 64 * 1024);
	assert_non_null(strstr(log, "over output_cap = 65536 bytes: closed, the client does not "
	                            "read its answers"));
	assert_int_equal(count_substr(log, "over output_cap"), 1);
	assert_int_equal(server_nclients(fx->srv), 1);
	client_sends(fx, other, "{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_line(fx, other, "{\"id\":2,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	/* the slow reader gets what the socket held, then EOF or a reset */
	expect_eof(fx, slow);
	client_free(slow);
	client_free(other);
}

/*
 * One response bigger than output_cap by itself: the client is not closed
 * nor blamed for not reading; it gets too_large naming the size and the
 * cap, and the connection goes on.
 */
static void test_single_response_over_cap(void **state)
{
	struct sfx *fx = *state;
	struct client *cl;
	struct capture cap;
	char log[8192], got[4096];

	fx->lim.output_cap = 64 * 1024;
	start(fx, 0600);
	cl = client_new(fx);
	log_set_level(LOG_LEVEL_WARN);
	capture_begin(&cap);
	client_sends(fx, cl, "{\"id\":1,\"cmd\":\"big\"}\n");
	client_line(fx, cl, got, sizeof got);
	capture_end(&cap, log, sizeof log); /* before asserting: a failure's text is not captured */
	assert_string_equal(
	    got, "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"too_large\",\"message\":\"the "
	         "response is 100031 bytes, over the daemon's output_cap of 65536 bytes per "
	         "connection: not sent (raise output_cap, or ask for less)\"}}");
	assert_non_null(strstr(log, "a response of 100031 bytes is over output_cap = 65536 bytes"));
	assert_null(strstr(log, "does not read"));
	client_sends(fx, cl, "{\"id\":2,\"cmd\":\"echo\"}\n");
	expect_line(fx, cl, "{\"id\":2,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	assert_int_equal(server_nclients(fx->srv), 1);
	client_free(cl);
}

static void test_stop_accepting(void **state)
{
	struct sfx *fx = *state;
	struct client *a;
	int fd;

	start(fx, 0600);
	a = client_new(fx);
	pump_until(fx, server_nclients(fx->srv) == 1);
	server_stop_accepting(fx->srv);
	server_stop_accepting(fx->srv); /* idempotent */
	fd = connect_path(fx->path);
	assert_int_equal(fd, -1);
	assert_true(errno == ECONNREFUSED || errno == ENOENT);
	client_sends(fx, a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	expect_line(fx, a, "{\"id\":1,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	client_free(a);
	pump_until(fx, server_nclients(fx->srv) == 0);
}

static void test_free_with_held_conn(void **state)
{
	struct sfx *fx = *state;
	struct client *a;
	struct conn *c;

	start(fx, 0600);
	a = client_new(fx);
	client_sends(fx, a, "{\"id\":1,\"cmd\":\"hold\"}\n");
	pump_until(fx, fx->held != NULL);
	c = fx->held;
	assert_int_equal(conn_closed(c), 0);
	server_free(fx->srv);
	fx->srv = NULL;
	assert_int_equal(conn_closed(c), 1);
	conn_ok(c, 1, 1, json_string("dropped"));
	conn_event(c, 1, json_string("dropped"));
	conn_error(c, 1, 1, "x", "dropped %d", 1);
	conn_release(c); /* freed here; LeakSanitizer checks */
	expect_eof(fx, a);
	client_free(a);
}

static void test_on_close(void **state)
{
	struct sfx *fx = *state;
	struct client *a;

	start(fx, 0600);
	a = client_new(fx);
	client_sends(fx, a, "{\"id\":4,\"cmd\":\"follow\"}\n");
	expect_line(fx, a, "{\"id\":4,\"event\":\"following\"}");
	assert_int_equal(fx->nclose_calls, 0);
	client_free(a);
	pump_until(fx, fx->nclose_calls == 1);
	assert_int_equal(server_nclients(fx->srv), 0);
	pump_for(fx, 5);
	assert_int_equal(fx->nclose_calls, 1);
	/* and from server_free */
	a = client_new(fx);
	client_sends(fx, a, "{\"id\":5,\"cmd\":\"follow\"}\n");
	expect_line(fx, a, "{\"id\":5,\"event\":\"following\"}");
	server_free(fx->srv);
	fx->srv = NULL;
	assert_int_equal(fx->nclose_calls, 2);
	expect_eof(fx, a);
	client_free(a);
}

static void test_free_inside_request(void **state)
{
	struct sfx *fx = *state;
	struct client *a;

	start(fx, 0600);
	a = client_new(fx);
	client_sends(fx, a, "{\"id\":1,\"cmd\":\"quit\"}\n{\"id\":2,\"cmd\":\"echo\"}\n");
	pump_until(fx, fx->srv == NULL);
	expect_eof(fx, a);
	assert_int_equal(fx->nrequests, 1); /* the line after it is never dispatched */
	client_free(a);
}

/* Out of fds: one warning, no retry until the back-off ends, then served. */
static void test_emfile_backoff(void **state)
{
	struct sfx *fx = *state;
	struct rlimit saved, low;
	struct client *a;
	struct capture cap;
	char log[4096];
	int probe;

	start(fx, 0600);
	log_set_level(LOG_LEVEL_WARN);
	capture_begin(&cap);
	a = client_new(fx);
	probe = dup(0); /* the lowest free fd: with this limit, accept gets EMFILE */
	assert_true(probe >= 0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	low = saved;
	low.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	pump_for(fx, 50);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(server_nclients(fx->srv), 0);
	client_sends(fx, a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	expect_line(fx, a, "{\"id\":1,\"ok\":true,\"result\":{\"cmd\":\"echo\",\"args\":{}}}");
	capture_end(&cap, log, sizeof log);
	assert_int_equal(count_substr(log, "not accepting for 100 ms"), 1);
	client_free(a);
}

/* SO_PEERCRED: a client running as nobody is refused with one line. */
static void test_permission_denied(void **state)
{
	struct sfx *fx = *state;
	int pfd[2], status;
	char got[512];
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(fx->dir, 0755), 0);
	start(fx, 0666);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the child: connect as nobody, copy what it gets into the pipe */
		char buf[512];
		size_t len = 0;
		int fd;

		close(pfd[0]);
		if (setgroups(0, NULL) < 0 || setgid(TEST_NOBODY) < 0 || setuid(TEST_NOBODY) < 0)
			_exit(2);
		fd = connect_path(fx->path);
		if (fd < 0)
			_exit(3);
		while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
			len += (size_t)n;
		if (write(pfd[1], buf, len) != (ssize_t)len)
			_exit(4);
		_exit(0);
	}
	close(pfd[1]);
	pump_until(fx, waitpid(pid, &status, WNOHANG) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	n = read(pfd[0], got, sizeof got - 1);
	close(pfd[0]);
	assert_true(n > 0);
	got[n] = 0;
	assert_string_equal(got,
	                    "{\"ok\":false,\"error\":{\"code\":\"permission_denied\",\"message\":"
	                    "\"permission denied: not root, the daemon's user or an allowed "
	                    "group\"}}\n");
	assert_int_equal(server_nclients(fx->srv), 0);
}

static void test_bad_limits(void **state)
{
	struct sfx *fx = *state;
	struct server_limits lim = fx->lim;
	char err[256];

	lim.max_clients = 0;
	assert_null(server_new(fx->base, -1, &lim, on_request, fx, err, sizeof err));
	assert_non_null(strstr(err, "max_clients 0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_split_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_limit_boundary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_half_request_hangup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_after_hangup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_single_response_over_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_accepting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_with_held_conn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_on_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_inside_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emfile_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_limits, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN); /* as the daemon does: a closed peer is EPIPE, not a signal */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
