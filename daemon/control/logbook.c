/*
 * logbook.c: see logbook.h. A follower holds its connection (conn_hold)
 * and is dropped when the connection closes (conn_on_close) or at fini.
 */
#include <stdlib.h>
#include <string.h>

#include "logbook.h"
#include "server.h"

void logbook_add(struct logbook *lb, const char *line, size_t len)
{
	char *copy = strndup(line, len);

	if (!copy)
		return;
	free(lb->lines[lb->head]);
	lb->lines[lb->head] = copy;
	lb->head = (lb->head + 1) % LOGBOOK_LINES;
	if (lb->count < LOGBOOK_LINES)
		lb->count++;
	for (struct logbook_follower *f = lb->followers; f; f = f->next)
		conn_event(f->conn, f->id, json_pack("{s:s}", "line", copy));
}

const char *logbook_line(const struct logbook *lb, size_t n, size_t i)
{
	return lb->lines[(lb->head + LOGBOOK_LINES - n + i) % LOGBOOK_LINES];
}

static void unfollow(struct conn *c, void *arg)
{
	struct logbook *lb = arg;
	struct logbook_follower **pp = &lb->followers;

	while (*pp) {
		struct logbook_follower *f = *pp;
		if (f->conn == c) {
			*pp = f->next;
			conn_release(f->conn);
			free(f);
			return;
		}
		pp = &f->next;
	}
}

int logbook_follow(struct logbook *lb, struct conn *c, int64_t id)
{
	struct logbook_follower *f = malloc(sizeof *f);

	if (!f)
		return -1;
	f->conn = conn_hold(c);
	f->id = id;
	f->next = lb->followers;
	lb->followers = f;
	conn_on_close(c, unfollow, lb);
	return 0;
}

void logbook_fini(struct logbook *lb)
{
	while (lb->followers) {
		struct logbook_follower *f = lb->followers;
		lb->followers = f->next;
		conn_release(f->conn);
		free(f);
	}
	for (size_t i = 0; i < LOGBOOK_LINES; i++) {
		free(lb->lines[i]);
		lb->lines[i] = NULL;
	}
	lb->head = lb->count = 0;
}
