/*
 * db-await.c: how a Lua task waits for the store (db.h): the park record
 * and its to-be-closed guard, the continuation that turns an answer into
 * Lua values, the rule that keeps requests inside db:tx from waiting for
 * their own transaction, and the registry entries (store, job engine)
 * every binding that talks to the store reads.
 *
 * A park is owned by its guard until the request is answered; if the
 * guard goes first (cancellation, timeout) while the request is out, the
 * answer frees both: nothing is freed twice and nothing leaks.
 */
#include <stdlib.h>

#include <lauxlib.h>

#include "db.h"
#include "errval.h"
#include "guard.h"
#include "store.h"
#include "task.h"

#define DB_PARK_MT "awaitd.db.park"

static const char store_key = 's'; /* registry: light userdata, the store */
static const char jobs_key = 'j';  /* registry: light userdata, the job engine */
static const char ops_key = 'o';   /* registry: light userdata, its db_jobs_ops */

/*
 * One wait for the store. Owned by the guard until the request is
 * answered; if the guard goes first (cancellation, timeout) and the
 * request is still out, `abandoned` tells the answer to free both.
 */
struct db_park {
	struct store_req *r;
	struct task *t;
	db_push_fn *push;
	db_withdraw_fn *withdraw;
	void *ud;
	int out;       /* r is with the store or a waiter list */
	int answered;  /* r came back */
	int abandoned; /* the guard let go while r was out */
};

struct db_guard {
	struct db_park *p;
};

void db_set_store(lua_State *L, struct store *st, struct jobs *j, const struct db_jobs_ops *ops)
{
	lua_pushlightuserdata(L, st);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &store_key);
	lua_pushlightuserdata(L, j);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &jobs_key);
	lua_pushlightuserdata(L, (void *)ops);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ops_key);
}

static void *registry_ptr(lua_State *L, const char *key)
{
	void *p;

	lua_rawgetp(L, LUA_REGISTRYINDEX, key);
	p = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return p;
}

struct store *db_store(lua_State *L)
{
	return registry_ptr(L, &store_key);
}

struct jobs *db_jobs(lua_State *L)
{
	return registry_ptr(L, &jobs_key);
}

const struct db_jobs_ops *db_jobs_ops(lua_State *L)
{
	return registry_ptr(L, &ops_key);
}

void db_push_error(lua_State *L, const struct store_req *r)
{
	errval_push(L, r->err.code[0] ? r->err.code : "db", "%s", r->err.msg);
}

/* The db:tx held open by t or the nearest ancestor, 0 for none. */
static int64_t open_tx(const struct task *t)
{
	for (; t; t = t->parent)
		if (t->db_tx)
			return t->db_tx;
	return 0;
}

/* An answered request's outcome: nil, err when it failed, else push's values. */
static int push_answer(lua_State *L, struct store_req *r, db_push_fn *push)
{
	if (r->rc) {
		lua_pushnil(L);
		db_push_error(L, r);
		return 2;
	}
	return push(L, r);
}

/* ---- waiting ------------------------------------------------------------------ */

static void park_answered(struct store_req *r)
{
	struct db_park *p = r->arg;

	if (p->abandoned) {
		store_req_free(r);
		free(p);
		return;
	}
	p->out = 0;
	p->answered = 1;
	/* a task inside db:tx holds the store's writer: every other writer
	 * waits for its next request, so it goes first */
	if (open_tx(p->t))
		task_wake_first(p->t);
	else
		task_wake(p->t, TASK_WAKE_SIGNAL);
}

/* Let go of the park: free it now, or leave it to the answer still to come. */
static void park_release(struct db_guard *g)
{
	struct db_park *p = g->p;

	if (!p)
		return;
	g->p = NULL;
	if (p->out && !(p->withdraw && p->withdraw(p->r, p->ud))) {
		p->abandoned = 1;
		/* nobody waits for it now: a statement of it that runs may stop */
		__atomic_store_n(&p->r->cancelled, 1, __ATOMIC_RELAXED);
		return;
	}
	store_req_free(p->r);
	free(p);
}

