/*
 * test_pgsql.c: what the PostgreSQL store does without a server: which
 * database paths select it, and the translation of application SQL from
 * '?' placeholders to $1, $2... (strings, quoted names and comments left
 * alone). The driver against a real server: tests/e2e/test_pg.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg-int.h"
#include "store.h"

static void test_path_selects_driver(void **state)
{
	(void)state;
	assert_true(store_path_is_pg("postgresql://u@h:5432/db"));
	assert_true(store_path_is_pg("postgres://h/db"));
	assert_true(store_path_is_pg("host=/run/postgresql dbname=app"));
	assert_true(store_path_is_pg("dbname=app"));
	assert_false(store_path_is_pg("/var/lib/awaitd/awaitd.db"));
	assert_false(store_path_is_pg("awaitd.db"));
	assert_false(store_path_is_pg("./host=x.db")); /* a file whose name has '=' */
	assert_false(store_path_is_pg("postgresql.db"));
	assert_false(store_path_is_pg(""));
}

static void test_path_shown(void **state)
{
	char b[256];

	(void)state;
	assert_string_equal(store_path_shown("postgresql://ada:s3cret@db:5432/shop", b, sizeof b),
	                    "postgresql://ada:***@db:5432/shop");
	assert_string_equal(store_path_shown("postgres://ada@db/shop", b, sizeof b),
	                    "postgres://ada@db/shop");
	assert_string_equal(store_path_shown("host=db password=s3cret dbname=shop", b, sizeof b),
	                    "host=db password=*** dbname=shop");
	assert_string_equal(store_path_shown("password=s3cret", b, sizeof b), "password=***");
	assert_string_equal(store_path_shown("host=db user=svc@tenant dbname=x", b, sizeof b),
	                    "host=db user=svc@tenant dbname=x"); /* an '@' without "://" */
	assert_string_equal(store_path_shown("postgresql:///shop?password=s3&host=h", b, sizeof b),
	                    "postgresql:///shop?password=***&host=h");
	assert_string_equal(store_path_shown("postgresql:///shop?host=/run/pg", b, sizeof b),
	                    "postgresql:///shop?host=/run/pg");
	assert_string_equal(store_path_shown("/var/lib/awaitd/a:b@c.db", b, sizeof b),
	                    "/var/lib/awaitd/a:b@c.db"); /* a file: shown as it is */
	assert_null(strstr(store_path_shown("postgresql://u:p@h/d", b, 8), "p@"));
}

static void expect(const char *in, const char *out, int count)
{
	int n = -1;
	char *got = pg_sql_translate(in, &n);

	assert_non_null(got);
	assert_string_equal(got, out);
	assert_int_equal(n, count);
	free(got);
}

static void test_translate(void **state)
{
	(void)state;
	expect("SELECT 1", "SELECT 1", 0);
	expect("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2",
	       2);
	expect("INSERT INTO t VALUES (?,?,?)", "INSERT INTO t VALUES ($1,$2,$3)", 3);
	/* not placeholders: in strings (with doubled quotes), quoted names, comments */
	expect("SELECT '?', 'it''s ?', ?", "SELECT '?', 'it''s ?', $1", 1);
	expect("SELECT \"a?\" FROM t WHERE x = ?", "SELECT \"a?\" FROM t WHERE x = $1", 1);
	expect("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2", 2);
	expect("SELECT /* ? */ ?", "SELECT /* ? */ $1", 1);
	/* unterminated string or comment: copied to the end, nothing invented */
	expect("SELECT 'abc?", "SELECT 'abc?", 0);
	expect("SELECT ? /* ?", "SELECT $1 /* ?", 1);
	expect("", "", 0);
}

static void test_translate_many(void **state)
{
	size_t n = 12000;
	char *in = malloc(n * 2 + 1), *got;
	int count = 0;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < n; i++) {
		in[i * 2] = '?';
		in[i * 2 + 1] = ',';
	}
	in[n * 2] = '\0';
	got = pg_sql_translate(in, &count);
	assert_non_null(got);
	assert_int_equal(count, (int)n);
	assert_non_null(strstr(got, "$12000,"));
	assert_null(strchr(got, '?'));
	free(got);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_selects_driver),
	    cmocka_unit_test(test_path_shown),
	    cmocka_unit_test(test_translate),
	    cmocka_unit_test(test_translate_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
