/*
 * test_listen.c: the control socket's listening side on real sockets: the
 * created socket's mode and flags, stale files replaced, live sockets and
 * non-sockets left alone, socket activation in a forked child that owns
 * fd 3, and SO_PEERCRED checks on real connections (as another uid when the
 * tests run as root).
 *
 * _GNU_SOURCE for setgroups(), used to give a child peer known groups.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"

/* The uid and gid of "nobody"/"nogroup" on Debian. */
#define TEST_NOBODY 65534

struct lfx {
	char dir[64];   /* mkdtemp directory */
	char path[128]; /* dir/ctl.sock */
	char err[512];
};

static int setup(void **state)
{
	struct lfx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/awaitd-listen-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/ctl.sock", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	static const char *const names[] = {"ctl.sock", "act.sock", "other.sock"};
	struct lfx *fx = *state;
	char p[192];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", fx->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(fx->dir), 0); /* nothing else was left behind */
	free(fx);
	return 0;
}

static void fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof sun->sun_path);
	strcpy(sun->sun_path, path);
}

/* A blocking client connected to path, or -1 with errno set. */
static int client_connect(const char *path)
{
	struct sockaddr_un sun;
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(c >= 0);
	fill_sun(&sun, path);
	if (connect(c, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int e = errno;
		close(c);
		errno = e;
		return -1;
	}
	return c;
}

/* A socket bound at path; listening when backlog >= 0. */
static int bound_socket(const char *path, int backlog)
{
	struct sockaddr_un sun;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	fill_sun(&sun, path);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
	if (backlog >= 0)
		assert_int_equal(listen(s, backlog), 0);
	return s;
}

/* A client connects to path, the listener accepts it and one byte crosses. */
static void assert_serves(int lfd, const char *path)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	char b = 0;
	int c, a;

	c = client_connect(path);
	assert_true(c >= 0);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	a = accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(write(c, "x", 1), 1);
	assert_int_equal(read(a, &b, 1), 1);
	assert_int_equal(b, 'x');
	close(a);
	close(c);
}

