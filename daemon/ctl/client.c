/*
 * client.c: one request over the control socket (see client.h); the
 * command line is client-args.c's.
 *
 * Workload: a handful of requests per process, each a short line out and
 * usually a short line back; `logs -f` streams lines for as long as the
 * user watches, and a `run` result can be large. So the reader keeps one
 * growable buffer, scans each byte for '\n' once (scan offset kept across
 * reads), and refuses a line longer than CLIENT_MAX_LINE before growing
 * past it: memory stays bounded by the limit whatever the daemon sends.
 *
 * Writing and reading share one poll loop: a daemon may answer (with an
 * error such as too_large) and close before it has read the whole request,
 * and that answer must still be reported rather than a broken pipe. Writes
 * use MSG_NOSIGNAL; awaitctl also ignores SIGPIPE.
 *
 * The deadline is absolute on CLOCK_MONOTONIC, taken when the call starts,
 * so a daemon that trickles events cannot stretch it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "errbuf.h"
#include "client.h"

#define CLIENT_READ_CHUNK 65536 /* bytes read per read() at most */
#define CLIENT_MORE       2     /* client_line: an event, the response is still to come */

int client_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd = -1, e;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errbuf_set(err, errlen, "socket path %s is longer than %zu bytes", path,
		           sizeof sun.sun_path - 1);
		errno = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errbuf_set(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		e = errno;
		if (e == EACCES || e == EPERM)
			errbuf_set(err, errlen, "cannot connect to %s: %s", path, strerror(e));
		else
			errbuf_set(err, errlen,
			           "cannot connect to %s: %s (is awaitd running? start it with "
			           "`awaitd --socket %s`, or point -s or $" CLIENT_SOCKET_ENV
			           " at its socket)",
			           path, strerror(e), path);
		errno = e;
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0) {
		e = errno;
		close(fd);
		errno = e;
	}
	return -1;
}

int client_exit_code(const char *error_code)
{
	if (error_code == NULL)
		return CLIENT_EXIT_OK;
	if (strcmp(error_code, "no_such_script") == 0 || strcmp(error_code, "no_such_job") == 0)
		return CLIENT_EXIT_NOT_FOUND;
	if (strcmp(error_code, "permission_denied") == 0)
		return CLIENT_EXIT_DENIED;
	if (strcmp(error_code, "timeout") == 0)
		return CLIENT_EXIT_TIMEOUT;
	return CLIENT_EXIT_FAILED;
}

int client_connect_exit_code(int errnum)
{
	if (errnum == EACCES || errnum == EPERM)
		return CLIENT_EXIT_DENIED;
	return CLIENT_EXIT_UNREACHABLE;
}

/* Monotonic milliseconds. */
static long long client_now_ms(void)
{
	return (long long)clock_mono_ms();
}

