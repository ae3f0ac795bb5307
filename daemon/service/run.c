/*
 * run.c: the one-shot runner behind `awaitd run`.
 *
 * It builds a loop and a scheduler, loads the file as text, decodes
 * ARGS_JSON into the root task's `...`, and dispatches the loop until no
 * event is left: the root task, its children and any detached tasks have
 * all finished. A root task that never finished (every task waits for
 * something nothing will do) is reported as a deadlock.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "errval.h"
#include "log.h"
#include "modules.h"
#include "run.h"
#include "sched.h"
#include "humanfmt.h"
#include "memcap.h"
#include "task.h"
#include "worker.h"

static void usage(FILE *out)
{
	char cap[32];

	fprintf(out,
	        "usage: awaitd run [--max-slice-ms MS] [--max-memory MB] [--workers N] "
	        "[--worker-timeout-ms MS] [--log-level LEVEL] FILE.lua [ARGS_JSON]\n"
	        "  --max-memory MB  cap of the Lua state (and of each worker's); 0 = no cap; "
	        "default %s here (a quarter of RAM, 64 MiB to 4 GiB)\n"
	        "  --workers N      async.worker threads; default one per core\n",
	        humanfmt_bytes(memcap_default(), cap, sizeof cap));
}

/* Protected part of start-up: modules and package.path (can raise). */
static int open_env(lua_State *L)
{
	const char *dir = lua_tostring(L, 1);

	modules_open(L);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	return 0;
}

/*
 * worker_init_fn of `awaitd run`: a worker state like the file's own, with
 * json and the file's directory on package.path (ud: that directory).
 */
static int run_worker_init(lua_State *W, void *ud)
{
	luaL_requiref(W, "json", luaopen_json, 1);
	lua_pop(W, 1);
	lua_getglobal(W, "package");
	lua_pushfstring(W, "%s/?.lua;%s/?/init.lua;", (const char *)ud, (const char *)ud);
	lua_getfield(W, -2, "path");
	lua_concat(W, 2);
	lua_setfield(W, -2, "path");
	lua_pop(W, 1);
	lua_getglobal(W, "require");
	return 1;
}

/* Parse a positive number option value; -1 on error. */
static double parse_num(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e9) /* 1e9 ms, 1e9 MB: plenty */
		return -1;
	return v;
}

static int start_root(lua_State *L)
{
	/* file-chunk args... */
	task_spawn(L, lua_gettop(L) - 1, NULL, HUGE_VAL, TASK_SPAWN_OBSERVED);
	return 1;
}

