/*
 * view-int.h: the text helpers view.c and view-trace.c share (awaitctl
 * only; nothing outside daemon/ctl/ includes this).
 */
#ifndef AWAITD_VIEW_INT_H
#define AWAITD_VIEW_INT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define VIEW_RESULT_CELLS 40 /* characters of a result or error in a table cell */
#define VIEW_INFO_CELLS   18 /* characters of the waterfall's "duration outcome" column */

/* Characters (UTF-8 code points) of s. */
size_t view_len(const char *s);

/* s (malloc'd, taken) cut to w characters with "…"; NULL stays NULL. */
char *view_fit(char *s, size_t w);

/* s, then blanks up to w characters. */
void view_pad(FILE *f, const char *s, size_t w);

/* job.key as a string, or dflt. */
const char *view_str(json_t *job, const char *key, const char *dflt);

/* job.key as a number into *ms: 1, or 0 when it is not one. */
int view_num(json_t *job, const char *key, double *ms);

#endif
