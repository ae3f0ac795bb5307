/*
 * test_port.c: completion ports: FIFO order across ring growth and
 * wrap-around, reference counting (ASan proves no use after free).
 */
#include "harness.h"
#include "port.h"

static void test_fifo_across_growth(void **state)
{
	struct port *p = port_new();
	lua_Integer v;

	(void)state;
	assert_non_null(p);
	assert_int_equal(port_pop(p, &v), -1);
	/* interleave so the ring wraps before it grows */
	for (lua_Integer i = 1; i <= 10; i++)
		assert_int_equal(port_post(p, i), 0);
	for (lua_Integer i = 1; i <= 6; i++) {
		assert_int_equal(port_pop(p, &v), 0);
		assert_int_equal(v, i);
	}
	for (lua_Integer i = 11; i <= 100; i++)
		assert_int_equal(port_post(p, i), 0);
	for (lua_Integer i = 7; i <= 100; i++) {
		assert_int_equal(port_pop(p, &v), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(port_pop(p, &v), -1);
	assert_int_equal(p->len, 0);
	port_unref(p);
}

static void test_refcount(void **state)
{
	struct port *p = port_new();

	(void)state;
	port_ref(p);
	assert_int_equal(p->refs, 2);
	port_unref(p);
	assert_int_equal(p->refs, 1);
	assert_int_equal(port_post(p, 7), 0);
	port_unref(p); /* frees ring and port */
	port_unref(NULL);
}

/* A port whose combinator is gone still receives posts from tasks settling later. */
static void test_watch_outlives_handle(void **state)
{
	struct fx *fx = fx_new(NULL);
	struct task *t;

	(void)state;
	lua_getfield(fx->s->L, LUA_REGISTRYINDEX, ASYNC_PRIVATE);
	lua_setglobal(fx->s->L, "P");
	t = fx_run(fx, "local t = async.spawn(function() async.sleep(5) return 1 end)\n"
	               "do local p = P.port(); P.watch(t, p, 1) end\n"
	               "collectgarbage() collectgarbage()\n"
	               "return t:await()");
	assert_int_equal(t->state, TASK_DONE);
	fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_across_growth),
	    cmocka_unit_test(test_refcount),
	    cmocka_unit_test(test_watch_outlives_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
