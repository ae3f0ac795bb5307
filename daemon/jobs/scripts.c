/*
 * scripts.c: loading job scripts into sandboxes (sandbox.c), and reloading
 * them; scripts-validate.c checks the table each returns.
 *
 * A load runs in protected mode (load_protected) and never raises for the
 * script's own faults: it records them in the caller's struct script_load
 * as "DIR/x.lua:LINE: ..." or "DIR/x.lua: ...". Only a memory error of
 * the loader itself escapes, and the caller turns it into the same kind
 * of message. Every malloc'd string is stored in the caller-owned record
 * as soon as it exists, so a longjmp leaks nothing.
 *
 * Top-level code runs on the scheduler's main thread with the memory cap
 * on (sched->in_task) and a count hook that fails it after
 * SCRIPTS_LOAD_MAX_INSNS VM instructions. The hook finds the guard
 * through the registry; once expired it fires at every instruction, so a
 * pcall in the script cannot swallow the failure and loop on. Coroutines
 * made by the script inherit the hook; outside a load it removes itself.
 *
 * Workload: a few dozen small files, reloaded on an operator's request.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "clock.h"
#include "errval.h"
#include "modules.h"
#include "sandbox.h"
#include "sched.h"
#include "scripts.h"
#include "scripts-int.h"

#define SCRIPTS_HOOK_COUNT     1000000     /* VM instructions between hook calls */
#define SCRIPTS_LOAD_MAX_TICKS 50          /* so about 50 million instructions */

/* Registry key (its address): the active guard. */
static const char guard_key;

/* One load_protected call. */
struct load_ctx {
	struct scripts *ss;
	const char *path;
	struct script_load *out;
};

char *scripts_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

