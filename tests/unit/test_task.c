/*
 * test_task.c: task life cycle seen from C on a real loop: cancellation
 * (at the await point, <close> handlers, grace, stickiness), orphans,
 * unobserved failures, deadlines and outcomes.
 */
#include "harness.h"

static void test_cancel_from_c_runs_close_handlers(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;
	char buf[128];

	(void)state;
	t = fx_start(fx, "local g <close> = setmetatable({}, {__close = function(_, e)"
	                 " closed_with = e and e.code end})\n"
	                 "async.sleep(60000)\n"
	                 "reached = true");
	assert_int_equal(t->state, TASK_SUSPENDED);
	task_cancel(fx->s->L, t, "operator said stop");
	task_cancel(fx->s->L, t, "second cancel is ignored");
	event_base_dispatch(fx->base);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_string_equal(fx_err_code(fx), "cancelled");
	task_push_error(fx->s->L, -1);
	lua_getfield(fx->s->L, -1, "message");
	assert_string_equal(lua_tostring(fx->s->L, -1), "operator said stop");
	lua_pop(fx->s->L, 2);
	assert_string_equal(fx_global_str(fx, "closed_with", buf, sizeof buf), "cancelled");
	assert_string_equal(fx_global_str(fx, "reached", buf, sizeof buf), "(nil)");
	fx_free(fx);
}

static void test_close_handler_may_await_within_grace(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	t = fx_run(fx, "rolled_back = false\n"
	               "local w = async.spawn(function()\n"
	               "  local g <close> = setmetatable({}, {__close = function()\n"
	               "    async.sleep(5); rolled_back = true end})\n"
	               "  async.sleep(60000) end)\n"
	               "async.sleep(1); w:cancel()\n"
	               "local _, err = w:await()\n"
	               "return err.code");
	assert_int_equal(t->state, TASK_DONE);
	lua_getglobal(fx->s->L, "rolled_back");
	assert_true(lua_toboolean(fx->s->L, -1));
	lua_pop(fx->s->L, 1);
	fx_free(fx);
}

static void test_cancel_cannot_be_swallowed(void **state)
{
	struct fx *fx;
	double t0;
	char buf[32];

	(void)state;
	fx = fx_new(NULL);
	t0 = sched_now();
	/* a task that tries to swallow every cancellation and keep sleeping */
	fx_run(fx,
	       "caught, closed = 0, false\n"
	       "local w = async.spawn(function()\n"
	       "  local g <close> = setmetatable({}, {__close = function() closed = true end})\n"
	       "  while true do\n"
	       "    local ok = pcall(async.sleep, 10)\n"
	       "    local ok2 = async.try(async.sleep, 10)\n"
	       "    if not ok or not ok2 then caught = caught + 1 end end end)\n"
	       "async.sleep(1); w:cancel()\n"
	       "local _, err = w:await(); code = err.code");
	/* pcall and try hand the cancellation on: the loop never went round again */
	assert_int_equal(fx_global_int(fx, "caught"), 0);
	assert_string_equal(fx_global_str(fx, "code", buf, sizeof buf), "cancelled");
	lua_getglobal(fx->s->L, "closed");
	assert_true(lua_toboolean(fx->s->L, -1));
	lua_pop(fx->s->L, 1);
	assert_true(sched_now() - t0 < 900); /* well before the 1000 ms grace */
	fx_free(fx);
}

static void test_close_handler_bounded_by_grace(void **state)
{
	struct sched_config cfg;
	struct fx *fx;
	double t0;
	char buf[32];

	(void)state;
	sched_config_defaults(&cfg);
	cfg.cancel_grace_ms = 50;
	fx = fx_new(&cfg);
	t0 = sched_now();
	/* a rollback that would take a minute is cut at the grace deadline */
	fx_run(
	    fx,
	    "local w = async.spawn(function()\n"
	    "  local g <close> = setmetatable({}, {__close = function() async.sleep(60000) end})\n"
	    "  async.sleep(60000) end)\n"
	    "async.sleep(1); w:cancel()\n"
	    "local _, err = w:await(); code = err.code");
	assert_true(sched_now() - t0 < 5000);
	assert_true(sched_now() - t0 >= 45);
	assert_string_equal(fx_global_str(fx, "code", buf, sizeof buf), "cancelled");
	fx_free(fx);
}

