/*
 * sandbox.h: the sandbox job scripts and their lib modules run in
 * (sandbox.c), for scripts.c only: nothing outside daemon/jobs/ includes
 * it.
 */
#ifndef AWAITD_SANDBOX_H
#define AWAITD_SANDBOX_H

#include <lua.h>

/*
 * Push a fresh sandbox environment whose require uses the lib cache at
 * cache_idx and the lib directory string at libdir_idx (both absolute or
 * upvalue indexes). Raises only on memory errors.
 */
void sandbox_push(lua_State *L, int cache_idx, int libdir_idx);

/* Give the function on top the environment on top: pops the environment. */
void sandbox_set(lua_State *L);

/*
 * Read path into a new userdata pushed on L (GC-owned, so a memory error
 * leaks nothing). Returns its length with *data its bytes, or -1 with
 * errno (EFBIG: over 16 MiB), having pushed nothing. Raises only on
 * memory errors.
 */
long sandbox_read_file(lua_State *L, const char *path, const char **data);

/* What a failed sandbox_read_file's errno e means, for a message. */
const char *sandbox_read_error(int e);

/* Are the n bytes of data precompiled Lua (refused) rather than text? */
int sandbox_is_bytecode(const char *data, long n);

#endif
