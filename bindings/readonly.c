/*
 * readonly.c: read-only views of tables, so that every script sees the
 * daemon's modules (async, json, log, jobs, http) and the metatables
 * behind its values (async.Error, async.Task) without being able to
 * change them for anyone else.
 *
 * A view is an empty table whose protected metatable reads through to a
 * snapshot of the real table: __index is the snapshot (a plain table, so
 * a field read costs what a raw read costs), __newindex raises, __pairs
 * and __len answer from the snapshot, and __metatable hides all of it. In
 * the snapshot, a field that holds a table holds that table's view, so
 * `async.Error.__tostring = f` fails like `async.timeout = f` does.
 *
 * Invariants:
 *  - one view per real table (the registry maps real -> view), so a view
 *    may serve as a metatable's __metatable and compare equal in every
 *    sandbox: getmetatable(err) == async.Error;
 *  - the real table and its snapshot are reachable only from C and from
 *    the daemon's own Lua code; a view never leads back to them (the
 *    __pairs iterator closes over the snapshot, which it never returns);
 *  - a snapshot is taken once, when the view is made: the daemon's
 *    modules are complete by then (they are built when the state opens)
 *    and do not change afterwards.
 *
 * rawset bypasses __newindex, so the sandbox's rawset asks readonly_is
 * first (daemon/jobs/scripts.c).
 */
#include <lauxlib.h>

#include "modules.h"

/* Registry keys (their addresses): real -> view, and the set of views. */
static const char views_key;
static const char marks_key;

/* Push the registry table at key, made on first use with weak keys when weak. */
static void push_registry_table(lua_State *L, const void *key, int weak)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	lua_newtable(L);
	if (weak) {
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
	}
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* __newindex: upvalue 1 is the view's name. */
static int ro_newindex(lua_State *L)
{
	return luaL_error(L, "%s is read-only: scripts cannot change the daemon's modules",
	                  lua_tostring(L, lua_upvalueindex(1)));
}

/* The __pairs iterator: next over the snapshot (upvalue 1). */
static int ro_next(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_next(L, lua_upvalueindex(1)))
		return 2;
	lua_pushnil(L);
	return 1;
}

static int ro_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushcclosure(L, ro_next, 1);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int ro_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
	return 1;
}

int readonly_is(lua_State *L, int idx)
{
	int is;

	if (lua_type(L, idx) != LUA_TTABLE)
		return 0;
	idx = lua_absindex(L, idx);
	push_registry_table(L, &marks_key, 1);
	lua_pushvalue(L, idx);
	is = lua_rawget(L, -2) != LUA_TNIL;
	lua_pop(L, 2);
	return is;
}

void readonly_push(lua_State *L, int idx, const char *name)
{
	int real, views, view, snap, mt;

	idx = lua_absindex(L, idx);
	if (readonly_is(L, idx)) {
		lua_pushvalue(L, idx);
		return;
	}
	push_registry_table(L, &views_key, 1); /* views */
	views = lua_gettop(L);
	lua_pushvalue(L, idx);
	if (lua_rawget(L, views) == LUA_TTABLE) { /* views view */
		lua_remove(L, views);
		return;
	}
	lua_pop(L, 1);
	real = idx;
	lua_newtable(L); /* views view */
	view = lua_gettop(L);
	lua_newtable(L); /* views view snap */
	snap = lua_gettop(L);
	/* registered before the snapshot is filled: a cycle finds this view */
	lua_pushvalue(L, real);
	lua_pushvalue(L, view);
	lua_rawset(L, views);
	push_registry_table(L, &marks_key, 1);
	lua_pushvalue(L, view);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 1);

	lua_pushnil(L);
	while (lua_next(L, real)) { /* ... snap k v */
		if (lua_type(L, -1) == LUA_TTABLE) {
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
			lua_pushfstring(L, "%s.%s", name, k); /* ... k v vname */
			readonly_push(L, -2, lua_tostring(L, -1));
			lua_replace(L, -3); /* ... k vview vname */
			lua_pop(L, 1);
		}
		lua_pushvalue(L, -2); /* ... k v k */
		lua_insert(L, -2);
		lua_rawset(L, snap);
	}

	lua_createtable(L, 0, 5); /* views view snap mt */
	mt = lua_gettop(L);
	lua_pushvalue(L, snap);
	lua_setfield(L, mt, "__index");
	lua_pushstring(L, name);
	lua_pushcclosure(L, ro_newindex, 1);
	lua_setfield(L, mt, "__newindex");
	lua_pushvalue(L, snap);
	lua_pushcclosure(L, ro_pairs, 1);
	lua_setfield(L, mt, "__pairs");
	lua_pushvalue(L, snap);
	lua_pushcclosure(L, ro_len, 1);
	lua_setfield(L, mt, "__len");
	lua_pushboolean(L, 0);
	lua_setfield(L, mt, "__metatable");
	lua_setmetatable(L, view); /* views view snap */
	lua_pop(L, 1);
	lua_remove(L, views); /* view */
}

void readonly_protect_metatable(lua_State *L, const char *tname, const char *name)
{
	luaL_getmetatable(L, tname); /* mt */
	readonly_push(L, -1, name);  /* mt view */
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
