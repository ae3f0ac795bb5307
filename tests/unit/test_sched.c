/*
 * test_sched.c: the scheduler on a real event_base: FIFO resumption on
 * later turns, the memory cap, the slice protection, counters and the
 * thread pool.
 */
#include "harness.h"

static void test_spawn_order_is_a_c_b(void **state)
{
	struct fx *fx = fx_new(NULL);
	char buf[64];

	(void)state;
	fx_run(fx, "order = ''\n"
	           "local t = async.spawn(function() order = order .. 'A'; async.sleep(0);"
	           " order = order .. 'B' end)\n"
	           "order = order .. 'C'\n"
	           "t:await()");
	assert_string_equal(fx_global_str(fx, "order", buf, sizeof buf), "ACB");
	fx_free(fx);
}

static void test_fifo_across_turns(void **state)
{
	struct fx *fx = fx_new(NULL);
	char buf[64];

	(void)state;
	/* each task yields twice: all first halves run before any second half */
	fx_run(fx, "order = ''\n"
	           "local ts = {}\n"
	           "for i = 1, 3 do ts[i] = async.spawn(function() async.sleep(0);"
	           " order = order .. i; async.sleep(0); order = order .. i end) end\n"
	           "for i = 1, 3 do ts[i]:await() end");
	assert_string_equal(fx_global_str(fx, "order", buf, sizeof buf), "123123");
	fx_free(fx);
}

static void test_counters_and_live(void **state)
{
	struct fx *fx = fx_new(NULL);

	(void)state;
	fx_run(fx, "local a = async.spawn(function() async.sleep(1) return 1 end)\n"
	           "local b = async.spawn(function() async.sleep(1) error('x') end)\n"
	           "local c = async.spawn(function() async.sleep(1000) end)\n"
	           "c:cancel()\n"
	           "a:await(); b:await(); c:await()");
	assert_int_equal(fx->s->stats.spawned, 4);
	assert_int_equal(fx->s->stats.done, 2); /* a and the root */
	assert_int_equal(fx->s->stats.failed, 1);
	assert_int_equal(fx->s->stats.cancelled, 1);
	assert_int_equal(fx->s->stats.live, 0);
	assert_null(fx->s->live_head);
	fx_free(fx);
}

static void test_thread_pool_reuses(void **state)
{
	struct fx *fx = fx_new(NULL);

	(void)state;
	fx_run(fx, "for i = 1, 50 do async.spawn(function() async.sleep(0) end):await() end");
	/* sequential tasks: one thread serves them all, and goes back to the pool */
	assert_true(fx->s->npool >= 1);
	assert_true(fx->s->npool <= 3);
	fx_free(fx);
}

static void test_memory_cap_fails_only_the_bomb(void **state)
{
	struct sched_config cfg;
	struct fx *fx;
	struct task *t;

	(void)state;
	sched_config_defaults(&cfg);
	cfg.max_memory = 16u << 20;
	/* this test is about memory: under ASan on a loaded machine 1000
	 * allocations between yields can outlast the default 100 ms slice */
	cfg.max_slice_ms = 10000;
	fx = fx_new(&cfg);
	t = fx_run(
	    fx, "local ticks = 0\n"
	        "local ticker = async.spawn(function() for i = 1, 5 do async.sleep(2);"
	        " ticks = ticks + 1 end return ticks end)\n"
	        "local bomb = async.spawn(function() local t = {}\n"
	        "  for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i;"
	        "  if i % 1000 == 0 then async.sleep(0) end end end)\n"
	        "local _, err = bomb:await()\n"
	        "bomb_code = err and err.code\n"
	        "collectgarbage()\n"
	        "ticks_done = ticker:await()\n"
	        "local after = async.spawn(function() return string.rep('y', 1000) end):await()\n"
	        "return #after");
	char buf[64];
	assert_string_equal(fx_global_str(fx, "bomb_code", buf, sizeof buf), "out_of_memory");
	assert_int_equal(fx_global_int(fx, "ticks_done"), 5);
	assert_int_equal(t->state, TASK_DONE);
	assert_true(fx->s->stats.mem < cfg.max_memory);
	/* only the runtime's own reporting may go past the cap, and not by much */
	assert_true(fx->s->stats.mem_peak <= cfg.max_memory + (1u << 20));
	fx_free(fx);
}

static void test_blocked_loop_is_killed(void **state)
{
	struct sched_config cfg;
	struct fx *fx;
	struct task *t;
	char buf[64];

	(void)state;
	sched_config_defaults(&cfg);
	cfg.max_slice_ms = 30;
	fx = fx_new(&cfg);
	t = fx_run(
	    fx,
	    "closed = false\n"
	    "local ticks = 0\n"
	    "local ticker = async.spawn(function() for i = 1, 3 do async.sleep(1);"
	    " ticks = ticks + 1 end return ticks end)\n"
	    "local hog = async.spawn(function()\n"
	    "  local guard <close> = setmetatable({}, {__close = function() closed = true end})\n"
	    "  async.sleep(0)\n"
	    "  while true do pcall(function() while true do end end) end end)\n"
	    "local _, err = hog:await()\n"
	    "hog_code = err and err.code\n"
	    "ticks_done = ticker:await()");
	assert_int_equal(t->state, TASK_DONE);
	assert_string_equal(fx_global_str(fx, "hog_code", buf, sizeof buf), "blocked_loop");
	assert_int_equal(fx_global_int(fx, "ticks_done"), 3);
	lua_getglobal(fx->s->L, "closed");
	assert_true(lua_toboolean(fx->s->L, -1)); /* its <close> ran when it was killed */
	lua_pop(fx->s->L, 1);
	fx_free(fx);
}

static void test_bare_coroutine_yield_is_invalid(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	t = fx_run(fx, "coroutine.yield(1)");
	assert_int_equal(t->state, TASK_FAILED);
	assert_string_equal(fx_err_code(fx), "invalid");
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spawn_order_is_a_c_b),
	    cmocka_unit_test(test_fifo_across_turns),
	    cmocka_unit_test(test_counters_and_live),
	    cmocka_unit_test(test_thread_pool_reuses),
	    cmocka_unit_test(test_memory_cap_fails_only_the_bomb),
	    cmocka_unit_test(test_blocked_loop_is_killed),
	    cmocka_unit_test(test_bare_coroutine_yield_is_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
