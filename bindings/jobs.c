/*
 * jobs.c: the Lua "jobs" module (SPEC section 4): enqueue, get, wait, signal, pause on
 * the daemon's job engine (daemon/jobs/jobs.c). Each call parks the task until
 * the store answers (db_await). Without an engine (`awaitd run`) every
 * call answers nil, not_available.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "db.h"
#include "enqueue-opts.h"
#include "errval.h"
#include "json.h"
#include "modules.h"
#include "store.h"
#include "task.h"

static int no_engine(lua_State *L)
{
	lua_pushnil(L);
	errval_push(L, "not_available", "jobs need the daemon (this program runs without it)");
	return 2;
}

/*
 * jobs_enqueue has handed r to the store already; its answer can only run
 * on this (the loop) thread, after db_await has set r->done.
 */
static void submitted(struct store_req *r, void *ud)
{
	(void)ud;
	(void)r;
}

static int push_id(lua_State *L, struct store_req *r)
{
	lua_pushinteger(L, r->out_id);
	return 1;
}

/* The value at idx as the shared checker sees it (enqueue-opts.h). */
static void enqueue_val_of(lua_State *L, int idx, struct enqueue_val *out)
{
	memset(out, 0, sizeof *out);
	if (lua_isinteger(L, idx)) {
		out->type = ENQUEUE_V_INTEGER;
		out->i = (int64_t)lua_tointeger(L, idx);
	} else if (lua_type(L, idx) == LUA_TNUMBER) {
		out->type = ENQUEUE_V_REAL;
		out->d = (double)lua_tonumber(L, idx);
	} else if (lua_type(L, idx) == LUA_TSTRING) {
		out->type = ENQUEUE_V_STRING;
		out->s = lua_tolstring(L, idx, &out->len); /* a string: no conversion */
	} else {
		out->type = ENQUEUE_V_OTHER;
		out->tname = luaL_typename(L, idx);
	}
}

/*
 * Check the options table at idx (0: none) into o; a bad option is the
 * caller's bug and raises, with the message the socket gives. Nothing C
 * owns is alive yet. The key in o is borrowed from the table, which stays
 * on the stack until enqueue_opts_apply has copied it.
 */
static void enqueue_opts_of(lua_State *L, int idx, struct enqueue_opts *o)
{
	struct enqueue_val v;
	const char *name;
	size_t namelen;
	char msg[512];

	enqueue_opts_init(o, store_now());
	if (!idx)
		return;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "jobs.enqueue: option names must be strings, not %s",
			           luaL_typename(L, -2));
		name = lua_tolstring(L, -2, &namelen);
		if (namelen == 5 && memcmp(name, "after", 5) == 0 &&
		    lua_type(L, -1) == LUA_TTABLE && lua_rawlen(L, -1) > 0) {
			/* after: a list of job ids, each checked as the option */
			for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
				lua_rawgeti(L, -1, i);
				enqueue_val_of(L, -1, &v);
				if (enqueue_opts_set(o, name, namelen, &v, msg, sizeof msg) < 0)
					luaL_error(L, "jobs.enqueue: %s", msg);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
			continue;
		}
		enqueue_val_of(L, -1, &v);
		if (enqueue_opts_set(o, name, namelen, &v, msg, sizeof msg) < 0)
			luaL_error(L, "jobs.enqueue: %s", msg);
		lua_pop(L, 1); /* the value; the key stays for lua_next */
	}
	if (enqueue_opts_check(o, msg, sizeof msg) < 0)
		luaL_error(L, "jobs.enqueue: %s", msg);
}

/* jobs.enqueue(name, args [, {key, delay, at, priority, timeout, after}]) -> id | nil, err */
static int jobs_l_enqueue(lua_State *L)
{
	struct jobs *j = db_jobs(L);
	const char *name = luaL_checkstring(L, 1);
	int opts = lua_isnoneornil(L, 3) ? 0 : 3;
	struct enqueue_opts o;
	struct store_req *r;
	struct store_err err;
	char msg[256];
	json_t *args = NULL;

	if (opts)
		luaL_checktype(L, 3, LUA_TTABLE);
	enqueue_opts_of(L, opts, &o);
	if (!j)
		return no_engine(L);
	if (!lua_isnoneornil(L, 2) && !(args = json_from_lua(L, 2, msg, sizeof msg))) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.enqueue: args: %s", msg);
		return 2;
	}
	r = store_req_new(STORE_ENQUEUE);
	if (r) {
		r->name = strdup(name);
		r->text = args ? json_dumps(args, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	}
	json_decref(args);
	if (!r || !r->name || (args && !r->text) || enqueue_opts_apply(&o, r) < 0) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	r->tx = db_open_tx(L); /* inside db:tx the job commits (or not) with it */
	if (!task_current(L)) {
		store_req_free(r);
		return luaL_error(L, "jobs.enqueue must be called inside a task");
	}
	/* db_await sets done/arg, then "submits": jobs_enqueue below already did */
	r->done = NULL;
	if (db_jobs_ops(L)->enqueue(j, r, &err) < 0) {
		store_req_free(r);
		lua_pushnil(L);
		errval_push(L, err.code, "%s", err.msg);
		return 2;
	}
	lua_settop(L, 0);
	return db_await(L, r, -1, submitted, NULL, NULL, push_id);
}

