/*
 * listen.c: adopting, creating and guarding the control socket.
 *
 * Socket activation follows sd_listen_fds(3): systemd passes the sockets
 * from fd 3 on and says so in LISTEN_FDS, addressed to one process by
 * LISTEN_PID (a forked child sees another pid and must not take them). The
 * variables are removed once read, as sd_listen_fds(1) does.
 *
 * Creating the socket never steals a live one: an existing socket file is
 * probed with a non-blocking connect(). ECONNREFUSED means nobody listens
 * (a daemon crashed and left its file): it is replaced. Success, or EAGAIN
 * (listening with a full backlog), means a live daemon: refused (it sees the
 * probe as a client that connects and hangs up at once). Anything
 * else (EACCES, a socket of another type) is reported and nothing is
 * removed. A file that is not a socket is never removed. Known limit: two
 * daemons starting at the same instant on the same stale file could both
 * see it stale; the later bind then fails with EADDRINUSE, or, if the
 * unlink of one falls between the bind and listen of the other, both run.
 * A lock file would close that; the units start one daemon per socket.
 *
 * The file mode is set between bind() and listen(): connect() to a socket
 * that is bound but not listening is refused, so no client gets in under
 * the umask's mode. The process umask itself is never touched (it is
 * process-wide and other threads may create files).
 *
 * _GNU_SOURCE is for struct ucred (SO_PEERCRED) and SO_PEERGROUPS, which
 * glibc hides under strict POSIX; it must precede every include.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "errbuf.h"
#include "listen.h"

#define LISTEN_BACKLOG 128

/* Supplementary groups read without malloc; more take one allocation. */
#define LISTEN_NGROUPS_STACK 64

/*
 * Parse a whole decimal string (digits only, no sign or spaces) no greater
 * than max into *v. Returns 0, or -1.
 */
static int listen_parse_ulong(const char *s, unsigned long max, unsigned long *v)
{
	unsigned long x;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno != 0 || *end != 0 || x > max)
		return -1;
	*v = x;
	return 0;
}

/*
 * Check that fd is a listening AF_UNIX SOCK_STREAM socket. Returns 0, or -1
 * with err filled.
 */
static int listen_check_inherited(int fd, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int type, acc;

	if (fcntl(fd, F_GETFD) < 0) {
		errbuf_set(err, errlen,
		           "socket activation: LISTEN_FDS is set but fd %d is not open", fd);
		return -1;
	}
	len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		if (errno == ENOTSOCK)
			errbuf_set(err, errlen, "socket activation: fd %d is not a socket", fd);
		else
			errbuf_set(err, errlen, "socket activation: fd %d: SO_TYPE: %s", fd,
			           strerror(errno));
		return -1;
	}
	if (type != SOCK_STREAM) {
		errbuf_set(err, errlen,
		           "socket activation: fd %d is not a stream socket (SO_TYPE %d); the "
		           ".socket unit needs ListenStream=",
		           fd, type);
		return -1;
	}
	len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		errbuf_set(err, errlen, "socket activation: fd %d: getsockname: %s", fd,
		           strerror(errno));
		return -1;
	}
	if (ss.ss_family != AF_UNIX) {
		errbuf_set(err, errlen,
		           "socket activation: fd %d is not a unix socket (address family %d); "
		           "ListenStream= must be a path",
		           fd, (int)ss.ss_family);
		return -1;
	}
	len = sizeof acc;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0) {
		errbuf_set(err, errlen, "socket activation: fd %d: SO_ACCEPTCONN: %s", fd,
		           strerror(errno));
		return -1;
	}
	if (!acc) {
		errbuf_set(err, errlen,
		           "socket activation: fd %d is not listening (Accept=yes in the "
		           ".socket unit?)",
		           fd);
		return -1;
	}
	return 0;
}

/* Set O_NONBLOCK and FD_CLOEXEC on fd. Returns 0, or -1 with errno set. */
static int listen_set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

int listen_activated(char *err, size_t errlen)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	const int fd = LISTEN_FDS_START;
	unsigned long pid, nfds;
	int rc = -2;

	if (pid_s == NULL)
		goto out;
	if (listen_parse_ulong(pid_s, ULONG_MAX, &pid) < 0) {
		errbuf_set(err, errlen, "socket activation: LISTEN_PID=\"%.32s\" is not a pid",
		           pid_s);
		rc = -1;
		goto out;
	}
	if (pid != (unsigned long)getpid() || fds_s == NULL)
		goto out;
	if (listen_parse_ulong(fds_s, (unsigned long)(INT_MAX - LISTEN_FDS_START), &nfds) < 0) {
		errbuf_set(err, errlen,
		           "socket activation: LISTEN_FDS=\"%.32s\" is not a count of fds", fds_s);
		rc = -1;
		goto out;
	}
	if (nfds == 0)
		goto out;
	rc = -1;
	if (listen_check_inherited(fd, err, errlen) < 0)
		goto out;
	if (listen_set_flags(fd) < 0) {
		errbuf_set(err, errlen, "socket activation: fd %d: fcntl: %s", fd, strerror(errno));
		goto out;
	}
	rc = fd;
