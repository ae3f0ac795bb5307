/*
 * tmpdir.h: temporary directories for unit tests that need real files
 * (SQLite databases, migration folders): removing one with what it holds.
 */
#ifndef AWAITD_TEST_TMPDIR_H
#define AWAITD_TEST_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