static int push_job(lua_State *L, struct store_req *r)
{
	json_t *o;
	char msg[256];

	if (!r->njobs) {
		lua_pushnil(L);
		return 1;
	}
	o = db_jobs_ops(L)->job_json(&r->jobs[0], SIZE_MAX);
	if (!o)
		return luaL_error(L, "out of memory");
	if (json_push(L, o, msg, sizeof msg) < 0) {
		json_decref(o);
		return luaL_error(L, "jobs.get: %s", msg);
	}
	json_decref(o);
	return 1;
}

/* jobs.get(id) -> job table | nil (no such job) | nil, err */
static int jobs_l_get(lua_State *L)
{
	lua_Integer id = luaL_checkinteger(L, 1);
	struct store_req *r;

	if (!db_store(L) || !db_jobs(L))
		return no_engine(L);
	r = store_req_new(STORE_GET);
	if (!r)
		return luaL_error(L, "out of memory");
	r->id = id;
	lua_settop(L, 0);
	return db_await_store(L, r, push_job);
}

/* jobs.wait's answer: the result, or nil and the job's error. */
static int push_result(lua_State *L, struct store_req *r)
{
	const struct store_job *job = r->njobs ? &r->jobs[0] : NULL;
	json_t *v;
	char code[64], msg[512];

	if (!job) {
		lua_pushnil(L);
		errval_push(L, "no_such_job", "no job %lld", (long long)r->id);
		return 2;
	}
	if (strcmp(job->state, "succeeded") == 0) {
		v = job->result ? json_loads(job->result, JSON_DECODE_ANY, NULL) : NULL;
		if (!v || json_is_null(v))
			lua_pushnil(L);
		else if (json_push(L, v, msg, sizeof msg) < 0)
			lua_pushnil(L);
		json_decref(v);
		return 1;
	}
	db_jobs_ops(L)->job_failure(job, code, sizeof code, msg, sizeof msg);
	lua_pushnil(L);
	errval_push(L, code, "%s", msg);
	return 2;
}

/* jobs.wait(id [, timeout_ms]) -> result | nil, err */
static int jobs_l_wait(lua_State *L)
{
	lua_Integer id = luaL_checkinteger(L, 1);
	double timeout = luaL_optnumber(L, 2, -1);
	struct jobs *j = db_jobs(L);
	struct store_req *r;

	if (!j)
		return no_engine(L);
	if (db_open_tx(L)) {
		lua_pushnil(L);
		errval_push(L, "invalid",
		            "jobs.wait inside db:tx would hold the writer while it "
		            "waits: wait after the transaction");
		return 2;
	}
	r = store_req_new(STORE_GET);
	if (!r)
		return luaL_error(L, "out of memory");
	r->id = id;
	lua_settop(L, 0);
	return db_await(L, r, timeout, db_jobs_ops(L)->wait, db_jobs_ops(L)->withdraw, j,
	                push_result);
}

