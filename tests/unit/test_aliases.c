/* test_aliases.c - dir/aliases.c: the aliases file parser (comments,
 * continuation lines, bad lines refused with the old table kept), the
 * expansion (groups, nesting, dedupe, loops, depth and size bounds,
 * case-insensitive keys), reload on change, and the personal-alias rule
 * of sender binding (policy/sender.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dir/aliases.h"
#include "policy/sender.h"

static char path[64];

static int setup(void **state)
{
	int fd;
	(void)state;
	strcpy(path, "/tmp/test_aliases.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char out[ALIAS_EXPAND_MAX][ALIAS_ADDR_MAX];
static char why[200];

static enum alias_result expand(struct alias_db *db, const char *a, size_t *n)
{
	return alias_db_expand(db, a, out, ALIAS_EXPAND_MAX, n, why, sizeof(why));
}

static void test_group_nested_dedupe_and_case(void **state)
{
	struct alias_db *db;
	size_t n;
	(void)state;

	write_file("# staff\n"
		   "sales@example.test: alice@example.test, Bob@example.test\n"
		   "\n"
		   "team@example.test: sales@example.test,\n"
		   "    bob@example.test, carol@partner.test   \n"
		   "info@example.test: alice@example.test\n");
	db = alias_db_open(path);
	assert_int_equal(alias_db_count(db), 3);
	assert_int_equal(expand(db, "sales@example.test", &n), ALIAS_EXPANDED);
	assert_int_equal(n, 2);
	assert_string_equal(out[0], "alice@example.test");
	assert_string_equal(out[1], "Bob@example.test");
	/* nested, and bob only once although named twice (any case) */
	assert_int_equal(expand(db, "TEAM@Example.Test", &n), ALIAS_EXPANDED);
	assert_int_equal(n, 3);
	assert_string_equal(out[2], "carol@partner.test");
	assert_int_equal(expand(db, "alice@example.test", &n), ALIAS_NONE);
	assert_int_equal(n, 0);
	alias_db_free(db);
}

static void test_loop_and_depth(void **state)
{
	struct alias_db *db;
	size_t n;
	char text[2048] = "";
	(void)state;

	write_file("a@x.test: b@x.test\nb@x.test: c@x.test, a@x.test\nc@x.test: d@x.test\n"
		   "self@x.test: self@x.test\n");
	db = alias_db_open(path);
	assert_int_equal(expand(db, "a@x.test", &n), ALIAS_LOOP);
	assert_non_null(strstr(why, "loop"));
	assert_int_equal(expand(db, "self@x.test", &n), ALIAS_LOOP);
	alias_db_free(db);

	/* a chain of ALIAS_DEPTH_MAX + 1 aliases: too deep, not a loop */
	for (int i = 0; i <= ALIAS_DEPTH_MAX; i++) {
		char line[64];
		snprintf(line, sizeof(line), "l%d@x.test: l%d@x.test\n", i, i + 1);
		strcat(text, line);
	}
	write_file(text);
	db = alias_db_open(path);
	assert_int_equal(expand(db, "l0@x.test", &n), ALIAS_TOO_DEEP);
	assert_int_equal(expand(db, "l2@x.test", &n), ALIAS_EXPANDED);
	assert_int_equal(n, 1);
	alias_db_free(db);
}

static void test_too_many(void **state)
{
	struct alias_db *db;
	size_t n;
	(void)state;

	write_file("g@x.test: a@x.test, b@x.test, c@x.test\n");
	db = alias_db_open(path);
	assert_int_equal(alias_db_expand(db, "g@x.test", out, 2, &n, why, sizeof(why)),
			 ALIAS_TOO_MANY);
	alias_db_free(db);
}

static void test_bad_line_keeps_old_table(void **state)
{
	struct alias_db *db;
	size_t n;
	struct timespec pause = {1, 200000000};
	(void)state;

	write_file("info@x.test: alice@x.test\n");
	db = alias_db_open(path);
	assert_int_equal(alias_db_count(db), 1);
	nanosleep(&pause, NULL); /* reloads are checked at most once a second */
	write_file("info@x.test: alice@x.test\nnew@x.test: bob@x.test\nbroken line\n");
	assert_int_equal(alias_db_count(db), 1); /* refused as a whole */
	assert_int_equal(expand(db, "new@x.test", &n), ALIAS_NONE);
	nanosleep(&pause, NULL);
	write_file("info@x.test: alice@x.test\nnew@x.test: bob@x.test\n");
	assert_int_equal(alias_db_count(db), 2); /* fixed: reloaded */
	assert_int_equal(expand(db, "new@x.test", &n), ALIAS_EXPANDED);
	alias_db_free(db);
}

static void test_parser_refusals(void **state)
{
	const char *bad[] = {
		"no-colon@x.test alice@x.test\n",
		"noat: alice@x.test\n",
		"a@x.test:\n",
		"a@x.test: alice@x.test, , bob@x.test\n",
		"a@x.test: alice\n",
		"  b@x.test\n",
		"a@x.test: b@x.test\na@x.test: c@x.test\n",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct alias_db *db;
		write_file(bad[i]);
		db = alias_db_open(path);
		assert_int_equal(alias_db_count(db), 0);
		alias_db_free(db);
	}
	assert_null(alias_db_open(""));
	assert_int_equal(alias_db_count(NULL), 0);
}

static void test_sender_personal_alias_only(void **state)
{
	struct alias_db *db;
	(void)state;

	write_file("info@x.test: alice@x.test\n"
		   "sales@x.test: alice@x.test, bob@x.test\n"
		   "help@x.test: info@x.test\n");
	db = alias_db_open(path);
	assert_true(sender_owned_by(db, "alice@x.test", "ALICE@x.test"));
	assert_true(sender_owned_by(db, "alice@x.test", "info@x.test"));
	/* nested, still personal */
	assert_true(sender_owned_by(db, "Alice@X.test", "help@x.test"));
	assert_false(sender_owned_by(db, "bob@x.test", "info@x.test"));
	assert_false(sender_owned_by(db, "alice@x.test", "sales@x.test")); /* a group */
	assert_false(sender_owned_by(NULL, "alice@x.test", "info@x.test"));
	alias_db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_nested_dedupe_and_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_and_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_line_keeps_old_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parser_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_personal_alias_only, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
