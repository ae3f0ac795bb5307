/*
 * test_log.c: log lines: level filter, names, journald priority prefixes,
 * one line per message even when it is too long.
 */
#include "harness.h"
#include "log.h"

static int teardown(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	log_set_journal(0);
	return 0;
}

static void test_levels_and_filter(void **state)
{
	struct fx_capture cap;
	char out[4096];

	(void)state;
	fx_capture_begin(&cap);
	log_debug("hidden %d", 1);
	log_info("shown %s", "info");
	log_set_level(LOG_LEVEL_ERROR);
	log_warn("hidden warn");
	log_error("shown error");
	fx_capture_end(&cap, out, sizeof out);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, " INFO  shown info\n"));
	assert_non_null(strstr(out, " ERROR shown error\n"));
}

static void test_journal_prefixes(void **state)
{
	struct fx_capture cap;
	char out[1024];

	(void)state;
	log_set_journal(1);
	fx_capture_begin(&cap);
	log_info("a");
	log_warn("b");
	log_error("c");
	fx_capture_end(&cap, out, sizeof out);
	assert_string_equal(out, "<6>a\n<4>b\n<3>c\n");
}

static void test_parse_level(void **state)
{
	(void)state;
	assert_int_equal(log_parse_level("debug"), LOG_LEVEL_DEBUG);
	assert_int_equal(log_parse_level("WARN"), LOG_LEVEL_WARN);
	assert_int_equal(log_parse_level("loud"), -1);
}

static void test_long_line_is_cut_not_split(void **state)
{
	struct fx_capture cap;
	static char big[20000], out[32768];

	(void)state;
	memset(big, 'y', sizeof big - 1);
	fx_capture_begin(&cap);
	log_info("%s", big);
	fx_capture_end(&cap, out, sizeof out);
	assert_non_null(strstr(out, "...\n"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_levels_and_filter, teardown),
	    cmocka_unit_test_teardown(test_journal_prefixes, teardown),
	    cmocka_unit_test_teardown(test_parse_level, teardown),
	    cmocka_unit_test_teardown(test_long_line_is_cut_not_split, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
