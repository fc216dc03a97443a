/* test_source.c - net/source.c: the per-source prefix key (issue 6 item 8),
 * and util/htable.c, the keyed table the keys go into. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/source.h"
#include "util/htable.h"

/* The key of a textual address ("1.2.3.4" or "2001:db8::1"). */
static const char *key_of(const char *ip, unsigned v4, unsigned v6, char *out, size_t outsz)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	assert_true(source_prefix_key((struct sockaddr *)&ss, v4, v6, out, outsz));
	return out;
}

static void test_keys(void **state)
{
	static const struct { const char *ip; unsigned v4, v6; const char *want; } cases[] = {
		/* defaults: IPv4 /32, IPv6 /64 */
		{"192.0.2.77", 32, 64, "192.0.2.77/32"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 64, "2001:db8:1:2::/64"},
		{"::1", 32, 64, "::/64"},
		/* IPv4-mapped IPv6 is the IPv4 address, with the IPv4 prefix */
		{"::ffff:192.0.2.77", 32, 64, "192.0.2.77/32"},
		{"::ffff:192.0.2.77", 24, 64, "192.0.2.0/24"},
		/* configured prefixes, also not on an octet boundary */
		{"192.0.2.77", 24, 64, "192.0.2.0/24"},
		{"192.0.2.77", 26, 64, "192.0.2.64/26"},
		{"192.0.2.77", 1, 64, "128.0.0.0/1"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 56, "2001:db8:1::/56"},
		{"2001:db8:1:2ff:aaaa:bbbb:cccc:dddd", 32, 60, "2001:db8:1:2f0::/60"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 128, "2001:db8:1:2:aaaa:bbbb:cccc:dddd/128"},
	};
	char out[SOURCE_KEY_MAX];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(key_of(cases[i].ip, cases[i].v4, cases[i].v6, out, sizeof(out)),
				    cases[i].want);
}

static void test_same_and_different_prefixes(void **state)
{
	char a[SOURCE_KEY_MAX], b[SOURCE_KEY_MAX];
	(void)state;

	/* two addresses in one /64: one source */
	assert_string_equal(key_of("2001:db8:0:1::1", 32, 64, a, sizeof(a)),
			    key_of("2001:db8:0:1:ffff:ffff:ffff:fffe", 32, 64, b, sizeof(b)));
	/* neighbouring /64s: two sources */
	assert_string_not_equal(key_of("2001:db8:0:1::1", 32, 64, a, sizeof(a)),
				key_of("2001:db8:0:2::1", 32, 64, b, sizeof(b)));
	/* IPv4 /32: every address its own source */
	assert_string_not_equal(key_of("198.51.100.1", 32, 64, a, sizeof(a)),
				key_of("198.51.100.2", 32, 64, b, sizeof(b)));
	/* a configured /24: one source for the whole /24, another for the next */
	assert_string_equal(key_of("198.51.100.1", 24, 64, a, sizeof(a)),
			    key_of("198.51.100.254", 24, 64, b, sizeof(b)));
	assert_string_not_equal(key_of("198.51.100.1", 24, 64, a, sizeof(a)),
				key_of("198.51.101.1", 24, 64, b, sizeof(b)));
	/* a mapped address and the same IPv4 address are one source */
	assert_string_equal(key_of("::ffff:198.51.100.1", 32, 64, a, sizeof(a)),
			    key_of("198.51.100.1", 32, 64, b, sizeof(b)));
}

static void test_refusals(void **state)
{
	struct sockaddr_in s4;
	struct sockaddr_storage other;
	char out[SOURCE_KEY_MAX], tiny[8];
	(void)state;

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	assert_false(source_prefix_key((struct sockaddr *)&s4, 0, 64, out, sizeof(out)));
	assert_false(source_prefix_key((struct sockaddr *)&s4, 33, 64, out, sizeof(out)));
	assert_false(source_prefix_key((struct sockaddr *)&s4, 32, 129, out, sizeof(out)));
	assert_false(source_prefix_key((struct sockaddr *)&s4, 32, 64, tiny, sizeof(tiny)));
	memset(&other, 0, sizeof(other));
	other.ss_family = AF_UNIX;
	assert_false(source_prefix_key((struct sockaddr *)&other, 32, 64, out, sizeof(out)));
}

/* The table with SipHash keys: put, get, replace, delete across growth. */
static void test_htable(void **state)
{
	struct htable *t = htable_new();
	char key[64];
	uintptr_t i;
	(void)state;

	for (i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "0|2001:db8:%lx::/64", (unsigned long)i);
		assert_null(htable_put(t, key, (void *)i));
	}
	assert_int_equal(htable_count(t), 5000);
	for (i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "0|2001:db8:%lx::/64", (unsigned long)i);
		assert_ptr_equal(htable_get(t, key), (void *)i);
	}
	assert_ptr_equal(htable_put(t, "0|2001:db8:1::/64", (void *)7), (void *)1);
	assert_ptr_equal(htable_del(t, "0|2001:db8:1::/64"), (void *)7);
	assert_null(htable_get(t, "0|2001:db8:1::/64"));
	assert_null(htable_del(t, "absent"));
	assert_int_equal(htable_count(t), 4999);
	htable_free(t, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_same_and_different_prefixes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_htable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
