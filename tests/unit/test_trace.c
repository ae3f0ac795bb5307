/*
 * test_trace.c: the spans of a job attempt: open/close, the JSON form
 * (times relative to the job's first start, parent null for the root,
 * "running" for spans still open), the TRACE_MAX_SPANS cap with dropped
 * spans counted, and the reference count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "trace.h"

static int setup(void **state)
{
	struct trace *tr = trace_new(1000.0);

	if (!tr)
		return -1;
	*state = tr;
	return 0;
}

static int teardown(void **state)
{
	trace_unref(*state);
	return 0;
}

/* trace_json parsed back; the test owns the result. */
static json_t *as_json(const struct trace *tr, double offset, int64_t attempt, double now)
{
	char *text = trace_json(tr, offset, attempt, now);
	json_error_t e;
	json_t *v;

	assert_non_null(text);
	v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("trace_json is not JSON (%s): %s", e.text, text);
	free(text);
	assert_true(json_is_array(v));
	return v;
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

static const char *str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void test_new_is_empty(void **state)
{
	struct trace *tr = *state;
	json_t *v;

	assert_int_equal(tr->refs, 1);
	assert_int_equal(tr->n, 0);
	assert_int_equal(tr->dropped, 0);
	assert_true(tr->t0 == 1000.0);
	v = as_json(tr, 0, 1, 2000);
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);
}

static void test_spans_json(void **state)
{
	struct trace *tr = *state;
	json_t *v, *o;
	int root, child, step;

	root = trace_open(tr, 1, 0, "run", "purchase.lua:1", 1000.0);
	child = trace_open(tr, 2, 1, "task", "purchase.lua:12", 1010.0);
	step = trace_open(tr, 2, 1, "step debit", "purchase.lua:14", 1020.0);
	assert_int_equal(root, 0);
	assert_int_equal(child, 1);
	assert_int_equal(step, 2);
	trace_close(tr, step, "done", 1025.5);
	trace_close(tr, child, "failed", 1040.0);
	/* root still open */

	v = as_json(tr, 500.0, 3, 1100.0);
	assert_int_equal(json_array_size(v), 3);

	o = json_array_get(v, 0);
	assert_int_equal(json_object_size(o), 8);
	assert_true(json_is_integer(json_object_get(o, "task")));
	assert_int_equal(json_integer_value(json_object_get(o, "task")), 1);
	assert_true(json_is_null(json_object_get(o, "parent")));
	assert_string_equal(str(o, "name"), "run");
	assert_string_equal(str(o, "where"), "purchase.lua:1");
	assert_true(num(o, "start") == 500.0);
	assert_true(num(o, "ms") == 100.0); /* open: up to now */
	assert_string_equal(str(o, "outcome"), "running");
	assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 3);

	o = json_array_get(v, 1);
	assert_int_equal(json_integer_value(json_object_get(o, "task")), 2);
	assert_true(json_is_integer(json_object_get(o, "parent")));
	assert_int_equal(json_integer_value(json_object_get(o, "parent")), 1);
	assert_string_equal(str(o, "name"), "task");
	assert_true(num(o, "start") == 510.0);
	assert_true(num(o, "ms") == 30.0);
	assert_string_equal(str(o, "outcome"), "failed");

	o = json_array_get(v, 2);
	assert_string_equal(str(o, "name"), "step debit");
	assert_string_equal(str(o, "where"), "purchase.lua:14");
	assert_true(num(o, "start") == 520.0);
	assert_true(num(o, "ms") == 5.5);
	assert_string_equal(str(o, "outcome"), "done");
	json_decref(v);
}

static void test_close_rules(void **state)
{
	struct trace *tr = *state;
	json_t *v;
	int i = trace_open(tr, 7, 0, NULL, NULL, 1000.0);

	assert_int_equal(i, 0);
	trace_close(tr, -1, "done", 1001.0); /* ignored */
	trace_close(tr, 5, "done", 1001.0);  /* no such span: ignored */
	trace_close(tr, i, "cancelled", 1002.0);
	trace_close(tr, i, "done", 1009.0); /* closed already: ignored */
	assert_string_equal(tr->spans[i].outcome, "cancelled");
	assert_true(tr->spans[i].end == 1002.0);
	v = as_json(tr, 0, 1, 5000.0);
	assert_string_equal(str(json_array_get(v, 0), "name"), "task"); /* NULL name */
	assert_string_equal(str(json_array_get(v, 0), "where"), "");
	assert_true(num(json_array_get(v, 0), "ms") == 2.0);
	assert_string_equal(str(json_array_get(v, 0), "outcome"), "cancelled");
	json_decref(v);
}

static void test_long_names_truncated(void **state)
{
	struct trace *tr = *state;
	char name[200], where[200];

	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	memset(where, 'w', sizeof where - 1);
	where[sizeof where - 1] = '\0';
	assert_int_equal(trace_open(tr, 1, 0, name, where, 1000.0), 0);
	assert_int_equal(strlen(tr->spans[0].name), sizeof tr->spans[0].name - 1);
	assert_int_equal(strlen(tr->spans[0].where), sizeof tr->spans[0].where - 1);
}

static void test_cap_counts_dropped(void **state)
{
	struct trace *tr = *state;
	json_t *v;

	for (int i = 0; i < TRACE_MAX_SPANS; i++)
		assert_int_equal(trace_open(tr, i + 1, i, "task", "x.lua:1", 1000.0 + i), i);
	assert_int_equal(tr->n, TRACE_MAX_SPANS);
	assert_int_equal(tr->dropped, 0);
	assert_int_equal(trace_open(tr, 5000, 1, "task", "x.lua:2", 3000.0), -1);
	assert_int_equal(trace_open(tr, 5001, 1, "task", "x.lua:2", 3000.0), -1);
	assert_int_equal(trace_open(tr, 5002, 1, "task", "x.lua:2", 3000.0), -1);
	assert_int_equal(tr->n, TRACE_MAX_SPANS);
	assert_int_equal(tr->dropped, 3);
	/* closing the -1 of a dropped span is harmless */
	trace_close(tr, -1, "done", 3001.0);
	v = as_json(tr, 0, 1, 4000.0);
	assert_int_equal(json_array_size(v), TRACE_MAX_SPANS);
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(v, TRACE_MAX_SPANS - 1), "task")),
	    TRACE_MAX_SPANS);
	json_decref(v);
}

static void test_refcount(void **state)
{
	struct trace *tr = *state;

	trace_ref(tr);
	trace_ref(tr);
	assert_int_equal(tr->refs, 3);
	trace_unref(tr);
	trace_unref(tr);
	assert_int_equal(tr->refs, 1);
	/* still alive: usable (ASan would flag a use after free) */
	assert_int_equal(trace_open(tr, 1, 0, "run", "x.lua:1", 1000.0), 0);
	trace_close(tr, 0, "done", 1001.0);
	/* the teardown drops the last reference (ASan: no leak) */
	trace_unref(NULL); /* no-op */
}

static void test_late_reference_outlives_owner(void **state)
{
	struct trace *tr = trace_new(0);

	(void)state;
	assert_non_null(tr);
	trace_ref(tr);   /* a task's reference */
	trace_unref(tr); /* the run ends first */
	assert_int_equal(trace_open(tr, 2, 1, "task", "late.lua:3", 5.0), 0);
	trace_close(tr, 0, "done", 6.0);
	trace_unref(tr); /* the task settles: freed here */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_is_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spans_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_names_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap_counts_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refcount, setup, teardown),
	    cmocka_unit_test(test_late_reference_outlives_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