static void assert_nonblock_cloexec(int fd)
{
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void test_create_mode_and_flags(void **state)
{
	struct lfx *fx = *state;
	struct stat st;
	mode_t old = umask(077); /* the mode must come from chmod, not the umask */
	int fd = listen_unix(fx->path, 0660, fx->err, sizeof fx->err);

	umask(old);
	if (fd < 0)
		fail_msg("listen_unix: %s", fx->err);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_nonblock_cloexec(fd);
	assert_serves(fd, fx->path);
	close(fd);
	assert_int_equal(unlink(fx->path), 0);

	fd = listen_unix(fx->path, 0600, fx->err, sizeof fx->err);
	assert_true(fd >= 0);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	close(fd);
}

static void test_stale_socket_replaced(void **state)
{
	struct lfx *fx = *state;
	struct stat st;
	int fd;

	/* Bound, never listened, closed without unlink. */
	close(bound_socket(fx->path, -1));
	assert_int_equal(lstat(fx->path, &st), 0);
	fd = listen_unix(fx->path, 0660, fx->err, sizeof fx->err);
	if (fd < 0)
		fail_msg("listen_unix: %s", fx->err);
	assert_serves(fd, fx->path);
	close(fd);

	/* A daemon that listened and crashed: the file stays behind. */
	assert_int_equal(unlink(fx->path), 0);
	close(bound_socket(fx->path, 16));
	fd = listen_unix(fx->path, 0660, fx->err, sizeof fx->err);
	assert_true(fd >= 0);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_serves(fd, fx->path);
	close(fd);
}

static void test_live_socket_not_stolen(void **state)
{
	struct lfx *fx = *state;
	struct stat before, after;
	char want[256], b;
	int live = bound_socket(fx->path, 16);
	int probe;

	assert_int_equal(lstat(fx->path, &before), 0);
	assert_int_equal(listen_unix(fx->path, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "another awaitd is listening on %s", fx->path);
	assert_string_equal(fx->err, want);
	assert_int_equal(lstat(fx->path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	/* The probe's connection reaches the live daemon as an immediate hang-up. */
	probe = accept(live, NULL, NULL);
	assert_true(probe >= 0);
	assert_int_equal(read(probe, &b, 1), 0);
	close(probe);
	assert_serves(live, fx->path); /* the first daemon still owns it */
	close(live);
}

/* A live daemon whose backlog is full answers EAGAIN: still live. */
static void test_live_socket_full_backlog(void **state)
{
	struct lfx *fx = *state;
	struct sockaddr_un sun;
	int live = bound_socket(fx->path, 0);
	int clients[64], n = 0;
	char want[256];

	fill_sun(&sun, fx->path);
	for (n = 0; n < 64; n++) {
		clients[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_true(clients[n] >= 0);
		if (connect(clients[n], (struct sockaddr *)&sun, sizeof sun) < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
	}
	assert_true(n < 64); /* the backlog did fill */
	assert_int_equal(listen_unix(fx->path, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "another awaitd is listening on %s", fx->path);
	assert_string_equal(fx->err, want);
	for (int i = 0; i <= n && i < 64; i++)
		close(clients[i]);
	close(live);
}

/* A socket file that cannot be probed (a datagram socket) is left alone. */
static void test_unprobeable_socket_kept(void **state)
{
	struct lfx *fx = *state;
	struct sockaddr_un sun;
	struct stat st;
	char want[256];
	int d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(d >= 0);
	fill_sun(&sun, fx->path);
	assert_int_equal(bind(d, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen_unix(fx->path, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want,
	         "%s exists and cannot be probed (connect: Protocol wrong type for socket); not "
	         "removing it",
	         fx->path);
	assert_string_equal(fx->err, want);
	assert_int_equal(lstat(fx->path, &st), 0);
	close(d);
}

static void test_regular_file_kept(void **state)
{
	struct lfx *fx = *state;
	char want[256], buf[32] = {0};
	FILE *f = fopen(fx->path, "w");

	assert_non_null(f);
	fputs("keep me", f);
	fclose(f);
	assert_int_equal(listen_unix(fx->path, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "%s exists and is not a socket; not removing it", fx->path);
	assert_string_equal(fx->err, want);
	f = fopen(fx->path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "keep me");
}

static void test_bad_paths(void **state)
{
	struct lfx *fx = *state;
	char longpath[200], want[512], missing[192];

	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = 0;
	assert_int_equal(listen_unix(longpath, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want,
	         "control socket path %s is 199 bytes, over the 107-byte limit of a unix socket "
	         "address",
	         longpath);
	assert_string_equal(fx->err, want);

	assert_int_equal(listen_unix("", 0660, fx->err, sizeof fx->err), -1);
	assert_string_equal(fx->err, "control socket path is empty");

	snprintf(missing, sizeof missing, "%s/nodir/ctl.sock", fx->dir);
	assert_int_equal(listen_unix(missing, 0660, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "bind %s: No such file or directory", missing);
	assert_string_equal(fx->err, want);

	/* err may be NULL: still -1, nothing written anywhere. */
	assert_int_equal(listen_unix("", 0660, NULL, 0), -1);
}

/*
 * Socket activation runs in a forked child, which owns fd 3 and its own
 * environment, and reports back through a pipe and its exit status.
 */
enum fd3_kind {
	FD3_LISTENING,     /* a listening unix stream socket, as systemd passes */
	FD3_REGULAR,       /* a regular file */
	FD3_CLOSED,        /* nothing */
	FD3_NOT_LISTENING, /* a bound unix stream socket without listen() */
	FD3_DGRAM,         /* a unix datagram socket */
	FD3_TCP,           /* a listening TCP socket on 127.0.0.1 */
};

enum env_pid { PID_OWN, PID_OTHER, PID_UNSET };

struct act {
	int rc;
	int nonblock, cloexec; /* flags of fd 3 afterwards */
	int fd3_open;          /* fd 3 still open afterwards */
	int fd4_open;          /* the second passed fd, when LISTEN_FDS=2 */
	int env_left;          /* LISTEN_* variables still set */
	int served;            /* a client connected and was accepted on fd 3 */
	char err[256];
};

static int child_fd3(enum fd3_kind kind, const char *path)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	int s = -1;

	switch (kind) {
	case FD3_LISTENING:
	case FD3_NOT_LISTENING:
		s = socket(AF_UNIX, SOCK_STREAM, 0); /* blocking, inheritable: as passed */
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		strcpy(sun.sun_path, path);
		if (s < 0 || bind(s, (struct sockaddr *)&sun, sizeof sun) < 0)
			return -1;
		if (kind == FD3_LISTENING && listen(s, 16) < 0)
			return -1;
		break;
	case FD3_REGULAR:
		s = open("/dev/null", O_RDONLY);
		break;
	case FD3_CLOSED:
		close(3);
		return 0;
	case FD3_DGRAM:
		s = socket(AF_UNIX, SOCK_DGRAM, 0);
		break;
	case FD3_TCP:
		s = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(s, 4) < 0)
			return -1;
		break;
	}
	if (s < 0 || dup2(s, 3) < 0)
		return -1;
	if (s != 3)
		close(s);
	return 0;
}

static void run_activated(struct lfx *fx, enum fd3_kind kind, enum env_pid envpid, const char *nfds,
                          struct act *res)
{
	char path[192];
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	snprintf(path, sizeof path, "%s/act.sock", fx->dir);
	memset(res, 0, sizeof *res);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct act r;
		char num[32];
		int out = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 10); /* out of fd 3's way */

		memset(&r, 0, sizeof r);
		close(pipefd[0]);
		close(pipefd[1]);
		if (out < 0 || child_fd3(kind, path) < 0)
			_exit(2);
		if (strcmp(nfds, "2") == 0) {
			int extra = open("/dev/null", O_RDONLY);

			if (extra < 0 || dup2(extra, 4) < 0)
				_exit(3);
			if (extra != 4)
				close(extra);
		}
		if (envpid != PID_UNSET) {
			snprintf(num, sizeof num, "%ld",
			         (long)(envpid == PID_OWN ? getpid() : getppid()));
			setenv("LISTEN_PID", num, 1);
		}
		setenv("LISTEN_FDS", nfds, 1);
		setenv("LISTEN_FDNAMES", "control", 1);
		r.rc = listen_activated(r.err, sizeof r.err);
		r.fd3_open = fcntl(3, F_GETFD) >= 0;
		r.fd4_open = fcntl(4, F_GETFD) >= 0;
		if (r.fd3_open) {
			r.nonblock = (fcntl(3, F_GETFL) & O_NONBLOCK) != 0;
			r.cloexec = (fcntl(3, F_GETFD) & FD_CLOEXEC) != 0;
		}
		r.env_left = getenv("LISTEN_PID") != NULL || getenv("LISTEN_FDS") != NULL ||
		             getenv("LISTEN_FDNAMES") != NULL;
		if (r.rc == 3) {
			struct sockaddr_un sun;
			int c = socket(AF_UNIX, SOCK_STREAM, 0);
			int a;

			memset(&sun, 0, sizeof sun);
			sun.sun_family = AF_UNIX;
			strcpy(sun.sun_path, path);
			if (c >= 0 && connect(c, (struct sockaddr *)&sun, sizeof sun) == 0) {
				a = accept(3, NULL, NULL);
				r.served = a >= 0;
				if (a >= 0)
					close(a);
			}
			if (c >= 0)
				close(c);
		}
		if (write(out, &r, sizeof r) != (ssize_t)sizeof r)
			_exit(4);
		_exit(0);
	}
	close(pipefd[1]);
	n = read(pipefd[0], res, sizeof *res);
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(n, sizeof *res);
}

static void test_activated(void **state)
{
	struct lfx *fx = *state;
	struct act r;

	run_activated(fx, FD3_LISTENING, PID_OWN, "1", &r);
	assert_int_equal(r.rc, 3);
	assert_string_equal(r.err, "");
	assert_int_equal(r.nonblock, 1);
	assert_int_equal(r.cloexec, 1);
	assert_int_equal(r.env_left, 0);
	assert_int_equal(r.served, 1);
}

/* Extra fds are left open and untouched. */
static void test_activated_two_fds(void **state)
{
	struct lfx *fx = *state;
	struct act r;

	run_activated(fx, FD3_LISTENING, PID_OWN, "2", &r);
	assert_int_equal(r.rc, 3);
	assert_int_equal(r.fd4_open, 1);
	assert_int_equal(r.env_left, 0);
	assert_int_equal(r.served, 1);
}

static void test_not_activated(void **state)
{
	struct lfx *fx = *state;
	char act_path[192];
	struct act r;

	snprintf(act_path, sizeof act_path, "%s/act.sock", fx->dir);
	run_activated(fx, FD3_LISTENING, PID_OTHER, "1", &r);
	assert_int_equal(r.rc, -2);
	assert_string_equal(r.err, "");
	assert_int_equal(r.env_left, 0);
	assert_int_equal(r.fd3_open, 1);
	assert_int_equal(r.nonblock, 0); /* not ours: not touched */
	unlink(act_path);

	run_activated(fx, FD3_LISTENING, PID_UNSET, "1", &r);
	assert_int_equal(r.rc, -2);
	assert_int_equal(r.nonblock, 0);
	unlink(act_path);

	run_activated(fx, FD3_LISTENING, PID_OWN, "0", &r);
	assert_int_equal(r.rc, -2);
	assert_int_equal(r.env_left, 0);
}

static void test_activated_bad_fd3(void **state)
{
	struct lfx *fx = *state;
	char act_path[192];
	struct act r;

	snprintf(act_path, sizeof act_path, "%s/act.sock", fx->dir);

	run_activated(fx, FD3_REGULAR, PID_OWN, "1", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "socket activation: fd 3 is not a socket");
	assert_int_equal(r.fd3_open, 1); /* left as it was */
	assert_int_equal(r.env_left, 0);

	run_activated(fx, FD3_CLOSED, PID_OWN, "1", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "socket activation: LISTEN_FDS is set but fd 3 is not open");

	run_activated(fx, FD3_NOT_LISTENING, PID_OWN, "1", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(
	    r.err, "socket activation: fd 3 is not listening (Accept=yes in the .socket unit?)");
	unlink(act_path);

	run_activated(fx, FD3_DGRAM, PID_OWN, "1", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "socket activation: fd 3 is not a stream socket (SO_TYPE 2); "
	                           "the .socket unit needs ListenStream=");

	run_activated(fx, FD3_TCP, PID_OWN, "1", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "socket activation: fd 3 is not a unix socket (address family "
	                           "2); ListenStream= must be a path");

	run_activated(fx, FD3_LISTENING, PID_OWN, "abc", &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.err, "socket activation: LISTEN_FDS=\"abc\" is not a count of fds");
	assert_int_equal(r.env_left, 0);
}

static void test_peer_same_uid(void **state)
{
	struct lfx *fx = *state;
	int sv[2], p[2];
	char want[128];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fx->err[0] = 0;
	assert_int_equal(listen_peer_allowed(sv[0], -1, fx->err, sizeof fx->err), 1);
	assert_int_equal(listen_peer_allowed(sv[1], 12345, fx->err, sizeof fx->err), 1);
	assert_string_equal(fx->err, "");
	close(sv[0]);
	close(sv[1]);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(listen_peer_allowed(p[0], -1, fx->err, sizeof fx->err), -1);
	snprintf(want, sizeof want, "SO_PEERCRED on fd %d: Socket operation on non-socket", p[0]);
	assert_string_equal(fx->err, want);
	close(p[0]);
	close(p[1]);
}

/*
 * Connect to the abstract socket name as uid/gid TEST_NOBODY with the given
 * supplementary groups (root only), accept, and return the accepted fd;
 * *child is the peer process, which exits when the fd is closed.
 */
static int peer_as_nobody(const gid_t *groups, size_t ngroups, pid_t *child)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	struct timespec ts;
	socklen_t len;
	int l, a;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "awaitd-test-peer-%ld-%ld",
	         (long)getpid(), (long)ts.tv_nsec);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sun.sun_path + 1));
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(listen(l, 4), 0);
	*child = fork();
	assert_true(*child >= 0);
	if (*child == 0) {
		char b;
		int c;

		if (setgroups(ngroups, groups) < 0 || setgid(TEST_NOBODY) < 0 ||
		    setuid(TEST_NOBODY) < 0)
			_exit(2);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&sun, len) < 0)
			_exit(3);
		while (read(c, &b, 1) > 0) /* until the parent is done */
			;
		_exit(0);
	}
	pfd.fd = l;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	close(l);
	return a;
}

static void peer_done(int a, pid_t child)
{
	int status;

	close(a);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_peer_other_uid(void **state)
{
	struct lfx *fx = *state;
	static const gid_t supp[] = {4242};
	gid_t many[100];
	char want[256];
	pid_t child;
	int a;

	if (geteuid() != 0)
		skip(); /* needs root to connect as another uid */

	a = peer_as_nobody(NULL, 0, &child);
	assert_int_equal(listen_peer_allowed(a, -1, fx->err, sizeof fx->err), 0);
	snprintf(want, sizeof want,
	         "peer pid %ld uid 65534 gid 65534 refused: not root, uid 0 or group 0",
	         (long)child);
	assert_string_equal(fx->err, want);
	assert_int_equal(listen_peer_allowed(a, 4242, fx->err, sizeof fx->err), 0);
	snprintf(want, sizeof want,
	         "peer pid %ld uid 65534 gid 65534 refused: not root, uid 0, group 0 or group 4242",
	         (long)child);
	assert_string_equal(fx->err, want);
	/* The socket file's group as the peer's primary group. */
	assert_int_equal(listen_peer_allowed(a, TEST_NOBODY, fx->err, sizeof fx->err), 1);
	peer_done(a, child);

	/* A supplementary member of the socket's group is admitted. */
	a = peer_as_nobody(supp, 1, &child);
	assert_int_equal(listen_peer_allowed(a, 4242, fx->err, sizeof fx->err), 1);
	assert_int_equal(listen_peer_allowed(a, 4243, fx->err, sizeof fx->err), 0);
	peer_done(a, child);

	/* More groups than the stack buffer holds: the ERANGE retry. */
	for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
		many[i] = (gid_t)(5000 + i);
	a = peer_as_nobody(many, sizeof many / sizeof many[0], &child);
	assert_int_equal(listen_peer_allowed(a, 5099, fx->err, sizeof fx->err), 1);
	assert_int_equal(listen_peer_allowed(a, 5100, fx->err, sizeof fx->err), 0);
	peer_done(a, child);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_mode_and_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_socket_not_stolen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_socket_full_backlog, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unprobeable_socket_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_regular_file_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_activated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_activated_two_fds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_activated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_activated_bad_fd3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_same_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_other_uid, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
