/*
 * pg-ops.c: each job operation of store.h as the statements that carry it
 * out on PostgreSQL (their results fill the request in pg-collect.c). The
 * statements of an operation are fixed before any is sent (several
 * statements of one operation follow each other in the pipeline with no
 * wait); what needs logic between statements is one function of
 * pg_funcs.sql. An operation that must not fail its batch (a bad `after`
 * id, a retry refused) gets its error as a result row, not as an SQL error.
 *
 * A claim under per-key limits, rates, keyed pauses or fair_by is
 * awaitd_claim_limited (pg_claim.sql); a plain one a prepared UPDATE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg-int.h"

#define PG_STR_(x) #x
#define PG_STR(x)  PG_STR_(x)
#define PRUNE_MAX  10000
#define READY      "state IN ('queued', 'failed', 'waiting')"

static const char *const sql_job = "SELECT " PG_JOB_COLS " FROM jobs WHERE id = $1";

static int send1(struct pg_conn *c, struct store_req *r, int step, const char *sql,
                 const struct pg_params *p)
{
	struct pg_slot slot = {.kind = PG_SLOT_REQ, .r = r, .step = step};

	return pg_conn_send(c, sql, p, slot);
}

/* The `after` list as a PostgreSQL array literal ("{1,2,3}"), malloc'd; NULL: none. */
static char *after_array(const struct store_req *r)
{
	char *s, *p;

	if (!r->nafter)
		return NULL;
	s = malloc(r->nafter * 21 + 3);
	if (!s)
		return NULL;
	p = s;
	*p++ = '{';
	for (size_t i = 0; i < r->nafter; i++)
		p += sprintf(p, "%s%lld", i ? "," : "", (long long)r->after[i]);
	*p++ = '}';
	*p = '\0';
	return s;
}

static int send_enqueue(struct pg_conn *c, struct store_req *r)
{
	struct pg_params p;
	char *after = after_array(r);
	int rc;

	if (r->nafter && !after)
		return store_fail(r, "out_of_memory", "out of memory");
	pg_params_init(&p);
	pg_param_text(&p, r->name);
	pg_param_text(&p, r->text);
	pg_param_text(&p, r->key);
	pg_param_i64(&p, r->priority);
	pg_param_i64(&p, r->max_attempts > 0 ? r->max_attempts : 1);
	pg_param_i64(&p, r->backoff_ms);
	pg_param_opt(&p, r->timeout_ms);
	pg_param_opt(&p, r->run_at);
	pg_param_i64(&p, r->now);
	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		pg_param_text(&p, r->limit_keys[i]);
	pg_param_text(&p, r->fair_key);
	pg_param_text(&p, after);
	rc = send1(c, r, 0,
	           "SELECT * FROM awaitd_enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
	           " $12, $13, $14, $15)",
	           &p);
	free(after);
	if (rc < 0 || !r->key)
		return rc < 0 ? -1 : 1;
	/* a key that names a job already: that one is the answer (read only then) */
	pg_params_init(&p);
	pg_param_text(&p, r->key);
	return send1(c, r, 1, "SELECT " PG_JOB_COLS " FROM jobs WHERE key = $1", &p) < 0 ? -1 : 2;
}

/*
 * sql with a, b, then each limit's cap, rate and period ($3 .. $14), then
 * the extra parameters of p (or none): the statements of pg_claim.sql.
 */
static int send_limits(struct pg_conn *c, struct store_req *r, const char *sql, int64_t a,
                       int64_t b, const struct pg_params *more)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_i64(&p, a);
	pg_param_i64(&p, b);
	for (int i = 0; i < STORE_MAX_LIMITS; i++) {
		pg_param_i64(&p, r->limit_caps[i]);
		pg_param_i64(&p, r->limit_rates[i]);
		pg_param_i64(&p, r->limit_pers[i]);
	}
	for (int i = 0; more && i < more->n && p.n < PG_MAX_PARAMS; i++)
		p.v[p.n++] = more->v[i];
	return send1(c, r, 1, sql, &p) < 0 ? -1 : 1;
}

