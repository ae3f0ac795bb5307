/*
 * db.c: ctx.db (SPEC section 4, "db"): query, one, exec on the store
 * thread, and the primitives jobrun.lua builds db:tx and ctx.step from.
 *
 * A handle (DB_MT) is {job_id, tx}: tx 0 for the job's plain handle, the
 * transaction's token for the handle fn(tx) receives. Every call builds a
 * store request, parks the task (db_await, in db-await.c) and turns the
 * answer into Lua values: rows as arrays of tables keyed by column name,
 * exec as {changes, last_id}. Parameters bind nil, boolean, integer,
 * float and string; a table (or any other type) is refused with an
 * "invalid" error value.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "db.h"
#include "errval.h"
#include "store.h"
#include "task.h"

#define DB_MT "awaitd.db"

struct db_handle {
	int64_t job_id;
	int64_t tx; /* 0: not in a transaction */
};

/* ---- values -------------------------------------------------------------------- */

/* r->params from the values at first..top. 0, or -1 with an error message pushed. */
static int read_params(lua_State *L, int first, struct store_req *r)
{
	int n = lua_gettop(L) - first + 1;

	if (n <= 0)
		return 0;
	r->params = calloc((size_t)n, sizeof *r->params);
	if (!r->params)
		return luaL_error(L, "out of memory");
	r->nparams = n;
	for (int i = 0; i < n; i++) {
		struct store_val *v = &r->params[i];
		int idx = first + i;
		const char *s;
		size_t len;

		switch (lua_type(L, idx)) {
		case LUA_TNIL:
			v->type = STORE_NULL;
			break;
		case LUA_TBOOLEAN:
			v->type = STORE_INT;
			v->i = lua_toboolean(L, idx);
			break;
		case LUA_TNUMBER:
			if (lua_isinteger(L, idx)) {
				v->type = STORE_INT;
				v->i = lua_tointeger(L, idx);
			} else {
				v->type = STORE_REAL;
				v->d = lua_tonumber(L, idx);
			}
			break;
		case LUA_TSTRING:
			s = lua_tolstring(L, idx, &len);
			v->type = STORE_TEXT;
			v->p = malloc(len + 1);
			if (!v->p)
				return luaL_error(L, "out of memory");
			memcpy(v->p, s, len + 1);
			v->n = len;
			break;
		default:
			lua_pushnil(L);
			errval_push(
			    L, "invalid",
			    "parameter %d is a %s: only nil, boolean, number and string bind",
			    i + 1, luaL_typename(L, idx));
			return -1;
		}
	}
	return 0;
}

static void push_val(lua_State *L, const struct store_val *v)
{
	switch (v->type) {
	case STORE_INT:
		lua_pushinteger(L, v->i);
		break;
	case STORE_REAL:
		lua_pushnumber(L, v->d);
		break;
	case STORE_TEXT:
	case STORE_BLOB:
		lua_pushlstring(L, v->p, v->n);
		break;
	default:
		lua_pushnil(L);
		break;
	}
}

static void push_row(lua_State *L, const struct store_rows *rows, size_t i)
{
	const struct store_val *row = rows->vals + i * (size_t)rows->ncols;

	lua_createtable(L, 0, rows->ncols);
	for (int c = 0; c < rows->ncols; c++) {
		if (row[c].type == STORE_NULL)
			continue;
		push_val(L, &row[c]);
		lua_setfield(L, -2, rows->cols[c]);
	}
}