/* malloc'd printf, or NULL when memory runs out. */
static char *scripts_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *scripts_printf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void scripts_load_fail(struct script_load *out, const char *fmt, ...)
{
	static const char oom[] = "out of memory while recording a load error";
	va_list ap;
	char *p;
	int n;

	if (out->error)
		return; /* the first failure is the one to report */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = n < 0 ? NULL : malloc((size_t)n + 1);
	if (p) {
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	out->error = p ? p : scripts_strdup(oom);
}

/* --- the load guard ------------------------------------------------------ */

static void load_hook(lua_State *L, lua_Debug *ar)
{
	struct scripts_guard *g;

	(void)ar;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &guard_key);
	g = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (!g || !g->active) {
		lua_sethook(L, NULL, 0, 0); /* a coroutine of an old load: no cost */
		return;
	}
	if (!g->expired && ++g->ticks < SCRIPTS_LOAD_MAX_TICKS)
		return;
	if (!g->expired) {
		/* from now on every instruction fails, on the main thread too (coroutines
		 * made later inherit its hook), so no pcall or coroutine can go on */
		g->expired = 1;
		lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
		lua_sethook(lua_tothread(L, -1), load_hook, LUA_MASKCOUNT, 1);
		lua_pop(L, 1);
		lua_sethook(L, load_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushliteral(L, "took too long to load");
	lua_error(L);
}

/* --- loading one script -------------------------------------------------- */

/* The error on top after a failed top-level run, as text naming path. */
static void record_run_error(lua_State *L, const char *path, struct script_load *out)
{
	size_t plen = strlen(path);
	const char *msg = NULL;

	if (lua_type(L, -1) == LUA_TSTRING) {
		msg = lua_tostring(L, -1);
	} else if (errval_is(L, -1)) {
		lua_pushliteral(L, "message");
		if (lua_rawget(L, -2) == LUA_TSTRING)
			msg = lua_tostring(L, -1); /* still referenced by the error value */
		lua_pop(L, 1);
	}
	if (!msg) {
		scripts_load_fail(out, "%s: error object is a %s value", path,
		                  luaL_typename(L, -1));
		return;
	}
	if (strncmp(msg, path, plen) == 0 && msg[plen] == ':')
		scripts_load_fail(out, "%s", msg);
	else
		scripts_load_fail(out, "%s: %s", path, msg);
}

/*
 * lua_CFunction, arg 1 a struct load_ctx: read, compile, run and validate
 * one script into ctx->out. Raises only on memory errors of its own.
 */
static int load_protected(lua_State *L)
{
	struct load_ctx *ctx = lua_touserdata(L, 1);
	struct scripts *ss = ctx->ss;
	struct script_load *out = ctx->out;
	struct sched *s = sched_of(L);
	int cache, libdir, status;
	const char *data;
	long len;

	lua_settop(L, 0);
	lua_newtable(L); /* cache: this script's own lib modules */
	cache = lua_gettop(L);
	lua_pushfstring(L, "%s/lib", ss->dir); /* cache libdir */
	libdir = lua_gettop(L);
	len = sandbox_read_file(L, ctx->path, &data); /* cache libdir data */
	if (len < 0) {
		scripts_load_fail(out, "%s: cannot read: %s", ctx->path, sandbox_read_error(errno));
		return 0;
	}
	if (sandbox_is_bytecode(data, len)) {
		scripts_load_fail(out,
		                  "%s: precompiled (bytecode) scripts are refused, only Lua text",
		                  ctx->path);
		return 0;
	}
	lua_pushfstring(L, "@%s", ctx->path);
	if (luaL_loadbufferx(L, data, (size_t)len, lua_tostring(L, -1), "t") != LUA_OK) {
		record_run_error(L, ctx->path, out); /* "DIR/x.lua:3: ..." */
		return 0;
	}
	sandbox_push(L, cache, libdir);
	sandbox_set(L); /* cache libdir data chunkname fn */
	lua_pushlightuserdata(L, &ss->guard);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &guard_key);
	ss->guard.active = 1;
	ss->guard.expired = 0;
	ss->guard.ticks = 0;
	lua_sethook(L, load_hook, LUA_MASKCOUNT, SCRIPTS_HOOK_COUNT);
	s->in_task = 1; /* the memory cap applies to the script's top level */
	status = lua_pcall(L, 0, 1, 0);
	s->in_task = 0;
	lua_sethook(L, NULL, 0, 0);
	ss->guard.active = 0;
	if (status != LUA_OK) {
		if (ss->guard.expired)
			scripts_load_fail(out, "%s: took too long to load", ctx->path);
		else if (status == LUA_ERRMEM) {
			char msg[256];
			scripts_load_fail(out, "%s: out of memory: %s", ctx->path,
			                  sched_oom_message(s, msg, sizeof msg));
		} else
			record_run_error(L, ctx->path, out);
		return 0;
	}
	if (scripts_validate(L, lua_gettop(L), ctx->path, out) < 0)
		return 0;
	out->job_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

/*
 * Load the script at path into out (defaults first). The caller's hook
 * on L is put back afterwards. Memory errors become out->error.
 */
static void load_one(struct scripts *ss, const char *path, struct script_load *out)
{
	lua_State *L = ss->L;
	struct sched *s = sched_of(L);
	struct load_ctx ctx = {ss, path, out};
	lua_Hook hook = lua_gethook(L);
	int mask = lua_gethookmask(L), count = lua_gethookcount(L);
	int in_task = s->in_task, top = lua_gettop(L);

	out->concurrency = 10;
	out->timeout_ms = 60000;
	out->retries = 0;
	out->backoff_ms = 1000;
	if (!lua_checkstack(L, 8)) {
		scripts_load_fail(out, "%s: out of memory (Lua stack)", path);
		return;
	}
	lua_pushcfunction(L, load_protected);
	lua_pushlightuserdata(L, &ctx);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		scripts_load_fail(out, "%s: %s", path,
		                  lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
		                                                 : "out of memory while loading");
	s->in_task = in_task;
	ss->guard.active = 0;
	lua_sethook(L, hook, mask, count);
	lua_settop(L, top);
}

static void load_free(lua_State *L, struct script_load *ld)
{
	luaL_unref(L, LUA_REGISTRYINDEX, ld->job_ref);
	ld->job_ref = LUA_NOREF;
	free(ld->error);
	free(ld->description);
	free(ld->schedule);
	ld->error = ld->description = ld->schedule = NULL;
}

/* --- the directory ------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_script(const void *a, const void *b)
{
	return strcmp((*(struct script *const *)a)->name, (*(struct script *const *)b)->name);
}

/* NAME.lua with NAME of [A-Za-z0-9_-]+: the length of NAME, else 0. */
static size_t script_name_len(const char *file)
{
	size_t n = strlen(file), i;

	if (n <= 4 || strcmp(file + n - 4, ".lua") != 0)
		return 0;
	for (i = 0; i < n - 4; i++) {
		char c = file[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return n - 4;
}

/*
 * The sorted script names of dir (malloc'd array of malloc'd strings).
 * Returns 0, or -1 with *why (malloc'd, may be NULL without memory).
 */
static int list_dir(const char *dir, char ***names, size_t *nnames, char **why)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL, **nv;
	size_t n = 0, cap = 0, len;
	int rc = -1;

	if (!d) {
		*why = scripts_printf("%s: cannot read the scripts directory: %s", dir,
		                      strerror(errno));
		return -1;
	}
	errno = 0;
	while ((e = readdir(d))) {
		len = script_name_len(e->d_name);
		if (!len)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof *v);
			if (!nv)
				goto nomem;
			v = nv;
		}
		v[n] = malloc(len + 1);
		if (!v[n])
			goto nomem;
		memcpy(v[n], e->d_name, len);
		v[n++][len] = 0;
		errno = 0;
	}
	if (errno) {
		*why = scripts_printf("%s: cannot read the scripts directory: %s", dir,
		                      strerror(errno));
		goto out;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
	*names = v;
	*nnames = n;
	v = NULL;
	n = 0;
	rc = 0;
	goto out;
nomem:
	*why = scripts_printf("%s: out of memory listing the scripts directory", dir);
out:
	while (n)
		free(v[--n]);
	free(v);
	closedir(d);
	return rc;
}

static struct script *script_new(const char *dir, const char *name)
{
	struct script *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->job_ref = LUA_NOREF;
	s->name = scripts_strdup(name);
	s->path = scripts_printf("%s/%s.lua", dir, name);
	if (!s->name || !s->path) {
		free(s->name);
		free(s->path);
		free(s);
		return NULL;
	}
	return s;
}

/* Release s's ref and free it; NULL is a no-op. */
static void script_free(lua_State *L, struct script *s)
{
	if (!s)
		return;
	luaL_unref(L, LUA_REGISTRYINDEX, s->job_ref);
	free(s->name);
	free(s->path);
	free(s->error);
	free(s->description);
	free(s->schedule);
	free(s);
}

/* --- the API ------------------------------------------------------------- */

struct script *scripts_find(struct scripts *ss, const char *name)
{
	struct script key, *kp = &key, **hit;

	if (!ss->n)
		return NULL;
	key.name = (char *)name;
	hit = bsearch(&kp, ss->v, ss->n, sizeof *ss->v, cmp_script);
	return hit ? *hit : NULL;
}

void scripts_push_job(struct scripts *ss, const struct script *s)
{
	if (s && s->job_ref != LUA_NOREF)
		lua_rawgeti(ss->L, LUA_REGISTRYINDEX, s->job_ref);
	else
		lua_pushnil(ss->L);
}

int scripts_reload(struct scripts *ss)
{
	lua_State *L = ss->L;
	char **names = NULL, *why = NULL;
	size_t nnames = 0, i;
	struct script_load *loads = NULL;
	struct script **v = NULL;
	unsigned char *fresh = NULL; /* v[i] was made by this reload */
	int nfailed = 0, rc = -1;

	if (list_dir(ss->dir, &names, &nnames, &why) < 0)
		goto out;
	loads = calloc(nnames + 1, sizeof *loads);
	v = calloc(nnames + 1, sizeof *v);
	fresh = calloc(nnames + 1, 1);
	if (!loads || !v || !fresh) {
		why = scripts_printf("%s: out of memory reloading scripts", ss->dir);
		goto out;
	}
	/* phase 1: load everything; nothing visible changes */
	for (i = 0; i < nnames; i++) {
		char *path = scripts_printf("%s/%s.lua", ss->dir, names[i]);
		loads[i].job_ref = LUA_NOREF;
		if (!path)
			scripts_load_fail(&loads[i], "%s/%s.lua: out of memory", ss->dir, names[i]);
		else if (strlen(names[i]) > SCRIPTS_NAME_MAX)
			scripts_load_fail(&loads[i], "%s: script name is longer than %d characters",
			                  path, SCRIPTS_NAME_MAX);
		else
			load_one(ss, path, &loads[i]);
		free(path);
	}
	/* phase 2: every allocation the swap needs */
	for (i = 0; i < nnames; i++) {
		v[i] = scripts_find(ss, names[i]);
		if (!v[i]) {
			v[i] = script_new(ss->dir, names[i]);
			fresh[i] = 1;
			if (!v[i]) {
				why =
				    scripts_printf("%s: out of memory reloading scripts", ss->dir);
				goto out;
			}
		}
	}
	/* phase 3: the swap, which cannot fail */
	for (i = 0; i < nnames; i++) {
		struct script *s = v[i];
		struct script_load *ld = &loads[i];
		if (ld->error) {
			free(s->error);
			s->error = ld->error;
			ld->error = NULL;
			nfailed++;
			continue;
		}
		luaL_unref(L, LUA_REGISTRYINDEX, s->job_ref); /* runs hold their own refs */
		s->job_ref = ld->job_ref;
		ld->job_ref = LUA_NOREF;
		free(s->description);
		free(s->schedule);
		s->description = ld->description;
		s->schedule = ld->schedule;
		ld->description = ld->schedule = NULL;
		s->concurrency = ld->concurrency;
		s->timeout_ms = ld->timeout_ms;
		s->retries = ld->retries;
		s->backoff_ms = ld->backoff_ms;
		memcpy(s->limits, ld->limits, sizeof s->limits);
		s->nlimits = ld->nlimits;
		memcpy(s->fair_by, ld->fair_by, sizeof s->fair_by);
		s->version++;
		s->loaded_at = clock_wall_s();
		free(s->error);
		s->error = NULL;
	}
	for (i = 0; i < ss->n; i++)
		if (!bsearch(&ss->v[i]->name, names, nnames, sizeof *names, cmp_str))
			script_free(L, ss->v[i]); /* its file is gone */
	free(ss->v);
	ss->v = v;
	ss->n = nnames;
	v = NULL;
	free(ss->error);
	ss->error = NULL;
	rc = nfailed;
out:
	if (rc < 0) {
		free(ss->error);
		ss->error = why ? why : scripts_strdup("out of memory reloading scripts");
		why = NULL;
	}
	for (i = 0; v && i < nnames; i++)
		if (fresh[i])
			script_free(L, v[i]);
	for (i = 0; loads && i < nnames; i++)
		load_free(L, &loads[i]);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(why);
	free(fresh);
	free(v);
	free(loads);
	free(names);
	return rc;
}

int scripts_open(struct scripts *ss, lua_State *L, const char *dir, char *err, size_t errlen)
{
	memset(ss, 0, sizeof *ss);
	ss->L = L;
	ss->dir = scripts_strdup(dir);
	if (!ss->dir) {
		if (err)
			snprintf(err, errlen, "%s: out of memory", dir);
		return -1;
	}
	if (scripts_reload(ss) < 0) {
		if (err)
			snprintf(err, errlen, "%s", ss->error ? ss->error : "out of memory");
		return -1;
	}
	return 0;
}

void scripts_close(struct scripts *ss)
{
	size_t i;

	if (ss->L) {
		for (i = 0; i < ss->n; i++)
			script_free(ss->L, ss->v[i]);
		if (lua_checkstack(ss->L, 1)) {
			lua_rawgetp(ss->L, LUA_REGISTRYINDEX, &guard_key);
			if (lua_touserdata(ss->L, -1) == &ss->guard) {
				lua_pushnil(ss->L); /* the key exists: no allocation */
				lua_rawsetp(ss->L, LUA_REGISTRYINDEX, &guard_key);
			}
			lua_pop(ss->L, 1);
		}
	}
	free(ss->v);
	free(ss->dir);
	free(ss->error);
	memset(ss, 0, sizeof *ss);
}

int scripts_worker_init(lua_State *W, void *ud)
{
	luaL_requiref(W, "json", luaopen_json, 0);
	lua_pop(W, 1);
	lua_newtable(W);                               /* the lib cache */
	lua_pushfstring(W, "%s/lib", (const char *)ud); /* cache libdir */
	sandbox_push(W, lua_gettop(W) - 1, lua_gettop(W)); /* cache libdir env */
	lua_getfield(W, -1, "require");
	return 1;
}