/* A claim under per-key limits, rates, keyed pauses or fair_by: pg_claim.sql. */
static int send_claim_limited(struct pgstore *st, struct pg_conn *c, struct store_req *r,
                              int64_t base)
{
	struct pg_params more;

	pg_params_init(&more);
	pg_param_text(&more, r->name);
	pg_param_i64(&more, base - 1);
	pg_param_i64(&more, st->node);
	pg_param_i64(&more, r->flag != 0);
	return send_limits(c, r,
	                   "SELECT * FROM awaitd_claim_limited($15, $2, $1, $16, $17,"
	                   " ARRAY[$3, $6, $9, $12]::bigint[], ARRAY[$4, $7, $10, $13]::bigint[],"
	                   " ARRAY[$5, $8, $11, $14]::bigint[], $18::int <> 0)",
	                   r->n, r->now, &more);
}

/*
 * The ready jobs of a name, best first, skipping rows another daemon's
 * claim holds, each leased: one statement. Leases are the node's, one
 * each (base + row number).
 */
static int send_claim(struct pgstore *st, struct pg_conn *c, struct store_req *r)
{
	struct pg_params p;
	int64_t base = pg_new_lease(st);
	int limited = r->flag; /* fair_by */

	for (int i = 0; i < STORE_MAX_LIMITS; i++)
		limited |= r->limit_caps[i] > 0 || r->limit_rates[i] > 0;
	st->lease_seq += r->n; /* base .. base + n - 1 are this claim's */
	if (limited)
		return send_claim_limited(st, c, r, base);
	pg_params_init(&p);
	pg_param_text(&p, r->name);
	pg_param_i64(&p, r->now);
	pg_param_i64(&p, r->n);
	pg_param_i64(&p, base - 1);
	pg_param_i64(&p, st->node);
	{
		struct pg_slot slot = {.kind = PG_SLOT_REQ, .r = r, .step = 0};
		return pg_conn_send_prep(
		           c, PG_PREP_CLAIM,
		           "UPDATE jobs j SET state = 'running', attempt = j.attempt + (CASE WHEN"
		           "  n.resumed THEN 0 ELSE 1 END), lease = $4 + n.k, epoch = $5, "
		           "started_at = $2,"
		           "  progress = CASE WHEN n.resumed THEN j.progress END,"
		           "  progress_msg = CASE WHEN n.resumed THEN j.progress_msg END"
		           " FROM (SELECT c.id, c.resumed, row_number() OVER (ORDER BY c.id) AS k "
		           "FROM"
		           "  (SELECT id, state = 'waiting' AS resumed FROM jobs WHERE name = $1"
		           "   AND " READY " AND run_at <= $2 AND NOT EXISTS (SELECT 1 FROM"
		           "   awaitd_pauses WHERE name = $1 AND key = '' AND (until IS NULL OR "
		           "until >"
		           "   $2)) ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP "
		           "LOCKED) c)"
		           "  n WHERE j.id = n.id"
		           " RETURNING j.id, j.name, j.state, j.args, j.key, j.priority, j.attempt,"
		           "  j.max_attempts, j.backoff_ms, j.timeout_ms, j.run_at, j.created_at,"
		           "  j.started_at, j.finished_at, j.lease, j.result, j.error, j.wait_seq,"
		           "  j.wait_for, j.wait_until, j.cancelling, j.progress, j.progress_msg,"
		           "  n.resumed OR EXISTS (SELECT 1 FROM steps WHERE job_id = j.id), "
		           "n.resumed",
		           &p, slot) < 0
		           ? -1
		           : 1;
	}
}

