/*
 * awaitctl-int.h: what awaitctl's two files share: awaitctl.c (main, the
 * command table and one output function per command) calls the generic
 * output of awaitctl-print.c. All of it writes to stdout.
 */
#ifndef AWAITD_AWAITCTL_INT_H
#define AWAITD_AWAITCTL_INT_H

#include <jansson.h>

/* v as one compact JSON line (key order kept). */
void ctl_print_json(json_t *v);

/* v pretty-printed, or nothing for NULL or null. */
void ctl_print_pretty(json_t *v);

/* Any result: nothing for null, a string as it is, anything else pretty JSON. */
void ctl_print_generic(json_t *v);

/*
 * An object as aligned "key: value" lines, nested keys as a.b, numbers in
 * the unit their key names; sorted by key when sorted is non-zero. A
 * non-object is printed by ctl_print_generic. Returns CLIENT_EXIT_OK, or
 * CLIENT_EXIT_FAILED when out of memory (told on stderr).
 */
int ctl_print_kv(json_t *obj, int sorted);

/* "NAME: ERROR" for each entry of the array arr whose error is a non-empty string. */
void ctl_print_errors(json_t *arr);

/* Each script's limits and the pauses in force ("NAME: paused for key K until ..."). */
void ctl_print_coordination(json_t *arr);

/* The daemons sharing a PostgreSQL database, a line each; `self` (the epoch) marks this one. */
void ctl_print_nodes(json_t *nodes, json_t *self);

#endif
