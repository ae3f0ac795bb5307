/*
 * test.h: `awaitd test [--scripts DIR] [--migrations DIR] FILE...`, the
 * test runner: each file's tests on the real runtime and job engine, with
 * a fresh database and a virtual clock (test.c); TAP on stdout.
 */
#ifndef AWAITD_TEST_H
#define AWAITD_TEST_H

/* argv[0] is "test". Returns the exit status (run.h's: 0, 1 a test failed, 2 usage). */
int test_main(int argc, char **argv);

#endif
