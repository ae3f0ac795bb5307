/*
 * test_notify.c: sd_notify datagrams received on a real NOTIFY_SOCKET (a
 * bound SOCK_DGRAM in a temporary directory, or an abstract name), the
 * not-under-systemd and nobody-listening cases, a full receiver queue that
 * must not block, and WATCHDOG_USEC/WATCHDOG_PID parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

struct nfx {
	char dir[64];   /* mkdtemp directory */
	char path[128]; /* dir/notify, or "@name" for an abstract socket */
	int fd;         /* the receiving SOCK_DGRAM */
};

static void nfx_bind(struct nfx *fx)
{
	struct sockaddr_un sun;
	socklen_t len;
	size_t n = strlen(fx->path);

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, fx->path, n);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (fx->path[0] == '@')
		sun.sun_path[0] = 0;
	else
		len++;
	fx->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fx->fd >= 0);
	assert_int_equal(bind(fx->fd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", fx->path, 1), 0);
}

static int setup_path(void **state)
{
	struct nfx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/awaitd-notify-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof fx->path, "%s/notify", fx->dir);
	nfx_bind(fx);
	*state = fx;
	return 0;
}

static int setup_abstract(void **state)
{
	struct nfx *fx = calloc(1, sizeof *fx);
	struct timespec ts;

	assert_non_null(fx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(fx->path, sizeof fx->path, "@awaitd-test-notify-%ld-%ld", (long)getpid(),
	         (long)ts.tv_nsec);
	nfx_bind(fx);
	*state = fx;
	return 0;
}

static int setup_none(void **state)
{
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	struct nfx *fx = *state;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (fx == NULL)
		return 0;
	if (fx->fd >= 0)
		close(fx->fd);
	if (fx->dir[0] != 0) {
		unlink(fx->path);
		rmdir(fx->dir);
	}
	free(fx);
	return 0;
}

/* The next queued datagram, NUL-terminated; fails when none is queued. */
static size_t nfx_recv(struct nfx *fx, char *buf, size_t len)
{
	ssize_t n = recv(fx->fd, buf, len - 1, MSG_DONTWAIT);

	if (n < 0)
		fail_msg("recv: %s", strerror(errno));
	buf[n] = 0;
	return (size_t)n;
}

static void nfx_assert_empty(struct nfx *fx)
{
	char c;

	assert_int_equal(recv(fx->fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* The lowest free fd number: unchanged across a call means no fd leaked. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static void test_ready_stopping_watchdog(void **state)
{
	struct nfx *fx = *state;
	char buf[256];
	int before = lowest_free_fd();

	assert_int_equal(notify_send("READY=1"), 1);
	assert_int_equal(notify_send("WATCHDOG=1"), 1);
	assert_int_equal(notify_send("STOPPING=1"), 1);
	assert_int_equal(nfx_recv(fx, buf, sizeof buf), 7);
	assert_string_equal(buf, "READY=1");
	assert_int_equal(nfx_recv(fx, buf, sizeof buf), 10);
	assert_string_equal(buf, "WATCHDOG=1");
	assert_int_equal(nfx_recv(fx, buf, sizeof buf), 10);
	assert_string_equal(buf, "STOPPING=1");
	nfx_assert_empty(fx);
	assert_int_equal(lowest_free_fd(), before);
}

static void test_status_sendf(void **state)
{
	struct nfx *fx = *state;
	char buf[256];

	assert_int_equal(notify_sendf("STATUS=%d jobs running, %s", 3, "0 failed"), 1);
	nfx_recv(fx, buf, sizeof buf);
	assert_string_equal(buf, "STATUS=3 jobs running, 0 failed");
	nfx_assert_empty(fx);
}

static void test_status_sendf_long(void **state)
{
	struct nfx *fx = *state;
	static char big[3000], want[3100], buf[4096];

	memset(big, 'x', sizeof big - 1);
	snprintf(want, sizeof want, "STATUS=%s", big);
	assert_int_equal(notify_sendf("STATUS=%s", big), 1);
	assert_int_equal(nfx_recv(fx, buf, sizeof buf), 7 + sizeof big - 1);
	assert_string_equal(buf, want);
}

static void test_reloading_monotonic(void **state)
{
	struct nfx *fx = *state;
	struct timespec a, b;
	uint64_t lo, hi, v;
	char buf[256];

	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(notify_reloading(), 1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	lo = (uint64_t)a.tv_sec * 1000000u + (uint64_t)a.tv_nsec / 1000u;
	hi = (uint64_t)b.tv_sec * 1000000u + (uint64_t)b.tv_nsec / 1000u;
	nfx_recv(fx, buf, sizeof buf);
	assert_int_equal(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27), 0);
	assert_int_equal(sscanf(buf + 27, "%" SCNu64, &v), 1);
	assert_true(v >= lo);
	assert_true(v <= hi);
	assert_int_equal(notify_send("READY=1"), 1);
	nfx_recv(fx, buf, sizeof buf);
	assert_string_equal(buf, "READY=1");
	nfx_assert_empty(fx);
}

static void test_abstract_socket(void **state)
{
	struct nfx *fx = *state;
	char buf[256];

	assert_int_equal(fx->path[0], '@');
	assert_int_equal(notify_send("READY=1"), 1);
	assert_int_equal(notify_sendf("STATUS=%s", "abstract"), 1);
	assert_int_equal(notify_reloading(), 1);
	nfx_recv(fx, buf, sizeof buf);
	assert_string_equal(buf, "READY=1");
	nfx_recv(fx, buf, sizeof buf);
	assert_string_equal(buf, "STATUS=abstract");
	nfx_recv(fx, buf, sizeof buf);
	assert_int_equal(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27), 0);
	nfx_assert_empty(fx);
}

static void test_unset_is_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(notify_sendf("STATUS=%d", 1), 0);
	assert_int_equal(notify_reloading(), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(notify_send("READY=1"), 0);
}

static void test_no_listener(void **state)
{
	struct nfx *fx = *state;
	int before;

	/* The socket file stays, nobody reads it: refused. */
	close(fx->fd);
	fx->fd = -1;
	before = lowest_free_fd();
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(lowest_free_fd(), before);

	/* No file at all. */
	assert_int_equal(unlink(fx->path), 0);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(notify_sendf("STATUS=%s", "x"), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_bad_addresses(void **state)
{
	char longpath[200];

	(void)state;
	assert_int_equal(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, EAFNOSUPPORT);

	assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, EINVAL);

	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = 0;
	assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	longpath[0] = '@';
	assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	assert_int_equal(setenv("NOTIFY_SOCKET", "/tmp/x", 1), 0);
	errno = 0;
	assert_int_equal(notify_send(NULL), -1);
	assert_int_equal(errno, EINVAL);
}

/* A receiver that never reads: sends fail with EAGAIN instead of blocking. */
static void test_full_queue_does_not_block(void **state)
{
	struct nfx *fx = *state;
	char buf[64];
	int i, rc = 1;

	alarm(20); /* a blocking send would hang the test: fail it instead */
	for (i = 0; i < 10000 && rc == 1; i++)
		rc = notify_send("WATCHDOG=1");
	alarm(0);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(i > 1);
	/* What was queued is intact, and the socket takes more once drained. */
	nfx_recv(fx, buf, sizeof buf);
	assert_string_equal(buf, "WATCHDOG=1");
	assert_int_equal(notify_send("READY=1"), 1);
}

static void test_watchdog_usec(void **state)
{
	static const char *const bad[] = {
	    "0", "", "abc", "12x", "-5", " 5", "99999999999999999999999"};
	char pid[32];
	uint64_t usec = 7;

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 7);

	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(notify_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 30000000);

	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "5000000", 1);
	usec = 7;
	assert_int_equal(notify_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 5000000);

	snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	usec = 7;
	assert_int_equal(notify_watchdog_usec(&usec), 0);
	assert_int_equal(usec, 7);

	setenv("WATCHDOG_PID", "not-a-pid", 1);
	assert_int_equal(notify_watchdog_usec(&usec), 0);
	unsetenv("WATCHDOG_PID");

	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		setenv("WATCHDOG_USEC", bad[k], 1);
		usec = 7;
		errno = 0;
		assert_int_equal(notify_watchdog_usec(&usec), 0);
		assert_int_equal(usec, 7);
		assert_int_equal(errno, 0);
	}

	setenv("WATCHDOG_USEC", "18446744073709551615", 1);
	assert_int_equal(notify_watchdog_usec(&usec), 1);
	assert_true(usec == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ready_stopping_watchdog, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_status_sendf, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_status_sendf_long, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_reloading_monotonic, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_abstract_socket, setup_abstract, teardown),
	    cmocka_unit_test_setup_teardown(test_unset_is_noop, setup_none, teardown),
	    cmocka_unit_test_setup_teardown(test_no_listener, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_addresses, setup_none, teardown),
	    cmocka_unit_test_setup_teardown(test_full_queue_does_not_block, setup_path, teardown),
	    cmocka_unit_test_setup_teardown(test_watchdog_usec, setup_none, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