static int guard_close(lua_State *L)
{
	park_release(luaL_checkudata(L, 1, DB_PARK_MT));
	return 0;
}

static int db_k(lua_State *L, int status, lua_KContext ctx)
{
	struct task *t = task_current(L);
	struct db_guard *g = lua_touserdata(L, (int)ctx);
	struct db_park *p = g->p;
	enum task_wake w = t->wake;
	int n;

	(void)status;
	if (w == TASK_WAKE_CANCEL) {
		park_release(g);
		task_resumed(L, t); /* raises */
	}
	task_resumed(L, t);
	if (w == TASK_WAKE_TIMEOUT && !p->answered) {
		park_release(g);
		lua_pushnil(L);
		errval_push(L, "timeout", "the wait timed out");
		return 2;
	}
	if (!p->answered) /* woken by someone else: wait on */
		return task_suspend(L, t, TASK_WAIT_PARK, p, -1, ctx, db_k);
	n = push_answer(L, p->r, p->push);
	park_release(g);
	return n;
}

int64_t db_open_tx(lua_State *L)
{
	return open_tx(task_current(L));
}

/*
 * Inside db:tx the transaction holds the store's single writer, and every
 * other request waits for it: a request made outside the tx handle would
 * wait for its own transaction. Reads of jobs, enqueues and signals join the
 * transaction (an enqueue then commits or rolls back with it); the rest
 * is refused. Returns 0, or -1 with r failed.
 */
static int join_tx(const struct task *t, struct store_req *r)
{
	int64_t tx = r->tx && r->op != STORE_TX_BEGIN ? 0 : open_tx(t);

	if (!tx)
		return 0;
	switch (r->op) {
	case STORE_ENQUEUE:
	case STORE_SIGNAL:
	case STORE_GET:
		r->tx = tx;
		return 0;
	case STORE_TX_BEGIN:
		return store_fail(r, "invalid", "db:tx inside db:tx: transactions do not nest");
	case STORE_SQL:
		return store_fail(
		    r, "invalid",
		    "ctx.db used inside db:tx: use the transaction's handle (fn's "
		    "argument); the transaction holds the writer this would wait for");
	default:
		return store_fail(
		    r, "invalid",
		    "this cannot be done inside db:tx (it would wait for the writer the "
		    "transaction holds): do it before or after the transaction");
	}
}

int db_await(lua_State *L, struct store_req *r, double timeout_ms,
             void (*submit)(struct store_req *r, void *ud), db_withdraw_fn *withdraw, void *ud,
             db_push_fn *push)
{
	struct task *t = task_current(L);
	struct db_guard *g;
	struct db_park *p;
	int guard, n;

	if (!t) {
		store_req_free(r);
		return luaL_error(L, "the database can only be used inside a task");
	}
	if (join_tx(t, r) < 0) {
		n = push_answer(L, r, push);
		store_req_free(r);
		return n;
	}
	g = guard_push(L, sizeof *g, DB_PARK_MT, guard_close);
	guard = lua_gettop(L);
	p = calloc(1, sizeof *p);
	if (!p) {
		store_req_free(r);
		return luaL_error(L, "out of memory");
	}
	g->p = p;
	p->r = r;
	p->t = t;
	p->push = push;
	p->withdraw = withdraw;
	p->ud = ud;
	r->done = park_answered;
	r->arg = p;
	p->out = 1;
	submit(r, ud);
	return task_suspend(L, t, TASK_WAIT_PARK, p, timeout_ms, guard, db_k);
}

static void submit_store(struct store_req *r, void *ud)
{
	store_submit(ud, r);
}

int db_await_store(lua_State *L, struct store_req *r, db_push_fn *push)
{
	struct store *st = db_store(L);

	if (!st) {
		store_req_free(r);
		lua_pushnil(L);
		errval_push(L, "not_available", "no database: this program runs without a store");
		return 2;
	}
	return db_await(L, r, -1, submit_store, NULL, st, push);
}