int run_main(int argc, char **argv)
{
	struct sched_config cfg;
	struct worker_config wc;
	struct worker_pool *pool = NULL;
	struct event_base *base = NULL;
	struct sched *s = NULL;
	const char *file = NULL, *args = NULL;
	struct task *root;
	char dir[4096], msg[256];
	int rc = RUN_USAGE, i, nargs = 0;
	lua_State *L;

	sched_config_defaults(&cfg);
	worker_config_defaults(&wc);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return RUN_OK;
		} else if ((strcmp(a, "--max-slice-ms") == 0 || strcmp(a, "--max-memory") == 0 ||
		            strcmp(a, "--workers") == 0 || strcmp(a, "--worker-timeout-ms") == 0 ||
		            strcmp(a, "--log-level") == 0) &&
		           i + 1 < argc) {
			const char *v = argv[++i];
			if (strcmp(a, "--log-level") == 0) {
				int lvl = log_parse_level(v);
				if (lvl < 0) {
					fprintf(stderr, "awaitd run: unknown log level '%s'\n", v);
					return RUN_USAGE;
				}
				log_set_level((enum log_level)lvl);
				continue;
			}
			double n = parse_num(v);
			if (n < 0) {
				fprintf(stderr,
				        "awaitd run: %s needs a positive number, got '%s'\n", a, v);
				return RUN_USAGE;
			}
			if (strcmp(a, "--max-slice-ms") == 0)
				cfg.max_slice_ms = n;
			else if (strcmp(a, "--workers") == 0)
				wc.workers = n > 256 ? 256 : (int)n;
			else if (strcmp(a, "--worker-timeout-ms") == 0)
				wc.timeout_ms = n;
			else
				cfg.max_memory = (size_t)(n * 1024 * 1024);
		} else if (a[0] == '-' && a[1] != 0) {
			fprintf(stderr, "awaitd run: unknown option '%s'\n", a);
			usage(stderr);
			return RUN_USAGE;
		} else if (!file) {
			file = a;
		} else if (!args) {
			args = a;
		} else {
			fprintf(stderr, "awaitd run: unexpected argument '%s'\n", a);
			usage(stderr);
			return RUN_USAGE;
		}
	}
	if (!file) {
		usage(stderr);
		return RUN_USAGE;
	}

	signal(SIGPIPE, SIG_IGN);
	base = sched_base_new();
	s = base ? sched_new(base, &cfg) : NULL;
	if (!s) {
		fprintf(stderr, "awaitd run: cannot create the event loop or Lua state\n");
		rc = RUN_FAILED;
		goto out;
	}
	L = s->L;

	snprintf(dir, sizeof dir, "%s", file);
	{
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		else
			snprintf(dir, sizeof dir, ".");
	}
	lua_pushcfunction(L, open_env);
	lua_pushstring(L, dir);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		fprintf(stderr, "awaitd run: cannot initialise the runtime: %s\n",
		        lua_tostring(L, -1));
		rc = RUN_FAILED;
		goto out;
	}

	wc.max_memory = cfg.max_memory;
	pool = worker_pool_new(base, &wc, run_worker_init, dir, msg, sizeof msg);
	if (!pool) {
		fprintf(stderr, "awaitd run: %s\n", msg);
		rc = RUN_FAILED;
		goto out;
	}
	worker_pool_register(L, pool);

	lua_pushcfunction(L, start_root);
	switch (luaL_loadfilex(L, file, "t")) {
	case LUA_OK:
		break;
	case LUA_ERRFILE:
		fprintf(stderr, "awaitd run: %s\n", lua_tostring(L, -1));
		rc = RUN_USAGE;
		goto out;
	default:
		fprintf(stderr, "awaitd run: %s\n", lua_tostring(L, -1));
		rc = RUN_FAILED;
		goto out;
	}
	if (args) {
		/* json.decode owns its jansson value: nothing leaks if Lua raises */
		lua_getglobal(L, "json");
		lua_getfield(L, -1, "decode");
		lua_remove(L, -2);
		lua_pushstring(L, args);
		if (lua_pcall(L, 1, 2, 0) != LUA_OK || lua_isnil(L, -2)) {
			fprintf(stderr, "awaitd run: ARGS_JSON: %s\n", errval_tostring(L, -1));
			rc = RUN_USAGE;
			goto out;
		}
		lua_pop(L, 1);
		nargs = 1;
	}
	if (lua_pcall(L, 1 + nargs, 1, 0) != LUA_OK) {
		fprintf(stderr, "awaitd run: cannot start %s: %s\n", file, lua_tostring(L, -1));
		rc = RUN_FAILED;
		goto out;
	}
	root = task_check(L, -1);

	event_base_dispatch(base);

	if (!task_settled(root)) {
		fprintf(stderr,
		        "awaitd run: %s: the root task never finished: %zu task(s) wait for "
		        "something nothing is left to do (deadlock)\n",
		        file, s->stats.live);
		rc = RUN_FAILED;
	} else if (root->state != TASK_DONE) {
		task_push_error(L, -1);
		lua_getfield(L, -1, "traceback");
		const char *tb = lua_tostring(L, -1);
		const char *what = errval_tostring(L, -2);
		fprintf(stderr, "awaitd run: %s: %s\n", file, what);
		if (tb)
			fprintf(stderr, "%s\n", tb);
		rc = RUN_FAILED;
	} else {
		rc = RUN_OK;
	}
out:
	fflush(stdout);
	if (s)
		worker_pool_register(s->L, NULL);
	worker_pool_free(pool);
	sched_free(s);
	if (base)
		event_base_free(base);
	return rc;
}