/* The request line, '\n'-terminated and malloc'd; NULL when out of memory. args is stolen. */
static char *client_encode(json_int_t id, const char *cmd, json_t *args, size_t *len)
{
	json_t *req = json_object();
	char *text = NULL, *line = NULL;
	size_t n;

	if (!args)
		args = json_object();
	if (!req || !args || json_object_set_new(req, "id", json_integer(id)) < 0 ||
	    json_object_set_new(req, "cmd", json_string(cmd)) < 0)
		goto out;
	/* set_new steals args even when it fails */
	if (json_object_set_new(req, "args", args) < 0) {
		args = NULL;
		goto out;
	}
	args = NULL;
	text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	n = strlen(text);
	line = malloc(n + 2);
	if (!line)
		goto out;
	memcpy(line, text, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
out:
	free(text);
	json_decref(args);
	json_decref(req);
	return line;
}

/*
 * Handle one reply line (len bytes, no '\n'). Returns CLIENT_MORE for an
 * event, CLIENT_OK or CLIENT_REPLY_ERROR for the final response (with
 * *result or *error set), CLIENT_TRANSPORT for a malformed line.
 */
static int client_line(const char *line, size_t len, json_int_t id, client_event_fn *on_event,
                       void *arg, json_t **result, json_t **error, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *jid, *ev, *ok, *e;
	int rc = CLIENT_TRANSPORT;

	root = json_loadb(line, len, 0, &jerr);
	if (!root) {
		errbuf_set(err, errlen, "malformed reply from the daemon: line %d column %d: %s",
		           jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		errbuf_set(err, errlen, "malformed reply from the daemon: not a JSON object");
		goto out;
	}
	/* an error to a request the daemon could not parse carries no id */
	jid = json_object_get(root, "id");
	if (jid && (!json_is_integer(jid) || json_integer_value(jid) != id)) {
		errbuf_set(err, errlen,
		           "malformed reply from the daemon: not for request %" JSON_INTEGER_FORMAT,
		           id);
		goto out;
	}
	ev = json_object_get(root, "event");
	if (ev) {
		if (on_event)
			on_event(ev, arg);
		rc = CLIENT_MORE;
		goto out;
	}
	ok = json_object_get(root, "ok");
	if (json_is_true(ok)) {
		*result = json_object_get(root, "result");
		*result = *result ? json_incref(*result) : json_null();
		rc = CLIENT_OK;
	} else if (json_is_false(ok)) {
		e = json_object_get(root, "error");
		if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message"))) {
			errbuf_set(
			    err, errlen,
			    "malformed reply from the daemon: \"error\" lacks a code or message");
			goto out;
		}
		*error = json_incref(e);
		rc = CLIENT_REPLY_ERROR;
	} else {
		errbuf_set(err, errlen, "malformed reply from the daemon: no \"ok\" or \"event\"");
	}
out:
	json_decref(root);
	return rc;
}

int client_request(int fd, json_int_t id, const char *cmd, json_t *args, int timeout_ms,
                   client_event_fn *on_event, void *arg, json_t **result, json_t **error, char *err,
                   size_t errlen)
{
	char *out = NULL, *buf = NULL, *nl, *np;
	size_t outlen = 0, outpos = 0, len = 0, cap = 0, start = 0, scan = 0, ncap;
	long long deadline = timeout_ms >= 0 ? client_now_ms() + timeout_ms : 0, left;
	struct pollfd pfd;
	ssize_t n;
	int rc = CLIENT_TRANSPORT, wrc = 0, flags;

	*result = NULL;
	*error = NULL;
	out = client_encode(id, cmd, args, &outlen);
	if (!out) {
		errbuf_set(err, errlen, "cannot encode the %s request (out of memory?)", cmd);
		goto out;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		errbuf_set(err, errlen, "fcntl: %s", strerror(errno));
		goto out;
	}

	for (;;) {
		/* every complete line already read */
		while (buf && (nl = memchr(buf + scan, '\n', len - scan)) != NULL) {
			rc = client_line(buf + start, (size_t)(nl - (buf + start)), id, on_event,
			                 arg, result, error, err, errlen);
			if (rc != CLIENT_MORE)
				goto out;
			start = scan = (size_t)(nl - buf) + 1;
		}
		scan = len;
		if (len - start > CLIENT_MAX_LINE) {
			errbuf_set(err, errlen,
			           "reply line from the daemon is longer than %zu bytes",
			           CLIENT_MAX_LINE);
			rc = CLIENT_TRANSPORT;
			goto out;
		}

		pfd.fd = fd;
		pfd.events = POLLIN | (outpos < outlen ? POLLOUT : 0);
		pfd.revents = 0;
		left = -1;
		if (timeout_ms >= 0) {
			left = deadline - client_now_ms();
			if (left <= 0) {
				errbuf_set(err, errlen, "no reply to %s within %d ms", cmd,
				           timeout_ms);
				rc = CLIENT_TIMEOUT;
				goto out;
			}
		}
		if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0) {
			if (errno == EINTR) {
				errbuf_set(err, errlen, "interrupted");
				rc = CLIENT_INTERRUPTED;
				goto out;
			}
			errbuf_set(err, errlen, "poll: %s", strerror(errno));
			rc = CLIENT_TRANSPORT;
			goto out;
		}

		if ((pfd.revents & (POLLOUT | POLLERR | POLLHUP)) && outpos < outlen) {
			n = send(fd, out + outpos, outlen - outpos, MSG_NOSIGNAL);
			if (n >= 0) {
				outpos += (size_t)n;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				/* the daemon may have answered before hanging up: read on */
				wrc = errno;
				outpos = outlen;
			}
		}
		if (!(pfd.revents & (POLLIN | POLLERR | POLLHUP)))
			continue;

		/* drop consumed lines, then room for one chunk */
		if (start > 0) {
			memmove(buf, buf + start, len - start);
			len -= start;
			scan -= start;
			start = 0;
		}
		if (cap - len < CLIENT_READ_CHUNK) {
			ncap = cap ? cap * 2 : CLIENT_READ_CHUNK;
			while (ncap - len < CLIENT_READ_CHUNK)
				ncap *= 2;
			/* len <= CLIENT_MAX_LINE here, so this still leaves a chunk of room */
			if (ncap > CLIENT_MAX_LINE + CLIENT_READ_CHUNK)
				ncap = CLIENT_MAX_LINE + CLIENT_READ_CHUNK;
			np = realloc(buf, ncap);
			if (!np) {
				errbuf_set(err, errlen, "out of memory reading the reply");
				rc = CLIENT_TRANSPORT;
				goto out;
			}
			buf = np;
			cap = ncap;
		}
		n = read(fd, buf + len, CLIENT_READ_CHUNK);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			errbuf_set(err, errlen, "reading from the daemon: %s", strerror(errno));
			rc = CLIENT_TRANSPORT;
			goto out;
		}
		if (n == 0) {
			if (wrc)
				errbuf_set(err, errlen, "sending the request: %s", strerror(wrc));
			else
				errbuf_set(err, errlen,
				           "the daemon closed the connection before "
				           "answering");
			rc = CLIENT_TRANSPORT;
			goto out;
		}
		len += (size_t)n;
	}
out:
	free(buf);
	free(out);
	return rc;
}
