/*
 * errval.h: awaitd's error values (SPEC section 3).
 *
 * An error value is a Lua table with metatable "async.Error" and fields
 * code (short string), message, and optionally traceback, cause, index and
 * whatever else its creator adds. tostring(err) is "code: message".
 */
#ifndef AWAITD_ERRVAL_H
#define AWAITD_ERRVAL_H

#include <lua.h>

#define ERRVAL_MT "async.Error"

/* Create the metatable (idempotent). Called by luaopen_async. */
void errval_register(lua_State *L);

/* Push a new error value {code, message = printf(fmt, ...)}. */
void errval_push(lua_State *L, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when the value at idx is an error value. */
int errval_is(lua_State *L, int idx);

/*
 * Replace the value at idx by an error value: error values stay as they
 * are; a string becomes {code = "error", message = s} (the memory-error
 * string becomes code "out_of_memory"); any other value v becomes
 * {code = "error", message = tostring(v), value = v}.
 */
void errval_wrap(lua_State *L, int idx);

/* Set err.traceback (err at idx) from co's stack at level, unless set. */
void errval_traceback(lua_State *L, int idx, lua_State *co, int level);

/* The code of the error value at idx, or "error". Borrowed from the value. */
const char *errval_code(lua_State *L, int idx);

/* Message handler for pcall: wraps the error and adds a traceback. */
int errval_msgh(lua_State *L);

/*
 * Push "code: message" for the value at idx (any value), read with raw
 * access: no metamethod runs, nothing raises. Returns the pushed string.
 */
const char *errval_tostring(lua_State *L, int idx);

#endif
