/*
 * view.h: awaitctl's human renderings of the job commands' results
 * (enqueue, jobs, show, cancel, retry, trace; SPEC section 6), and the
 * small text helpers awaitctl's other output functions share with them.
 *
 * Every view_<command> prints the result document to f and returns 0, or
 * returns -1 having printed nothing when the document does not have the
 * command's shape (the caller then prints it as JSON), or -1 when memory
 * runs out. Times in the documents are unix epoch ms (JSON integers) or
 * null; the renderings take "now" and the terminal width from struct
 * view_opts, so that tests get the same text every time.
 */
#ifndef AWAITD_VIEW_H
#define AWAITD_VIEW_H

#include <stdio.h>

#include <jansson.h>

#define VIEW_DEFAULT_WIDTH 100 /* columns when neither $COLUMNS nor a tty says */

struct view_opts {
	json_int_t now_ms; /* ms, unix epoch: what ages ("3s ago") count from */
	int width;         /* columns of the output, for the trace waterfall */
};

/* The current time in ms since the unix epoch. */
json_int_t view_now_ms(void);

/* Columns for output to fd: $COLUMNS when a positive number, else the tty's, else 100. */
int view_columns(int fd);

/* A JSON value as compact text for a cell or a line: strings as they are, "-" for NULL and null.
 * Malloc'd; NULL when out of memory. */
char *view_text(json_t *v);

/*
 * cells (nrow rows of ncol strings, row-major, none NULL) under head as
 * columns two blanks apart, each as wide as its widest cell in characters
 * (UTF-8 aware); the last column is not padded. At most 16 columns.
 */
void view_table(FILE *f, const char *const *head, size_t ncol, char *const *cells, size_t nrow);

/* "3 queued, 1 running, ..." from status's jobs object, in state order; malloc'd, NULL when none.
 */
char *view_job_counts(json_t *jobs);

/* {"id":12,"created":b}: "12", or "12 (existing job for this key)". */
int view_enqueue(FILE *f, json_t *result, const struct view_opts *vo);

/* {"jobs":[job...]}: a table, newest first as given; "No jobs." when empty. */
int view_jobs(FILE *f, json_t *result, const struct view_opts *vo);

/* A job with "steps": "key: value" lines, then the steps. */
int view_show(FILE *f, json_t *job, const struct view_opts *vo);

/* A job in one line: "job 12 purchase: queued (attempt 2 of 4)" (cancel, retry). */
int view_job_line(FILE *f, json_t *job, const struct view_opts *vo);

/*
 * A progress bar for a terminal of width columns, into buf:
 * "[#########-----------]  42%  message", cut to width.
 */
const char *view_progress_bar(char *buf, size_t n, double fraction, const char *message,
                              int width);

/* {"job":job,"spans":[...]}: the task tree as a waterfall drawn to scale in vo->width columns. */
int view_trace(FILE *f, json_t *result, const struct view_opts *vo);

#endif
