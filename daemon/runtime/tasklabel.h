/*
 * tasklabel.h: what a traced task's span is called: the name under which
 * the spawning code holds the function ("fetch_user", else "<fn>") and
 * where it is defined ("dashboard.lua:12").
 */
#ifndef AWAITD_TASKLABEL_H
#define AWAITD_TASKLABEL_H

#include <stddef.h>

#include <lua.h>

#define TASKLABEL_CACHE 64 /* definition sites remembered per scheduler */

/* One remembered definition site (see tasklabel_of). */
struct tasklabel_slot {
	const void *source; /* the prototype's source string; NULL: empty slot */
	int line;           /* its linedefined */
	char name[48];
};

/*
 * Fill name and where for the function at index fn of L, spawned from L's
 * running frame. cache (TASKLABEL_CACHE slots, zeroed at first) remembers
 * the name found for each definition site, so a function spawned again
 * from a loop costs one lua_getinfo instead of a search of the caller's
 * locals. Never raises.
 */
void tasklabel_of(lua_State *L, int fn, struct tasklabel_slot *cache, char *name, size_t nlen,
                  char *where, size_t wlen);

#endif