static int push_rows(lua_State *L, struct store_req *r)
{
	lua_createtable(L, (int)r->rows.nrows, 0);
	for (size_t i = 0; i < r->rows.nrows; i++) {
		push_row(L, &r->rows, i);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int push_one(lua_State *L, struct store_req *r)
{
	if (!r->rows.nrows) {
		lua_pushnil(L);
		return 1;
	}
	push_row(L, &r->rows, 0);
	return 1;
}

static int push_exec(lua_State *L, struct store_req *r)
{
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, r->rows.changes);
	lua_setfield(L, -2, "changes");
	lua_pushinteger(L, r->rows.last_id);
	lua_setfield(L, -2, "last_id");
	return 1;
}

/* ---- the handle ------------------------------------------------------------------ */

static struct db_handle *check_handle(lua_State *L)
{
	return luaL_checkudata(L, 1, DB_MT);
}

static int sql_call(lua_State *L, db_push_fn *push)
{
	struct db_handle *h = check_handle(L);
	const char *sql = luaL_checkstring(L, 2);
	struct store_req *r = store_req_new(STORE_SQL);

	if (!r || !(r->sql = strdup(sql))) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	r->tx = h->tx;
	r->job_id = h->job_id;
	{
		struct task *t = task_current(L);
		if (t && t->deadline != HUGE_VAL)
			r->deadline = t->deadline; /* the store stops the statement then */
	}
	if (read_params(L, 3, r) < 0) {
		store_req_free(r);
		return 2;
	}
	lua_settop(L, 0);
	return db_await_store(L, r, push);
}

static int db_query(lua_State *L)
{
	return sql_call(L, push_rows);
}

static int db_one(lua_State *L)
{
	return sql_call(L, push_one);
}

static int db_exec(lua_State *L)
{
	return sql_call(L, push_exec);
}

static int db_tostring(lua_State *L)
{
	struct db_handle *h = check_handle(L);

	if (h->tx)
		lua_pushfstring(L, "db transaction (job %I)", (lua_Integer)h->job_id);
	else
		lua_pushfstring(L, "db (job %I)", (lua_Integer)h->job_id);
	return 1;
}

static void new_handle(lua_State *L, int64_t job_id, int64_t tx)
{
	struct db_handle *h = lua_newuserdatauv(L, sizeof *h, 0);

	h->job_id = job_id;
	h->tx = tx;
	luaL_setmetatable(L, DB_MT);
}

/* ---- primitives for jobrun.lua ------------------------------------------------------ */

/* handle(job_id [, tx]) */
static int prim_handle(lua_State *L)
{
	new_handle(L, luaL_checkinteger(L, 1), luaL_optinteger(L, 2, 0));
	return 1;
}

static int push_begin(lua_State *L, struct store_req *r)
{
	if (r->journaled) {
		lua_pushliteral(L, "journaled");
		lua_pushstring(L, r->out_text ? r->out_text : "[]");
		return 2;
	}
	task_current(L)->db_tx = r->tx; /* it holds the writer now */
	lua_pushboolean(L, 1);
	return 1;
}

/* The running task gave its transaction back (commit or rollback). */
static void tx_given_back(lua_State *L, int64_t tx)
{
	struct task *t = task_current(L);

	if (t && t->db_tx == tx)
		t->db_tx = 0;
}

static int push_ok(lua_State *L, struct store_req *r)
{
	(void)r;
	lua_pushboolean(L, 1);
	return 1;
}

/* A step's request: job_id, seq, name from the arguments at 1..3. */
static struct store_req *step_req(lua_State *L, enum store_op op, int first)
{
	int64_t job_id = luaL_checkinteger(L, first);
	int64_t seq = luaL_checkinteger(L, first + 1);
	const char *name = luaL_optstring(L, first + 2, NULL);
	struct store_req *r = store_req_new(op);

	if (!r || (name && !(r->name = strdup(name)))) {
		store_req_free(r);
		luaL_error(L, "out of memory");
		return NULL;
	}
	r->job_id = job_id;
	r->seq = seq;
	return r;
}

/* begin(job_id, seq, step_name|nil, tx) -> true | "journaled", json | nil, err */
static int prim_begin(lua_State *L)
{
	int64_t tx = luaL_checkinteger(L, 4);
	struct store_req *r = step_req(L, STORE_TX_BEGIN, 1);

	r->tx = tx;
	lua_settop(L, 0);
	return db_await_store(L, r, push_begin);
}

/*
 * open(tx) -> true | nil, err: begin a transaction without waiting for the
 * writer: the requests that follow queue behind the BEGIN in the store, so
 * the first one waits instead. Only for a transaction that needs no
 * journal check.
 */
static int prim_open(lua_State *L)
{
	struct store *st = db_store(L);
	struct task *t = task_current(L);
	struct store_req *r;

	if (!st || !t)
		return luaL_error(L, "db:tx needs the daemon's store and a task");
	if (db_open_tx(L)) {
		lua_pushnil(L);
		errval_push(L, "invalid", "db:tx inside db:tx: transactions do not nest");
		return 2;
	}
	r = store_req_new(STORE_TX_BEGIN);
	if (!r)
		return luaL_error(L, "out of memory");
	r->tx = luaL_checkinteger(L, 1);
	t->db_tx = r->tx;
	store_submit(st, r); /* no done: its answer is freed */
	lua_pushboolean(L, 1);
	return 1;
}

/* commit(job_id, seq, step_name|nil, tx, journal_json|nil) -> true | nil, err (after the commit) */
static int prim_commit(lua_State *L)
{
	int64_t tx = luaL_checkinteger(L, 4);
	const char *text = luaL_optstring(L, 5, NULL);
	struct store_req *r = step_req(L, STORE_TX_END, 1);

	r->tx = tx;
	r->flag = 1;
	tx_given_back(L, tx);
	if (text && !(r->text = strdup(text))) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	lua_settop(L, 0);
	return db_await_store(L, r, push_ok);
}

/* rollback(tx): sent, not awaited (safe from a __close handler that cannot wait). */
static int prim_rollback(lua_State *L)
{
	struct store *st = db_store(L);
	struct store_req *r;

	if (!st)
		return 0;
	r = store_req_new(STORE_TX_END);
	if (!r)
		return luaL_error(L, "out of memory");
	r->tx = luaL_checkinteger(L, 1);
	r->flag = 0;
	tx_given_back(L, r->tx);
	store_submit(st, r); /* no done: the answer is freed */
	return 0;
}

/* step_get(job_id, seq, name) -> true, json | false | nil, err */
static int push_step(lua_State *L, struct store_req *r)
{
	lua_pushboolean(L, r->journaled);
	if (!r->journaled)
		return 1;
	lua_pushstring(L, r->out_text ? r->out_text : "[]");
	return 2;
}

static int prim_step_get(lua_State *L)
{
	struct store_req *r = step_req(L, STORE_STEP_GET, 1);

	lua_settop(L, 0);
	return db_await_store(L, r, push_step);
}

/* step_put(job_id, seq, name, json) -> true | nil, err (durable) */
static int prim_step_put(lua_State *L)
{
	const char *text = luaL_checkstring(L, 4);
	struct store_req *r = step_req(L, STORE_STEP_PUT, 1);

	if (!(r->text = strdup(text))) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	lua_settop(L, 0);
	return db_await_store(L, r, push_ok);
}

/* wait(...) -> "done", json | "park", deadline | "cancelled" | nil, err */
static int push_wait(lua_State *L, struct store_req *r)
{
	if (r->journaled) {
		lua_pushliteral(L, "done");
		lua_pushstring(L, r->out_text ? r->out_text : "{\"n\":0,\"v\":[]}");
		return 2;
	}
	if (r->changed) {
		lua_pushliteral(L, "cancelled");
		return 1;
	}
	lua_pushliteral(L, "park");
	lua_pushinteger(L, r->out_id);
	return 2;
}

/*
 * wait(job_id, seq, journal_name, signal_name|nil, at, after, lease): a
 * durable wait reached (STORE_WAIT) by the run of that lease, with its
 * deadline: epoch ms `at` (0 none), or `after` ms from now when >= 0.
 * Ended (journaled), or to park with a deadline, or the job is being
 * cancelled.
 */
static int prim_wait(lua_State *L)
{
	const char *key = luaL_optstring(L, 4, NULL);
	lua_Integer at = luaL_checkinteger(L, 5);
	lua_Integer after = luaL_checkinteger(L, 6);
	lua_Integer lease = luaL_checkinteger(L, 7);
	struct store_req *r;

	if (db_open_tx(L)) {
		/* the transaction holds the writer: parking would hold it for days */
		lua_pushnil(L);
		errval_push(L, "invalid",
		            "a durable wait inside db:tx: the transaction holds the writer; wait "
		            "before or after it");
		return 2;
	}
	r = step_req(L, STORE_WAIT, 1);
	if (key && !(r->key = strdup(key))) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	r->now = store_now();
	r->run_at = after >= 0 ? r->now + after : at;
	r->lease = lease;
	lua_settop(L, 0);
	return db_await_store(L, r, push_wait);
}

static int64_t next_tx = 0;

/* new_tx() -> a token unique in this process */
static int prim_new_tx(lua_State *L)
{
	lua_pushinteger(L, ++next_tx);
	return 1;
}

int db_open_internal(lua_State *L)
{
	static const luaL_Reg methods[] = {
	    {"query", db_query},
	    {"one", db_one},
	    {"exec", db_exec},
	    {NULL, NULL},
	};
	static const luaL_Reg prims[] = {
	    {"handle", prim_handle},     {"begin", prim_begin},       {"open", prim_open},
	    {"commit", prim_commit},     {"rollback", prim_rollback}, {"step_get", prim_step_get},
	    {"step_put", prim_step_put}, {"new_tx", prim_new_tx},     {"wait", prim_wait},
	    {NULL, NULL},
	};

	luaL_newlib(L, prims);
	if (luaL_newmetatable(L, DB_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, db_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
	}
	lua_getfield(L, -1, "__index");
	lua_setfield(L, -3, "methods"); /* prims.methods: jobrun.lua adds tx */
	lua_pop(L, 1);
	return 1;
}