static void test_orphans_are_cancelled_and_named(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct fx_capture cap;
	struct task *t;
	char log[4096];

	(void)state;
	fx_capture_begin(&cap);
	t = fx_run(
	    fx,
	    "child_closed = false\n"
	    "child = async.spawn(function()\n"
	    "  local g <close> = setmetatable({}, {__close = function() child_closed = true end})\n"
	    "  async.sleep(60000) end)\n"
	    "return 'parent done'");
	fx_capture_end(&cap, log, sizeof log);
	assert_int_equal(t->state, TASK_DONE);
	lua_getglobal(fx->s->L, "child_closed");
	assert_true(lua_toboolean(fx->s->L, -1));
	lua_getglobal(fx->s->L, "child");
	assert_int_equal(task_check(fx->s->L, -1)->state, TASK_CANCELLED);
	lua_pop(fx->s->L, 2);
	assert_non_null(strstr(log, "WARN"));
	assert_non_null(strstr(log, "cancelled: task 2 (at test:4)"));
	assert_int_equal(fx->s->stats.live, 0);
	fx_free(fx);
}

static void test_unobserved_failure_is_logged(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct fx_capture cap;
	char log[4096];

	(void)state;
	fx_capture_begin(&cap);
	fx_run(fx, "async.spawn(function() async.sleep(1); error('nobody saw this') end)\n"
	           "local seen = async.spawn(function() async.sleep(1); error('awaited') end)\n"
	           "async.sleep(10)\n"
	           "seen:await()");
	fx_capture_end(&cap, log, sizeof log);
	assert_non_null(strstr(log, "nobody saw this"));
	assert_non_null(strstr(log, "stack traceback"));
	assert_null(strstr(log, "test:2:")); /* the awaited failure (line 2) is not reported */
	fx_free(fx);
}

static void test_failure_before_and_after_suspension_look_the_same(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	t = fx_run(fx, "local a = async.spawn(function() error('early') end)\n"
	               "local b = async.spawn(function() async.sleep(0) error('late') end)\n"
	               "local _, ea = a:await(); local _, eb = b:await()\n"
	               "assert(a:status() == 'failed' and b:status() == 'failed')\n"
	               "assert(ea.code == 'error' and eb.code == 'error')\n"
	               "assert(ea.traceback and eb.traceback)\n"
	               "return true");
	assert_int_equal(t->state, TASK_DONE);
	fx_free(fx);
}

static void test_deadline_is_inherited_and_nested(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	t = fx_run(fx, "local r = {}\n"
	               "r.none = async.deadline()\n"
	               "async.timeout(1000, function()\n"
	               "  r.outer = async.deadline()\n"
	               "  async.timeout(5000, function() r.inner = async.deadline() end)\n"
	               "  async.spawn(function() r.child = async.deadline() end):await()\n"
	               "end)\n"
	               "assert(r.none == math.huge, 'no deadline at the top')\n"
	               "assert(r.outer > 900 and r.outer <= 1000, 'outer ' .. r.outer)\n"
	               "assert(r.inner <= r.outer, 'inner must not outlive outer')\n"
	               "assert(r.child <= r.outer, 'children inherit')\n"
	               "return true");
	assert_int_equal(t->state, TASK_DONE);
	fx_free(fx);
}

static void test_outcome_multiple_results(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;
	lua_State *L;

	(void)state;
	t = fx_run(fx, "async.sleep(0) return 1, 'two', nil, 4");
	L = fx->s->L;
	assert_int_equal(t->state, TASK_DONE);
	assert_int_equal(task_push_outcome(L, -1), 4);
	assert_int_equal(lua_tointeger(L, -4), 1);
	assert_string_equal(lua_tostring(L, -3), "two");
	assert_true(lua_isnil(L, -2));
	assert_int_equal(lua_tointeger(L, -1), 4);
	lua_pop(L, 4);
	assert_null(t->co); /* its thread went back to the pool */
	fx_free(fx);
}

static void test_nil_err_return_is_failure(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	t = fx_run(fx, "return nil, 'not found'");
	assert_int_equal(t->state, TASK_FAILED);
	assert_string_equal(fx_err_code(fx), "error");
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cancel_from_c_runs_close_handlers),
	    cmocka_unit_test(test_close_handler_may_await_within_grace),
	    cmocka_unit_test(test_cancel_cannot_be_swallowed),
	    cmocka_unit_test(test_close_handler_bounded_by_grace),
	    cmocka_unit_test(test_orphans_are_cancelled_and_named),
	    cmocka_unit_test(test_unobserved_failure_is_logged),
	    cmocka_unit_test(test_failure_before_and_after_suspension_look_the_same),
	    cmocka_unit_test(test_deadline_is_inherited_and_nested),
	    cmocka_unit_test(test_outcome_multiple_results),
	    cmocka_unit_test(test_nil_err_return_is_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
