/*
 * test_dnsbl.c - the DNSBL query names (policy/dnsbl.c, RFC 5782 2.1/2.4).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/dnsbl.h"

static void test_ipv4_reversed_octets(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char out[300];
	(void)state;

	inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
	assert_true(dnsbl_query_name((struct sockaddr *)&sin, "zen.example.test", out, sizeof(out)));
	assert_string_equal(out, "99.2.0.192.zen.example.test");
}

static void test_ipv6_nibbles(void **state)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	char out[300];
	(void)state;

	/* RFC 5782 2.4's example */
	inet_pton(AF_INET6, "2001:db8:1:2:3:4:567:89ab", &sin6.sin6_addr);
	assert_true(dnsbl_query_name((struct sockaddr *)&sin6, "ugly.example.com", out, sizeof(out)));
	assert_string_equal(out, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2."
				 "ugly.example.com");
}

static void test_too_long_refused(void **state)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	char zone[240], out[600];
	(void)state;

	memset(zone, 'a', sizeof(zone) - 1);
	zone[sizeof(zone) - 1] = '\0';
	assert_false(dnsbl_query_name((struct sockaddr *)&sin6, zone, out, sizeof(out)));
	assert_false(dnsbl_query_name((struct sockaddr *)&sin6, "z.test", out, 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_reversed_octets),
		cmocka_unit_test(test_ipv6_nibbles),
		cmocka_unit_test(test_too_long_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
