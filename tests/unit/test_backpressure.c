/* test_backpressure.c - policy/backpressure.c: the levels with their
 * hysteresis (table-driven rising and falling sequences), the combination
 * of the three resources with the log reason, the MAIL decision, and the
 * memory-high syntax (conf/values.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "conf/values.h"
#include "policy/backpressure.h"

#define M (1024ull * 1024)
#define G (1024ull * M)

/* A sequence of values and the level expected after each one. */
struct step {
	uint64_t v;
	enum bp_level want;
};

static void run_below(const struct step *s, size_t n, uint64_t medium, uint64_t high)
{
	enum bp_level l = BP_NORMAL;
	size_t i;

	for (i = 0; i < n; i++) {
		l = bp_level_below(l, s[i].v, medium, high);
		if (l != s[i].want)
			fail_msg("step %zu: value %llu gave %s, want %s", i,
				 (unsigned long long)s[i].v, bp_level_name(l),
				 bp_level_name(s[i].want));
	}
}

static void run_above(const struct step *s, size_t n, uint64_t medium, uint64_t high)
{
	enum bp_level l = BP_NORMAL;
	size_t i;

	for (i = 0; i < n; i++) {
		l = bp_level_above(l, s[i].v, medium, high);
		if (l != s[i].want)
			fail_msg("step %zu: value %llu gave %s, want %s", i,
				 (unsigned long long)s[i].v, bp_level_name(l),
				 bp_level_name(s[i].want));
	}
}

/* disk free: medium 2G (relief 2.2G), high 500M (relief 550M) */
static void test_disk_rising_and_falling(void **state)
{
	static const struct step seq[] = {
		{10 * G, BP_NORMAL},
		{2 * G, BP_NORMAL},	 /* at the threshold: not below it */
		{2 * G - 1, BP_MEDIUM},	 /* enters Medium */
		{2 * G + 100 * M, BP_MEDIUM}, /* above 2G but below 2.2G: stays */
		{2 * G - 1, BP_MEDIUM},
		{2 * G + 205 * M, BP_NORMAL}, /* 2.2G (2252.8M) or more: leaves */
		{2 * G + 100 * M, BP_NORMAL}, /* between: stays Normal (no flap) */
		{499 * M, BP_HIGH},	      /* straight to High */
		{520 * M, BP_HIGH},	      /* above 500M, below 550M */
		{549 * M, BP_HIGH},
		{551 * M, BP_MEDIUM},	      /* leaves High; still below 2G */
		{2100 * M, BP_MEDIUM},	      /* above 2G, below 2.2G */
		{3 * G, BP_NORMAL},
		{0, BP_HIGH},
		{10 * G, BP_NORMAL},	      /* from High straight to Normal */
	};
	(void)state;
	run_below(seq, sizeof(seq) / sizeof(seq[0]), 2 * G, 500 * M);
}

/* queue: medium 100000 (relief 90000), high 500000 (relief 450000) */
static void test_queue_rising_and_falling(void **state)
{
	static const struct step seq[] = {
		{0, BP_NORMAL},		{99999, BP_NORMAL}, {100000, BP_MEDIUM},
		{95000, BP_MEDIUM},	{90000, BP_MEDIUM}, {89999, BP_NORMAL},
		{95000, BP_NORMAL},	{500000, BP_HIGH},  {460000, BP_HIGH},
		{450000, BP_HIGH},	{449999, BP_MEDIUM}, {100000, BP_MEDIUM},
		{1, BP_NORMAL},
	};
	(void)state;
	run_above(seq, sizeof(seq) / sizeof(seq[0]), 100000, 500000);
}

/* memory: medium == high, so there is no Medium level */
static void test_memory_has_only_high(void **state)
{
	static const struct step seq[] = {
		{50, BP_NORMAL}, {100, BP_HIGH}, {95, BP_HIGH}, {90, BP_HIGH},
		{89, BP_NORMAL}, {99, BP_NORMAL}, {1000, BP_HIGH}, {0, BP_NORMAL},
	};
	(void)state;
	run_above(seq, sizeof(seq) / sizeof(seq[0]), 100, 100);
}

/* Thresholds near the ends of uint64_t do not overflow. */
static void test_extreme_thresholds(void **state)
{
	(void)state;
	/* the relief thresholds saturate at UINT64_MAX */
	assert_int_equal(bp_level_below(BP_HIGH, UINT64_MAX, UINT64_MAX, UINT64_MAX - 1),
			 BP_NORMAL);
	assert_int_equal(bp_level_below(BP_HIGH, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX - 1),
			 BP_HIGH);
	assert_int_equal(bp_level_above(BP_HIGH, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX), BP_HIGH);
	assert_int_equal(bp_level_above(BP_NORMAL, 0, 1, 1), BP_NORMAL);
	assert_int_equal(bp_level_below(BP_NORMAL, 0, 1, 1), BP_HIGH);
}

