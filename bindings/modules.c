/*
 * modules.c: opening awaitd's Lua modules in a state, as globals and in
 * package.loaded (SPEC section 4: "globals in every script, and also
 * reachable with require").
 */
#include <lauxlib.h>

#include "modules.h"

void modules_open(lua_State *L)
{
	static const luaL_Reg mods[] = {
	    {"async", luaopen_async},
	    {"http", luaopen_http},
	    {"jobs", luaopen_jobs},
	    {"json", luaopen_json},
	    {"log", luaopen_log},
	    {NULL, NULL},
	};

	for (const luaL_Reg *m = mods; m->name; m++) {
		luaL_requiref(L, m->name, m->func, 1);
		lua_pop(L, 1);
	}
	coro_patch(L);
}
