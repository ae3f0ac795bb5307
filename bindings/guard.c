/* guard.c: see guard.h. */
#include <string.h>

#include <lauxlib.h>

#include "guard.h"

void *guard_push(lua_State *L, size_t size, const char *mt, lua_CFunction release)
{
	void *g = lua_newuserdatauv(L, size, 0);

	memset(g, 0, size);
	if (luaL_newmetatable(L, mt)) {
		lua_pushcfunction(L, release);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, release);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return g;
}
