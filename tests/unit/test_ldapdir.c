/*
 * test_ldapdir.c - the LDAP back end's pure parts: the search filter built
 * from a template with the address escaped per RFC 4515 3 (what makes
 * "*)(mail=*" in an address match nothing), the template checks, the
 * users { ldap { } } section at load time (defaults, required options,
 * exclusive with passwd-file, bind-password-file read), and a directory
 * that cannot be reached answering "temporary", never cached, and the
 * delivery-side checks over it ("cannot tell", never "unknown").
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
#include "conf/ldap_conf.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"
#include "policy/recipient.h"

static void test_filter_escapes_value(void **state)
{
	char out[256];
	(void)state;

	assert_true(ldapdir_filter("(mail=%s)", "alice@example.test", out, sizeof(out)));
	assert_string_equal(out, "(mail=alice@example.test)");
	assert_true(ldapdir_filter("(mail=%s)", "*)(mail=*", out, sizeof(out)));
	assert_string_equal(out, "(mail=\\2A\\29\\28mail=\\2A)");
	assert_true(ldapdir_filter("(mail=%s)", "a\\b", out, sizeof(out)));
	assert_string_equal(out, "(mail=a\\5Cb)");
	assert_true(ldapdir_filter("(mail=%s)", "*", out, sizeof(out)));
	assert_string_equal(out, "(mail=\\2A)");
	/* every %s, and %% is a percent sign */
	assert_true(ldapdir_filter("(|(mail=%s)(alt=%s)(x=100%%))", "(", out, sizeof(out)));
	assert_string_equal(out, "(|(mail=\\28)(alt=\\28)(x=100%))");
}

static void test_filter_too_long_refused(void **state)
{
	char out[16];
	(void)state;

	assert_false(ldapdir_filter("(mail=%s)", "alice@example.test", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(ldapdir_filter("(mail=%s)", "a@b.c", out, sizeof(out)));
}

static void test_filter_template_checks(void **state)
{
	static const struct {
		const char *tmpl;
		bool ok;
	} cases[] = {
		{"(mail=%s)", true},
		{"(&(objectClass=inetOrgPerson)(|(mail=%s)(mailLocalAddress=%s)))", true},
		{"(x=50%%)(mail=%s)", false}, /* two filters, text after the first */
		{"mail=%s", false},
		{"(mail=%s", false},
		{"(mail=%s))", false},
		{"(mail=x)", false},
		{"(mail=%d)", false},
		{"", false},
	};
	char why[128];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = conf_ldap_filter_ok(cases[i].tmpl, why, sizeof(why));
		if (ok != cases[i].ok)
			fail_msg("%s: expected %d got %d (%s)", cases[i].tmpl, cases[i].ok, ok, why);
	}
}

/* Load a configuration whose users section is users_body; NULL if refused. */
static struct config *load(const char *users_body)
{
	char path[] = "/tmp/test_ldapdir.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct config *c;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "accepted-domain \"example.test\" { }\n"
		   "users { %s }\n"
		   "receive-connector \"internet\" { bindings = { \"127.0.0.1:2525\" } }\n",
		users_body);
	fclose(f);
	c = conf_load(path);
	unlink(path);
	return c;
}

static void test_section_defaults(void **state)
{
	struct config *c;
	(void)state;

	c = load("ldap { uri = \"ldap://127.0.0.1:3389\" base = \"ou=people,dc=example,dc=test\" }");
	assert_non_null(c);
	assert_string_equal(c->ldap.uri, "ldap://127.0.0.1:3389");
	assert_string_equal(c->ldap.mail_attr, "mail");
	assert_string_equal(c->ldap.alias_attr, "mailLocalAddress");
	assert_int_equal(c->ldap.password_check, LDAP_CHECK_BIND);
	assert_int_equal(c->ldap.cache_ttl, 60);
	assert_int_equal(c->ldap.timeout, 5);
	assert_null(c->ldap.bind_dn);
	assert_null(c->ldap.bind_password);
	conf_free(c);

	c = load("");
	assert_non_null(c);
	assert_null(c->ldap.uri); /* no section: the passwd-file */
	conf_free(c);
}

