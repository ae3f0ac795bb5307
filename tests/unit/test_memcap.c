/*
 * test_memcap.c: the default memory cap (a quarter of RAM within
 * [64 MiB, 4 GiB], whole MiB, a fixed fallback when RAM is unknown), this
 * machine's default being a real cap (human sizes: test_humanfmt.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <string.h>

#include <cmocka.h>

#include "memcap.h"

#define MIB ((uint64_t)1 << 20)
#define GIB ((uint64_t)1 << 30)

static void test_default_is_a_quarter_within_bounds(void **state)
{
	(void)state;
	assert_int_equal(memcap_default_for(8 * GIB), 2 * GIB);
	assert_int_equal(memcap_default_for(2 * GIB), 512 * MIB);
	assert_int_equal(memcap_default_for(16 * GIB), 4 * GIB);
	assert_int_equal(memcap_default_for(512 * GIB), MEMCAP_DEFAULT_MAX);
	assert_int_equal(memcap_default_for(128 * MIB), MEMCAP_DEFAULT_MIN);
	assert_int_equal(memcap_default_for(1), MEMCAP_DEFAULT_MIN);
	assert_int_equal(memcap_default_for(0), MEMCAP_DEFAULT_UNKNOWN);
	/* not a whole MiB of RAM: rounded down, so the config dump is a whole number */
	assert_int_equal(memcap_default_for(3 * GIB + 12345), 768 * MIB);
	assert_int_equal(memcap_default_for(3 * GIB + 12345) % MIB, 0);
}

static void test_this_machine_has_a_cap(void **state)
{
	size_t def = memcap_default();

	(void)state;
	assert_true(memcap_phys() > 0);
	assert_true(def >= MEMCAP_DEFAULT_MIN && def <= MEMCAP_DEFAULT_MAX);
	assert_true(def <= memcap_phys() / 4 || def == MEMCAP_DEFAULT_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_is_a_quarter_within_bounds),
	    cmocka_unit_test(test_this_machine_has_a_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
