/*
 * pg-conn.c: one libpq connection on the loop. Once attached it is in
 * non-blocking and pipeline mode: statements are sent with
 * PQsendQueryParams one after the other, each noted as a slot, and a sync
 * point ends a unit of work; results come back in the order sent and are
 * handed with their slot to c->on_result as the socket delivers them. A
 * connection that breaks (PQconsumeInput or PQflush fails, or the
 * server sends a fatal error) is closed and c->on_state(c, 0) told;
 * reconnecting is the owner's business (pg_conn_start connects without
 * blocking).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "pg-int.h"

static void conn_lost(struct pg_conn *c, const char *what)
{
	const char *m = c->pq ? PQerrorMessage(c->pq) : "";
	size_t n;

	snprintf(c->err, sizeof c->err, "%s: %s", what, *m ? m : "the connection was closed");
	n = strlen(c->err);
	while (n && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
		c->err[--n] = '\0';
	pg_conn_close(c);
	if (c->on_state)
		c->on_state(c, 0);
}

static void want_write(struct pg_conn *c, int on)
{
	if (!c->wev)
		return;
	if (on)
		event_add(c->wev, NULL);
	else
		event_del(c->wev);
}

static int flush(struct pg_conn *c)
{
	int rc = PQflush(c->pq);

	if (rc < 0)
		return -1;
	want_write(c, rc == 1);
	return 0;
}

/* Take what the server sent: results for the slots in order, then notifications. */
static void drain(struct pg_conn *c)
{
	if (!PQconsumeInput(c->pq)) {
		conn_lost(c, "reading from PostgreSQL");
		return;
	}
	while (c->state == PGC_READY && c->slot_head < c->nslots && !PQisBusy(c->pq)) {
		struct pg_slot slot = c->slots[c->slot_head];
		PGresult *res = PQgetResult(c->pq);

		if (!res) {
			/* the end of one statement's results */
			c->slot_head++;
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			c->slot_head++; /* no NULL follows a sync */
		else if (slot.kind == PG_SLOT_SYNC) {
			/* a result past the last statement: the protocol lost its place */
			PQclear(res);
			conn_lost(c, "PostgreSQL answered out of order");
			return;
		}
		if (c->slot_head >= c->nslots)
			c->nslots = c->slot_head = 0; /* all answered */
		c->on_result(c, &slot, res);
		PQclear(res);
		if (c->state != PGC_READY || !c->pq)
			return; /* on_result closed it */
	}
	if (c->slot_head >= c->nslots)
		c->nslots = c->slot_head = 0;
	if (c->pq && PQstatus(c->pq) == CONNECTION_BAD) {
		conn_lost(c, "PostgreSQL closed the connection");
		return;
	}
	/* what other daemons announced (this one's own NOTIFYs come back too: skipped) */
	for (PGnotify *n; c->pq && (n = PQnotifies(c->pq)) != NULL; PQfreemem(n))
		if (c->st->wake && n->be_pid != PQbackendPID(c->pq))
			c->st->wake(c->st->wake_arg,
			            strcmp(n->relname, "awaitd_done") == 0 ? STORE_WAKE_DONE
			                                                   : STORE_WAKE_READY,
			            n->extra);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == PGC_READY)
		drain(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == PGC_READY && flush(c) < 0)
		conn_lost(c, "writing to PostgreSQL");
}

int pg_conn_attach(struct pg_conn *c)
{
	int fd = PQsocket(c->pq);

	if (fd < 0 || PQsetnonblocking(c->pq, 1) != 0 || !PQenterPipelineMode(c->pq)) {
		snprintf(c->err, sizeof c->err, "setting up the connection: %s",
		         PQerrorMessage(c->pq));
		return -1;
	}
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	c->rev = event_new(c->st->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->wev = event_new(c->st->base, fd, EV_WRITE, on_write, c);
	if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
		snprintf(c->err, sizeof c->err, "watching the connection: out of memory");
		return -1;
	}
	c->state = PGC_READY;
	return 0;
}

int pg_conn_open_blocking(struct pg_conn *c, const char *conninfo, char *err, size_t errlen)
{
	c->pq = PQconnectdb(conninfo);
	if (!c->pq || PQstatus(c->pq) != CONNECTION_OK) {
		const char *m = c->pq ? PQerrorMessage(c->pq) : "out of memory";
		size_t n = strlen(m);
		while (n && m[n - 1] == '\n')
			n--;
		errbuf_set(err, errlen, "connecting to PostgreSQL: %.*s", (int)n, m);
		pg_conn_close(c);
		return -1;
	}
	return 0;
}

/* ---- connecting without blocking ------------------------------------------------ */

static void connect_step(struct pg_conn *c);

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_step(arg);
}

static void connect_watch(struct pg_conn *c, short what)
{
	if (c->rev)
		event_free(c->rev);
	c->rev = event_new(c->st->base, PQsocket(c->pq), what, on_connect_io, c);
	if (!c->rev || event_add(c->rev, NULL) < 0)
		conn_lost(c, "connecting to PostgreSQL");
}

