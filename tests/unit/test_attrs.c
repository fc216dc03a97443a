/* test_attrs.c - dir/attrs.c: the per-address attributes in text form
 * (passwd-file extra fields, aliases-file options) and policy/accept_from.c's
 * decision over them (issue 7 accept-from). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dir/attrs.h"
#include "policy/accept_from.h"

static bool parse(const char *text, struct dir_attrs *a)
{
	char why[128] = "";

	memset(a, 0, sizeof(*a));
	return dir_attrs_parse(text, strlen(text), false, a, why, sizeof(why));
}

static void test_parse(void **state)
{
	struct dir_attrs a;
	(void)state;

	assert_true(parse("", &a));
	assert_false(a.accept_from_authenticated);
	assert_true(parse("accept_from=authenticated", &a));
	assert_true(a.accept_from_authenticated);
	assert_true(parse("userdb_quota_rule=*:storage=1G  accept-from=authenticated nopw", &a));
	assert_true(a.accept_from_authenticated);
	assert_true(parse("accept_from=authenticated accept_from=anyone", &a));
	assert_false(a.accept_from_authenticated);
	/* other keys are not ours; a look-alike key is not the key */
	assert_true(parse("accept_fromx=authenticated accept=authenticated", &a));
	assert_false(a.accept_from_authenticated);
	/* a value not understood: refused, and the strict choice */
	assert_false(parse("accept_from=Authenticated", &a));
	assert_true(a.accept_from_authenticated);
	assert_false(parse("accept_from", &a));
	assert_true(a.accept_from_authenticated);
	assert_string_equal(dir_attrs_text(&a), "accept_from=authenticated");
}

static void test_only_ours(void **state)
{
	struct dir_attrs a = {0};
	char why[128] = "";
	const char *t = "accept_from=authenticated junk";
	(void)state;

	/* the aliases file: every option must be ours */
	assert_false(dir_attrs_parse(t, strlen(t), true, &a, why, sizeof(why)));
	assert_string_equal(why, "unknown option \"junk\"");
	t = "accept-from=authenticated";
	assert_true(dir_attrs_parse(t, strlen(t), true, &a, why, sizeof(why)));
	assert_true(a.accept_from_authenticated);
}

static void test_decision(void **state)
{
	struct dir_attrs open = {0}, closed = {.accept_from_authenticated = true};
	(void)state;

	assert_true(accept_from_allows(&open, false));
	assert_true(accept_from_allows(&open, true));
	assert_false(accept_from_allows(&closed, false));
	assert_true(accept_from_allows(&closed, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_decision),
		cmocka_unit_test(test_only_ours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
