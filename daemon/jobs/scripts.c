/*
 * scripts.c: loading job scripts into sandboxes, and reloading them.
 *
 * A load runs in protected mode (load_protected) and never raises for the
 * script's own faults: it records them in the caller's struct script_load
 * as "DIR/x.lua:LINE: ..." or "DIR/x.lua: ...". Only a memory error of
 * the loader itself escapes, and the caller turns it into the same kind
 * of message. Every malloc'd string is stored in the caller-owned record
 * as soon as it exists, so a longjmp leaks nothing.
 *
 * The sandbox is a fresh table per script and per lib module: copies of
 * the safe base functions (pcall and coroutine are the runtime's patched
 * versions, read from the globals), copies of the safe libraries, a
 * reduced os (no getenv: the daemon's environment holds its secrets),
 * read-only views of awaitd's modules (bindings/readonly.c: no script can
 * replace async.timeout for another, or for the job runner), and a
 * require that only reads DIR/lib/. rawset refuses those views, since it
 * would write past their __newindex. getmetatable answers nil for
 * non-tables, so the string metatable (whose __index is the state's one
 * string table) stays out of reach. Lib modules are cached per script
 * load: the cache is an upvalue of that script's require closures, so two
 * scripts never share a module table (one cannot rewrite the other's
 * helpers), and an old job table keeps its own modules while runs finish.
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
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "errval.h"
#include "cron.h"
#include "modules.h"
#include "scripts.h"
#include "sched.h"

#define SCRIPTS_HOOK_COUNT     1000000     /* VM instructions between hook calls */
#define SCRIPTS_LOAD_MAX_TICKS 50          /* so about 50 million instructions */
#define SCRIPTS_FILE_MAX       (16u << 20) /* bytes in one script or module */
#define SCRIPTS_MODNAME_MAX    200         /* characters in a require name */

/* Registry keys (their addresses): the active guard, and "being loaded". */
static const char guard_key;
static const char loading_key;

/* A new version of one script, owned by scripts_reload until the swap. */
struct script_load {
	char *error;
	int job_ref; /* registry ref or LUA_NOREF */
	char *description;
	int concurrency;
	double timeout_ms;
	int retries;
	double backoff_ms;
	char *schedule;
};

/* One load_protected call. */
struct load_ctx {
	struct scripts *ss;
	const char *path;
	struct script_load *out;
};

static const char *const base_names[] = {
    "assert",   "error",    "ipairs", "next",     "pairs",  "pcall",  "xpcall",
    "print",    "rawequal", "rawget", "rawlen",   "select", "setmetatable",
    "tonumber", "tostring", "type",   "_VERSION", NULL,
};
static const char *const lib_names[] = {"coroutine", "math", "string", "table", "utf8", NULL};
static const char *const os_names[] = {"clock", "date", "time", "difftime", NULL};
/* awaitd's modules, seen through read-only views; jobs and http when they exist (SPEC 4) */
static const char *const module_names[] = {"async", "json", "log", "jobs", "http", NULL};
static const char *const field_names[] = {"run",     "description", "concurrency", "timeout",
                                          "retries", "backoff",     "schedule",    NULL};

static char *scripts_strdup(const char *s)
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

static void load_fail(struct script_load *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void load_fail(struct script_load *out, const char *fmt, ...)
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

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* --- reading files ------------------------------------------------------- */

/*
 * Read path into a new userdata pushed on L (GC-owned, so a memory error
 * leaks nothing; the FILE is only open while no Lua call can raise).
 * Returns its length, or -1 with errno (EFBIG: over SCRIPTS_FILE_MAX),
 * having pushed nothing. Raises only on memory errors.
 */
static long read_file(lua_State *L, const char *path, const char **data)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return -1;
	}
	if ((unsigned long long)st.st_size > SCRIPTS_FILE_MAX) {
		errno = EFBIG;
		return -1;
	}
	buf = lua_newuserdatauv(L, (size_t)st.st_size + 1, 0); /* buf */
	f = fopen(path, "rb");
	if (!f) {
		int saved = errno;
		lua_pop(L, 1);
		errno = saved;
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, f); /* a file that grew is cut at its stat size */
	fclose(f);
	buf[n] = 0;
	*data = buf;
	return (long)n;
}

static const char *read_error(int e)
{
	return e == EFBIG ? "file too large (more than 16 MiB)" : strerror(e);
}

static int is_bytecode(const char *data, long n)
{
	return n > 0 && data[0] == LUA_SIGNATURE[0];
}

/* --- the sandbox --------------------------------------------------------- */

