/*
 * modules.h: awaitd's Lua modules and how a state gets them.
 */
#ifndef AWAITD_MODULES_H
#define AWAITD_MODULES_H

#include <lua.h>

int luaopen_async(lua_State *L);
int luaopen_json(lua_State *L);
int luaopen_log(lua_State *L);

/* The log table for the job named by the string on top (popped; nil: none). */
void log_push_module(lua_State *L);

/*
 * Replace coroutine.resume/wrap by versions the slice tick can see into,
 * and pcall/xpcall by versions that cannot swallow a task's cancellation.
 */
void coro_patch(lua_State *L);

/*
 * Open async, json and log in L: each is a global and in package.loaded,
 * so `require "async"` and the global are the same table. Raises on error.
 */
void modules_open(lua_State *L);

#endif
