/*
 * guard.h: the to-be-closed guard of an operation a task waits for (the
 * store's answer, db-await.c; a worker call, worker.c). The guard sits on
 * the waiting task's stack: whichever way the task leaves the wait (the
 * answer, a cancellation, an error) closes it, and the collector finalizes
 * one that was never closed; either way `release` runs once per path that
 * reaches it, and must be idempotent.
 */
#ifndef AWAITD_GUARD_H
#define AWAITD_GUARD_H

#include <stddef.h>

#include <lua.h>

/*
 * Push a zeroed userdata of size bytes with metatable mt (made on first
 * use: __close and __gc call release) and mark it to-be-closed. Returns it;
 * it stays on the top of the stack. Raises only when out of memory.
 */
void *guard_push(lua_State *L, size_t size, const char *mt, lua_CFunction release);

#endif