/* getmetatable for tables only: see the file header. */
static int sandbox_getmetatable(lua_State *L)
{
	luaL_checkany(L, 1);
	if (lua_type(L, 1) != LUA_TTABLE || !lua_getmetatable(L, 1)) {
		lua_pushnil(L);
		return 1;
	}
	luaL_getmetafield(L, 1, "__metatable"); /* a protected metatable answers for itself */
	return 1;
}

/* rawset that refuses the read-only views of the daemon's tables. */
static int sandbox_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	if (readonly_is(L, 1))
		return luaL_error(L, "rawset: the daemon's modules are read-only");
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* Push the read-only view of awaitd's module `name` (nil when it is not open). */
static void push_module(lua_State *L, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	if (lua_getfield(L, -1, name) == LUA_TTABLE) {
		readonly_push(L, -1, name);
		lua_replace(L, -2);
	}
	lua_remove(L, -2);
}

static int sandbox_require(lua_State *L);

/* t[name] = src[name] for each name, raw, when present (t, src at indexes). */
static void copy_fields(lua_State *L, int t, int src, const char *const *names)
{
	for (; *names; names++) {
		lua_pushstring(L, *names);
		if (lua_rawget(L, src) != LUA_TNIL)
			lua_setfield(L, t, *names);
		else
			lua_pop(L, 1);
	}
}

/*
 * Push a fresh sandbox environment whose require uses the lib cache at
 * cache_idx and the lib directory string at libdir_idx (both absolute).
 * Raises only on memory errors.
 */
static void sandbox_push(lua_State *L, int cache_idx, int libdir_idx)
{
	const char *const *name;
	int env, g;

	lua_createtable(L, 0, 32); /* env */
	env = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS); /* env G */
	g = lua_gettop(L);
	copy_fields(L, env, g, base_names);
	lua_pushcfunction(L, sandbox_getmetatable);
	lua_setfield(L, env, "getmetatable");
	lua_pushcfunction(L, sandbox_rawset);
	lua_setfield(L, env, "rawset");
	for (name = lib_names; *name; name++) {
		lua_pushstring(L, *name);
		if (lua_rawget(L, g) != LUA_TTABLE) { /* env G lib */
			lua_pop(L, 1);
			continue;
		}
		lua_newtable(L); /* env G lib copy */
		lua_pushnil(L);
		while (lua_next(L, -3)) { /* env G lib copy k v */
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
		lua_setfield(L, env, *name);
		lua_pop(L, 1); /* env G */
	}
	lua_newtable(L); /* env G os */
	lua_pushliteral(L, "os");
	if (lua_rawget(L, g) == LUA_TTABLE)
		copy_fields(L, lua_gettop(L) - 1, lua_gettop(L), os_names);
	lua_pop(L, 1);
	lua_setfield(L, env, "os");
	for (name = module_names; *name; name++) {
		push_module(L, *name); /* env G view */
		if (lua_isnil(L, -1))
			lua_pop(L, 1);
		else
			lua_setfield(L, env, *name);
	}
	lua_pushvalue(L, cache_idx);
	lua_pushvalue(L, libdir_idx);
	lua_pushcclosure(L, sandbox_require, 2);
	lua_setfield(L, env, "require");
	lua_settop(L, env); /* env */
}

/* Give the function on top the environment on top: pops the environment. */
static void sandbox_set(lua_State *L)
{
	if (!lua_setupvalue(L, -2, 1)) /* a main chunk always has _ENV first */
		lua_pop(L, 1);
}

/* Module names: [A-Za-z0-9_-]+ parts joined by single dots. */
static int modname_ok(const char *s, size_t n)
{
	size_t i, part = 0;

	if (n == 0 || n > SCRIPTS_MODNAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (part == 0)
				return 0;
			part = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '_' || c == '-') {
			part++;
		} else {
			return 0;
		}
	}
	return part > 0;
}

/*
 * require(name): awaitd's modules, else DIR/lib/NAME.lua (dots are
 * directories) loaded as text into its own sandbox, once per generation.
 * Upvalues: the generation's cache, the lib directory.
 */
