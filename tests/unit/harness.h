/*
 * harness.h: a real loop and scheduler for cmocka tests of the runtime.
 *
 * fx_run(fx, code) runs a Lua chunk as the root task on a real
 * event_base, dispatches the loop until nothing is left, and returns the
 * root task (its handle stays on the Lua stack until fx_free).
 */
#ifndef AWAITD_TEST_HARNESS_H
#define AWAITD_TEST_HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <lauxlib.h>

#include "modules.h"
#include "sched.h"
#include "task.h"

struct fx {
	struct event_base *base;
	struct sched *s;
};

static inline int fx_open(lua_State *L)
{
	modules_open(L);
	return 0;
}

static inline struct fx *fx_new(const struct sched_config *cfg)
{
	struct fx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	fx->base = sched_base_new();
	assert_non_null(fx->base);
	fx->s = sched_new(fx->base, cfg);
	assert_non_null(fx->s);
	lua_pushcfunction(fx->s->L, fx_open);
	assert_int_equal(lua_pcall(fx->s->L, 0, 0, 0), LUA_OK);
	return fx;
}

static inline void fx_free(struct fx *fx)
{
	sched_free(fx->s);
	event_base_free(fx->base);
	free(fx);
}

static inline int fx_spawn_root(lua_State *L)
{
	task_spawn(L, lua_gettop(L) - 1, NULL, HUGE_VAL, TASK_SPAWN_OBSERVED);
	return 1;
}

/* Load code, spawn it as the root task (it runs until it suspends). */
static inline struct task *fx_start(struct fx *fx, const char *code)
{
	lua_State *L = fx->s->L;

	lua_pushcfunction(L, fx_spawn_root);
	if (luaL_loadbufferx(L, code, strlen(code), "=test", "t") != LUA_OK)
		fail_msg("load: %s", lua_tostring(L, -1));
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		fail_msg("spawn: %s", lua_tostring(L, -1));
	return task_check(L, -1);
}

static inline struct task *fx_run(struct fx *fx, const char *code)
{
	struct task *t = fx_start(fx, code);

	event_base_dispatch(fx->base);
	return t;
}

/* The error code of the settled task on top of the stack (borrowed). */
static inline const char *fx_err_code(struct fx *fx)
{
	lua_State *L = fx->s->L;
	const char *code;

	task_push_error(L, -1);
	lua_getfield(L, -1, "code");
	code = lua_tostring(L, -1);
	lua_pop(L, 2); /* the task still references the error value, so code stays valid */
	return code;
}

/* Global variable `name` as an integer (0 when not a number). */
static inline lua_Integer fx_global_int(struct fx *fx, const char *name)
{
	lua_Integer v;

	lua_getglobal(fx->s->L, name);
	v = lua_tointeger(fx->s->L, -1);
	lua_pop(fx->s->L, 1);
	return v;
}

/* Global variable `name` copied into buf. */
static inline const char *fx_global_str(struct fx *fx, const char *name, char *buf, size_t len)
{
	lua_getglobal(fx->s->L, name);
	snprintf(buf, len, "%s", lua_isstring(fx->s->L, -1) ? lua_tostring(fx->s->L, -1) : "(nil)");
	lua_pop(fx->s->L, 1);
	return buf;
}

/*
 * Capture what the code under test writes to stderr (the log) into a
 * temporary file: fx_capture_begin, run, then fx_capture_end copies it
 * into buf (NUL-terminated) and restores stderr.
 */
struct fx_capture {
	int saved;
	FILE *tmp;
};

static inline void fx_capture_begin(struct fx_capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), 2) >= 0);
}

static inline void fx_capture_end(struct fx_capture *c, char *buf, size_t len)
{
	size_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	rewind(c->tmp);
	n = fread(buf, 1, len - 1, c->tmp);
	buf[n] = 0;
	fclose(c->tmp);
}

#endif
