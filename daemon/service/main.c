/*
 * main.c: awaitd's entry point; wiring only. Each mode lives in its own
 * file: run.c for `awaitd run`, test.c for `awaitd test`, daemon.c for the daemon and
 * `awaitd check`.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "run.h"
#include "test.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: awaitd [-c CONFIG] [--scripts DIR] [--db PATH] [--migrations DIR] "
	             "[--socket PATH] "
	             "[--log-level LEVEL]\n"
	             "       awaitd check [-c CONFIG] ...   validate config and scripts\n"
	             "       awaitd migrate [-c CONFIG] [--db PATH] ...   apply migrations\n"
	             "       awaitd run FILE.lua [ARGS_JSON]   run one file as the root task\n"
	             "       awaitd test [--scripts DIR] FILE.lua...   run tests on a virtual clock\n"
	             "       awaitd --version\n");
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return test_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
		return daemon_migrate_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return daemon_check_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("awaitd %s\n", AWAITD_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	return daemon_main(argc, argv);
}
