/*
 * run.h: `awaitd run FILE.lua [ARGS_JSON]`, the one-shot mode (like
 * `node file.js`): the file is the root task; the process exits when the
 * loop has nothing left to do.
 */
#ifndef AWAITD_RUN_H
#define AWAITD_RUN_H

/* Exit statuses of `awaitd run`. */
#define RUN_OK     0 /* the root task returned normally */
#define RUN_FAILED 1 /* it raised, returned nil, err, or never finished */
#define RUN_USAGE  2 /* bad command line, unreadable file, bad ARGS_JSON */

/* argv[0] is "run". Returns the exit status. */
int run_main(int argc, char **argv);

#endif
