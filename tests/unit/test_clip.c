/*
 * test_clip.c: previews of stored values: whole values parsed, long ones
 * cut at a UTF-8 boundary with "…", invalid bytes shown as '?', the error
 * code read from the start of an error too big to parse, and a clipped
 * error keeping its code and real size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clip.h"

static void assert_json(json_t *v, const char *want)
{
	char *text;

	assert_non_null(v);
	text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	json_decref(v);
}

static void test_whole_value_is_parsed(void **state)
{
	int clipped = 7;

	(void)state;
	assert_json(clip_json("{\"a\":[1,2]}", 100, &clipped), "{\"a\":[1,2]}");
	assert_int_equal(clipped, 0);
	assert_json(clip_json(NULL, 100, &clipped), "null");
	assert_int_equal(clipped, 0);
	assert_json(clip_json("not json", 100, &clipped), "null");
	assert_json(clip_json("12345", 5, &clipped), "12345"); /* exactly the limit: whole */
	assert_int_equal(clipped, 0);
}

static void test_long_value_is_a_preview(void **state)
{
	int clipped = 0;

	(void)state;
	assert_json(clip_json("\"abcdefghij\"", 5, &clipped), "\"\\\"abcd…\"");
	assert_int_equal(clipped, 1);
}

static void test_preview_cut_and_repair(void **state)
{
	(void)state;
	/* "é" is 2 bytes: a cut through it drops it whole */
	assert_json(clip_preview("ab\xC3\xA9", 4, 3), "\"ab…\"");
	assert_json(clip_preview("ab\xC3\xA9", 4, 4), "\"ab\xC3\xA9\"");
	/* invalid bytes become '?', the rest stays */
	assert_json(clip_preview("a\xFF\xC3xb", 5, 100), "\"a??xb\"");
	assert_json(clip_preview("", 0, 10), "\"\"");
}

static void test_big_preview_is_bounded(void **state)
{
	size_t n = 10u << 20;
	char *big = malloc(n + 3);
	int clipped = 0;
	json_t *v;

	(void)state;
	assert_non_null(big);
	big[0] = '"';
	memset(big + 1, 'x', n);
	big[n + 1] = '"';
	big[n + 2] = 0;
	v = clip_json(big, 1u << 20, &clipped);
	assert_int_equal(clipped, 1);
	assert_true(json_is_string(v));
	/* CLIP_PREVIEW_MAX bytes of text and the ellipsis, not the 1 MiB allowed */
	assert_int_equal(json_string_length(v), CLIP_PREVIEW_MAX + 3);
	json_decref(v);
	free(big);
}

static void test_error_code_without_parsing(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(
	    clip_error_code("{\"code\":\"too_large\",\"message\":\"x", buf, sizeof buf),
	    "too_large");
	assert_string_equal(clip_error_code(" { \"code\" : \"db\" }", buf, sizeof buf), "db");
	assert_null(clip_error_code("{\"message\":\"x\",\"code\":\"db\"}", buf, sizeof buf));
	assert_null(clip_error_code("{\"code\":\"a\\\"b\"}", buf, sizeof buf));
	assert_null(clip_error_code("{\"code\":\"\"}", buf, sizeof buf));
	assert_null(clip_error_code("{\"code\":\"abcdefgh\"}", buf, 4)); /* does not fit */
	assert_null(clip_error_code(NULL, buf, sizeof buf));
}

static void test_error_clipped(void **state)
{
	(void)state;
	assert_json(clip_error("{\"code\":\"db\",\"message\":\"disk full\"}", 100),
	            "{\"code\":\"db\",\"message\":\"disk full\"}");
	assert_json(clip_error(NULL, 100), "null");
	assert_json(clip_error("{\"code\":\"error\",\"message\":\"0123456789\"}", 20),
	            "{\"code\":\"error\",\"message\":\"{\\\"code\\\":\\\"error\\\",\\\"mes…\","
	            "\"truncated\":true,\"bytes\":39}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole_value_is_parsed),
	    cmocka_unit_test(test_long_value_is_a_preview),
	    cmocka_unit_test(test_preview_cut_and_repair),
	    cmocka_unit_test(test_big_preview_is_bounded),
	    cmocka_unit_test(test_error_code_without_parsing),
	    cmocka_unit_test(test_error_clipped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
