/* test_sasl.c - smtp/sasl.c: strict base64, the SASL PLAIN message (RFC
 * 4616) and the LOGIN lines (issue 7 item 2), table-driven; and
 * policy/authlimit.c, the brute-force counters (item 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/authlimit.h"
#include "smtp/sasl.h"

/* base64 of n octets of raw (may contain NULs) */
static const char *b64(const char *raw, size_t n, char *out, size_t outsz)
{
	assert_true(sasl_b64_encode((const unsigned char *)raw, n, out, outsz));
	return out;
}

static void test_base64_strict(void **state)
{
	static const struct { const char *in; int ok; const char *out; } cases[] = {
		{"", 1, ""},
		{"YQ==", 1, "a"},
		{"YWI=", 1, "ab"},
		{"YWJj", 1, "abc"},
		{"YWJjZA==", 1, "abcd"},
		{"YQ", 0, NULL},	 /* not a multiple of 4 */
		{"YQ=", 0, NULL},
		{"Y===", 0, NULL},	 /* three pads */
		{"=YWJ", 0, NULL},	 /* pad first */
		{"YW=j", 0, NULL},	 /* pad inside */
		{"YW Jj", 0, NULL},	 /* white space */
		{"YWJj\n", 0, NULL},
		{"YW*j", 0, NULL},	 /* outside the alphabet */
		{"YWJ-", 0, NULL},	 /* base64url is not base64 */
		{"////", 1, "\xff\xff\xff"},
		{"YR==", 0, NULL},	 /* pad bits not zero (found by fuzz_sasl) */
		{"YWJ=", 0, NULL},
		{"2xYYUpW=", 0, NULL},
	};
	unsigned char out[64];
	size_t n, i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = sasl_b64_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out), &n);
		if (ok != (bool)cases[i].ok)
			fail_msg("case %zu \"%s\": %d", i, cases[i].in, ok);
		if (ok) {
			assert_int_equal(n, strlen(cases[i].out));
			assert_memory_equal(out, cases[i].out, n);
		}
	}
	/* output longer than the buffer */
	assert_false(sasl_b64_decode("YWJjZA==", 8, out, 3, &n));
	assert_true(sasl_b64_decode("YWJjZA==", 8, out, 4, &n));
}

static void test_plain(void **state)
{
	static const struct {
		const char *raw;
		size_t len;
		enum sasl_result want;
		const char *user, *pass;
	} cases[] = {
		{"\0alice@example.test\0pw", 22, SASL_OK, "alice@example.test", "pw"},
		{"alice@example.test\0alice@example.test\0pw", 40, SASL_OK, "alice@example.test", "pw"},
		{"ALICE@example.test\0alice@example.test\0pw", 40, SASL_OK, "alice@example.test", "pw"},
		{"bob@example.test\0alice@example.test\0pw", 38, SASL_BAD_AUTHZID, "alice@example.test", ""},
		{"alice\0alice@example.test\0pw", 27, SASL_BAD_AUTHZID, "alice@example.test", ""},
		{"\0\0pw", 4, SASL_BAD_MESSAGE, "", ""},	/* empty authcid */
		{"\0alice\0", 7, SASL_BAD_MESSAGE, "", ""},	/* empty password */
		{"\0alice", 6, SASL_BAD_MESSAGE, "", ""},	/* one NUL */
		{"alice pw", 8, SASL_BAD_MESSAGE, "", ""},	/* no NUL */
		{"\0alice\0pw\0", 10, SASL_BAD_MESSAGE, "", ""}, /* three NULs */
		{"", 0, SASL_BAD_MESSAGE, "", ""},
	};
	char enc[1200], user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sasl_result r;
		b64(cases[i].raw, cases[i].len, enc, sizeof(enc));
		r = sasl_plain_decode(enc, strlen(enc), user, pass);
		if (r != cases[i].want)
			fail_msg("case %zu: result %d, want %d", i, r, cases[i].want);
		if (r == SASL_OK || r == SASL_BAD_AUTHZID)
			assert_string_equal(user, cases[i].user);
		assert_string_equal(pass, cases[i].pass); /* wiped unless OK */
	}
	/* "=" is the empty initial response (RFC 4954 4): no NULs, refused */
	assert_int_equal(sasl_plain_decode("=", 1, user, pass), SASL_BAD_MESSAGE);
	assert_int_equal(sasl_plain_decode("AGFsaWNlAHB3!", 13, user, pass), SASL_BAD_BASE64);
	/* fields of 255 octets are the most RFC 4616 allows */
	{
		char raw[600];
		memset(raw, 'u', sizeof(raw));
		raw[0] = '\0';
		raw[256] = '\0'; /* authcid: 255 octets, password: rest */
		b64(raw, 256 + 1 + 255, enc, sizeof(enc));
		assert_int_equal(sasl_plain_decode(enc, strlen(enc), user, pass), SASL_OK);
		assert_int_equal(strlen(user), 255);
		assert_int_equal(strlen(pass), 255);
		raw[256] = 'u';
		raw[257] = '\0'; /* authcid of 256 */
		b64(raw, 257 + 1 + 255, enc, sizeof(enc));
		assert_int_equal(sasl_plain_decode(enc, strlen(enc), user, pass), SASL_BAD_MESSAGE);
	}
}

