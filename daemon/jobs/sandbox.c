/*
 * sandbox.c: the environment a job script or one of its lib modules runs
 * in, and reading the Lua text it is made of.
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
 * Only Lua text is loaded (bytecode could break the VM's invariants), and
 * at most SANDBOX_FILE_MAX bytes of it per file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "modules.h"
#include "sandbox.h"

#define SANDBOX_FILE_MAX    (16u << 20) /* bytes in one script or module */
#define SANDBOX_MODNAME_MAX 200         /* characters in a require name */

/* Registry key (its address): the cache's mark of a module "being loaded". */
static const char loading_key;

static const char *const base_names[] = {
    "assert",   "error",    "ipairs", "next",     "pairs",  "pcall",  "xpcall",
    "print",    "rawequal", "rawget", "rawlen",   "select", "setmetatable",
    "tonumber", "tostring", "type",   "_VERSION", NULL,
};
static const char *const lib_names[] = {"coroutine", "math", "string", "table", "utf8", NULL};
static const char *const os_names[] = {"clock", "date", "time", "difftime", NULL};
/* awaitd's modules, seen through read-only views; jobs and http when they exist (SPEC 4) */
static const char *const module_names[] = {"async", "json", "log", "jobs", "http", NULL};

/*
 * Read path into a new userdata pushed on L (GC-owned, so a memory error
 * leaks nothing; the FILE is only open while no Lua call can raise).
 * Returns its length, or -1 with errno (EFBIG: over SANDBOX_FILE_MAX),
 * having pushed nothing. Raises only on memory errors.
 */
long sandbox_read_file(lua_State *L, const char *path, const char **data)
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
	if ((unsigned long long)st.st_size > SANDBOX_FILE_MAX) {
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

const char *sandbox_read_error(int e)
{
	return e == EFBIG ? "file too large (more than 16 MiB)" : strerror(e);
}

int sandbox_is_bytecode(const char *data, long n)
{
	return n > 0 && data[0] == LUA_SIGNATURE[0];
}

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

void sandbox_push(lua_State *L, int cache_idx, int libdir_idx)
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

void sandbox_set(lua_State *L)
{
	if (!lua_setupvalue(L, -2, 1)) /* a main chunk always has _ENV first */
		lua_pop(L, 1);
}

/* Module names: [A-Za-z0-9_-]+ parts joined by single dots. */
static int modname_ok(const char *s, size_t n)
{
	size_t i, part = 0;

	if (n == 0 || n > SANDBOX_MODNAME_MAX)
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
	len = sandbox_read_file(L, path, &data); /* name path data */
	if (len < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return luaL_error(L, "module '%s' not found: no file %s", name, path);
		return luaL_error(L, "module '%s': %s: %s", name, path, sandbox_read_error(errno));
	}
	if (sandbox_is_bytecode(data, len))
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
