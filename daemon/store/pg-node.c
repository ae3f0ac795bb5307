/*
 * pg-node.c: this daemon as a node of the PostgreSQL store (see pg.c's
 * top): its leases, the heartbeat that finds dead nodes, and the life of
 * the main connection: lost (everything in flight fails, and everything
 * until it is back), reconnecting with backoff, registered again as a new
 * node that takes along the jobs it still runs (awaitd_rejoin).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pg-int.h"

#define BEAT_MS        1000.0 /* heartbeat and the search for dead nodes */
#define BACKOFF_MIN_MS 100.0
#define BACKOFF_MAX_MS 5000.0

int64_t pg_new_lease(struct pgstore *st)
{
	return st->node * ((int64_t)1 << 32) + ++st->lease_seq;
}

void pg_live_add(struct pgstore *st, int64_t lease)
{
	if (st->nlive == st->live_cap) {
		size_t cap = st->live_cap ? st->live_cap * 2 : 64;
		int64_t *v = realloc(st->live, cap * sizeof *v);
		if (!v)
			return; /* not adopted after a reconnect: it runs again (fenced) */
		st->live = v;
		st->live_cap = cap;
	}
	st->live[st->nlive++] = lease;
}

void pg_live_del(struct pgstore *st, int64_t lease)
{
	for (size_t i = 0; i < st->nlive; i++)
		if (st->live[i] == lease) {
			st->live[i] = st->live[--st->nlive];
			return;
		}
}

/* The live leases as a PostgreSQL array literal, malloc'd (NULL: out of memory). */
static char *live_array(const struct pgstore *st)
{
	char *s = malloc(st->nlive * 21 + 3), *p = s;

	if (!s)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < st->nlive; i++)
		p += sprintf(p, "%s%lld", i ? "," : "", (long long)st->live[i]);
	*p++ = '}';
	*p = '\0';
	return s;
}

/* ---- the connection's life: lost, reconnecting, registered again -------------------------- */

static void retry_later(struct pgstore *st)
{
	struct timeval tv;

	if (st->stopping)
		return;
	st->backoff_ms = st->backoff_ms ? st->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (st->backoff_ms > BACKOFF_MAX_MS)
		st->backoff_ms = BACKOFF_MAX_MS;
	tv.tv_sec = (time_t)(st->backoff_ms / 1000);
	tv.tv_usec = (suseconds_t)((st->backoff_ms - (double)tv.tv_sec * 1000) * 1000);
	evtimer_add(st->retry_ev, &tv);
}

static void on_registered(struct pgstore *st, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_error("PostgreSQL: registering this daemon again: %s",
		          PQresultErrorMessage(res));
		pg_conn_close(&st->main);
		pg_main_state(&st->main, 0);
		return;
	}
	st->node = pg_i64(res, 0, 0);
	st->lease_seq = 0;
	st->registered = 1;
	st->backoff_ms = 0;
	st->down_why[0] = '\0';
	log_info("PostgreSQL: connected again, node %lld", (long long)st->node);
}

void pg_main_state(struct pg_conn *c, int up)
{
	struct pgstore *st = c->st;

	if (up) {
		struct pg_params p;
		char host[256] = "";
		pg_params_init(&p);
		gethostname(host, sizeof host - 1);
		pg_param_text(&p, host);
		pg_param_i64(&p, (int64_t)getpid());
		pg_param_i64(&p, store_now());
		/* a new node, taking the jobs still running here; the old one is reaped */
		char *live = live_array(st);
		pg_param_i64(&p, st->node);
		pg_param_text(&p, live ? live : "{}");
		if (pg_own_send(st, "SELECT awaitd_rejoin($1, $2, $3, $4, $5)", &p, on_registered) <
		    0)
			retry_later(st);
		free(live);
		return;
	}
	/* lost: what was in flight fails, and everything until the connection is back */
	if (!st->down_why[0] || st->registered)
		snprintf(st->down_why, sizeof st->down_why, "PostgreSQL: %s", c->err);
	if (st->registered)
		log_error("%s; reconnecting", st->down_why);
	st->registered = 0;
	pg_batch_lost(st);
	retry_later(st);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct pgstore *st = arg;

	(void)fd;
	(void)what;
	if (st->stopping || st->main.state != PGC_DOWN)
		return;
	if (pg_conn_start(&st->main, st->conninfo) < 0)
		return; /* pg_conn_start told on_state, which retries */
}

static void on_beaten(struct pgstore *st, PGresult *res)
{
	int64_t n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_error("PostgreSQL: heartbeat: %s", PQresultErrorMessage(res));
		return;
	}
	n = pg_i64(res, 0, 0);
	if (n > 0) {
		log_info("PostgreSQL: requeued %lld jobs of dead nodes", (long long)n);
		if (st->wake)
			st->wake(st->wake_arg, STORE_WAKE_READY, "");
	}
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct pgstore *st = arg;
	struct timeval tv = {(time_t)(BEAT_MS / 1000), 0};
	struct pg_params p;

	(void)fd;
	(void)what;
	evtimer_add(st->beat_ev, &tv);
	pg_tx_reap(st);
	if (!st->registered)
		return;
	pg_params_init(&p);
	pg_param_i64(&p, st->node);
	pg_param_i64(&p, store_now());
	/* busy with a batch: the next beat goes (a beat late is no harm) */
	pg_own_send(st, "SELECT awaitd_beat($1, $2)", &p, on_beaten);
}

int pg_node_init(struct pgstore *st)
{
	st->retry_ev = evtimer_new(st->base, on_retry, st);
	st->beat_ev = evtimer_new(st->base, on_beat, st);
	return st->retry_ev && st->beat_ev ? 0 : -1;
}

void pg_node_beat_start(struct pgstore *st)
{
	struct timeval tv = {(time_t)(BEAT_MS / 1000), 0};

	evtimer_add(st->beat_ev, &tv);
}

void pg_node_free(struct pgstore *st)
{
	if (st->retry_ev)
		event_free(st->retry_ev);
	if (st->beat_ev)
		event_free(st->beat_ev);
	st->retry_ev = st->beat_ev = NULL;
	free(st->live);
	st->live = NULL;
}
