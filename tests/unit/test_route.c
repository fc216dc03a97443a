/*
 * test_route.c - routing (route/route.c) and the configuration value
 * parsers it depends on (conf/values.c): most specific address space
 * wins, cost breaks ties, disabled connectors never match, restrictions
 * are applied to the chosen connector only (no fallback). The explain
 * output is tested with the recipient decision in test_recipient.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/values.h"
#include "route/route.h"
#include "util/buf.h"

static const char conf_text[] =
	"accepted-domain \"example.test\" { type = \"authoritative\" }\n"
	"accepted-domain \"relay.example.test\" { type = \"internal-relay\" }\n"
	"receive-connector \"internet\" { bindings = { \"127.0.0.1:2525\" } }\n"
	"receive-connector \"devices\" {\n"
	"  bindings = { \"127.0.0.1:2525\" }\n"
	"  remote-ip-ranges = { \"127.0.0.0/8\" }\n"
	"  permissions = { \"relay\" }\n"
	"}\n"
	"send-connector \"internet\" { address-spaces = { \"*\" } }\n"
	"send-connector \"partner\" {\n"
	"  address-spaces = { \"partner.test\" }\n"
	"  smart-hosts = { \"[mx1.partner.test]:25\", \"[mx2.partner.test]:2525\" }\n"
	"  tls = \"require\"\n"
	"  max-message-size = \"100K\"\n"
	"  allowed-senders = { \"*@example.test\" }\n"
	"}\n"
	"send-connector \"subs\" { address-spaces = { \"*.sub.test;5\" } }\n"
	"send-connector \"subs-cheap\" { address-spaces = { \"*.sub.test;2\" } }\n"
	"send-connector \"deep\" { address-spaces = { \"*.a.sub.test;9\" } }\n"
	"send-connector \"off\" {\n"
	"  address-spaces = { \"off.test\" }\n"
	"  enabled = false\n"
	"}\n";

static int setup(void **state)
{
	char path[] = "/tmp/test_route.XXXXXX";
	int fd = mkstemp(path);
	struct config *c;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, conf_text, sizeof(conf_text) - 1), (ssize_t)sizeof(conf_text) - 1);
	close(fd);
	c = conf_load(path);
	unlink(path);
	assert_non_null(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	conf_free(*state);
	return 0;
}

static const char *chosen(const struct config *c, const char *domain)
{
	static struct route r;
	route_domain(c, domain, &r);
	return r.kind == ROUTE_MAILBOX ? "mailbox" : r.kind == ROUTE_NONE ? "none" : r.sc->name;
}

static void test_most_specific_wins(void **state)
{
	const struct config *c = *state;

	assert_string_equal(chosen(c, "example.test"), "mailbox");
	assert_string_equal(chosen(c, "relay.example.test"), "internet");
	assert_string_equal(chosen(c, "partner.test"), "partner");
	assert_string_equal(chosen(c, "PARTNER.test"), "partner");
	/* an exact address space does not cover subdomains */
	assert_string_equal(chosen(c, "mx.partner.test"), "internet");
	assert_string_equal(chosen(c, "other.test"), "internet");
	/* "*.sub.test" covers sub.test and below; the cheaper of two equals wins */
	assert_string_equal(chosen(c, "sub.test"), "subs-cheap");
	assert_string_equal(chosen(c, "x.sub.test"), "subs-cheap");
	/* a longer suffix is more specific whatever its cost */
	assert_string_equal(chosen(c, "b.a.sub.test"), "deep");
	/* disabled: as if it were not there */
	assert_string_equal(chosen(c, "off.test"), "internet");
	assert_string_equal(chosen(c, "notsub.test"), "internet");
}

static void test_restrictions_no_fallback(void **state)
{
	const struct config *c = *state;
	struct route r;
	struct route_verdict v;

	route_domain(c, "partner.test", &r);
	assert_true(route_check(r.sc, "alice@example.test", 50 * 1024, &v));
	assert_false(route_check(r.sc, "alice@example.test", 200 * 1024, &v));
	assert_int_equal(v.code, 552);
	assert_string_equal(v.enh, "5.3.4");
	assert_false(route_check(r.sc, "mallory@elsewhere.test", 10, &v));
	assert_int_equal(v.code, 550);
	assert_string_equal(v.enh, "5.7.1");
	/* the null sender (bounces) may always pass */
	assert_true(route_check(r.sc, "", 10, &v));
	/* and the chosen connector stays partner: the restriction is the answer */
	assert_string_equal(r.sc->name, "partner");
}

static void test_values(void **state)
{
	struct binding b;
	struct ip_range r;
	struct address_space a;
	struct smart_host h;
	(void)state;

	assert_true(parse_binding("0.0.0.0:25", &b));
	assert_true(parse_binding("[::]:25", &b));
	assert_false(parse_binding("1.2.3.4", &b));
	assert_false(parse_binding("1.2.3.4:0", &b));
	assert_false(parse_binding("[::1:25", &b));
	assert_false(parse_binding("host.example:25", &b));

	assert_true(parse_range("192.0.2.0/24", &r));
	assert_int_equal(r.prefix, 24);
	assert_true(parse_range("::/0", &r));
	assert_true(parse_range("192.0.2.7", &r));
	assert_int_equal(r.prefix, 32);
	assert_false(parse_range("192.0.2.0/33", &r));
	assert_false(parse_range("192.0.2.0/", &r));

	assert_true(parse_space("*", &a));
	assert_null(a.domain);
	assert_true(parse_space("*.Example.COM;7", &a));
	assert_true(a.wildcard);
	assert_string_equal(a.domain, "example.com");
	assert_int_equal(a.cost, 7);
	free(a.domain);
	assert_false(parse_space("*;0", &a));
	assert_false(parse_space("exa mple.com", &a));
	assert_false(parse_space("", &a));

	assert_true(parse_smart_host("[mx1.partner.test]:2525", &h));
	assert_true(h.no_mx);
	assert_int_equal(h.port, 2525);
	free(h.host);
	assert_true(parse_smart_host("relay.example.net", &h));
	assert_false(h.no_mx);
	assert_int_equal(h.port, 25);
	free(h.host);
	assert_true(parse_smart_host("[::1]:25", &h));
	free(h.host);
	assert_false(parse_smart_host("[mx1]:99999", &h));
	assert_false(parse_smart_host("::1", &h));
	assert_false(parse_smart_host("[]", &h));

	assert_true(valid_hostname("mx.example.test"));
	assert_false(valid_hostname("bad host"));
	assert_false(valid_hostname("a..b"));
	assert_false(valid_hostname(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_most_specific_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restrictions_no_fallback, setup, teardown),
		cmocka_unit_test(test_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
