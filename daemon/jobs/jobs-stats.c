/*
 * jobs-stats.c: the job engine's figures for `stats` and /metrics: outcome
 * counters, latency and queue-wait percentiles (the last NLAT attempts),
 * and by script the attempts ended in each state and a histogram of their
 * durations.
 */
#include <stdlib.h>
#include <string.h>

#include "jobs-int.h"
#include "sched.h"
#include "store.h"

void jobs_record_latency(struct jobs *j, const struct run *run)
{
	size_t i = j->nlat++ % NLAT;

	j->lat[i] = sched_now() - run->started;
	j->wait[i] = (double)(run->started_at - run->run_at);
	if (j->wait[i] < 0)
		j->wait[i] = 0;
}

/* The per-script figures of an attempt whose end was recorded, ms after its start. */
void jobs_slot_count(struct slot *sl, const struct store_req *r, double ms)
{
	int k = r->op == STORE_FINISH ? store_state_parse(r->name) : STORE_QUEUED;

	if (k >= 0)
		sl->ended[k]++;
	if (k != STORE_QUEUED && k != STORE_WAITING && k >= 0)
		histo_observe(&sl->duration, ms / 1000);
}

/* Percentile p of the first n values of v (sorted copy). */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static json_t *percentiles(const double *v, size_t n)
{
	double *c;
	json_t *o;

	if (!n)
		return json_null();
	c = malloc(n * sizeof *c);
	if (!c)
		return json_null();
	memcpy(c, v, n * sizeof *c);
	qsort(c, n, sizeof *c, cmp_double);
	o = json_pack("{sf sf sf sf}", "p50", c[n / 2], "p90", c[n * 9 / 10], "p99",
	              c[n * 99 / 100], "max", c[n - 1]);
	free(c);
	return o ? o : json_null();
}

json_t *jobs_stats_json(struct jobs *j)
{
	size_t n = j->nlat < NLAT ? j->nlat : NLAT;
	json_t *by = json_object();

	/* sorting 2 x 4096 latencies costs more than the rest of `stats`: at most once a
	 * second, and not again while no attempt ended (a dashboard polls every second) */
	if (!j->pct[0] || (j->pct_nlat != j->nlat && sched_now() - j->pct_at >= PCT_EVERY_MS)) {
		json_decref(j->pct[0]);
		json_decref(j->pct[1]);
		j->pct[0] = percentiles(j->lat, n);
		j->pct[1] = percentiles(j->wait, n);
		j->pct_nlat = j->nlat;
		j->pct_at = sched_now();
	}

	/* by script: attempts ended by state, and their durations */
	for (size_t i = 0; by && i < j->nslots; i++) {
		const struct slot *sl = &j->slots[i];
		json_t *ended = json_object();
		/* the state an attempt left its job in, as an outcome */
		static const char *const outcome[STORE_NSTATES] = {
		    [STORE_QUEUED] = "requeued",     [STORE_SUCCEEDED] = "succeeded",
		    [STORE_FAILED] = "retried",      [STORE_DEAD] = "dead",
		    [STORE_CANCELLED] = "cancelled", [STORE_WAITING] = "parked"};
		for (int k = 0; ended && k < STORE_NSTATES; k++)
			if (outcome[k])
				json_object_set_new(ended, outcome[k],
				                    json_integer((json_int_t)sl->ended[k]));
		json_object_set_new(by, sl->name,
		                    json_pack("{so so sI}", "ended", ended ? ended : json_null(),
		                              "duration_s", histo_json(&sl->duration), "claims",
		                              (json_int_t)sl->claims));
	}
	return json_pack("{sI sI sI sI sI sI sI sI so so so}", "running", (json_int_t)j->nruns,
	                 "completed", (json_int_t)j->completed, "failed", (json_int_t)j->failed,
	                 "retried", (json_int_t)j->retried, "dead", (json_int_t)j->dead,
	                 "cancelled", (json_int_t)j->cancelled, "requeued", (json_int_t)j->requeued,
	                 "parked", (json_int_t)j->parked, "latency_ms", json_incref(j->pct[0]),
	                 "wait_ms", json_incref(j->pct[1]), "by_script", by ? by : json_null());
}
