/* test_fromhdr.c - mail/fromhdr.c: collecting the From: field(s) from
 * header lines and splitting a From: value into its addresses (RFC 5322
 * 3.4, 3.6.2, 4.4; issue 7 sender binding on the header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mail/fromhdr.h"

/* The addresses of value joined by " ", or "ERR" / "MANY". */
static const char *addrs(const char *value, char *out, size_t outsz)
{
	char list[FROMHDR_ADDRS_MAX][ADDR_TEXT_MAX];
	size_t n, used = 0;
	const char *why;
	enum fromhdr_status st =
		fromhdr_addresses(value, strlen(value), list, FROMHDR_ADDRS_MAX, &n, &why);

	if (st != FROMHDR_OK) {
		assert_non_null(why);
		return st == FROMHDR_SYNTAX ? "ERR" : "MANY";
	}
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, outsz - used, "%s%s", i ? " " : "", list[i]);
	return out;
}

static void test_addresses(void **state)
{
	static const struct { const char *value, *want; } cases[] = {
		{" alice@example.test", "alice@example.test"},
		{" Alice <alice@example.test>", "alice@example.test"},
		{" \"Doe, Alice\" <alice@Example.TEST>", "alice@example.test"},
		/* a display name that looks like an address is only a name */
		{" alice@example.test <mallory@evil.test>", "mallory@evil.test"},
		{" \"alice@example.test\" <mallory@evil.test>", "mallory@evil.test"},
		{" =?utf-8?B?QWxpY2U=?= <alice@example.test>", "alice@example.test"},
		{" =?iso-8859-1?Q?J=F6rg?= <joerg@example.test>", "joerg@example.test"},
		{" alice@example.test (Alice, (nested) comment)", "alice@example.test"},
		{" a@example.test, Bob <b@example.test>,c@example.test",
		 "a@example.test b@example.test c@example.test"},
		{" Team: a@example.test, \"B\" <b@example.test>; , c@example.test",
		 "a@example.test b@example.test c@example.test"},
		{" undisclosed-recipients:;", ""},
		{" \"john doe\"@example.test", "\"john doe\"@example.test"},
		{" <alice@[IPv6:2001:db8::1]>", "alice@[IPv6:2001:db8::1]"},
		{" alice@[192.0.2.1]", "alice@[192.0.2.1]"},
		{" <@relay.example:alice@example.test>", "alice@example.test"},
		{" a@example.test,, b@example.test", "a@example.test b@example.test"},
		/* broken */
		{" Alice <alice@example.test", "ERR"},
		{" \"Alice <alice@example.test>", "ERR"},
		{" alice@example.test (unclosed", "ERR"},
		{" Team: a@example.test", "ERR"},
		{" <a@example.test> <b@example.test>", "ERR"},
		{" <a@example.test> trailing@x.test", "ERR"},
		{" alice", "ERR"},
		{" <>", "ERR"},
		{" Alice alice@example.test", "ERR"},
		{" a@example.test>", "ERR"},
	};
	char out[4096];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = addrs(cases[i].value, out, sizeof(out));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].value, got, cases[i].want);
	}
}

static void test_too_many(void **state)
{
	char value[FROMHDR_VALUE_MAX], out[64];
	size_t len = 0;
	(void)state;

	for (int i = 0; i < FROMHDR_ADDRS_MAX + 1; i++)
		len += (size_t)snprintf(value + len, sizeof(value) - len, "%sa%d@example.test",
					i ? "," : "", i);
	assert_string_equal(addrs(value, out, sizeof(out)), "MANY");
}

static void test_collect(void **state)
{
	struct fromhdr f;
	static const char *lines[] = {
		"Subject: hello", "From: Alice", "  <alice@example.test>", "To: bob@example.test",
		" (continuation of To)", "FROM : second@example.test", "X-From: not@example.test",
	};
	(void)state;

	memset(&f, 0, sizeof(f));
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		fromhdr_line(&f, lines[i], strlen(lines[i]));
	assert_int_equal(f.fields, 2);
	assert_false(f.overflow);
	assert_string_equal(f.value, " Alice  <alice@example.test>, second@example.test");

	/* bounded: a huge folded From: is cut and marked */
	memset(&f, 0, sizeof(f));
	fromhdr_line(&f, "From: a@example.test", 20);
	for (int i = 0; i < 1000; i++)
		fromhdr_line(&f, " , b@example.test", 17);
	assert_true(f.overflow);
	assert_true(f.len < FROMHDR_VALUE_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_collect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