static int send_finish(struct pg_conn *c, struct store_req *r)
{
	int terminal = strcmp(r->name, "failed") != 0;
	struct pg_params p;

	if (!strcmp(r->name, "waiting")) { /* parks at its wait (seq, key, run_at) */
		pg_params_init(&p);
		pg_param_i64(&p, r->id);
		pg_param_i64(&p, r->lease);
		pg_param_i64(&p, r->seq);
		pg_param_text(&p, r->key);
		pg_param_opt(&p, r->run_at);
		pg_param_i64(&p, r->now);
		pg_param_text(&p, r->text2);
		return send1(c, r, 2, "SELECT awaitd_park($1, $2, $3, $4, $5, $6, $7)", &p) < 0 ? -1
		                                                                                : 1;
	}
	if (store_state_parse(r->name) < 0 || !strcmp(r->name, "running") ||
	    !strcmp(r->name, "queued"))
		return store_fail(r, "invalid", "no job state \"%s\" to finish in", r->name);
	pg_params_init(&p);
	pg_param_i64(&p, r->id);
	pg_param_i64(&p, r->lease);
	pg_param_text(&p, r->name);
	pg_param_text(&p, r->text);
	pg_param_opt(&p, terminal ? r->now : 0);
	pg_param_opt(&p, terminal ? 0 : r->run_at);
	pg_param_text(&p, r->text2);
	pg_param_i64(&p, r->now);
	return send1(c, r, 0, "SELECT * FROM awaitd_finish($1, $2, $3, $4, $5, $6, $7, $8)", &p) < 0
	           ? -1
	           : 1;
}

/*
 * Statement `step` of an operation, with the usual parameters (id, lease,
 * now...) given as a format of letters.
 */
static int send_step(struct pg_conn *c, struct store_req *r, int step, const char *sql,
                     const char *fmt)
{
	struct pg_params p;

	pg_params_init(&p);
	for (const char *f = fmt; *f; f++) {
		switch (*f) {
		case 'i':
			pg_param_i64(&p, r->id);
			break;
		case 'l':
			pg_param_i64(&p, r->lease);
			break;
		case 'w':
			pg_param_i64(&p, r->now);
			break;
		case 'n':
			pg_param_text(&p, r->name);
			break;
		case 'N':
			pg_param_i64(&p, r->n);
			break;
		case 't':
			pg_param_text(&p, r->text);
			break;
		case 'k':
			pg_param_text(&p, r->key ? r->key : "");
			break;
		case 'r':
			pg_param_i64(&p, r->run_at);
			break;
		case 'R':
			pg_param_opt(&p, r->run_at);
			break;
		case 'f':
			pg_param_i64(&p, r->flag != 0);
			break;
		case 'F':
			pg_param_real(&p, r->fraction);
			break;
		case 'j':
			pg_param_i64(&p, r->job_id);
			break;
		case 's':
			pg_param_i64(&p, r->seq);
			break;
		case 'x':
			pg_param_i64(&p, r->id > 0 ? r->id : 0);
			break;
		case 'z':
			pg_param_i64(&p, r->n > 0 ? r->n : 20);
			break;
		default:
			break;
		}
	}
	return send1(c, r, step, sql, &p);
}

/* The first statement of an operation (send_step). */
static int send_simple(struct pg_conn *c, struct store_req *r, const char *sql, const char *fmt)
{
	return send_step(c, r, 0, sql, fmt);
}

static int send_job_after(struct pg_conn *c, struct store_req *r)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_param_i64(&p, r->id);
	return send1(c, r, 1, sql_job, &p);
}

