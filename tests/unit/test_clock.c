/* test_clock.c - util/clock.c: ages and waits that survive clock steps
 * (issue 6 item 4: "(uint64_t)(now - arrival)" wrapped when the clock
 * went back and expired the whole queue). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "util/clock.h"

#define DAY 86400

static void test_age_forward_and_back(void **state)
{
	time_t arrival = 1700000000;
	(void)state;
	assert_int_equal(age_seconds(arrival + 90, arrival), 90);
	assert_int_equal(age_seconds(arrival, arrival), 0);
	/* the clock stepped back two days: the age is 0, not 2^64 - 2 days */
	assert_int_equal(age_seconds(arrival - 2 * DAY, arrival), 0);
	assert_true(age_seconds(arrival - 2 * DAY, arrival) < 5 * DAY);
	/* forward two days: two days old (what the wall clock says) */
	assert_int_equal(age_seconds(arrival + 2 * DAY, arrival), 2 * DAY);
	/* arrival before the epoch is allowed in the queue file */
	assert_int_equal(age_seconds(10, -10), 20);
}

static void test_age_never_overflows(void **state)
{
	(void)state;
	assert_int_equal(age_seconds(INT64_MAX, INT64_MIN), UINT64_MAX);
	assert_int_equal(age_seconds(INT64_MIN, INT64_MAX), 0);
	assert_int_equal(age_seconds(INT64_MAX, 0), (uint64_t)INT64_MAX);
	assert_int_equal(age_seconds(0, INT64_MIN + 1), (uint64_t)INT64_MAX);
}

static void test_wait_is_clamped(void **state)
{
	time_t now = 1700000000;
	(void)state;
	assert_int_equal(wait_seconds(now, now + 60, 3600), 60);
	assert_int_equal(wait_seconds(now, now - 60, 3600), 0);
	/* a note written before the clock went back two days */
	assert_int_equal(wait_seconds(now, now + 2 * DAY + 300, 3600), 3600);
	assert_int_equal(wait_seconds(INT64_MIN, INT64_MAX, 5), 5);
}

static void test_monotonic(void **state)
{
	uint64_t a = clock_mono_ms(), b = clock_mono_ms();
	uint64_t ua = clock_mono_us(), ub = clock_mono_us();
	(void)state;
	assert_true(b >= a);
	assert_true(ub >= ua);
	assert_int_equal(mono_elapsed_ms(a, a + 1500), 1500);
	assert_int_equal(mono_elapsed_ms(a + 1500, a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_age_forward_and_back),
		cmocka_unit_test(test_age_never_overflows),
		cmocka_unit_test(test_wait_is_clamped),
		cmocka_unit_test(test_monotonic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
