/*
 * modules.h: awaitd's Lua modules and how a state gets them. Each
 * bindings/<module>.c exports its luaopen_<module> (declared here, so
 * modules.c needs no other header) and nothing else but what is below.
 *
 * Part bindings (bindings/): the Lua face, one file per module, and the
 * embedded Lua sources. It may call store, runtime and base.
 */
#ifndef AWAITD_MODULES_H
#define AWAITD_MODULES_H

#include <lua.h>

/*
 * The module openers, for luaL_requiref. Each pushes its module table.
 * They raise only on memory errors. luaopen_async needs a state made by
 * sched_new (it runs the embedded async.lua, which uses the scheduler).
 */
int luaopen_async(lua_State *L);

/* Registry field holding async.lua's private building blocks (tests only). */
#define ASYNC_PRIVATE "awaitd.async_private"
int luaopen_http(lua_State *L);
int luaopen_json(lua_State *L);
int luaopen_jobs(lua_State *L);
int luaopen_log(lua_State *L);

/* The log table for the job named by the string on top (popped; nil: none). */
void log_push_module(lua_State *L);

/*
 * Replace coroutine.resume/wrap by versions the slice tick can see into,
 * and pcall/xpcall by versions that cannot swallow a task's cancellation.
 */
void coro_patch(lua_State *L);

/*
 * Read-only views (readonly.c). readonly_push pushes the one view of the
 * table at idx (the table itself when it is a view already): reads go
 * through to a snapshot in which nested tables are views too, writes
 * raise naming `name`. readonly_is: whether the value at idx is a view.
 * readonly_protect_metatable sets the __metatable of the registry's
 * metatable tname to its view, so getmetatable() answers the view. All
 * raise only on memory errors.
 */
void readonly_push(lua_State *L, int idx, const char *name);
int readonly_is(lua_State *L, int idx);
void readonly_protect_metatable(lua_State *L, const char *tname, const char *name);

/*
 * Open async, http, jobs, json and log in L: each is a global and in package.loaded,
 * so `require "async"` and the global are the same table. Raises on error.
 */
void modules_open(lua_State *L);

#endif