static void connect_step(struct pg_conn *c)
{
	switch (PQconnectPoll(c->pq)) {
	case PGRES_POLLING_READING:
		connect_watch(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		connect_watch(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		if (pg_conn_attach(c) < 0) {
			conn_lost(c, "connecting to PostgreSQL");
			return;
		}
		c->on_state(c, 1);
		return;
	default:
		conn_lost(c, "connecting to PostgreSQL");
	}
}

int pg_conn_start(struct pg_conn *c, const char *conninfo)
{
	pg_conn_close(c);
	c->pq = PQconnectStart(conninfo);
	if (!c->pq || PQstatus(c->pq) == CONNECTION_BAD) {
		conn_lost(c, "connecting to PostgreSQL");
		return -1;
	}
	if (PQsetnonblocking(c->pq, 1) != 0) {
		conn_lost(c, "connecting to PostgreSQL");
		return -1;
	}
	c->state = PGC_CONNECTING;
	connect_step(c);
	return 0;
}

void pg_conn_close(struct pg_conn *c)
{
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	c->rev = c->wev = NULL;
	if (c->pq)
		PQfinish(c->pq);
	c->pq = NULL;
	c->state = PGC_DOWN;
	c->nslots = c->slot_head = 0;
	c->prepared = 0; /* a new connection has none */
}

/* ---- sending -------------------------------------------------------------------- */

static int note(struct pg_conn *c, struct pg_slot slot)
{
	if (c->nslots == c->slots_cap) {
		size_t cap = c->slots_cap ? c->slots_cap * 2 : 64;
		struct pg_slot *ns = realloc(c->slots, cap * sizeof *ns);
		if (!ns) {
			snprintf(c->err, sizeof c->err, "out of memory");
			return -1;
		}
		c->slots = ns;
		c->slots_cap = cap;
	}
	c->slots[c->nslots++] = slot;
	return 0;
}

int pg_conn_send_raw(struct pg_conn *c, const char *sql, int n, const Oid *types,
                     const char *const *vals, const int *lens, const int *fmts, struct pg_slot slot)
{
	if (c->state != PGC_READY) {
		snprintf(c->err, sizeof c->err, "not connected to PostgreSQL");
		return -1;
	}
	if (note(c, slot) < 0)
		return -1;
	if (!PQsendQueryParams(c->pq, sql, n, types, vals, lens, fmts, 0)) {
		c->nslots--;
		snprintf(c->err, sizeof c->err, "sending to PostgreSQL: %s", PQerrorMessage(c->pq));
		return -1;
	}
	return 0;
}

int pg_conn_send(struct pg_conn *c, const char *sql, const struct pg_params *p, struct pg_slot slot)
{
	return pg_conn_send_raw(c, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, slot);
}

int pg_conn_send_prep(struct pg_conn *c, enum pg_prep which, const char *sql,
                      const struct pg_params *p, struct pg_slot slot)
{
	struct pg_slot own = {.kind = PG_SLOT_OWN};
	char name[32];

	if (c->state != PGC_READY) {
		snprintf(c->err, sizeof c->err, "not connected to PostgreSQL");
		return -1;
	}
	snprintf(name, sizeof name, "aw%d_%u", (int)which, c->prep_gen);
	if (!(c->prepared & (1u << which))) {
		if (note(c, own) < 0)
			return -1;
		if (!PQsendPrepare(c->pq, name, sql, p ? p->n : 0, NULL)) {
			c->nslots--;
			snprintf(c->err, sizeof c->err, "sending to PostgreSQL: %s",
			         PQerrorMessage(c->pq));
			return -1;
		}
		c->prepared |= 1u << which;
	}
	if (note(c, slot) < 0)
		return -1;
	if (!PQsendQueryPrepared(c->pq, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0)) {
		c->nslots--;
		snprintf(c->err, sizeof c->err, "sending to PostgreSQL: %s", PQerrorMessage(c->pq));
		return -1;
	}
	return 0;
}

void pg_conn_forget_prepared(struct pg_conn *c)
{
	c->prepared = 0;
	c->prep_gen++;
}

int pg_conn_sync(struct pg_conn *c)
{
	struct pg_slot slot = {.kind = PG_SLOT_SYNC};

	if (note(c, slot) < 0)
		return -1;
	if (!PQpipelineSync(c->pq) || flush(c) < 0) {
		snprintf(c->err, sizeof c->err, "sending to PostgreSQL: %s", PQerrorMessage(c->pq));
		return -1;
	}
	return 0;
}

PGresult *pg_exec_blocking(struct pg_conn *c, const char *sql, const struct pg_params *p, char *err,
                           size_t errlen)
{
	PGresult *res =
	    PQexecParams(c->pq, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return res;
	errbuf_set(err, errlen, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c->pq));
	PQclear(res);
	return NULL;
}
