/*
 * scripts.h: the job scripts of a directory (SPEC section 4), each loaded
 * as text into its own sandboxed environment on the scheduler's state.
 *
 * Every DIR/NAME.lua (NAME of [A-Za-z0-9_-], at most 64 characters) is the
 * job NAME; it returns a table with run and the job's settings. Modules
 * for scripts live in DIR/lib/ and are reached with the sandbox's require.
 *
 * Invariants:
 *  - ss->v is sorted by name (strcmp) and holds each name once.
 *  - A script's job_ref is LUA_NOREF until its first successful load, then
 *    the registry ref of the table its current version returned; each ref
 *    is released exactly once (when replaced by a newer version, when the
 *    file disappears, or by scripts_close).
 *  - The settings fields always describe the version in job_ref; a failed
 *    reload only sets ->error.
 */
#ifndef AWAITD_SCRIPTS_H
#define AWAITD_SCRIPTS_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#define SCRIPTS_NAME_MAX 64 /* characters in a script's name */

#define SCRIPTS_MAX_LIMITS 4 /* per-key limits a script may declare (store.h's STORE_MAX_LIMITS)   \
	                      */
#define SCRIPTS_LIMIT_BY 64  /* bytes of a limit's field name, with its NUL */

/*
 * `limits = { { by = "account", concurrency = 1 }, { by = "provider", rate = 10,
 * per = 1000 } }`: at most concurrency running jobs of the script share one
 * value of args[by] (0: no such cap), and at most rate of them start in any
 * per ms (0: no such cap); a limit has one or both.
 */
struct script_limit {
	char by[SCRIPTS_LIMIT_BY]; /* the field; "" when by is a function of args (by_fn) */
	int by_fn;                 /* the script's limits[i].by is a function: called at enqueue */
	int concurrency;
	int rate;
	double per_ms;
};

struct script {
	char *name;        /* file name without ".lua" */
	char *path;        /* DIR/name.lua */
	int job_ref;       /* registry ref: the table of the current version, or LUA_NOREF */
	uint64_t version;  /* 0 = never loaded; +1 at each successful (re)load */
	double loaded_at;  /* s, wall clock, of the current version */
	char *error;       /* last load error ("DIR/x.lua:3: ...") or NULL */
	char *description; /* settings of the current version; NULL when not given */
	int concurrency;   /* runs at once, default 10 */
	double timeout_ms; /* ms per attempt, default 60000 */
	int retries;       /* extra attempts, default 0 */
	double backoff_ms; /* ms before the first retry, default 1000 */
	char *schedule;    /* NULL or the cron string as given (validated later) */
	struct script_limit limits[SCRIPTS_MAX_LIMITS]; /* per-key limits, in order */
	int nlimits;
	char fair_by[SCRIPTS_LIMIT_BY]; /* "": claims in queue order; else rotate over its values */
};

/* What the load guard needs between a load and its count hook (see scripts.c). */
struct scripts_guard {
	int active;          /* a script's or module's top level runs now */
	int expired;         /* it ran past SCRIPTS_LOAD_MAX_INSNS */
	unsigned long ticks; /* hook calls since the load began */
};

struct scripts {
	lua_State *L;      /* the scheduler's state */
	char *dir;         /* as given to scripts_open */
	struct script **v; /* sorted by name */
	size_t n;
	char *error; /* why the last open or reload could not list DIR, or NULL */
	struct scripts_guard guard;
};

/*
 * Load every script of dir into ss (which the caller owns, uninitialised)
 * on L, a state made by sched_new with awaitd's modules opened. Returns 0,
 * or -1 only when dir cannot be listed (err says why: "DIR: ..."); ss is
 * then empty, and scripts_close is still right. A script that fails to load is
 * kept with ->error set. err may be NULL. Call on the loop, not from a task.
 */
int scripts_open(struct scripts *ss, lua_State *L, const char *dir, char *err, size_t errlen);

/*
 * Reload atomically: every file is first loaded into a fresh environment
 * (lib modules too: a new generation), only then are the new versions
 * swapped in. A script that fails keeps its previous version (if any) and
 * gets ->error; a deleted file's script is removed; a new file is added.
 * Runs already started keep the table they hold a reference to. Returns
 * the number of scripts whose load failed, or -1 when DIR cannot be
 * listed or memory runs out before the swap (then nothing changed and
 * ss->error says why). struct script pointers are invalid afterwards for
 * removed scripts only. Call on the loop, not from a task.
 */
int scripts_reload(struct scripts *ss);

/* The script named name, or NULL. */
struct script *scripts_find(struct scripts *ss, const char *name);

/* Push the current job table of s (nil if none); needs one free stack slot. */
void scripts_push_job(struct scripts *ss, const struct script *s);

/* Release every ref and free everything ss holds (not ss). Idempotent. */
void scripts_close(struct scripts *ss);

/*
 * worker_init_fn (bindings/worker.h) for async.worker in the daemon: a
 * worker state gets the scripts' sandbox, with json (and no async, db,
 * http, jobs or log), and a require that loads DIR/lib modules like the
 * scripts' (ud: the const char * DIR, which must outlive the pool).
 */
int scripts_worker_init(lua_State *W, void *ud);

#endif