out:
	/* After the messages: unsetenv invalidates pid_s and fds_s. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

/*
 * Is a daemon listening on the socket file at sun? Returns 1 live, 0 stale
 * (or gone), -1 with err filled when that cannot be told.
 */
static int listen_probe(const struct sockaddr_un *sun, const char *path, char *err, size_t errlen)
{
	int fd, rc = -1;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errbuf_set(err, errlen, "probing %s: socket: %s", path, strerror(errno));
		goto out;
	}
	if (connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0 || errno == EAGAIN)
		rc = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		errbuf_set(err, errlen,
		           "%s exists and cannot be probed (connect: %s); not removing it", path,
		           strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int listen_unix(const char *path, int mode, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	size_t n;
	int fd = -1, bound = 0, live;

	if (path == NULL || path[0] == 0) {
		errbuf_set(err, errlen, "control socket path is empty");
		goto fail;
	}
	n = strlen(path);
	if (n >= sizeof sun.sun_path) {
		errbuf_set(err, errlen,
		           "control socket path %s is %zu bytes, over the %zu-byte limit of a unix "
		           "socket address",
		           path, n, sizeof sun.sun_path - 1);
		goto fail;
	}
	if (mode < 0 || mode > 07777) {
		errbuf_set(err, errlen, "%s: mode %#o is not a file mode", path, (unsigned)mode);
		goto fail;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errbuf_set(err, errlen, "%s exists and is not a socket; not removing it",
			           path);
			goto fail;
		}
		live = listen_probe(&sun, path, err, errlen);
		if (live < 0)
			goto fail;
		if (live) {
			errbuf_set(err, errlen, "another awaitd is listening on %s", path);
			goto fail;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			errbuf_set(err, errlen, "removing stale socket %s: %s", path,
			           strerror(errno));
			goto fail;
		}
	} else if (errno != ENOENT) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errbuf_set(err, errlen, "socket for %s: %s", path, strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		if (errno == EADDRINUSE)
			errbuf_set(err, errlen,
			           "%s appeared while binding (another awaitd starting?)", path);
		else
			errbuf_set(err, errlen, "bind %s: %s", path, strerror(errno));
		goto fail;
	}
	bound = 1;
	if (chmod(path, (mode_t)mode) < 0) {
		errbuf_set(err, errlen, "chmod %#o %s: %s", (unsigned)mode, path, strerror(errno));
		goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		errbuf_set(err, errlen, "listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	if (bound)
		unlink(path);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Is gid one the daemon admits: its own effective gid or allow_gid? */
static int listen_gid_ok(gid_t gid, int allow_gid)
{
	return gid == getegid() || (allow_gid >= 0 && gid == (gid_t)allow_gid);
}

int listen_peer_allowed(int fd, int allow_gid, char *err, size_t errlen)
{
	gid_t stack[LISTEN_NGROUPS_STACK];
	gid_t *groups = stack;
	struct ucred uc;
	socklen_t len = sizeof uc;
	size_t i, ngroups;
	int rc = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		errbuf_set(err, errlen, "SO_PEERCRED on fd %d: %s", fd, strerror(errno));
		goto out;
	}
	rc = 1;
	if (uc.uid == 0 || uc.uid == geteuid() || listen_gid_ok(uc.gid, allow_gid))
		goto out;

	len = sizeof stack;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE) {
			len = 0; /* ENOPROTOOPT before Linux 4.13: the primary group only */
		} else {
			/* len now holds the size needed. */
			groups = malloc(len);
			if (groups == NULL) {
				errbuf_set(err, errlen,
				           "SO_PEERGROUPS on fd %d: %u bytes: out of memory", fd,
				           (unsigned)len);
				rc = -1;
				goto out;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
				len = 0;
		}
	}
	ngroups = len / sizeof *groups;
	for (i = 0; i < ngroups; i++)
		if (listen_gid_ok(groups[i], allow_gid))
			goto out;

	rc = 0;
	if (allow_gid >= 0)
		errbuf_set(err, errlen,
		           "peer pid %ld uid %lu gid %lu refused: not root, uid %lu, group %lu or "
		           "group %d",
		           (long)uc.pid, (unsigned long)uc.uid, (unsigned long)uc.gid,
		           (unsigned long)geteuid(), (unsigned long)getegid(), allow_gid);
	else
		errbuf_set(err, errlen,
		           "peer pid %ld uid %lu gid %lu refused: not root, uid %lu or group %lu",
		           (long)uc.pid, (unsigned long)uc.uid, (unsigned long)uc.gid,
		           (unsigned long)geteuid(), (unsigned long)getegid());
out:
	if (groups != stack)
		free(groups);
	return rc;
}
