/*
 * test.c: `awaitd test [--scripts DIR] [--migrations DIR] FILE...`, the
 * test runner for scripts, on a virtual clock.
 *
 * Each FILE gets the real runtime and the real job engine, as the daemon
 * has them, on a database of its own in a temporary directory (migrated
 * from DIR, default ./migrations; synchronous = off, since it is thrown
 * away) with the job scripts of DIR (default ./scripts) and a worker pool.
 * Its tests (test(name, fn), bindings/testrun.lua) run in order, each as
 * a task; results are printed in TAP, and the exit status is 1 when one
 * failed.
 *
 * Time is virtual (vclock.h): when nothing can happen but a timer, the
 * clocks skip to the next one. "Nothing can happen" means a pass of the
 * loop that resumed no task and answered no store request, with no store
 * request and no worker call out (those are real work: the runner waits
 * for them), but those held up by a user transaction, which wait for a
 * task. The store's tx_timeout_ms is measured in real time. So sleeps, timeouts, retries' backoff and cron fires take no
 * time, in the order they would have had; an HTTP request is real and
 * virtual time may move on while it is out.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "db.h"
#include "errval.h"
#include "jobs.h"
#include "log.h"
#include "modules.h"
#include "run.h"
#include "sched.h"
#include "scripts.h"
#include "store.h"
#include "task.h"
#include "test.h"
#include "vclock.h"
#include "worker.h"

#include "testrun_lua.h"

struct tenv {
	struct event_base *base;
	struct sched *s;
	struct store *st;
	struct scripts scripts;
	int scripts_open;
	struct jobs *jobs;
	struct worker_pool *pool;
	char dir[64];   /* the temporary directory of the database */
	char db[96];    /* its database file */
	char empty[96]; /* an empty scripts directory when there is none */
};

static void usage(FILE *out)
{
	fprintf(out, "usage: awaitd test [--scripts DIR] [--migrations DIR] FILE.lua...\n"
	             "  runs each file's test(name, fn) on a virtual clock; TAP on stdout\n"
	             "  --scripts DIR     job scripts (default ./scripts, if it exists)\n"
	             "  --migrations DIR  migrations of each file's fresh database "
	             "(default ./migrations)\n");
}

static int open_modules(lua_State *L)
{
	modules_open(L);
	return 0;
}

static void rm_tree(const char *dir, const char *db, const char *empty)
{
	char p[128];
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};

	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(p, sizeof p, "%s%s", db, sfx[i]);
		unlink(p);
	}
	rmdir(empty);
	rmdir(dir);
}

static void env_close(struct tenv *e)
{
	if (e->s) {
		worker_pool_register(e->s->L, NULL);
		if (e->jobs)
			jobs_close_lua(e->jobs);
		if (e->scripts_open)
			scripts_close(&e->scripts);
	}
	worker_pool_free(e->pool);
	sched_free(e->s);
	store_close(e->st);
	jobs_free(e->jobs);
	if (e->base)
		event_base_free(e->base);
	if (e->dir[0])
		rm_tree(e->dir, e->db, e->empty);
	memset(e, 0, sizeof *e);
}

static int env_open(struct tenv *e, const char *scripts_dir, const char *migrations, char *err,
                    size_t errlen)
{
	struct sched_config sc;
	struct store_config stc;
	struct jobs_env je;
	struct worker_config wc;
	struct stat sb;

	memset(e, 0, sizeof *e);
	sched_config_defaults(&sc);
	e->base = sched_base_new();
	e->s = e->base ? sched_new(e->base, &sc) : NULL;
	if (!e->s) {
		snprintf(err, errlen, "cannot create the event loop or the Lua state");
		return -1;
	}
	sched_vclock_on(e->s); /* before anything arms a timer */
	lua_pushcfunction(e->s->L, open_modules);
	if (lua_pcall(e->s->L, 0, 0, 0) != LUA_OK) {
		snprintf(err, errlen, "Lua modules: %s", lua_tostring(e->s->L, -1));
		return -1;
	}
	strcpy(e->dir, "/tmp/awaitd-test.XXXXXX");
	if (!mkdtemp(e->dir)) {
		snprintf(err, errlen, "cannot make a temporary directory: %s", strerror(errno));
		e->dir[0] = 0;
		return -1;
	}
	snprintf(e->db, sizeof e->db, "%s/test.db", e->dir);
	snprintf(e->empty, sizeof e->empty, "%s/scripts", e->dir);
	store_config_defaults(&stc);
	stc.path = e->db;
	stc.migrations_dir = migrations;
	stc.synchronous = "off";
	stc.loop_statement_ms = sc.max_slice_ms;
	e->st = store_open(e->base, &stc, NULL, err, errlen);
	if (!e->st)
		return -1;
	e->s->between = store_poll;
	e->s->between_arg = e->st;
	if (!scripts_dir) {
		/* no ./scripts: the tests use no job script */
		if (stat("scripts", &sb) == 0 && S_ISDIR(sb.st_mode))
			scripts_dir = "scripts";
		else if (mkdir(e->empty, 0700) == 0)
			scripts_dir = e->empty;
	}
	memset(&je, 0, sizeof je);
	je.base = e->base;
	je.s = e->s;
	je.scripts = &e->scripts;
	je.keep_jobs_ms = 0;
	je.max_result_bytes = 1024 * 1024;
	je.max_args_bytes = 1024 * 1024;
	e->jobs = jobs_new(&je, e->st, err, errlen);
	if (!e->jobs)
		return -1;
	if (scripts_open(&e->scripts, e->s->L, scripts_dir, err, errlen) < 0)
		return -1;
	e->scripts_open = 1;
	for (size_t i = 0; i < e->scripts.n; i++)
		if (e->scripts.v[i]->error)
			log_error("script %s: %s", e->scripts.v[i]->name, e->scripts.v[i]->error);
	worker_config_defaults(&wc);
	wc.max_memory = sc.max_memory;
	e->pool = worker_pool_new(e->base, &wc, scripts_worker_init, (void *)scripts_dir, err,
	                          errlen);
	if (!e->pool)
		return -1;
	worker_pool_register(e->s->L, e->pool);
	jobs_start(e->jobs);
	return 0;
}

