/*
 * db.h: how Lua tasks wait for the store (bindings/db-await.c), shared by
 * the bindings that talk to it (db, jobs).
 *
 * db_await parks the calling task until a store request is answered and
 * then pushes its outcome with `push`. The request belongs to a park
 * record anchored by a to-be-closed guard on the task's stack: if the task
 * is cancelled or its wait times out while the store still holds the
 * request, the record is marked abandoned and the answer frees it later;
 * nothing is freed twice and nothing leaks.
 */
#ifndef AWAITD_DB_H
#define AWAITD_DB_H

#include <jansson.h>
#include <lua.h>

struct store;
struct store_req;
struct store_err;
struct store_job;
struct jobs;

/*
 * Push the outcome of a request answered without error (a failed one is
 * pushed as nil, err for it); return the number of values.
 */
typedef int db_push_fn(lua_State *L, struct store_req *r);

/*
 * Withdraw a request that was never handed to the store (a jobs.wait
 * waiter still held by jobs.c). Returns 1 if withdrawn (the caller frees
 * it), 0 if it is in the store already.
 */
typedef int db_withdraw_fn(struct store_req *r, void *ud);

/*
 * Park the running task (L must be a task's thread) until r is answered
 * or timeout_ms passes (negative: no timeout). r->done and r->arg are set
 * here; `submit(r, ud)` hands it on (store_submit or a jobs.c waiter).
 * Then returns push(L, r), or nil, timeout-error. Raises on cancellation
 * after releasing r as described above.
 */
int db_await(lua_State *L, struct store_req *r, double timeout_ms,
             void (*submit)(struct store_req *r, void *ud), db_withdraw_fn *withdraw, void *ud,
             db_push_fn *push);

/* The token of the db:tx the running task (or an ancestor) holds open, 0 for none. */
int64_t db_open_tx(lua_State *L);

/* db_await on the store of L (store_submit), or answer nil, not_available. */
int db_await_store(lua_State *L, struct store_req *r, db_push_fn *push);

/*
 * What the jobs module needs of the job engine, which stands above the
 * bindings: the engine hands these in with db_set_store, so no binding
 * includes the engine (the same functions as jobs.h's of those names).
 */
struct db_jobs_ops {
	int (*enqueue)(struct jobs *j, struct store_req *r, struct store_err *err);
	json_t *(*job_json)(const struct store_job *job, size_t max_value);
	void (*job_failure)(const struct store_job *job, char *code, size_t codelen, char *msg,
	                    size_t msglen);
	void (*wait)(struct store_req *r, void *j);   /* a JOB_WAIT request: answered when done */
	int (*withdraw)(struct store_req *r, void *j); /* 1: taken back unanswered */
	int (*signal)(struct jobs *j, struct store_req *r, struct store_err *err);
	void (*signalled)(struct jobs *j, const struct store_req *r);
	int (*signal_refused)(const struct store_req *r, char *code, size_t codelen, char *msg,
	                      size_t msglen);
	int (*pause)(struct jobs *j, struct store_req *r, struct store_err *err);
	void (*paused)(struct jobs *j, const struct store_req *r);
};

/*
 * Make st (NULL: none) the store of L's scripts, and j with ops (both NULL:
 * none) the engine behind jobs.* (registry).
 */
void db_set_store(lua_State *L, struct store *st, struct jobs *j, const struct db_jobs_ops *ops);

/* The store, the job engine and its operations registered in L, or NULL. */
struct store *db_store(lua_State *L);
struct jobs *db_jobs(lua_State *L);
const struct db_jobs_ops *db_jobs_ops(lua_State *L);

/* Push a value as an error value {code = r->err.code, message = r->err.msg}. */
void db_push_error(lua_State *L, const struct store_req *r);

/*
 * Push the internal module of jobrun.lua: handle(job_id) -> a db handle
 * with query/one/exec (and the methods table as field "methods", where
 * jobrun.lua adds tx), begin, open, commit, rollback, step_get, step_put, new_tx, wait.
 */
int db_open_internal(lua_State *L);

#endif
