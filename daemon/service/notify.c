/*
 * notify.c: sd_notify without libsystemd.
 *
 * The protocol (sd_notify(3), "Notification protocol" in systemd's docs) is
 * one datagram per notification to the AF_UNIX socket in $NOTIFY_SOCKET:
 * a filesystem path, or an abstract name written with a leading '@' that
 * becomes a NUL byte in sun_path. The abstract address length counts only
 * the name, never the rest of sun_path, or the kernel looks up another name.
 *
 * Invariants: no call blocks (MSG_DONTWAIT: a full receiver queue is EAGAIN,
 * not a stalled loop), none raises SIGPIPE (MSG_NOSIGNAL), none leaks its
 * socket (closed before returning, close-on-exec while open so a fork in
 * another thread never inherits it), and errno on return is the error of
 * the step that failed, not of the close that followed. The vsock: form of
 * NOTIFY_SOCKET (systemd 254+) is not supported: -1 with EAFNOSUPPORT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* Status lines shorter than this are formatted without malloc. */
#define NOTIFY_STACK_BUF 512

/*
 * Fill *sun and *len from the NOTIFY_SOCKET value e. Returns 0, or -1 with
 * errno set.
 */
static int notify_address(const char *e, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(e);

	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (e[0] == '@') {
		if (n == 1) {
			errno = EINVAL; /* an empty abstract name would autobind, not address */
			return -1;
		}
		if (n > sizeof sun->sun_path) { /* '@' becomes the leading NUL */
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(sun->sun_path + 1, e + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	if (e[0] != '/') {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (n >= sizeof sun->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, e, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int notify_send(const char *state)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd = -1, rc = -1, saved;

	if (e == NULL || e[0] == 0)
		return 0;
	if (state == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (notify_address(e, &sun, &len) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	n = strlen(state);
	if (sendto(fd, state, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		goto out;
	rc = 1; /* a datagram is sent whole or not at all */
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return rc;
}

int notify_sendf(const char *fmt, ...)
{
	char stack[NOTIFY_STACK_BUF];
	char *buf = stack;
	const char *e = getenv("NOTIFY_SOCKET");
	va_list ap;
	int n, rc = -1, saved;

	if (e == NULL || e[0] == 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(stack, sizeof stack, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = EINVAL;
		goto out;
	}
	if ((size_t)n >= sizeof stack) {
		buf = malloc((size_t)n + 1);
		if (buf == NULL) {
			errno = ENOMEM;
			goto out;
		}
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	rc = notify_send(buf);
out:
	saved = errno;
	if (buf != stack)
		free(buf);
	errno = saved;
	return rc;
}

/*
 * Parse a whole decimal string into *v: digits only (no sign, no spaces, no
 * trailing text) and no overflow. Returns 0, or -1.
 */
static int notify_parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != 0)
		return -1;
	*v = (uint64_t)x;
	return 0;
}

int notify_watchdog_usec(uint64_t *usec)
{
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t v, p;
	int saved = errno; /* a failed parse is "disabled", not an error to report */
	int rc = 0;

	if (pid != NULL) {
		if (notify_parse_u64(pid, &p) < 0 || p != (uint64_t)getpid())
			goto out;
	}
	if (notify_parse_u64(getenv("WATCHDOG_USEC"), &v) < 0 || v == 0)
		goto out;
	*usec = v;
	rc = 1;
out:
	errno = saved;
	return rc;
}

int notify_reloading(void)
{
	struct timespec ts;
	char buf[64];
	uint64_t now;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -1;
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now);
	return notify_send(buf);
}