static int sandbox_require(lua_State *L)
{
	size_t n, i;
	const char *name = luaL_checklstring(L, 1, &n);
	const char *libdir = lua_tostring(L, lua_upvalueindex(2));
	const char *path, *data;
	long len;
	luaL_Buffer b;

	lua_settop(L, 1);
	for (i = 0; module_names[i]; i++) {
		if (strcmp(name, module_names[i]) == 0) {
			push_module(L, name);
			if (!lua_isnil(L, -1))
				return 1;
			lua_pop(L, 1);
		}
	}
	if (!modname_ok(name, n) || strlen(name) != n)
		return luaL_error(L, "module '%s' not found: require only loads modules from %s/",
		                  name, libdir);
	lua_pushvalue(L, 1);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) { /* name cached */
		if (lua_touserdata(L, -1) == (void *)&loading_key)
			return luaL_error(L, "module '%s' requires itself (a require loop)", name);
		return 1;
	}
	lua_pop(L, 1);
	luaL_buffinit(L, &b); /* name buffer */
	luaL_addstring(&b, libdir);
	luaL_addchar(&b, '/');
	for (i = 0; i < n; i++)
		luaL_addchar(&b, name[i] == '.' ? '/' : name[i]);
	luaL_addstring(&b, ".lua");
	luaL_pushresult(&b); /* name path */
	path = lua_tostring(L, 2);
	len = read_file(L, path, &data); /* name path data */
	if (len < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return luaL_error(L, "module '%s' not found: no file %s", name, path);
		return luaL_error(L, "module '%s': %s: %s", name, path, read_error(errno));
	}
	if (is_bytecode(data, len))
		return luaL_error(
		    L, "%s: precompiled (bytecode) modules are refused, only Lua text", path);
	lua_pushfstring(L, "@%s", path); /* name path data chunkname */
	if (luaL_loadbufferx(L, data, (size_t)len, lua_tostring(L, -1), "t") != LUA_OK)
		return lua_error(L);
	/* name path data chunkname fn */
	sandbox_push(L, lua_upvalueindex(1), lua_upvalueindex(2));
	sandbox_set(L);
	lua_pushvalue(L, 1);
	lua_pushlightuserdata(L, (void *)&loading_key);
	lua_rawset(L, lua_upvalueindex(1)); /* cache[name] = loading */
	lua_pushvalue(L, 1);
	lua_pushstring(L, path); /* name path data chunkname fn name path */
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		lua_pushvalue(L, 1);
		lua_pushnil(L);
		lua_rawset(L, lua_upvalueindex(1)); /* a later require tries again */
		return lua_error(L);
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, 1);
	lua_pushvalue(L, -2);
	lua_rawset(L, lua_upvalueindex(1)); /* name path data chunkname result */
	return 1;
}

/* --- validating a script's table ----------------------------------------- */

/* A short rendering of the value at idx for messages: "ten", 5, nil, a table. */
static void render(lua_State *L, int idx, char *buf, size_t len)
{
	lua_Integer i;
	int isint;

	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		snprintf(buf, len, "nil");
		break;
	case LUA_TBOOLEAN:
		snprintf(buf, len, "%s", lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		i = lua_tointegerx(L, idx, &isint);
		if (lua_isinteger(L, idx) && isint)
			snprintf(buf, len, "%lld", (long long)i);
		else
			snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
		break;
	case LUA_TSTRING: {
		size_t n, k, o = 0;
		const char *s = lua_tolstring(L, idx, &n);
		if (len < 8)
			break;
		buf[o++] = '"';
		for (k = 0; k < n && k < 40 && o < len - 5; k++)
			buf[o++] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
		if (k < n && o < len - 5) {
			memcpy(buf + o, "...", 3);
			o += 3;
		}
		buf[o++] = '"';
		buf[o] = 0;
		break;
	}
	default:
		snprintf(buf, len, "a %s", luaL_typename(L, idx));
		break;
	}
}

/*
 * An integer setting at idx (absolute) >= min: 0 and *v, or -1 after
 * recording the failure.
 */
static int check_int(lua_State *L, int idx, const char *path, const char *field, int min, int *v,
                     struct script_load *out)
{
	char got[64];
	lua_Integer i = 0;
	int isint = 0;

	if (lua_type(L, idx) == LUA_TNUMBER)
		i = lua_tointegerx(L, idx, &isint);
	if (!isint || i < min) {
		render(L, idx, got, sizeof got);
		load_fail(out, "%s: %s must be an integer >= %d, got %s", path, field, min, got);
		return -1;
	}
	if (i > INT_MAX) {
		load_fail(out, "%s: %s must be at most %d, got %lld", path, field, INT_MAX,
		          (long long)i);
		return -1;
	}
	*v = (int)i;
	return 0;
}

/* A number of ms at idx: > 0 (strict) or >= 0. */
static int check_ms(lua_State *L, int idx, const char *path, const char *field, int strict,
                    double *v, struct script_load *out)
{
	char got[64];
	double d = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : -1;

	if (lua_type(L, idx) != LUA_TNUMBER || (strict ? !(d > 0) : !(d >= 0))) {
		render(L, idx, got, sizeof got);
		load_fail(out, "%s: %s must be a number %s 0 (ms), got %s", path, field,
		          strict ? ">" : ">=", got);
		return -1;
	}
	*v = d;
	return 0;
}

static int check_string(lua_State *L, int idx, const char *path, const char *field, char **v,
                        struct script_load *out)
{
	char got[64];

