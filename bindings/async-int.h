/*
 * async-int.h: what the files of the Lua "async" module share: async.c
 * (the module: tasks, time, error values, parking, and luaopen_async),
 * async-port.c (completion ports, async.Port, and task:_watch) and
 * async-scope.c (the timeout scope of async.timeout).
 *
 * Nothing here is part of the Lua API; only luaopen_async (modules.h) is
 * the module's entry.
 */
#ifndef AWAITD_ASYNC_INT_H
#define AWAITD_ASYNC_INT_H

#include <lua.h>

struct task;

/* The running task; raises "async.WHAT must be called inside a task" outside one. */
struct task *async_need_task(lua_State *L, const char *what);

/* Argument idx as milliseconds >= 0 (math.huge: for ever); raises on a bad one. */
double async_check_ms(lua_State *L, int idx);

/*
 * Create the async.Port metatable and add _port and _watch to the table
 * on the top of the stack (async.lua's private building blocks). Raises
 * only when out of memory.
 */
void async_port_register(lua_State *L);

/* Add _scope, _catch_mark and _hands_on (async-scope.c) to the table on top of the stack. */
void async_scope_register(lua_State *L);

#endif
