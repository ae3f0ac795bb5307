/*
 * tasklabel.c: see tasklabel.h. Lua's getinfo "n" names only a function
 * being called, not one passed as a value, so the name is looked up in
 * the nearest frame of user code: its locals, then its function's
 * upvalues. Frames of C and of async.lua (which wraps spawn in async.fn,
 * timeout, queues) are passed over, or every task would be named "f";
 * jobrun.lua's frame is not, so the job's run function is "run". The
 * search is bounded (the first 32 locals and upvalues of one frame).
 *
 * The cache is keyed by the definition site (source string, line): every
 * closure made at one site gets the name found for the first. A stale slot
 * (its source freed and its address reused) can only give a wrong label.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tasklabel.h"

/* The name under which the nearest user frame holds the function at fn, or NULL. */
static const char *find_name(lua_State *L, int fn)
{
	const char *found = NULL, *k;
	lua_Debug ar;
	int level, i;

	for (level = 1; level <= 4 && lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sf", &ar)) /* pushes the frame's function */
			break;
		if (ar.what[0] == 'C' || strcmp(ar.source, "=async.lua") == 0) {
			lua_pop(L, 1);
			continue;
		}
		for (i = 1; !found && i <= 32 && (k = lua_getlocal(L, &ar, i)); i++) {
			if (k[0] != '(' && lua_rawequal(L, -1, fn))
				found = k;
			lua_pop(L, 1);
		}
		for (i = 1; !found && i <= 32 && (k = lua_getupvalue(L, -1, i)); i++) {
			if (lua_rawequal(L, -1, fn))
				found = k;
			lua_pop(L, 1);
		}
		lua_pop(L, 1); /* the frame's function */
		break;        /* only the nearest frame of user code */
	}
	/* local and upvalue names are strings of a prototype, alive while fn is */
	return found && *found ? found : NULL;
}

void tasklabel_of(lua_State *L, int fn, struct tasklabel_slot *cache, char *name, size_t nlen,
                  char *where, size_t wlen)
{
	struct tasklabel_slot *slot = NULL;
	const char *found;
	lua_Debug ar;

	fn = lua_absindex(L, fn);
	snprintf(name, nlen, "<fn>");
	lua_pushvalue(L, fn);
	if (!lua_getinfo(L, ">S", &ar))
		return;
	snprintf(where, wlen, "%s:%d", ar.short_src, ar.linedefined);
	if (ar.what[0] != 'C') {
		uintptr_t h = ((uintptr_t)ar.source >> 4) ^ (uintptr_t)ar.linedefined * 2654435761u;
		slot = &cache[h % TASKLABEL_CACHE];
		if (slot->source == ar.source && slot->line == ar.linedefined) {
			snprintf(name, nlen, "%s", slot->name);
			return;
		}
	}
	found = find_name(L, fn);
	if (found)
		snprintf(name, nlen, "%s", found);
	if (slot) {
		slot->source = ar.source;
		slot->line = ar.linedefined;
		snprintf(slot->name, sizeof slot->name, "%s", name);
	}
}
