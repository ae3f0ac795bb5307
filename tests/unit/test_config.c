/*
 * test_config.c: the configuration: defaults, etc/awaitd.conf equal to the
 * defaults, every key from a file, the file syntax (comments, blanks,
 * quotes, escapes), every error with its exact "PATH:LINE: " message and
 * the config left unchanged, later keys overriding earlier ones, config_set
 * as used by flags, and config_dump loading back to the same values.
 *
 * Files are real temporary files (mkstemp), removed by the teardown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "memcap.h"

#ifndef AWAITD_SOURCE_DIR
#error "AWAITD_SOURCE_DIR must name the source tree (it holds etc/awaitd.conf)"
#endif

#define KNOWN_KEYS                                                                                 \
	"scripts_dir, db_path, socket_path, migrations_dir, log_level, max_slice_ms, "             \
	"max_memory_mb, cancel_grace_ms, shutdown_timeout_ms, max_line, output_cap, max_clients, " \
	"socket_mode, synchronous, tx_timeout_ms, max_statement_ms, keep_jobs_ms, max_result_bytes, "  \
	"max_args_bytes, workers, worker_timeout_ms, http_listen, http_token"

struct fx {
	struct config c;
	char path[64]; /* the temporary file, "" when none */
	char dir[64];  /* a temporary directory, "" when none */
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);

	if (!fx)
		return -1;
	config_init(&fx->c);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	config_fini(&fx->c);
	if (fx->path[0])
		unlink(fx->path);
	if (fx->dir[0])
		rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Write len bytes of text to a new temporary file; returns its path. */
