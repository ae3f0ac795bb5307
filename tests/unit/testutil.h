/*
 * testutil.h: small things the unit tests of the store and the job engine
 * share: removing a temporary directory with what it holds, a monotonic
 * clock, and a no-op timer callback (a periodic tick that keeps
 * EVLOOP_ONCE from blocking while a test polls for a condition).
 */
#ifndef AWAITD_TEST_UTIL_H
#define AWAITD_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

/* Monotonic clock in ms. */
static inline double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A timer callback that does nothing: its firing ends an EVLOOP_ONCE. */
static inline void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Remove path and everything under it (symlinks are not followed). */
static inline void rm_rf(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[1024];

	if (lstat(path, &sb) < 0)
		return;
	if (S_ISDIR(sb.st_mode) && (d = opendir(path))) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
				rm_rf(sub);
			}
		closedir(d);
	}
	remove(path);
}

#endif
