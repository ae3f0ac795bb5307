/*
 * test_histo.c: fixed-bucket histograms: a value on a bound counts in that
 * bucket (Prometheus' le is "less than or equal"), above the last in +Inf,
 * NaN is ignored, the JSON form is cumulative with the sum and count; and
 * the loop-lag probe (loopwatch) counts a callback that holds the loop as
 * lag on a real libevent loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "histo.h"
#include "loopwatch.h"

static const double le[] = {1, 5, 10};

static void assert_json(json_t *v, const char *want)
{
	char *text;

	assert_non_null(v);
	text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	json_decref(v);
}

static void test_buckets(void **state)
{
	struct histo h;

	(void)state;
	histo_init(&h, le, 3);
	histo_observe(&h, 0.5);
	histo_observe(&h, 1); /* on the bound: in it */
	histo_observe(&h, 1.0001);
	histo_observe(&h, 10);
	histo_observe(&h, 11); /* +Inf */
	histo_observe(&h, NAN);
	assert_int_equal(h.count, 5);
	assert_int_equal(h.counts[0], 2);
	assert_int_equal(h.counts[1], 1);
	assert_int_equal(h.counts[2], 1);
	assert_int_equal(h.counts[3], 1);
	assert_json(histo_json(&h),
	            "{\"count\":5,\"counts\":[2,3,4,5],\"le\":[1.0,5.0,10.0],\"sum\":23.5001}");
}

static void test_empty_and_capped(void **state)
{
	static const double many[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
	struct histo h;

	(void)state;
	histo_init(&h, le, 3);
	assert_json(histo_json(&h),
	            "{\"count\":0,\"counts\":[0,0,0,0],\"le\":[1.0,5.0,10.0],\"sum\":0.0}");
	histo_init(&h, many, 20); /* more bounds than it holds: the first 16 */
	assert_int_equal(h.n, HISTO_MAX_BUCKETS);
	histo_observe(&h, 100);
	assert_int_equal(h.counts[HISTO_MAX_BUCKETS], 1);
}

static void hold(evutil_socket_t fd, short what, void *arg)
{
	struct timespec ts = {0, 60 * 1000000}; /* the loop is held 60 ms */

	(void)fd;
	(void)what;
	(void)arg;
	nanosleep(&ts, NULL);
}

static void test_loopwatch_counts_a_held_loop(void **state)
{
	struct event_base *base = event_base_new();
	struct loopwatch *lw = loopwatch_new(base, 20);
	struct timeval at = {0, 30000}, end = {0, 300000};
	struct event *ev = evtimer_new(base, hold, NULL);
	json_t *j, *lag;

	(void)state;
	assert_non_null(lw);
	evtimer_add(ev, &at);
	event_base_loopexit(base, &end);
	event_base_dispatch(base);
	j = loopwatch_json(lw);
	lag = json_object_get(j, "lag");
	/* ~300 ms of 20 ms probes, one of them held up to 60 ms late */
	assert_true(json_integer_value(json_object_get(lag, "count")) >= 3);
	assert_true(json_real_value(json_object_get(j, "max_ms")) >= 20);
	assert_true(json_real_value(json_object_get(lag, "sum")) >= 0.02);
	json_decref(j);
	event_free(ev);
	loopwatch_free(lw);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets),
	    cmocka_unit_test(test_empty_and_capped),
	    cmocka_unit_test(test_loopwatch_counts_a_held_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
