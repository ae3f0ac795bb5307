/*
 * migrate.c: applying migrations/NNNN_name.sql in order (see migrate.h).
 *
 * The directory is read with scandir and sorted by version; every file
 * runs through sqlite3_exec between BEGIN IMMEDIATE and COMMIT, with the
 * insert into schema_migrations in the same transaction, so a migration is
 * either wholly applied and recorded or not at all.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "migrate.h"

#define MIGRATE_MAX_BYTES (16 * 1024 * 1024)

/*
 * The version of a file named NNNN_name.sql or NNNN_name.pg.sql (*pg set to
 * 1 for the latter, PostgreSQL's version of it), or -1 if the name does
 * not match.
 */
static int64_t file_version_pg(const char *name, int *pg)
{
	const char *p = name;
	int64_t v = 0;
	size_t len = strlen(name), digits = 0, ext;

	while (isdigit((unsigned char)*p) && digits < 15) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	*pg = len > 7 && strcmp(name + len - 7, ".pg.sql") == 0;
	ext = *pg ? 7 : 4;
	if (digits < 4 || *p++ != '_' || len < ext + 1 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	for (; p < name + len - ext; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return -1;
	return p > name + digits + 1 ? v : -1; /* a name after the '_' */
}

static int64_t file_version(const char *name)
{
	int pg;

	return file_version_pg(name, &pg);
}

static int only_migrations(const struct dirent *e)
{
	return file_version(e->d_name) >= 0;
}

static int by_version(const struct dirent **a, const struct dirent **b)
{
	int64_t va = file_version((*a)->d_name), vb = file_version((*b)->d_name);

	return va < vb ? -1 : va > vb ? 1 : strcmp((*a)->d_name, (*b)->d_name);
}

/* Read a whole file into a malloc'd NUL-terminated string, or NULL with err. */
char *migrate_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (n + 4096 + 1 > cap) {
			char *nb;
			cap = cap ? cap * 2 : 8192;
			if (cap > MIGRATE_MAX_BYTES || !(nb = realloc(buf, cap))) {
				errbuf_set(err, errlen, "%s: too large or out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		errbuf_set(err, errlen, "%s: not a text file", path);
		goto fail;
	}
	fclose(f);
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int exec(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	errbuf_set(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

int64_t migrate_version(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (exec(db,
	         "CREATE TABLE IF NOT EXISTS schema_migrations ("
	         " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
	         "schema_migrations", err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
	                       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		errbuf_set(err, errlen, "schema_migrations: %s", sqlite3_errmsg(db));
	else
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Is version v recorded? 1, 0, or -1 on error. */
static int applied(sqlite3 *db, int64_t v, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, s;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &st,
	                       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, v);
		s = sqlite3_step(st);
		rc = s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
	}
	if (rc < 0)
		errbuf_set(err, errlen, "schema_migrations: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

/* Apply one file: its SQL and its record in one transaction. */
static int apply_one(sqlite3 *db, const char *path, const char *name, int64_t v, int64_t now_ms,
                     char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char *sql = migrate_read(path, err, errlen);
	int rc = -1;

	if (!sql)
		return -1;
	if (exec(db, "BEGIN IMMEDIATE", path, err, errlen) < 0)
		goto out;
	if (exec(db, sql, path, err, errlen) < 0)
		goto rollback;
	if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations VALUES (?, ?, ?)", -1, &st,
	                       NULL) != SQLITE_OK) {
		errbuf_set(err, errlen, "%s: recording it: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		errbuf_set(err, errlen, "%s: recording it: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	if (exec(db, "COMMIT", path, err, errlen) < 0)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	free(sql);
	return rc;
}

int migrate_list(const char *dir, int for_pg, struct migration **out, char *err, size_t errlen)
{
	struct dirent **list = NULL;
	struct migration *m = NULL;
	int n, i, count = 0;

	*out = NULL;
	n = scandir(dir, &list, only_migrations, by_version);
	if (n < 0) {
		errbuf_set(err, errlen, "migrations directory %s: %s", dir, strerror(errno));
		return -1;
	}
	m = calloc((size_t)n + 1, sizeof *m);
	if (!m) {
		errbuf_set(err, errlen, "out of memory");
		count = -1;
	}
	for (i = 0; i < n && count >= 0; i++) {
		const char *name = list[i]->d_name;
		int pg, prev_pg = 0;
		int64_t v = file_version_pg(name, &pg);
		struct migration *last = count ? &m[count - 1] : NULL;

		if (pg && !for_pg)
			continue;
		if (last && last->version == v) {
			size_t stem = strlen(name) - (pg ? 7 : 4);
			file_version_pg(last->file, &prev_pg);
			if (pg != prev_pg && strlen(last->name) == stem + 4 &&
			    !strncmp(name, last->name, stem)) {
				/* NNNN_x.pg.sql beside NNNN_x.sql: PostgreSQL's version of it */
				if (pg)
					snprintf(last->file, sizeof last->file, "%s", name);
				continue;
			}
			errbuf_set(err, errlen, "%s/%s and %s/%s have the same number", dir,
			           last->file, dir, name);
			count = -1;
			break;
		}
		m[count].version = v;
		snprintf(m[count].file, sizeof m[count].file, "%s", name);
		if (pg) /* recorded under the name of the .sql it stands for */
			snprintf(m[count].name, sizeof m[count].name, "%.*s.sql",
			         (int)(strlen(name) - 7), name);
		else
			snprintf(m[count].name, sizeof m[count].name, "%s", name);
		count++;
	}
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (count < 0) {
		free(m);
		return -1;
	}
	*out = m;
	return count;
}

int migrate_apply(sqlite3 *db, const char *dir, int64_t now_ms, char *err, size_t errlen)
{
	struct migration *list = NULL;
	int n, i, rc = -1, count = 0;

	if (migrate_version(db, err, errlen) < 0)
		return -1;
	n = migrate_list(dir, 0, &list, err, errlen);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		char path[4096 + 300];
		int a;

		snprintf(path, sizeof path, "%s/%s", dir, list[i].file);
		a = applied(db, list[i].version, err, errlen);
		if (a < 0)
			goto out;
		if (a)
			continue;
		if (apply_one(db, path, list[i].name, list[i].version, now_ms, err, errlen) < 0)
			goto out;
		count++;
	}
	rc = count;
out:
	free(list);
	return rc;
}
