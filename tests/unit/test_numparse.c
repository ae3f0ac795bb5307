/*
 * test_numparse.c: digit runs read as numbers: base 10 and 8, stopping at
 * the first other byte or at end, nothing read without a digit, and a big
 * number capped instead of overflowing; and errbuf_shown, the quoting of
 * user text in messages that the config and cron parsers share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <string.h>

#include <cmocka.h>

#include "errbuf.h"
#include "numparse.h"

/* numparse_digits over all of s; the number of bytes read, or -1. */
static long digits(const char *s, unsigned base, uint64_t cap, uint64_t *out)
{
	const char *p = s;

	if (numparse_digits(&p, s + strlen(s), base, cap, out) < 0) {
		assert_ptr_equal(p, s);
		return -1;
	}
	return (long)(p - s);
}

static void test_decimal(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(digits("0", 10, UINT64_MAX, &v), 1);
	assert_int_equal(v, 0);
	assert_int_equal(digits("1234", 10, UINT64_MAX, &v), 4);
	assert_int_equal(v, 1234);
	assert_int_equal(digits("007", 10, UINT64_MAX, &v), 3);
	assert_int_equal(v, 7);
	assert_int_equal(digits("18446744073709551615", 10, UINT64_MAX, &v), 20);
	assert_true(v == UINT64_MAX);
}

static void test_stops_at_other_bytes(void **state)
{
	uint64_t v = 0;
	const char *s = "42-7", *p = s;

	(void)state;
	assert_int_equal(digits("30s", 10, UINT64_MAX, &v), 2);
	assert_int_equal(v, 30);
	assert_int_equal(digits("12 3", 10, UINT64_MAX, &v), 2);
	assert_int_equal(v, 12);
	/* end bounds the run even when digits follow it */
	assert_int_equal(numparse_digits(&p, s + 1, 10, UINT64_MAX, &v), 0);
	assert_ptr_equal(p, s + 1);
	assert_int_equal(v, 4);
}

static void test_no_digit(void **state)
{
	uint64_t v = 99;
	const char *s = "5", *p = s;

	(void)state;
	assert_int_equal(digits("", 10, UINT64_MAX, &v), -1);
	assert_int_equal(digits("-1", 10, UINT64_MAX, &v), -1);
	assert_int_equal(digits("+1", 10, UINT64_MAX, &v), -1);
	assert_int_equal(digits(" 1", 10, UINT64_MAX, &v), -1);
	assert_int_equal(digits("x1", 10, UINT64_MAX, &v), -1);
	assert_int_equal(numparse_digits(&p, s, 10, UINT64_MAX, &v), -1); /* empty range */
	assert_int_equal(v, 99);
}

static void test_octal(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(digits("0660", 8, UINT64_MAX, &v), 4);
	assert_int_equal(v, 0660);
	assert_int_equal(digits("0778", 8, UINT64_MAX, &v), 3); /* 8 is not an octal digit */
	assert_int_equal(v, 077);
	assert_int_equal(digits("9", 8, UINT64_MAX, &v), -1);
}

static void test_capped(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(digits("18446744073709551616", 10, UINT64_MAX, &v), 20);
	assert_true(v == UINT64_MAX);
	assert_int_equal(digits("99999999999999999999999999", 10, UINT64_MAX, &v), 26);
	assert_true(v == UINT64_MAX);
	assert_int_equal(digits("1000", 10, 1000, &v), 4);
	assert_int_equal(v, 1000);
	assert_int_equal(digits("1001", 10, 1000, &v), 4);
	assert_int_equal(v, 1000);
	assert_int_equal(digits("999", 10, 1000, &v), 3);
	assert_int_equal(v, 999);
	assert_int_equal(digits("7", 10, 5, &v), 1);
	assert_int_equal(v, 5);
	assert_int_equal(digits("3", 10, 0, &v), 1);
	assert_int_equal(v, 0);
}

static void test_shown(void **state)
{
	char buf[64], small[6];
	const char *forty = "0123456789012345678901234567890123456789";

	(void)state;
	assert_string_equal(errbuf_shown("abc", 3, buf, sizeof buf), "abc");
	assert_string_equal(errbuf_shown("abcdef", 2, buf, sizeof buf), "ab");
	assert_string_equal(errbuf_shown("a\tb\x7f\xc3\xa9", 6, buf, sizeof buf), "a?b???");
	assert_string_equal(errbuf_shown(forty, 40, buf, sizeof buf), forty);
	errbuf_shown("01234567890123456789012345678901234567890", 41, buf, sizeof buf);
	assert_int_equal(strlen(buf), 43);
	assert_string_equal(buf + 40, "...");
	assert_string_equal(errbuf_shown("abcdefgh", 8, small, sizeof small), "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decimal),  cmocka_unit_test(test_stops_at_other_bytes),
	    cmocka_unit_test(test_no_digit), cmocka_unit_test(test_octal),
	    cmocka_unit_test(test_capped),   cmocka_unit_test(test_shown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
