/*
 * test_enqueue_opts.c: unit tests for daemon/enqueue-opts.c, the one
 * check of enqueue options shared by the socket and jobs.enqueue.
 *
 * Each test starts from a fresh struct enqueue_opts at a fixed "now" and
 * feeds values of every kind at and around each range's edges: the
 * accepted ones are recorded exactly, the refused ones leave the options
 * as they were and name the option in the message.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enqueue-opts.h"
#include "store.h"

#define NOW 1700000000000LL

struct fixture {
	struct enqueue_opts o;
	char err[512];
};

static int setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof fx);
	enqueue_opts_init(&fx.o, NOW);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return 0;
}

static struct enqueue_val vi(int64_t i)
{
	return (struct enqueue_val){.type = ENQUEUE_V_INTEGER, .i = i};
}

static struct enqueue_val vd(double d)
{
	return (struct enqueue_val){.type = ENQUEUE_V_REAL, .d = d};
}

static struct enqueue_val vs(const char *s)
{
	return (struct enqueue_val){.type = ENQUEUE_V_STRING, .s = s, .len = strlen(s)};
}

static int set(struct fixture *fx, const char *name, struct enqueue_val v)
{
	fx->err[0] = '\0';
	return enqueue_opts_set(&fx->o, name, strlen(name), &v, fx->err, sizeof fx->err);
}

/* Refused, o untouched, and the message starts with the option's name. */
static void refused(struct fixture *fx, const char *name, struct enqueue_val v)
{
	struct enqueue_opts before = fx->o;

	assert_int_equal(set(fx, name, v), -1);
	assert_memory_equal(&before, &fx->o, sizeof before);
	assert_int_equal(strncmp(fx->err, name, strlen(name)), 0);
}

static void test_delay(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(set(fx, "delay", vi(0)), 0);
	assert_int_equal(fx->o.delay, 0);
	assert_int_equal(set(fx, "delay", vi(ENQUEUE_MAX_DELAY_MS)), 0);
	assert_int_equal(fx->o.delay, ENQUEUE_MAX_DELAY_MS);
	assert_int_equal(set(fx, "delay", vd(200.0)), 0); /* an integral float is an integer */
	assert_int_equal(fx->o.delay, 200);
	assert_int_equal(enqueue_opts_run_at(&fx->o), NOW + 200);

	refused(fx, "delay", vi(-1));
	refused(fx, "delay", vi(ENQUEUE_MAX_DELAY_MS + 1));
	refused(fx, "delay", vi(INT64_MAX));
	refused(fx, "delay", vi(INT64_MIN));
	refused(fx, "delay", vd(1e19));
	refused(fx, "delay", vd(9223372036854775807.0));
	refused(fx, "delay", vd(1.5));
	refused(fx, "delay", vd(-0.5));
	refused(fx, "delay", vd(NAN));
	refused(fx, "delay", vd(INFINITY));
	refused(fx, "delay", vd(-INFINITY));
	refused(fx, "delay", vs("200"));
	refused(fx, "delay", (struct enqueue_val){.type = ENQUEUE_V_OTHER, .tname = "boolean"});
	assert_string_equal(fx->err, "delay must be an integer number of ms from 0 to "
	                             "315360000000 (10 years), not a boolean");
	refused(fx, "delay", vd(1e19));
	assert_non_null(strstr(fx->err, "not 1e+19"));
	refused(fx, "delay", vs("x"));
	assert_non_null(strstr(fx->err, "not the string \"x\""));
	assert_int_equal(fx->o.delay, 200);
}

static void test_at(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(set(fx, "at", vi(NOW - ENQUEUE_MAX_PAST_MS)), 0);
	assert_int_equal(enqueue_opts_run_at(&fx->o), NOW - ENQUEUE_MAX_PAST_MS);
	assert_int_equal(set(fx, "at", vi(NOW + ENQUEUE_MAX_DELAY_MS)), 0);
	assert_int_equal(set(fx, "at", vd((double)(NOW + 1000))), 0);
	assert_int_equal(enqueue_opts_run_at(&fx->o), NOW + 1000);

	refused(fx, "at", vi(-5));
	refused(fx, "at", vi(0));
	refused(fx, "at", vi(NOW - ENQUEUE_MAX_PAST_MS - 1));
	refused(fx, "at", vi(NOW - 3600000));
	refused(fx, "at", vi(NOW + ENQUEUE_MAX_DELAY_MS + 1));
	refused(fx, "at", vi(INT64_MAX));
	refused(fx, "at", vd(1e300));
	refused(fx, "at", vd((double)NOW + 0.5));
	assert_non_null(strstr(fx->err, "(now is 1700000000000)"));
}