static void test_section_refused(void **state)
{
	static const char *bad[] = {
		"ldap { base = \"dc=x\" }",					 /* no uri */
		"ldap { uri = \"ldap://h\" }",					 /* no base */
		"ldap { uri = \"http://h\" base = \"dc=x\" }",			 /* not LDAP */
		"ldap { uri = \"ldap://h\" base = \"dc=x\" password-check = \"md5\" }",
		"ldap { uri = \"ldap://h\" base = \"dc=x\" timeout = \"0s\" }",
		"ldap { uri = \"ldap://h\" base = \"dc=x\" cache-ttl = \"soon\" }",
		"ldap { uri = \"ldap://h\" base = \"dc=x\" user-filter = \"(mail=*)\" }",
		"ldap { uri = \"ldap://h\" base = \"dc=x\" bind-dn = \"cn=t\" }",
		"ldap { uri = \"ldaps://h\" base = \"dc=x\" start-tls = true }",
		("ldap { uri = \"ldap://h\" base = \"dc=x\" bind-dn = \"cn=t\" "
		 "bind-password-file = \"/nonexistent/pw\" }"),
		"passwd-file = \"/etc/transit/users\" ldap { uri = \"ldap://h\" base = \"dc=x\" }",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = load(bad[i]);
		if (c != NULL) {
			conf_free(c);
			fail_msg("accepted: %s", bad[i]);
		}
	}
}

static void test_bind_password_read(void **state)
{
	char pw[] = "/tmp/test_ldapdir_pw.XXXXXX", body[512];
	int fd = mkstemp(pw);
	struct config *c;
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\n", 7), 7);
	close(fd);
	snprintf(body, sizeof(body),
		 "ldap { uri = \"ldap://h\" base = \"dc=x\" bind-dn = \"cn=t,dc=x\" "
		 "bind-password-file = \"%s\" password-check = \"compare\" }", pw);
	c = load(body);
	unlink(pw);
	assert_non_null(c);
	assert_string_equal(c->ldap.bind_password, "s3cret");
	assert_int_equal(c->ldap.password_check, LDAP_CHECK_COMPARE);
	conf_free(c);
}

static void test_unreachable_is_temporary_and_not_cached(void **state)
{
	struct ldap_conf lc = {
		.uri = "ldap://127.0.0.1:1", /* nothing listens on port 1 */
		.base = "dc=x",
		.user_filter = "(mail=%s)",
		.group_filter = "",
		.mail_attr = "mail",
		.alias_attr = "mailLocalAddress",
		.member_attr = "member",
		.password_attr = "userPassword",
		.cache_ttl = 60,
		.timeout = 2,
		.cache_size = 10,
	};
	struct ldapdir *d = ldapdir_new(&lc);
	char out[4][ALIAS_ADDR_MAX];
	size_t n;
	(void)state;

	assert_int_equal(ldapdir_lookup(d, "alice@example.test", out, 4, &n), LDAPDIR_TEMPFAIL);
	assert_int_equal(ldapdir_cached(d, "alice@example.test", out, 4, &n), LDAPDIR_MISS);
	assert_int_equal(ldapdir_verify(d, "alice@example.test", "pw"), -1);
	assert_int_equal(ldapdir_verify(d, "alice@example.test", ""), 0); /* never a bind */
	ldapdir_free(d);
}

/* The scheduler and the Maildir agent over an unreachable directory:
 * on the loop an uncached address is "possible" (the agent decides), the
 * agent's lookup says "cannot tell" (-1: retried), never "unknown". */
static void test_delivery_checks_when_unreachable(void **state)
{
	struct config *c = load("ldap { uri = \"ldap://127.0.0.1:1\" base = \"dc=x\" "
				"timeout = \"2s\" }");
	struct ldapdir *d;
	struct passwd_db *users;
	(void)state;

	assert_non_null(c);
	d = ldapdir_new(&c->ldap);
	users = passwd_db_open(NULL);
	passwd_db_set_ldap(users, d);
	assert_true(recipient_mailbox_possible(c, users, "alice@example.test"));
	assert_int_equal(recipient_mailbox_lookup(c, users, "alice@example.test"), -1);
	assert_false(recipient_mailbox_known(c, users, "alice@example.test"));
	/* server.postmaster is known without asking */
	assert_int_equal(recipient_mailbox_lookup(c, users, "postmaster@example.test"), 1);
	passwd_db_free(users);
	ldapdir_free(d);
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_escapes_value),
		cmocka_unit_test(test_filter_too_long_refused),
		cmocka_unit_test(test_filter_template_checks),
		cmocka_unit_test(test_section_defaults),
		cmocka_unit_test(test_section_refused),
		cmocka_unit_test(test_bind_password_read),
		cmocka_unit_test(test_unreachable_is_temporary_and_not_cached),
		cmocka_unit_test(test_delivery_checks_when_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
