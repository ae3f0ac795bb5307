/*
 * scripts-int.h: what the files of the script loader share (scripts.c
 * loads and reloads, scripts-validate.c checks a script's table); nothing
 * outside daemon/jobs/ includes it.
 */
#ifndef AWAITD_SCRIPTS_INT_H
#define AWAITD_SCRIPTS_INT_H

#include <lua.h>

#include "scripts.h"

/* A new version of one script, owned by scripts_reload until the swap. */
struct script_load {
	char *error;
	int job_ref; /* registry ref or LUA_NOREF */
	char *description;
	int concurrency;
	double timeout_ms;
	int retries;
	double backoff_ms;
	char *schedule;
	struct script_limit limits[SCRIPTS_MAX_LIMITS];
	int nlimits;
	char fair_by[SCRIPTS_LIMIT_BY];
};

/* A malloc'd copy of s, or NULL when memory runs out. */
char *scripts_strdup(const char *s);

/*
 * Record the load's failure in out->error (malloc'd printf), unless one
 * is recorded already: the first failure is the one to report. Without
 * memory it records a fixed message instead; it never raises.
 */
void scripts_load_fail(struct script_load *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Validate the table at idx (absolute), the value a script at path
 * returned, into out's settings. 0, or -1 with out->error set. Raises
 * only on memory errors; the stack is as it was.
 */
int scripts_validate(lua_State *L, int idx, const char *path, struct script_load *out);

#endif