int pg_op_send(struct pgstore *st, struct pg_conn *c, struct store_req *r)
{
	int rc;

	switch (r->op) {
	case STORE_ENQUEUE:
		return send_enqueue(c, r);
	case STORE_CLAIM:
		return send_claim(st, c, r);
	case STORE_FINISH:
		return send_finish(c, r);
	case STORE_REQUEUE:
		return send_simple(
		           c, r,
		           "WITH q AS (UPDATE jobs SET state = CASE WHEN $4 = 1 THEN 'waiting' ELSE"
		           " 'queued' END, attempt = attempt - (1 - $4), run_at = $1,"
		           " lease = NULL WHERE id = $2 AND state = 'running' AND lease = $3"
		           " RETURNING name)"
		           /* back in the queue: another daemon may take it at once */
		           " SELECT pg_notify('awaitd_jobs', name) FROM q",
		           "wilf") < 0
		           ? -1
		           : 1;
	case STORE_CANCEL:
		rc = send_simple(c, r, "SELECT * FROM awaitd_cancel($1, $2)", "iw");
		return rc < 0 || send_job_after(c, r) < 0 ? -1 : 2;
	case STORE_RETRY:
		rc = send_simple(c, r, "SELECT * FROM awaitd_retry($1, $2)", "iw");
		return rc < 0 || send_job_after(c, r) < 0 ? -1 : 2;
	case STORE_GET:
		rc = send_simple(c, r, sql_job, "i");
		if (rc < 0 || !r->flag)
			return rc < 0 ? -1 : 1;
		return send_step(c, r, 1,
		                 "SELECT seq, name, kind, result, at FROM steps WHERE job_id = $1"
		                 " ORDER BY seq",
		                 "i") < 0
		           ? -1
		           : 2;
	case STORE_LIST:
		return send_simple(c, r,
		                   "SELECT " PG_JOB_COLS
		                   " FROM jobs WHERE ($1::text IS NULL OR state = $1)"
		                   " AND ($2::text IS NULL OR name = $2) AND ($4 = 0 OR id < $4)"
		                   " ORDER BY id DESC LIMIT $3",
		                   "tnzx") < 0
		           ? -1
		           : 1;
	case STORE_COUNTS:
		rc = send_simple(c, r,
		                 r->flag
		                     ? "SELECT name, state, count(*) AS n FROM jobs GROUP BY"
		                       " name, state"
		                     : "SELECT '' AS name, state, count(*) AS n FROM jobs GROUP BY"
		                       " state",
		                 "");
		/* the daemons sharing the database, for `status` */
		return rc < 0 ||
		               send1(
		                   c, r, 1,
		                   "SELECT json_agg(json_build_object('node', n.id, 'host', n.host,"
		                   " 'pid', n.pid, 'started', n.started, 'seen_at', n.seen_at,"
		                   " 'running', (SELECT count(*) FROM jobs WHERE state = 'running'"
		                   " AND epoch = n.id)) ORDER BY n.id)::text FROM awaitd_nodes n",
		                   NULL) < 0
		           ? -1
		           : 2;
	case STORE_SPANS:
		rc = send_simple(c, r, "SELECT trace FROM jobs WHERE id = $1", "i");
		return rc < 0 || send_job_after(c, r) < 0 ? -1 : 2;
	case STORE_NEXT_DUE:
		return send_simple(c, r,
		                   "SELECT min(run_at) FROM jobs WHERE " READY
		                   " AND name = $1 AND run_at > $2",
		                   "nw") < 0
		           ? -1
		           : 1;
	case STORE_SCHEDULE:
		/* flag: a stored next fire of the same expression stands; then the next fire
		 * that stands, read by a statement of its own (step 1): its snapshot sees a row
		 * another daemon committed meanwhile */
		return send_simple(
		           c, r,
		           "INSERT INTO schedules AS s (name, expr, next_at) VALUES ($1, $2, $3)"
		           " ON CONFLICT (name) DO UPDATE SET expr = $2, next_at = $3"
		           " WHERE NOT ($4 = 1 AND s.expr = $2)",
		           "ntrf") < 0 ||
		               send_step(c, r, 1, "SELECT next_at FROM schedules WHERE name = $1",
		                         "n") < 0
		           ? -1
		           : 2;
	case STORE_FIRE: {
		struct pg_params p;
		pg_params_init(&p);
		pg_param_text(&p, r->name);
		pg_param_i64(&p, r->run_at);
		pg_param_i64(&p, r->n);
		pg_param_i64(&p, r->max_attempts);
		pg_param_i64(&p, r->backoff_ms);
		pg_param_i64(&p, r->now);
		return send1(c, r, 0, "SELECT * FROM awaitd_fire($1, $2, $3, $4, $5, $6)", &p) < 0
		           ? -1
		           : 1;
	}
	case STORE_PRUNE:
		return send_simple(
		           c, r,
		           "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN"
		           " ('succeeded', 'dead', 'cancelled') AND finished_at < $1 ORDER BY id"
		           " LIMIT " PG_STR(PRUNE_MAX) ")",
		           "w") < 0
		           ? -1
		           : 1;
	case STORE_PROGRESS:
		return send_simple(
		           c, r,
		           "UPDATE jobs SET progress = $1, progress_msg = $2 WHERE id = $3 AND"
		           " state = 'running' AND lease = $4",
		           "Ftil") < 0
		           ? -1
		           : 1;
	case STORE_STEP_GET:
		return send_simple(
		           c, r,
		           "SELECT seq, name, result FROM steps WHERE job_id = $1 AND (seq = $2"
		           " OR (name = $3 AND kind IN ('tx', 'step')))",
		           "jsn") < 0
		           ? -1
		           : 1;
	case STORE_STEP_PUT:
		return send_simple(
		           c, r,
		           "INSERT INTO steps (job_id, seq, name, kind, result, at) VALUES ($1,"
		           " $2, $3, 'step', coalesce($4, '[]'), $5) ON CONFLICT DO NOTHING",
		           "jsntw") < 0
		           ? -1
		           : 1;
	case STORE_PAUSE:
		if (r->flag)
			return send_simple(c, r,
			                   "INSERT INTO awaitd_pauses (name, key, until) VALUES "
			                   "($1, $2, $3)"
			                   " ON CONFLICT (name, key) DO UPDATE SET until = $3"
			                   " WHERE awaitd_pauses.until IS DISTINCT FROM $3",
			                   "nkR") < 0
			           ? -1
			           : 1;
		/* resumed: the daemons claim at once (step 1: pg_notify's row, unread) */
		return send_simple(c, r, "DELETE FROM awaitd_pauses WHERE name = $1 AND key = $2",
		                   "nk") < 0 ||
		               send_step(c, r, 1, "SELECT pg_notify('awaitd_jobs', $1)", "n") < 0
		           ? -1
		           : 2;
	case STORE_PAUSES:
		return send_simple(
		           c, r,
		           "SELECT name, key, until FROM awaitd_pauses WHERE until IS NULL OR"
		           " until > $1 ORDER BY name, key",
		           "w") < 0
		           ? -1
		           : 1;
	case STORE_WAIT: {
		struct pg_params p;
		pg_params_init(&p);
		pg_param_i64(&p, r->job_id);
		pg_param_i64(&p, r->lease);
		pg_param_i64(&p, r->seq);
		pg_param_text(&p, r->name);
		pg_param_text(&p, r->key);
		pg_param_opt(&p, r->run_at);
		pg_param_i64(&p, r->now);
		return send1(c, r, 0, "SELECT * FROM awaitd_wait($1, $2, $3, $4, $5, $6, $7)", &p) <
		               0
		           ? -1
		           : 1;
	}
	case STORE_SIGNAL:
		rc =
		    send_simple(c, r, "SELECT * FROM awaitd_signal($1, $2, $3, $4, 10000)", "intw");
		return rc < 0 || send_job_after(c, r) < 0 ? -1 : 2;
	case STORE_WHY: /* pg_claim.sql */
		return send_limits(
		    c, r,
		    "SELECT * FROM awaitd_why($1, $2, ARRAY[$3, $6, $9, $12]::bigint[],"
		    " ARRAY[$4, $7, $10, $13]::bigint[], ARRAY[$5, $8, $11, $14]::bigint[])",
		    r->id, r->now, NULL);
	default:
		return store_fail(r, "invalid", "unknown store operation %d", (int)r->op);
	}
}