static const struct bp_limits limits = {
	.disk_free_medium = 2 * G,
	.disk_free_high = 500 * M,
	.memory_high = 1 * G,
	.queue_medium = 100,
	.queue_high = 500,
};

/* The server's level is the worst resource's; the log says which and why. */
static void test_evaluate_worst_and_reason(void **state)
{
	struct bp_state st = {0};
	struct bp_reading r = {.disk_known = true, .disk_free = 10 * G, .memory_known = true,
			       .rss = 10 * M, .queue = 0};
	char why[160];
	(void)state;

	assert_false(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_NORMAL);

	r.queue = 150;
	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_MEDIUM);
	assert_string_equal(why, "reason=queue-length messages=150 threshold=100");

	r.disk_free = 100 * M;
	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_HIGH);
	assert_string_equal(why, "reason=disk-free free=104857600 threshold=524288000");

	/* memory rises too: still High, nothing to log */
	r.rss = 2 * G;
	assert_false(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	/* the disk recovers, memory still holds High */
	r.disk_free = 10 * G;
	assert_false(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_HIGH);
	/* memory falls below its relief threshold: down to the queue's Medium */
	r.rss = 100 * M;
	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_MEDIUM);
	assert_string_equal(why, "reason=memory rss=104857600 threshold=966367642");
	/* the queue drains below 90 */
	r.queue = 89;
	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_NORMAL);
	assert_string_equal(why, "reason=queue-length messages=89 threshold=90");
}

/* A failed statvfs keeps the disk's level as it was. */
static void test_unknown_disk_keeps_level(void **state)
{
	struct bp_state st = {0};
	struct bp_reading r = {.disk_known = true, .disk_free = 100 * M, .memory_known = true};
	char why[160];
	(void)state;

	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_HIGH);
	r.disk_known = false;
	r.disk_free = 0;
	assert_false(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_HIGH);
	r.disk_known = true;
	r.disk_free = 10 * G;
	assert_true(bp_evaluate(&st, &limits, &r, why, sizeof(why)));
	assert_int_equal(st.level, BP_NORMAL);
	assert_string_equal(why, "reason=disk-free free=10737418240 threshold=576716800");
}

/* Nothing started: Normal, everyone may send. */
static void test_not_started_admits(void **state)
{
	(void)state;
	assert_int_equal(backpressure_level(), BP_NORMAL);
	assert_true(backpressure_admits_mail(false));
	assert_true(backpressure_admits_mail(true));
}

static void test_mail_decision(void **state)
{
	(void)state;
	assert_true(bp_admits_mail(BP_NORMAL, false));
	assert_true(bp_admits_mail(BP_NORMAL, true));
	assert_false(bp_admits_mail(BP_MEDIUM, false));
	assert_true(bp_admits_mail(BP_MEDIUM, true));
	assert_false(bp_admits_mail(BP_HIGH, false));
	assert_false(bp_admits_mail(BP_HIGH, true));
}

static void test_memory_limit_syntax(void **state)
{
	unsigned pct;
	uint64_t bytes;
	(void)state;

	assert_true(parse_memory_limit("75%", &pct, &bytes));
	assert_int_equal(pct, 75);
	assert_int_equal(bytes, 0);
	assert_true(parse_memory_limit("100%", &pct, &bytes));
	assert_true(parse_memory_limit("1%", &pct, &bytes));
	assert_true(parse_memory_limit("2G", &pct, &bytes));
	assert_int_equal(pct, 0);
	assert_int_equal(bytes, 2 * G);
	assert_false(parse_memory_limit("0%", &pct, &bytes));
	assert_false(parse_memory_limit("101%", &pct, &bytes));
	assert_false(parse_memory_limit("%", &pct, &bytes));
	assert_false(parse_memory_limit("7.5%", &pct, &bytes));
	assert_false(parse_memory_limit("-5%", &pct, &bytes));
	assert_false(parse_memory_limit("0", &pct, &bytes));
	assert_false(parse_memory_limit("lots", &pct, &bytes));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_rising_and_falling),
		cmocka_unit_test(test_queue_rising_and_falling),
		cmocka_unit_test(test_memory_has_only_high),
		cmocka_unit_test(test_extreme_thresholds),
		cmocka_unit_test(test_evaluate_worst_and_reason),
		cmocka_unit_test(test_unknown_disk_keeps_level),
		cmocka_unit_test(test_not_started_admits),
		cmocka_unit_test(test_mail_decision),
		cmocka_unit_test(test_memory_limit_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