static const char *write_file_n(struct fx *fx, const char *text, size_t len)
{
	int fd;

	if (fx->path[0])
		unlink(fx->path);
	strcpy(fx->path, "/tmp/test_config.XXXXXX");
	fd = mkstemp(fx->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return fx->path;
}

static const char *write_file(struct fx *fx, const char *text)
{
	return write_file_n(fx, text, strlen(text));
}

static void assert_defaults(const struct config *c)
{
	assert_string_equal(c->scripts_dir, "./scripts");
	assert_string_equal(c->db_path, "./awaitd.db");
	assert_string_equal(c->socket_path, "./awaitd.sock");
	assert_string_equal(c->migrations_dir, "./migrations");
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_true(c->max_slice_ms == 100);
	assert_int_equal(c->max_memory, memcap_default());
	assert_true(c->max_memory > 0); /* no cap is a choice, never the default */
	assert_int_equal(c->max_result_bytes, 1024 * 1024);
	assert_int_equal(c->max_args_bytes, 1024 * 1024);
	assert_true(c->cancel_grace_ms == 1000);
	assert_true(c->shutdown_timeout_ms == 30000);
	assert_int_equal(c->max_line, 1024 * 1024);
	assert_int_equal(c->output_cap, 8 * 1024 * 1024);
	assert_int_equal(c->max_clients, 1024);
	assert_int_equal(c->socket_mode, 0660);
	assert_string_equal(c->synchronous, "full");
}

static void assert_config_equal(const struct config *a, const struct config *b)
{
	assert_string_equal(a->scripts_dir, b->scripts_dir);
	assert_string_equal(a->db_path, b->db_path);
	assert_string_equal(a->socket_path, b->socket_path);
	assert_string_equal(a->migrations_dir, b->migrations_dir);
	assert_int_equal(a->log_level, b->log_level);
	assert_true(a->max_slice_ms == b->max_slice_ms);
	assert_int_equal(a->max_memory, b->max_memory);
	assert_true(a->cancel_grace_ms == b->cancel_grace_ms);
	assert_true(a->shutdown_timeout_ms == b->shutdown_timeout_ms);
	assert_int_equal(a->max_line, b->max_line);
	assert_int_equal(a->output_cap, b->output_cap);
	assert_int_equal(a->max_clients, b->max_clients);
	assert_int_equal(a->socket_mode, b->socket_mode);
	assert_string_equal(a->synchronous, b->synchronous);
	assert_int_equal(a->max_result_bytes, b->max_result_bytes);
	assert_int_equal(a->max_args_bytes, b->max_args_bytes);
}

/* Set a key that must be accepted. */
static void set_ok(struct config *c, const char *key, const char *value)
{
	char err[512] = "";

	if (config_set(c, key, value, err, sizeof err) != 0)
		fail_msg("config_set(%s, %s): %s", key, value, err);
}

/* A config where every field differs from the default. */
static void set_all_non_default(struct config *c)
{
	set_ok(c, "scripts_dir", "/srv/scripts");
	set_ok(c, "db_path", "/var/lib/awaitd/awaitd.db");
	set_ok(c, "socket_path", "/run/awaitd/awaitd.sock");
	set_ok(c, "migrations_dir", "/usr/share/awaitd/migrations");
	set_ok(c, "log_level", "debug");
	set_ok(c, "max_slice_ms", "250");
	set_ok(c, "max_memory_mb", "64");
	set_ok(c, "cancel_grace_ms", "0");
	set_ok(c, "shutdown_timeout_ms", "5000");
	set_ok(c, "max_line", "65536");
	set_ok(c, "output_cap", "1048576");
	set_ok(c, "max_clients", "16");
	set_ok(c, "socket_mode", "0600");
	set_ok(c, "synchronous", "normal");
	set_ok(c, "max_result_bytes", "4096");
	set_ok(c, "max_args_bytes", "2048");
}

static void test_defaults(void **state)
{
	struct config z;

	(void)state;
	memset(&z, 0, sizeof z);
	config_fini(&z); /* safe on a zeroed config */
	config_init(&z);
	assert_defaults(&z);
	config_fini(&z);
	assert_null(z.scripts_dir);
	assert_null(z.synchronous);
	config_fini(&z); /* and twice */
}

static void test_etc_conf_is_defaults(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";

	/* From all-non-default values, so a key missing from the file shows. */
	set_all_non_default(&fx->c);
	if (config_load(&fx->c, AWAITD_SOURCE_DIR "/etc/awaitd.conf", err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_defaults(&fx->c);
}

static void test_every_key_from_file(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	const char *path = write_file(fx, "scripts_dir = /srv/scripts\n"
	                                  "db_path = /var/lib/awaitd/awaitd.db\n"
	                                  "socket_path = /run/awaitd/awaitd.sock\n"
	                                  "migrations_dir = /usr/share/awaitd/migrations\n"
	                                  "log_level = DEBUG\n"
	                                  "max_slice_ms = 12.5\n"
	                                  "max_memory_mb = 64\n"
	                                  "cancel_grace_ms = 0\n"
	                                  "shutdown_timeout_ms = 1e4\n"
	                                  "max_line = 1024\n"
	                                  "output_cap = 4096\n"
	                                  "max_clients = 65536\n"
	                                  "socket_mode = 600\n"
	                                  "synchronous = NORMAL\n");

	if (config_load(&fx->c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(fx->c.scripts_dir, "/srv/scripts");
	assert_string_equal(fx->c.db_path, "/var/lib/awaitd/awaitd.db");
	assert_string_equal(fx->c.socket_path, "/run/awaitd/awaitd.sock");
	assert_string_equal(fx->c.migrations_dir, "/usr/share/awaitd/migrations");
	assert_int_equal(fx->c.log_level, LOG_LEVEL_DEBUG);
	assert_true(fx->c.max_slice_ms == 12.5);
	assert_int_equal(fx->c.max_memory, 64 * 1024 * 1024);
	assert_true(fx->c.cancel_grace_ms == 0);
	assert_true(fx->c.shutdown_timeout_ms == 10000);
	assert_int_equal(fx->c.max_line, 1024);
	assert_int_equal(fx->c.output_cap, 4096);
	assert_int_equal(fx->c.max_clients, 65536);
	assert_int_equal(fx->c.socket_mode, 0600);
	assert_string_equal(fx->c.synchronous, "normal"); /* canonical lower case */
}

static void test_range_limits_accepted(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	const char *path = write_file(fx, "max_slice_ms = 1\n"
	                                  "max_memory_mb = 0.5\n"
	                                  "cancel_grace_ms = 3600000\n"
	                                  "shutdown_timeout_ms = 86400000\n"
	                                  "max_line = 67108864\n"
	                                  "output_cap = 1073741824\n"
	                                  "max_clients = 1\n"
	                                  "socket_mode = 0\n"
	                                  "log_level = error\n"
	                                  "synchronous = off\n");

	if (config_load(&fx->c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_true(fx->c.max_slice_ms == 1);
	assert_int_equal(fx->c.max_memory, 512 * 1024);
	assert_true(fx->c.cancel_grace_ms == 3600000);
	assert_true(fx->c.shutdown_timeout_ms == 86400000);
	assert_int_equal(fx->c.max_line, 64 * 1024 * 1024);
	assert_int_equal(fx->c.output_cap, 1024 * 1024 * 1024);
	assert_int_equal(fx->c.max_clients, 1);
	assert_int_equal(fx->c.socket_mode, 0);
	assert_int_equal(fx->c.log_level, LOG_LEVEL_ERROR);
	assert_string_equal(fx->c.synchronous, "off");

	/* The largest cap, and the largest socket mode. */
	set_ok(&fx->c, "max_memory_mb", "1048576");
	assert_int_equal(fx->c.max_memory, (size_t)1 << 40);
	set_ok(&fx->c, "socket_mode", "0777");
	assert_int_equal(fx->c.socket_mode, 0777);
}

static void test_comments_blanks_quotes(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	const char *path = write_file(fx, "# a whole-line comment\n"
	                                  "\n"
	                                  "   \t  \n"
	                                  "\t# an indented comment = with an equals sign\n"
	                                  "  scripts_dir   =   ./my scripts   # trailing comment\n"
	                                  "db_path=./a#b.db\n"
	                                  "socket_path = \"  /tmp/my \\\"sock\\\" \\\\ #1  \" # c\n"
	                                  "migrations_dir = \"./m=1\"\n"
	                                  "log_level = warn\r\n"
	                                  "max_slice_ms = 5\t# tab before the comment\n"
	                                  "synchronous = \"off\"\n"
	                                  "max_clients = 7"); /* no final newline */

	if (config_load(&fx->c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(fx->c.scripts_dir, "./my scripts");
	assert_string_equal(fx->c.db_path, "./a#b.db"); /* '#' not after space: text */
	assert_string_equal(fx->c.socket_path, "  /tmp/my \"sock\" \\ #1  ");
	assert_string_equal(fx->c.migrations_dir, "./m=1");
	assert_int_equal(fx->c.log_level, LOG_LEVEL_WARN);
	assert_true(fx->c.max_slice_ms == 5);
	assert_string_equal(fx->c.synchronous, "off");
	assert_int_equal(fx->c.max_clients, 7);
	/* Keys not in the file keep their values. */
	assert_int_equal(fx->c.max_line, 1024 * 1024);
	assert_int_equal(fx->c.socket_mode, 0660);
}

static void test_empty_file_changes_nothing(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";

	assert_int_equal(config_load(&fx->c, write_file(fx, ""), err, sizeof err), 0);
	assert_defaults(&fx->c);
	assert_int_equal(
	    config_load(&fx->c, write_file(fx, "# only\n\n# comments\n"), err, sizeof err), 0);
	assert_defaults(&fx->c);
}

static void test_later_keys_override(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	const char *path = write_file(fx, "db_path = /first.db\n"
	                                  "max_clients = 10\n"
	                                  "db_path = /second.db\n"
	                                  "log_level = debug\n"
	                                  "max_clients = 20\n"
	                                  "log_level = error\n");

	if (config_load(&fx->c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(fx->c.db_path, "/second.db");
	assert_int_equal(fx->c.max_clients, 20);
	assert_int_equal(fx->c.log_level, LOG_LEVEL_ERROR);

	/* A second file over the first: only its keys change. */
	path = write_file(fx, "max_clients = 30\n");
	if (config_load(&fx->c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_int_equal(fx->c.max_clients, 30);
	assert_string_equal(fx->c.db_path, "/second.db");
}

struct bad {
	const char *text;
	const char *message; /* after "PATH:" */
};

static const struct bad bad_files[] = {
    {"scripts_dir = /x\nthis line has no equals sign\n",
     "2: missing '=' (expected \"key = value\")"},
    {"  = ./x\n", "1: missing key before '='"},
    {"# ok\nbogus = 1\n", "2: unknown key 'bogus' (known keys: " KNOWN_KEYS ")"},
    {"Scripts_Dir = ./x\n", "1: unknown key 'Scripts_Dir' (known keys: " KNOWN_KEYS ")"},
    {"db_path =\n", "1: db_path: empty value"},
    {"db_path = # only a comment\n", "1: db_path: empty value"},
    {"db_path = \"\"\n", "1: db_path: empty value"},
    {"db_path = \"./unterminated\n", "1: db_path: unterminated quote"},
    {"db_path = \"./a\\\"\n", "1: db_path: unterminated quote"},
    {"db_path = \"./a\\nb\"\n",
     "1: db_path: bad escape '\\n' in quoted value (only \\\" and \\\\)"},
    {"db_path = \"./a\" ./b\n", "1: db_path: unexpected text after the closing quote"},
    {"db_path = ./a\x01"
     "b\n",
     "1: db_path: value './a?b' contains a control character"},
    {"log_level = loud\n", "1: log_level: 'loud' is not one of debug, info, warn, error"},
    {"synchronous = extra\n", "1: synchronous: 'extra' is not one of full, normal, off"},
    {"max_slice_ms = 0\n", "1: max_slice_ms: 0 is out of range (1 to 3600000 ms)"},
    {"max_slice_ms = 3600001\n", "1: max_slice_ms: 3600001 is out of range (1 to 3600000 ms)"},
    {"max_slice_ms = -5\n", "1: max_slice_ms: -5 is out of range (1 to 3600000 ms)"},
    {"max_slice_ms = 100ms\n", "1: max_slice_ms: '100ms' is not a number of ms"},
    {"max_slice_ms = nan\n", "1: max_slice_ms: 'nan' is not a number of ms"},
    {"max_slice_ms = inf\n", "1: max_slice_ms: 'inf' is not a number of ms"},
    {"max_slice_ms = 0x10\n", "1: max_slice_ms: '0x10' is not a number of ms"},
    {"max_slice_ms = +5\n", "1: max_slice_ms: '+5' is not a number of ms"},
    {"max_slice_ms = 1e999\n", "1: max_slice_ms: '1e999' is not a number of ms"},
    {"cancel_grace_ms = -1\n", "1: cancel_grace_ms: -1 is out of range (0 to 3600000 ms)"},
    {"shutdown_timeout_ms = 86400001\n",
     "1: shutdown_timeout_ms: 86400001 is out of range (0 to 86400000 ms)"},
    {"max_memory_mb = 1048577\n", "1: max_memory_mb: 1048577 is out of range (0 to 1048576 MiB)"},
    {"max_memory_mb = 64M\n", "1: max_memory_mb: '64M' is not a number of MiB or auto"},
    {"max_line = 1023\n", "1: max_line: 1023 is out of range (1024 to 67108864 bytes)"},
    {"max_line = 67108865\n", "1: max_line: 67108865 is out of range (1024 to 67108864 bytes)"},
    {"max_line = -1\n", "1: max_line: -1 is out of range (1024 to 67108864 bytes)"},
    {"max_line = 1.5\n", "1: max_line: '1.5' is not a whole number of bytes"},
    {"max_line = 99999999999999999999999\n",
     "1: max_line: 99999999999999999999999 is out of range (1024 to 67108864 bytes)"},
    {"output_cap = 4095\n", "1: output_cap: 4095 is out of range (4096 to 1073741824 bytes)"},
    {"max_clients = 0\n", "1: max_clients: 0 is out of range (1 to 65536)"},
    {"max_clients = 65537\n", "1: max_clients: 65537 is out of range (1 to 65536)"},
    {"max_clients = ten\n", "1: max_clients: 'ten' is not a whole number"},
    {"socket_mode = 0999\n", "1: socket_mode: '0999' is not an octal mode like 0660"},
    {"socket_mode = rw-rw----\n", "1: socket_mode: 'rw-rw----' is not an octal mode like 0660"},
    {"socket_mode = 01000\n", "1: socket_mode: 01000 is out of range (0 to 0777)"},
};

static void test_errors_name_path_and_line(void **state)
{
	struct fx *fx = *state;
	char err[1024], want[1024];
	struct config before;

	config_init(&before);
	for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
		const char *path = write_file(fx, bad_files[i].text);
		err[0] = 0;
		assert_int_equal(config_load(&fx->c, path, err, sizeof err), -1);
		snprintf(want, sizeof want, "%s:%s", path, bad_files[i].message);
		if (strcmp(err, want) != 0)
			fail_msg("file %zu:\n got: %s\nwant: %s", i, err, want);
		assert_config_equal(&fx->c, &before); /* nothing applied */
	}
	config_fini(&before);
}

static void test_failed_load_keeps_earlier_lines_out(void **state)
{
	struct fx *fx = *state;
	char err[512], want[512];
	const char *path = write_file(fx, "db_path = /new.db\n"
	                                  "max_clients = 5\n"
	                                  "\n"
	                                  "max_line = 12\n");

	assert_int_equal(config_load(&fx->c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:4: max_line: 12 is out of range (1024 to 67108864 bytes)",
	         path);
	assert_string_equal(err, want);
	assert_defaults(&fx->c); /* the whole file or nothing */
}

static void test_long_line_and_nul(void **state)
{
	struct fx *fx = *state;
	static char text[8192];
	char err[512], want[512];
	const char *path;

	/* A line of exactly 4096 bytes is fine... */
	memset(text, 0, sizeof text);
	strcpy(text, "scripts_dir = ");
	memset(text + strlen(text), 'a', 4096 - strlen(text));
	text[4096] = '\n';
	path = write_file(fx, text);
	assert_int_equal(config_load(&fx->c, path, err, sizeof err), 0);
	assert_int_equal(strlen(fx->c.scripts_dir), 4096 - strlen("scripts_dir = "));

	/* ...one byte more is not, even in a comment, and on its own line. */
	memset(text, 0, sizeof text);
	strcpy(text, "db_path = ./ok.db\n#");
	memset(text + strlen(text), 'c', 4096);
	strcat(text, "\n");
	path = write_file(fx, text);
	assert_int_equal(config_load(&fx->c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:2: line longer than 4096 bytes", path);
	assert_string_equal(err, want);
	assert_string_equal(fx->c.db_path, "./awaitd.db");

	static const char with_nul[] = "# ok\n\ndb_path = ./a\0b\n";
	path = write_file_n(fx, with_nul, sizeof with_nul - 1);
	assert_int_equal(config_load(&fx->c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:3: NUL byte in line", path);
	assert_string_equal(err, want);
	assert_string_equal(fx->c.db_path, "./awaitd.db");
}

static void test_cannot_open(void **state)
{
	struct fx *fx = *state;
	char err[512], want[512];

	errno = 0;
	assert_int_equal(config_load(&fx->c, "/nonexistent/awaitd.conf", err, sizeof err), -1);
	assert_int_equal(errno, ENOENT); /* the caller may accept a missing default file */
	assert_string_equal(err,
	                    "/nonexistent/awaitd.conf: cannot open: No such file or directory");
	assert_defaults(&fx->c);

	/* A directory opens but cannot be read. */
	strcpy(fx->dir, "/tmp/test_config.dir.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	assert_int_equal(config_load(&fx->c, fx->dir, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:1: read error: Is a directory", fx->dir);
	assert_string_equal(err, want);
	assert_defaults(&fx->c);
}

static void test_error_buffer_null_or_small(void **state)
{
	struct fx *fx = *state;
	char err[8];
	const char *path = write_file(fx, "bogus = 1\n");

	assert_int_equal(config_set(&fx->c, "bogus", "1", NULL, 0), -1);
	assert_int_equal(config_load(&fx->c, path, NULL, 0), -1);
	memset(err, 'x', sizeof err);
	assert_int_equal(config_set(&fx->c, "max_clients", "0", err, sizeof err), -1);
	assert_string_equal(err, "max_cli"); /* cut, terminated */
	assert_defaults(&fx->c);
}

static void test_config_set_for_flags(void **state)
{
	struct fx *fx = *state;
	char err[512];

	/* Replacing strings frees the old ones (ASan / valgrind would say). */
	set_ok(&fx->c, "scripts_dir", "/a");
	set_ok(&fx->c, "scripts_dir", "/b");
	assert_string_equal(fx->c.scripts_dir, "/b");
	set_ok(&fx->c, "db_path", "/tmp/x.db");
	set_ok(&fx->c, "socket_path", "/tmp/x.sock");
	set_ok(&fx->c, "synchronous", "normal");
	set_ok(&fx->c, "synchronous", "Full");
	assert_string_equal(fx->c.db_path, "/tmp/x.db");
	assert_string_equal(fx->c.socket_path, "/tmp/x.sock");
	assert_string_equal(fx->c.synchronous, "full");
	set_ok(&fx->c, "log_level", "Warn");
	assert_int_equal(fx->c.log_level, LOG_LEVEL_WARN);

	/* Flags are taken as given: no trimming, no quotes, no comments. */
	set_ok(&fx->c, "migrations_dir", " dir # not a comment ");
	assert_string_equal(fx->c.migrations_dir, " dir # not a comment ");
	set_ok(&fx->c, "scripts_dir", "\"quoted\"");
	assert_string_equal(fx->c.scripts_dir, "\"quoted\"");
	assert_int_equal(config_set(&fx->c, "log_level", " info", err, sizeof err), -1);
	assert_string_equal(err, "log_level: ' info' is not one of debug, info, warn, error");
	assert_int_equal(fx->c.log_level, LOG_LEVEL_WARN);

	/* A failed set leaves the field alone. */
	assert_int_equal(config_set(&fx->c, "db_path", "", err, sizeof err), -1);
	assert_string_equal(err, "db_path: empty value");
	assert_string_equal(fx->c.db_path, "/tmp/x.db");
	assert_int_equal(config_set(&fx->c, "db_path", "a\nb", err, sizeof err), -1);
	assert_string_equal(err, "db_path: value 'a?b' contains a control character");
	assert_string_equal(fx->c.db_path, "/tmp/x.db");
	assert_int_equal(config_set(&fx->c, "max_slice_ms", "0.5", err, sizeof err), -1);
	assert_string_equal(err, "max_slice_ms: 0.5 is out of range (1 to 3600000 ms)");
	assert_true(fx->c.max_slice_ms == 100);
	assert_int_equal(config_set(&fx->c, "no_such_key", "1", err, sizeof err), -1);
	assert_string_equal(err, "unknown key 'no_such_key' (known keys: " KNOWN_KEYS ")");

	/* A long hostile value is cut in the message. */
	assert_int_equal(config_set(&fx->c, "max_clients",
	                            "1234567890123456789012345678901234567890zzzzzzzzzz", err,
	                            sizeof err),
	                 -1);
	assert_string_equal(err, "max_clients: '1234567890123456789012345678901234567890...' is "
	                         "not a whole number");
}

static void test_dump_defaults(void **state)
{
	struct fx *fx = *state;
	char out[2048], want[2048];
	FILE *f = fmemopen(out, sizeof out, "w");

	assert_non_null(f);
	config_dump(&fx->c, f);
	assert_int_equal(fclose(f), 0);
	snprintf(want, sizeof want,
	         "scripts_dir = ./scripts\n"
	         "db_path = ./awaitd.db\n"
	         "socket_path = ./awaitd.sock\n"
	         "migrations_dir = ./migrations\n"
	         "log_level = info\n"
	         "max_slice_ms = 100\n"
	         "max_memory_mb = %zu\n"
	         "cancel_grace_ms = 1000\n"
	         "shutdown_timeout_ms = 30000\n"
	         "max_line = 1048576\n"
	         "output_cap = 8388608\n"
	         "max_clients = 1024\n"
	         "socket_mode = 0660\n"
	         "synchronous = full\n"
	         "tx_timeout_ms = 5000\n"
	         "max_statement_ms = 1000\n"
	         "keep_jobs_ms = 604800000\n"
	         "max_result_bytes = 1048576\n"
	         "max_args_bytes = 1048576\n"
	         "workers = 0\n"
	         "worker_timeout_ms = 30000\n"
	         "http_listen = off\n",
	         memcap_default() >> 20);
	assert_string_equal(out, want);
}

/* max_memory_mb: "auto" is the machine's default, 0 is no cap, both by choice. */
static void test_memory_cap_auto_and_zero(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";

	set_ok(&fx->c, "max_memory_mb", "0");
	assert_int_equal(fx->c.max_memory, 0);
	set_ok(&fx->c, "max_memory_mb", "AUTO");
	assert_int_equal(fx->c.max_memory, memcap_default());
	set_ok(&fx->c, "max_memory_mb", "256");
	assert_int_equal(fx->c.max_memory, 256u << 20);
	assert_int_equal(config_set(&fx->c, "max_memory_mb", "automatic", err, sizeof err), -1);
	assert_string_equal(err, "max_memory_mb: 'automatic' is not a number of MiB or auto");
	assert_int_equal(fx->c.max_memory, 256u << 20);
}

/* Dump c to a temporary file, load it over fresh defaults, compare. */
static void round_trip(struct fx *fx, const struct config *c)
{
	struct config back;
	char err[512] = "";
	FILE *f;
	int fd;

	if (fx->path[0])
		unlink(fx->path);
	strcpy(fx->path, "/tmp/test_config.XXXXXX");
	fd = mkstemp(fx->path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	config_dump(c, f);
	assert_int_equal(fclose(f), 0);

	config_init(&back);
	if (config_load(&back, fx->path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_config_equal(&back, c);
	config_fini(&back);
}

static void test_dump_round_trip(void **state)
{
	struct fx *fx = *state;

	round_trip(fx, &fx->c); /* defaults */

	set_all_non_default(&fx->c);
	round_trip(fx, &fx->c);

	/* Values that need quotes or full precision. */
	set_ok(&fx->c, "scripts_dir", "  /srv/with space#and \"quotes\" and \\ ");
	set_ok(&fx->c, "db_path", "\"starts with a quote");
	set_ok(&fx->c, "socket_path", "/run/a#b.sock");
	set_ok(&fx->c, "migrations_dir", "x = y");
	set_ok(&fx->c, "max_slice_ms", "0.1e1");
	set_ok(&fx->c, "cancel_grace_ms", "0.1");
	set_ok(&fx->c, "shutdown_timeout_ms", "12345.678901234567");
	set_ok(&fx->c, "max_memory_mb", "0.3");
	set_ok(&fx->c, "log_level", "error");
	set_ok(&fx->c, "synchronous", "off");
	set_ok(&fx->c, "socket_mode", "0");
	round_trip(fx, &fx->c);

	/* A cap that is not a whole number of MiB, set by a caller in bytes. */
	fx->c.max_memory = 12345;
	round_trip(fx, &fx->c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test_setup_teardown(test_etc_conf_is_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_cap_auto_and_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_key_from_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_range_limits_accepted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_comments_blanks_quotes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_file_changes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_later_keys_override, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_name_path_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_load_keeps_earlier_lines_out, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_and_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cannot_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_buffer_null_or_small, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_set_for_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dump_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dump_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