	if (lua_type(L, idx) != LUA_TSTRING) {
		render(L, idx, got, sizeof got);
		load_fail(out, "%s: %s must be a string, got %s", path, field, got);
		return -1;
	}
	*v = scripts_strdup(lua_tostring(L, idx));
	if (!*v) {
		load_fail(out, "%s: out of memory", path);
		return -1;
	}
	return 0;
}

/* Push t[k] (t at the absolute idx) without metamethods: the script owns them. */
static int rawfield(lua_State *L, int idx, const char *k)
{
	lua_pushstring(L, k);
	return lua_rawget(L, idx);
}

/* Validate the table at idx (absolute) into out. 0 or -1 (out->error set). */
static int validate(lua_State *L, int idx, const char *path, struct script_load *out)
{
	char got[64];
	int i, known, top = lua_gettop(L);

	if (lua_type(L, idx) != LUA_TTABLE) {
		render(L, idx, got, sizeof got);
		load_fail(out, "%s: must return a table with a run function, got %s", path, got);
		return -1;
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) { /* k v */
		known = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (i = 0; field_names[i] && !known; i++)
				known = strcmp(lua_tostring(L, -2), field_names[i]) == 0;
		if (!known) {
			render(L, -2, got, sizeof got);
			load_fail(out,
			          "%s: unknown field %s%s%s (known: run, description, concurrency, "
			          "timeout, retries, backoff, schedule)",
			          path, lua_type(L, -2) == LUA_TSTRING ? "" : "[", got,
			          lua_type(L, -2) == LUA_TSTRING ? "" : "]");
			lua_settop(L, top);
			return -1;
		}
		lua_pop(L, 1);
	}
	if (rawfield(L, idx, "run") != LUA_TFUNCTION) {
		render(L, -1, got, sizeof got);
		load_fail(out, "%s: run must be a function, got %s", path, got);
		goto fail;
	}
	lua_pop(L, 1);
	if (rawfield(L, idx, "description") != LUA_TNIL &&
	    check_string(L, lua_gettop(L), path, "description", &out->description, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "concurrency") != LUA_TNIL &&
	    check_int(L, lua_gettop(L), path, "concurrency", 1, &out->concurrency, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "timeout") != LUA_TNIL &&
	    check_ms(L, lua_gettop(L), path, "timeout", 1, &out->timeout_ms, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "retries") != LUA_TNIL &&
	    check_int(L, lua_gettop(L), path, "retries", 0, &out->retries, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "backoff") != LUA_TNIL &&
	    check_ms(L, lua_gettop(L), path, "backoff", 0, &out->backoff_ms, out) < 0)
		goto fail;
	lua_pop(L, 1);
	if (rawfield(L, idx, "schedule") != LUA_TNIL) {
		struct cron c;
		char why[256];
		if (check_string(L, lua_gettop(L), path, "schedule", &out->schedule, out) < 0)
			goto fail;
		if (cron_parse(&c, out->schedule, why, sizeof why) < 0) {
			load_fail(out, "%s: schedule \"%s\": %s", path, out->schedule, why);
			goto fail;
		}
	}
	lua_settop(L, top);
	return 0;
fail:
	lua_settop(L, top);
	return -1;
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
		load_fail(out, "%s: error object is a %s value", path, luaL_typename(L, -1));
		return;
	}
	if (strncmp(msg, path, plen) == 0 && msg[plen] == ':')
		load_fail(out, "%s", msg);
	else
		load_fail(out, "%s: %s", path, msg);
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
	len = read_file(L, ctx->path, &data); /* cache libdir data */
	if (len < 0) {
		load_fail(out, "%s: cannot read: %s", ctx->path, read_error(errno));
		return 0;
	}
	if (is_bytecode(data, len)) {
		load_fail(out, "%s: precompiled (bytecode) scripts are refused, only Lua text",
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
			load_fail(out, "%s: took too long to load", ctx->path);
		else if (status == LUA_ERRMEM) {
			char msg[256];
			load_fail(out, "%s: out of memory: %s", ctx->path,
			          sched_oom_message(s, msg, sizeof msg));
		} else
			record_run_error(L, ctx->path, out);
		return 0;
	}
	if (validate(L, lua_gettop(L), ctx->path, out) < 0)
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
		load_fail(out, "%s: out of memory (Lua stack)", path);
		return;
	}
	lua_pushcfunction(L, load_protected);
	lua_pushlightuserdata(L, &ctx);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		load_fail(out, "%s: %s", path,
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
			load_fail(&loads[i], "%s/%s.lua: out of memory", ss->dir, names[i]);
		else if (strlen(names[i]) > SCRIPTS_NAME_MAX)
			load_fail(&loads[i], "%s: script name is longer than %d characters", path,
			          SCRIPTS_NAME_MAX);
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
		s->version++;
		s->loaded_at = wall_now();
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