/* Work done so far: a pass of the loop that adds nothing did nothing. */
static uint64_t progress(const struct tenv *e)
{
	struct store_stats ss;

	store_get_stats(e->st, &ss);
	return e->s->stats.resumes + ss.requests;
}

/*
 * Run the loop until root settles: real work first, and when there is
 * none, skip the clocks to the next timer. 0, or -1 when nothing is left
 * that could ever end it (no timer, nothing out).
 */
static int drive(struct tenv *e, struct task *root)
{
	while (!task_settled(root)) {
		uint64_t before = progress(e);
		event_base_loop(e->base, EVLOOP_NONBLOCK);
		if (task_settled(root) || progress(e) != before)
			continue;
		if (store_pending(e->st) > store_held(e->st) || worker_pool_out(e->pool)) {
			event_base_loop(e->base, EVLOOP_ONCE); /* real work is out: wait for it */
			continue;
		}
		/* once more: zero-delay timers armed by the last pass run in this one */
		event_base_loop(e->base, EVLOOP_NONBLOCK);
		if (task_settled(root) || progress(e) != before)
			continue;
		if (sched_vclock_advance(e->s) == 0)
			return -1;
	}
	return 0;
}

/* Protected: spawn the runner (on the stack) as the root task; leaves its handle. */
static int start_root(lua_State *L)
{
	task_spawn(L, 0, NULL, HUGE_VAL, TASK_SPAWN_OBSERVED);
	return 1;
}

/*
 * Run one file's tests, numbered from first; adds to *ntests and
 * *nfailed. A file that cannot start counts as one failed test.
 */
static void run_file(struct tenv *e, const char *file, int *ntests, int *nfailed)
{
	lua_State *L = e->s->L;
	int first = *ntests + 1, top = lua_gettop(L);
	struct task *root;

	printf("# %s\n", file);
	if (luaL_loadbufferx(L, (const char *)testrun_lua, testrun_lua_len, "=testrun.lua", "t") !=
	    LUA_OK)
		goto broken;
	lua_pushcfunction(L, start_root);
	lua_insert(L, -2);
	db_open_internal(L);
	if (luaL_loadfilex(L, file, "t") != LUA_OK)
		goto broken;
	lua_pushstring(L, file);
	lua_pushinteger(L, first);
	lua_getfield(L, LUA_REGISTRYINDEX, ASYNC_PRIVATE); /* each test a task of its own */
	lua_getfield(L, -1, "timeout_task");
	lua_remove(L, -2);
	if (lua_pcall(L, 5, 1, 0) != LUA_OK) /* testrun.lua(db, chunk, file, first, timeout) */
		goto broken;
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) /* start_root(runner) */
		goto broken;
	root = task_check(L, -1);
	if (drive(e, root) < 0) {
		printf("not ok %d - %s: the tests wait for something nothing will do (deadlock)\n",
		       first, file);
		*ntests += 1;
		*nfailed += 1;
		lua_settop(L, top);
		return;
	}
	if (task_push_outcome(L, -1) >= 2 && lua_isinteger(L, -2) && lua_isinteger(L, -1)) {
		*ntests += (int)lua_tointeger(L, -2);
		*nfailed += (int)lua_tointeger(L, -1);
	} else {
		task_push_error(L, lua_gettop(L));
		printf("not ok %d - %s: %s\n", first, file, errval_tostring(L, -1));
		*ntests += 1;
		*nfailed += 1;
	}
	lua_settop(L, top);
	return;
broken:
	printf("not ok %d - %s\n# %s\n", first, file, lua_tostring(L, -1));
	*ntests += 1;
	*nfailed += 1;
	lua_settop(L, top);
}

int test_main(int argc, char **argv)
{
	const char *scripts = NULL, *migrations = "migrations";
	int ntests = 0, nfailed = 0, nfiles = 0, i;
	char err[1024];

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return RUN_OK;
		} else if (strcmp(argv[i], "--scripts") == 0 && i + 1 < argc) {
			scripts = argv[++i];
		} else if (strcmp(argv[i], "--migrations") == 0 && i + 1 < argc) {
			migrations = argv[++i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "awaitd test: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return RUN_USAGE;
		} else {
			nfiles++;
		}
	}
	if (!nfiles) {
		usage(stderr);
		return RUN_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("TAP version 13\n");
	for (i = 1; i < argc; i++) {
		struct tenv e;
		if (argv[i][0] == '-') {
			i += strcmp(argv[i], "--scripts") == 0 || strcmp(argv[i], "--migrations") == 0;
			continue;
		}
		if (env_open(&e, scripts, migrations, err, sizeof err) < 0) {
			printf("not ok %d - %s\n# cannot start the runtime: %s\n", ntests + 1, argv[i],
			       err);
			ntests++;
			nfailed++;
		} else {
			run_file(&e, argv[i], &ntests, &nfailed);
		}
		env_close(&e);
		fflush(stdout);
	}
	printf("1..%d\n", ntests);
	if (nfailed)
		printf("# %d of %d failed\n", nfailed, ntests);
	return nfailed ? RUN_FAILED : RUN_OK;
}
