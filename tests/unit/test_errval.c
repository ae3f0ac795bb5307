/*
 * test_errval.c: error values: construction, wrapping of raised values,
 * tracebacks, tostring, and the message handler.
 */
#include "harness.h"
#include "errval.h"

static int setup(void **state)
{
	*state = fx_new(NULL);
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static void test_push_and_tostring(void **state)
{
	lua_State *L = ((struct fx *)*state)->s->L;

	errval_push(L, "timeout", "timed out after %d ms", 50);
	assert_true(errval_is(L, -1));
	assert_string_equal(errval_code(L, -1), "timeout");
	assert_string_equal(errval_tostring(L, -1), "timeout: timed out after 50 ms");
	lua_pop(L, 2);
}

static void test_long_message_is_not_cut(void **state)
{
	lua_State *L = ((struct fx *)*state)->s->L;
	char big[5000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	errval_push(L, "error", "%s", big);
	lua_getfield(L, -1, "message");
	assert_int_equal(lua_rawlen(L, -1), sizeof big - 1);
	lua_pop(L, 2);
}

static void test_wrap(void **state)
{
	lua_State *L = ((struct fx *)*state)->s->L;

	lua_pushliteral(L, "file.lua:3: boom");
	errval_wrap(L, -1);
	assert_true(errval_is(L, -1));
	assert_string_equal(errval_code(L, -1), "error");
	lua_getfield(L, -1, "message");
	assert_string_equal(lua_tostring(L, -1), "file.lua:3: boom");
	lua_pop(L, 2);

	lua_pushliteral(L, "not enough memory");
	errval_wrap(L, -1);
	assert_string_equal(errval_code(L, -1), "out_of_memory");
	lua_pop(L, 1);

	lua_newtable(L);
	lua_pushinteger(L, 7);
	lua_setfield(L, -2, "custom");
	errval_wrap(L, -1);
	assert_string_equal(errval_code(L, -1), "error");
	lua_getfield(L, -1, "value");
	lua_getfield(L, -1, "custom");
	assert_int_equal(lua_tointeger(L, -1), 7); /* the raised table is kept as err.value */
	lua_pop(L, 3);

	/* an error value stays the same object */
	errval_push(L, "db", "locked");
	lua_pushvalue(L, -1);
	errval_wrap(L, -1);
	assert_true(lua_rawequal(L, -1, -2));
	lua_pop(L, 2);
}

static int raise_here(lua_State *L)
{
	return luaL_error(L, "deep");
}

static void test_msgh_adds_a_traceback_once(void **state)
{
	lua_State *L = ((struct fx *)*state)->s->L;
	const char *tb;

	lua_pushcfunction(L, errval_msgh);
	assert_int_equal(
	    luaL_loadstring(L, "local f = ... ; local function inner() f() end inner()"), LUA_OK);
	lua_pushcfunction(L, raise_here);
	assert_int_equal(lua_pcall(L, 1, 0, -3), LUA_ERRRUN);
	assert_true(errval_is(L, -1));
	lua_getfield(L, -1, "traceback");
	tb = lua_tostring(L, -1);
	assert_non_null(tb);
	assert_non_null(strstr(tb, "stack traceback:"));
	assert_non_null(strstr(tb, "in local 'inner'"));
	/* a second pass keeps the first traceback */
	errval_traceback(L, -2, L, 0);
	lua_getfield(L, -2, "traceback");
	assert_string_equal(lua_tostring(L, -1), tb);
	lua_pop(L, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_push_and_tostring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_message_is_not_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msgh_adds_a_traceback_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
