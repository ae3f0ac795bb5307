/*
 * logbook.h: the daemon's recent log lines, for `awaitctl logs`, and the
 * connections that follow new ones (`logs -f`). The service feeds it from
 * its log sink; the logs command reads and follows it.
 */
#ifndef AWAITD_LOGBOOK_H
#define AWAITD_LOGBOOK_H

#include <stddef.h>
#include <stdint.h>

#define LOGBOOK_LINES 1000 /* lines kept */

struct conn;

struct logbook_follower {
	struct conn *conn; /* held while it follows */
	int64_t id;        /* the request it answers events to */
	struct logbook_follower *next;
};

struct logbook {
	char *lines[LOGBOOK_LINES]; /* a ring; malloc'd lines */
	size_t head;                /* next slot to write */
	size_t count;               /* lines held, at most LOGBOOK_LINES */
	struct logbook_follower *followers;
};

/* Keep a copy of line (len bytes) and send it to every follower. Memory errors drop it. */
void logbook_add(struct logbook *lb, const char *line, size_t len);

/* The i-th of the last n lines (0 the oldest of them); n <= lb->count. */
const char *logbook_line(const struct logbook *lb, size_t n, size_t i);

/* Send new lines to c as events of request id until c closes. 0, or -1 out of memory. */
int logbook_follow(struct logbook *lb, struct conn *c, int64_t id);

/* Free the lines and let every follower go. */
void logbook_fini(struct logbook *lb);

#endif