static void test_timeout_priority(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(set(fx, "timeout", vi(1)), 0);
	assert_int_equal(set(fx, "timeout", vi(ENQUEUE_MAX_TIMEOUT_MS)), 0);
	assert_int_equal(fx->o.timeout_ms, ENQUEUE_MAX_TIMEOUT_MS);
	refused(fx, "timeout", vi(0));
	refused(fx, "timeout", vi(-1));
	refused(fx, "timeout", vi(ENQUEUE_MAX_TIMEOUT_MS + 1));
	refused(fx, "timeout", vd(1e300));
	refused(fx, "timeout", vd(INFINITY));

	assert_int_equal(set(fx, "priority", vi(ENQUEUE_MIN_PRIORITY)), 0);
	assert_int_equal(fx->o.priority, ENQUEUE_MIN_PRIORITY);
	assert_int_equal(set(fx, "priority", vi(ENQUEUE_MAX_PRIORITY)), 0);
	assert_int_equal(set(fx, "priority", vd(-3.0)), 0);
	assert_int_equal(fx->o.priority, -3);
	refused(fx, "priority", vi(ENQUEUE_MIN_PRIORITY - 1));
	refused(fx, "priority", vi(ENQUEUE_MAX_PRIORITY + 1));
	refused(fx, "priority", vd(2.5));
	refused(fx, "priority", vd(NAN));
}

static void test_key(void **state)
{
	struct fixture *fx = *state;
	char big[ENQUEUE_MAX_KEY + 2];
	struct store_req r;

	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	refused(fx, "key", vs(big)); /* one byte too many */
	big[ENQUEUE_MAX_KEY] = '\0';
	assert_int_equal(set(fx, "key", vs(big)), 0);
	assert_int_equal(set(fx, "key", vs("caf\xc3\xa9")), 0);
	refused(fx, "key", vs(""));
	refused(fx, "key", vs("bad \xff byte"));
	refused(fx, "key", vs("\xc0\xaf"));     /* overlong '/' */
	refused(fx, "key", vs("\xed\xa0\x80")); /* a surrogate */
	refused(fx, "key", (struct enqueue_val){.type = ENQUEUE_V_STRING, .s = "a\0b", .len = 3});
	refused(fx, "key", vi(5));

	/* apply copies the key: the borrowed value may go */
	memset(&r, 0, sizeof r);
	assert_int_equal(enqueue_opts_apply(&fx->o, &r), 0);
	assert_string_equal(r.key, "caf\xc3\xa9");
	free(r.key);
}

static void test_unknown_and_both(void **state)
{
	struct fixture *fx = *state;
	struct enqueue_val v = vi(5);

	assert_int_equal(set(fx, "delay_ms", v), -1);
	assert_string_equal(
	    fx->err, "unknown option \"delay_ms\" (known: key, delay, at, priority, timeout, after)");
	assert_int_equal(set(fx, "run_at", v), -1);
	assert_non_null(strstr(fx->err, "\"run_at\""));
	assert_int_equal(set(fx, "Delay", v), -1); /* names are exact */
	/* a name with a NUL inside or control bytes is shown escaped */
	assert_int_equal(enqueue_opts_set(&fx->o, "dela\0y", 6, &v, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "\"dela\\x00y\""));

	assert_int_equal(enqueue_opts_check(&fx->o, fx->err, sizeof fx->err), 0);
	assert_int_equal(set(fx, "delay", vi(5)), 0);
	assert_int_equal(set(fx, "at", vi(NOW)), 0);
	assert_int_equal(enqueue_opts_check(&fx->o, fx->err, sizeof fx->err), -1);
	assert_non_null(strstr(fx->err, "delay and at"));
	/* a NULL error buffer is allowed */
	assert_int_equal(enqueue_opts_set(&fx->o, "x", 1, &v, NULL, 0), -1);
}

static void test_defaults(void **state)
{
	struct fixture *fx = *state;
	struct store_req r;

	memset(&r, 0, sizeof r);
	r.run_at = 99;
	assert_int_equal(enqueue_opts_apply(&fx->o, &r), 0);
	assert_null(r.key);
	assert_int_equal(r.run_at, 0); /* now */
	assert_int_equal(r.priority, 0);
	assert_int_equal(r.timeout_ms, 0); /* the script's */
	assert_int_equal(set(fx, "delay", vi(0)), 0);
	assert_int_equal(enqueue_opts_run_at(&fx->o), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_at, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_both, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
