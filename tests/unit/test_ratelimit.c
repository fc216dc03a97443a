/* test_ratelimit.c - policy/ratelimit.c: token buckets per key, refill,
 * the bound on entries and the freeing of idle ones (issue 7 rates). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "policy/ratelimit.h"

static void test_burst_then_refused(void **state)
{
	struct ratelimit *rl = ratelimit_new(100);
	uint64_t t = 1000000;
	(void)state;

	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_take(rl, "0|192.0.2.1/32", 3, 1, t));
	assert_false(ratelimit_take(rl, "0|192.0.2.1/32", 3, 1, t));
	/* another key is not affected */
	assert_true(ratelimit_take(rl, "0|192.0.2.2/32", 3, 1, t));
	/* 3 a minute: one token back after 20 s, not before */
	assert_false(ratelimit_take(rl, "0|192.0.2.1/32", 3, 1, t + 19999));
	assert_true(ratelimit_take(rl, "0|192.0.2.1/32", 3, 1, t + 20000 + 19999));
	assert_false(ratelimit_take(rl, "0|192.0.2.1/32", 3, 1, t + 20000 + 19999));
	/* a refusal takes nothing; several at once need that many */
	assert_false(ratelimit_take(rl, "0|192.0.2.2/32", 3, 3, t));
	assert_true(ratelimit_take(rl, "0|192.0.2.2/32", 3, 2, t));
	/* 0: no limit, no entry */
	assert_true(ratelimit_take(rl, "0|nolimit", 0, 1000, t));
	assert_int_equal(ratelimit_entries(rl), 2);
	ratelimit_free(rl);
}

static void test_clock_back_and_idle_freed(void **state)
{
	struct ratelimit *rl = ratelimit_new(100);
	uint64_t t = 5000000;
	(void)state;

	assert_true(ratelimit_take(rl, "a", 1, 1, t));
	/* an earlier reading (never from CLOCK_MONOTONIC, but) refills nothing */
	assert_false(ratelimit_take(rl, "a", 1, 1, t - 100000));
	assert_true(ratelimit_take(rl, "b", 1, 1, t));
	assert_int_equal(ratelimit_entries(rl), 2);
	/* a minute idle: full again, so freed as the table is used */
	assert_true(ratelimit_take(rl, "c", 1, 1, t + 10 * RATELIMIT_IDLE_MS));
	assert_int_equal(ratelimit_entries(rl), 1);
	ratelimit_free(rl);
}

static void test_bounded(void **state)
{
	struct ratelimit *rl = ratelimit_new(1000);
	char key[32];
	uint64_t t = 1;
	(void)state;

	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "0|10.%d.%d.%d/32", i >> 16, (i >> 8) & 255, i & 255);
		assert_true(ratelimit_take(rl, key, 5, 1, t));
	}
	assert_int_equal(ratelimit_entries(rl), 1000);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refused),
		cmocka_unit_test(test_clock_back_and_idle_freed),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