static void test_login(void **state)
{
	static const struct { const char *raw; size_t len; enum sasl_result want; } cases[] = {
		{"alice@example.test", 18, SASL_OK},
		{"p w", 3, SASL_OK},
		{"", 0, SASL_BAD_MESSAGE},
		{"a\0b", 3, SASL_BAD_MESSAGE},
	};
	char enc[700], out[SASL_FIELD_MAX], big[300];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b64(cases[i].raw, cases[i].len, enc, sizeof(enc));
		assert_int_equal(sasl_login_decode(enc, strlen(enc), out), cases[i].want);
		if (cases[i].want == SASL_OK)
			assert_string_equal(out, cases[i].raw);
	}
	assert_int_equal(sasl_login_decode("YW!j", 4, out), SASL_BAD_BASE64);
	memset(big, 'x', sizeof(big));
	b64(big, 256, enc, sizeof(enc));
	assert_int_not_equal(sasl_login_decode(enc, strlen(enc), out), SASL_OK);
	assert_true(sasl_is_cancel("*", 1));
	assert_false(sasl_is_cancel("**", 2));
	assert_false(sasl_is_cancel("", 0));
}

static void test_authlimit(void **state)
{
	struct authlimit_params p = {
		.delay_ms = 1000, .delay_max_ms = 4000, .window_ms = 60000,
		.max_per_source = 3, .max_per_login = 5, .lockout_ms = 10000, .table_size = 4,
	};
	struct authlimit *al = authlimit_new(&p);
	const char *which = NULL;
	bool locked;
	uint64_t t = 1000000;
	char key[32];
	int i;
	(void)state;

	/* delays 1 s, 2 s, then the lockout starts at the third */
	assert_int_equal(authlimit_failure(al, "192.0.2.1/32", "a@x", t, &locked), 1000);
	assert_false(locked);
	assert_int_equal(authlimit_failure(al, "192.0.2.1/32", "a@x", t + 1, &locked), 2000);
	assert_false(authlimit_locked(al, "192.0.2.1/32", NULL, t + 2, &which));
	assert_int_equal(authlimit_failure(al, "192.0.2.1/32", "a@x", t + 2, &locked), 4000);
	assert_true(locked);
	assert_true(authlimit_locked(al, "192.0.2.1/32", NULL, t + 3, &which));
	assert_string_equal(which, "source");
	assert_false(authlimit_locked(al, "192.0.2.2/32", "b@x", t + 3, &which));
	/* the lockout ends */
	assert_false(authlimit_locked(al, "192.0.2.1/32", NULL, t + 2 + 10000, &which));
	/* per login, from many sources, case-insensitively */
	assert_int_equal(authlimit_failure(al, "192.0.2.3/32", "A@X", t + 4, &locked), 1000);
	assert_int_equal(authlimit_failure(al, "192.0.2.4/32", "a@x", t + 5, &locked), 1000);
	assert_true(locked); /* five failures for a@x in the window */
	assert_true(authlimit_locked(al, "198.51.100.1/32", "a@X", t + 6, &which));
	assert_string_equal(which, "login");
	/* a window that has passed starts again */
	authlimit_success(al, "192.0.2.9/32", "c@x");
	assert_int_equal(authlimit_failure(al, "192.0.2.9/32", "c@x", t, &locked), 1000);
	assert_int_equal(authlimit_failure(al, "192.0.2.9/32", "c@x", t + 60000, &locked), 1000);
	/* success forgets */
	authlimit_success(al, "192.0.2.9/32", "c@x");
	assert_int_equal(authlimit_failure(al, "192.0.2.9/32", "c@x", t + 60001, &locked), 1000);
	/* bounded: table-size per table, the oldest evicted */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "203.0.113.%d/32", i);
		authlimit_failure(al, key, key, t, &locked);
	}
	assert_int_equal(authlimit_entries(al), 8);
	authlimit_free(al);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_authlimit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
