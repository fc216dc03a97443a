/* test_str.c - util/str.c: bounded copy, case folding, size and duration parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/str.h"

static void test_str_copy(void **state)
{
	char small[4];
	(void)state;
	assert_true(str_copy(small, "abc", sizeof(small)));
	assert_string_equal(small, "abc");
	assert_false(str_copy(small, "abcd", sizeof(small)));
	assert_string_equal(small, "abc");
}

static void test_parse_size(void **state)
{
	static const struct { const char *in; int ok; uint64_t v; } cases[] = {
		{"25M", 1, 25ULL << 20}, {"100K", 1, 102400}, {"1G", 1, 1ULL << 30}, {"123", 1, 123},
		{"10k", 1, 10240},	 {"", 0, 0},	      {"M", 0, 0},	      {"5X", 0, 0},
		{"5MB", 0, 0},		 {"-1", 0, 0},	      {"99999999999999999999", 0, 0},
		{"17179869184G", 0, 0},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		assert_int_equal(parse_size(cases[i].in, &v), cases[i].ok);
		if (cases[i].ok)
			assert_int_equal(v, cases[i].v);
	}
}

static void test_parse_duration(void **state)
{
	uint64_t v;
	(void)state;
	assert_true(parse_duration("5m", &v));
	assert_int_equal(v, 300);
	assert_true(parse_duration("2d", &v));
	assert_int_equal(v, 172800);
	assert_true(parse_duration("90", &v));
	assert_int_equal(v, 90);
	assert_false(parse_duration("5 m", &v));
	assert_false(parse_duration("m", &v));
}

static void test_case(void **state)
{
	(void)state;
	assert_int_equal(str_casecmp("Example.TEST", "example.test"), 0);
	assert_true(str_casecmp("a", "b") < 0);
	assert_true(str_has_prefix_ci("MAIL FROM:", "mail from"));
	assert_true(str_has_suffix_ci("mx.EXAMPLE.test", ".example.TEST"));
	assert_false(str_has_suffix_ci("test", "example.test"));
}

static void test_utf8(void **state)
{
	static const struct { const char *in; size_t n; size_t want; } cases[] = {
		{"a", 1, 1},
		{"\xc3\xa9", 2, 2},	     /* e acute */
		{"\xe2\x82\xac", 3, 3},     /* euro sign */
		{"\xf0\x9f\x98\x80", 4, 4}, /* an emoji */
		{"\xc3", 1, 0},	     /* cut off */
		{"\xc0\xaf", 2, 0},	     /* overlong '/' */
		{"\xe0\x80\xaf", 3, 0},     /* overlong */
		{"\xed\xa0\x80", 3, 0},     /* surrogate */
		{"\xf4\x90\x80\x80", 4, 0}, /* past U+10FFFF */
		{"\x80", 1, 0},	     /* lone continuation */
		{"\xe2\x28\xa1", 3, 0},     /* bad continuation */
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(utf8_seq_len((const unsigned char *)cases[i].in, cases[i].n),
				 cases[i].want);
	assert_int_equal(utf8_seq_len((const unsigned char *)"", 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_copy),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
