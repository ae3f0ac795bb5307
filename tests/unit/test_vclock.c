/*
 * test_vclock.c: timers in virtual time (vclock.h) on a real scheduler:
 * the heap's order (due time, then arming), disarming from any place,
 * skipping the clocks, tasks' sleeps and timeouts, and sched_timer in
 * both modes (virtual, and libevent's on a real loop).
 */
#include "harness.h"

#include "clock.h"
#include "vclock.h"

#define N 64

struct log {
	int order[N];
	int n;
};

struct mark {
	struct log *log;
	int id;
	struct sched_vt vt;
};

static void on_fire(void *arg)
{
	struct mark *m = arg;

	m->log->order[m->log->n++] = m->id;
}

static void test_heap_order_and_delete(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct mark m[N];
	struct log log = {{0}, 0};
	double t0, ms[] = {50, 10, 30, 10, 40, 20, 30, 5};
	int n = (int)(sizeof ms / sizeof ms[0]);

	(void)state;
	sched_vclock_on(fx->s);
	assert_true(sched_vclock(fx->s));
	assert_int_equal(sched_vclock_advance(fx->s), 0); /* nothing armed: nothing to skip to */
	t0 = sched_now();
	for (int i = 0; i < n; i++) {
		m[i].log = &log;
		m[i].id = i;
		sched_vt_init(&m[i].vt, on_fire, &m[i]);
		assert_int_equal(sched_vt_add(fx->s, &m[i].vt, ms[i]), 0);
	}
	assert_int_equal(sched_vclock_armed(fx->s), (size_t)n);
	sched_vt_del(fx->s, &m[4].vt); /* 40 ms: from the middle */
	sched_vt_del(fx->s, &m[4].vt); /* twice: a no-op */
	assert_int_equal(m[4].vt.idx, -1);
	assert_int_equal(sched_vt_add(fx->s, &m[7].vt, 35), 0); /* re-armed: later now */
	while (sched_vclock_advance(fx->s) > 0)
		;
	/* by due time; equal times in the order they were armed (1 before 3, 2 before 6) */
	int want[] = {1, 3, 5, 2, 6, 7, 0};
	assert_int_equal(log.n, 7);
	for (int i = 0; i < log.n; i++)
		assert_int_equal(log.order[i], want[i]);
	/* the clock moved to the last one's time, not by waiting */
	assert_true(sched_now() - t0 >= 50);
	assert_true(sched_now() - t0 < 1000);
	assert_int_equal(sched_vclock_armed(fx->s), 0);
	fx_free(fx);
}

static void test_many_random(void **state)
{
	struct fx *fx = fx_new(NULL);
	static struct mark m[1000];
	struct log log;
	double last = -1, due[1000];
	unsigned rng = 12345;

	(void)state;
	sched_vclock_on(fx->s);
	for (int i = 0; i < 1000; i++) {
		rng = rng * 1103515245 + 12345;
		m[i].log = &log;
		m[i].id = i;
		sched_vt_init(&m[i].vt, on_fire, &m[i]);
		sched_vt_add(fx->s, &m[i].vt, (double)(rng % 10000));
	}
	for (int i = 0; i < 1000; i += 3)
		sched_vt_del(fx->s, &m[i].vt);
	for (int i = 0; i < 1000; i++)
		due[i] = m[i].vt.due;
	while (sched_vclock_armed(fx->s)) {
		log.n = 0;
		sched_vclock_advance(fx->s);
		for (int k = 0; k < log.n; k++) {
			assert_true(log.order[k] % 3 != 0); /* disarmed ones never fire */
			assert_true(due[log.order[k]] >= last);
			last = due[log.order[k]];
		}
	}
	fx_free(fx);
}

static void test_tasks_sleep_in_virtual_time(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *root;
	double real0 = clock_mono_ms();
	char buf[64];

	(void)state;
	sched_vclock_on(fx->s);
	root = fx_start(fx, "order = ''\n"
	                    "local t0 = async.now()\n"
	                    "local a = async.spawn(function() async.sleep(3600000); order = order .. 'h' end)\n"
	                    "local b = async.spawn(function() async.sleep(60000); order = order .. 'm' end)\n"
	                    "local v, err = async.timeout(1000, async.sleep, 5000)\n"
	                    "order = order .. err.code:sub(1, 1)\n"
	                    "a:await(); b:await()\n"
	                    "took = math.floor(async.now() - t0)");
	while (!task_settled(root)) {
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		if (!task_settled(root) && !fx->s->rq_head)
			assert_true(sched_vclock_advance(fx->s) > 0);
	}
	assert_string_equal(fx_global_str(fx, "order", buf, sizeof buf), "tmh");
	assert_true(fx_global_int(fx, "took") >= 3600000);
	assert_true(clock_mono_ms() - real0 >= 3600000); /* every clock skipped */
	fx_free(fx);
}

static void on_timer(void *arg)
{
	(*(int *)arg)++;
}

static void test_sched_timer_both_modes(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct sched_timer *a, *b;
	int fa = 0, fb = 0;
	double t0;

	(void)state;
	/* real time: a libevent timer */
	a = sched_timer_new(fx->s, on_timer, &fa);
	b = sched_timer_new(fx->s, on_timer, &fb);
	assert_non_null(a);
	assert_non_null(b);
	t0 = clock_mono_ms();
	sched_timer_add(a, 20);
	sched_timer_add(b, 20);
	sched_timer_del(b);
	event_base_dispatch(fx->base);
	assert_int_equal(fa, 1);
	assert_int_equal(fb, 0);
	assert_true(clock_mono_ms() - t0 >= 19);
	sched_timer_free(a);
	sched_timer_free(b);
	sched_timer_free(NULL);
	fx_free(fx);

	/* virtual time: the heap */
	fx = fx_new(NULL);
	sched_vclock_on(fx->s);
	fa = fb = 0;
	a = sched_timer_new(fx->s, on_timer, &fa);
	b = sched_timer_new(fx->s, on_timer, &fb);
	sched_timer_add(a, 86400000);
	sched_timer_add(b, 1000);
	sched_timer_del(b);
	assert_int_equal(sched_vclock_advance(fx->s), 1);
	assert_int_equal(fa, 1);
	assert_int_equal(fb, 0);
	sched_timer_add(b, -5); /* negative: now */
	sched_timer_free(b);    /* freed armed: disarmed first */
	assert_int_equal(sched_vclock_armed(fx->s), 0);
	sched_timer_free(a);
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heap_order_and_delete),
	    cmocka_unit_test(test_many_random),
	    cmocka_unit_test(test_tasks_sleep_in_virtual_time),
	    cmocka_unit_test(test_sched_timer_both_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