static int push_signalled(lua_State *L, struct store_req *r)
{
	char code[32], msg[256];

	db_jobs_ops(L)->signalled(db_jobs(L), r);
	if (db_jobs_ops(L)->signal_refused(r, code, sizeof code, msg, sizeof msg)) {
		lua_pushnil(L);
		errval_push(L, code, "jobs.signal: %s", msg);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * jobs.signal(id, name [, payload]) -> true | nil, err: a durable signal
 * to job id, buffered until the job waits for it (ctx.wait_signal).
 * Inside db:tx it commits (or not) with the transaction.
 */
static int jobs_l_signal(lua_State *L)
{
	struct jobs *j = db_jobs(L);
	lua_Integer id;
	struct store_req *r;
	struct store_err err;
	char msg[256];
	json_t *payload = NULL;

	if (!lua_isinteger(L, 1) || lua_tointeger(L, 1) <= 0) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.signal: the job id must be an integer > 0, not %s",
		            luaL_typename(L, 1));
		return 2;
	}
	id = lua_tointeger(L, 1);
	if (lua_type(L, 2) != LUA_TSTRING) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.signal: the signal name must be a string, not %s",
		            luaL_typename(L, 2));
		return 2;
	}
	if (!j)
		return no_engine(L);
	if (!task_current(L))
		return luaL_error(L, "jobs.signal must be called inside a task");
	if (!lua_isnoneornil(L, 3) && !(payload = json_from_lua(L, 3, msg, sizeof msg))) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.signal: the payload: %s", msg);
		return 2;
	}
	r = store_req_new(STORE_SIGNAL);
	if (r) {
		r->id = id;
		r->name = strdup(lua_tostring(L, 2));
		r->text = payload ? json_dumps(payload, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	}
	json_decref(payload);
	if (!r || !r->name || (payload && !r->text)) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	r->tx = db_open_tx(L); /* inside db:tx the signal commits (or not) with it */
	if (db_jobs_ops(L)->signal(j, r, &err) < 0) {
		store_req_free(r);
		lua_pushnil(L);
		errval_push(L, err.code, "jobs.signal: %s", err.msg);
		return 2;
	}
	lua_settop(L, 0);
	return db_await(L, r, -1, submitted, NULL, NULL, push_signalled);
}

static int push_paused(lua_State *L, struct store_req *r)
{
	db_jobs_ops(L)->paused(db_jobs(L), r);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * jobs.pause(name, {ms = n [, key = value]}) -> true | nil, err: no new job
 * of script name (with key: none of those one of whose limit values is
 * key) starts for n ms; running ones go on. Durable: it holds across a
 * restart. A job that hit a 429 pauses its provider's key, then fails to
 * be retried after the pause.
 */
static int jobs_l_pause(lua_State *L)
{
	struct jobs *j = db_jobs(L);
	struct store_req *r;
	struct store_err err;
	lua_Number ms;
	const char *key = NULL;

	if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TTABLE) {
		lua_pushnil(L);
		errval_push(L, "invalid",
		            "jobs.pause: expected (name, {ms = n [, key = value]}), not "
		            "(%s, %s)",
		            luaL_typename(L, 1), luaL_typename(L, 2));
		return 2;
	}
	lua_getfield(L, 2, "ms");
	ms = lua_tonumber(L, -1);
	if (lua_type(L, -1) != LUA_TNUMBER || !(ms >= 1) || ms > STORE_PAUSE_MAX_MS) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.pause: ms must be a number of ms from 1 to %.0f",
		            (double)STORE_PAUSE_MAX_MS);
		return 2;
	}
	lua_getfield(L, 2, "key");
	if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
		key = lua_tostring(L, -1); /* a number as the text a limit keeps it as */
	else if (!lua_isnil(L, -1)) {
		lua_pushnil(L);
		errval_push(L, "invalid", "jobs.pause: key must be a string or a number, not %s",
		            luaL_typename(L, -2));
		return 2;
	}
	if (!j)
		return no_engine(L);
	if (!task_current(L))
		return luaL_error(L, "jobs.pause must be called inside a task");
	r = store_req_new(STORE_PAUSE);
	if (r) {
		r->name = strdup(lua_tostring(L, 1));
		r->key = key ? strdup(key) : NULL;
		r->flag = 1;
		r->run_at = store_now() + (int64_t)ms;
	}
	if (!r || !r->name || (key && !r->key)) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	if (db_jobs_ops(L)->pause(j, r, &err) < 0) {
		store_req_free(r);
		lua_pushnil(L);
		errval_push(L, err.code, "jobs.pause: %s", err.msg);
		return 2;
	}
	lua_settop(L, 0);
	return db_await(L, r, -1, submitted, NULL, NULL, push_paused);
}

int luaopen_jobs(lua_State *L)
{
	static const luaL_Reg fns[] = {
	    {"enqueue", jobs_l_enqueue}, {"get", jobs_l_get},     {"wait", jobs_l_wait},
	    {"signal", jobs_l_signal},   {"pause", jobs_l_pause}, {NULL, NULL},
	};

	luaL_newlib(L, fns);
	return 1;
}
