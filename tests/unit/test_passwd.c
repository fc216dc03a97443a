/* test_passwd.c - dir/passwd.c: the passwd-file directory. Tool side (add,
 * set password, delete, list; atomic rewrite keeping comments, mode and
 * foreign lines) and daemon side (lookups, verification, reload when the
 * file changes), each in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dir/passwd.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/test_passwd.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/users", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *de;
	char p[512];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Whole file into a static buffer. */
static const char *read_file(const char *path)
{
	static char text[16384];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

struct names {
	char list[8][128];
	size_t n;
};

static void collect(const char *user, void *arg)
{
	struct names *nm = arg;

	assert_true(nm->n < 8);
	snprintf(nm->list[nm->n++], sizeof(nm->list[0]), "%s", user);
}

static size_t list_users(const char *path, struct names *nm)
{
	char err[256];

	memset(nm, 0, sizeof(*nm));
	assert_int_equal(passwd_file_list(path, collect, nm, err, sizeof(err)), 0);
	return nm->n;
}

static void add_ok(const char *path, const char *user, const char *pw)
{
	char err[256] = "";

	if (passwd_file_add(path, user, pw, err, sizeof(err)) != 0)
		fail_msg("add %s: %s", user, err);
}

static void test_add_list_del_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct names nm;
	char err[256];

	assert_int_equal(list_users(fx->path, &nm), 0); /* missing file: no users */
	add_ok(fx->path, "alice@example.test", "secret one");
	add_ok(fx->path, "bob@example.test", "secret two");
	add_ok(fx->path, "carol@example.test", "secret three");
	assert_int_equal(list_users(fx->path, &nm), 3);
	assert_string_equal(nm.list[0], "alice@example.test");
	assert_string_equal(nm.list[1], "bob@example.test");
	assert_string_equal(nm.list[2], "carol@example.test");

	assert_int_equal(passwd_file_del(fx->path, "BOB@example.test", err, sizeof(err)), 0);
	assert_int_equal(list_users(fx->path, &nm), 2);
	assert_string_equal(nm.list[0], "alice@example.test");
	assert_string_equal(nm.list[1], "carol@example.test");

	assert_int_equal(passwd_file_del(fx->path, "bob@example.test", err, sizeof(err)), -1);
	assert_string_equal(err, "user bob@example.test does not exist");
	assert_int_equal(passwd_file_add(fx->path, "Alice@Example.TEST", "x", err, sizeof(err)),
			 -1);
	assert_string_equal(err, "user Alice@Example.TEST already exists");
	assert_int_equal(
		passwd_file_set_password(fx->path, "nobody@example.test", "x", err, sizeof(err)),
		-1);
	assert_string_equal(err, "user nobody@example.test does not exist");
}

static void test_file_format_and_mode(void **state)
{
	struct fixture *fx = *state;
	const char *text;
	struct stat st;
	DIR *d;
	struct dirent *de;
	int others = 0;

	add_ok(fx->path, "alice@example.test", "pw");
	text = read_file(fx->path);
	assert_true(strncmp(text, "alice@example.test:{CRYPT}$y$", 29) == 0);
	assert_non_null(strstr(text, "::::::\n"));
	assert_int_equal(strchr(text, '\n')[1], '\0'); /* exactly one line */
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	/* An existing file keeps its mode. */
	assert_int_equal(chmod(fx->path, 0600), 0);
	add_ok(fx->path, "bob@example.test", "pw");
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* No temporary file is left behind: only users and users.lock. */
	d = opendir(fx->dir);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "users") != 0 &&
		    strcmp(de->d_name, "users.lock") != 0)
			others++;
	closedir(d);
	assert_int_equal(others, 0);
}

static void test_verify(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;

	add_ok(fx->path, "alice@example.test", "correct horse");
	add_ok(fx->path, "bob@example.test", "battery staple");
	db = passwd_db_open(fx->path);
	assert_non_null(db);
	assert_int_equal(passwd_db_count(db), 2);
	assert_true(passwd_db_exists(db, "alice@example.test"));
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "correct horse"), 1);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "correct horsE"), 0);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "battery staple"), 0);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", ""), 0);
	assert_int_equal(passwd_db_verify(db, "bob@example.test", "battery staple"), 1);
	/* unknown users */
	assert_false(passwd_db_exists(db, "mallory@example.test"));
	assert_int_equal(passwd_db_verify(db, "mallory@example.test", "correct horse"), 0);
	assert_int_equal(passwd_db_verify(db, "", ""), 0);
	passwd_db_free(db);
}

static void test_case_insensitive(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;
	struct names nm;

	add_ok(fx->path, "Alice@Example.Test", "pw1");
	assert_int_equal(list_users(fx->path, &nm), 1);
	assert_string_equal(nm.list[0], "alice@example.test"); /* stored lower-case */
	db = passwd_db_open(fx->path);
	assert_true(passwd_db_exists(db, "ALICE@EXAMPLE.TEST"));
	assert_true(passwd_db_exists(db, "alice@example.test"));
	assert_int_equal(passwd_db_verify(db, "aLiCe@eXaMpLe.tEsT", "pw1"), 1);
	assert_int_equal(passwd_db_verify(db, "aLiCe@eXaMpLe.tEsT", "PW1"), 0);
	passwd_db_free(db);
}

static void test_set_password_keeps_other_fields(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;
	char err[256];
	const char *text;

	write_file(fx->path, "dave@example.test:{CRYPT}*:1000:1000::/home/dave::quota=1G\n");
	db = passwd_db_open(fx->path);
	assert_true(passwd_db_exists(db, "dave@example.test")); /* a mailbox without login */
	assert_int_equal(passwd_db_verify(db, "dave@example.test", "*"), 0);
	passwd_db_free(db);

	assert_int_equal(
		passwd_file_set_password(fx->path, "Dave@example.test", "new pw", err, sizeof(err)),
		0);
	text = read_file(fx->path);
	assert_true(strncmp(text, "dave@example.test:{CRYPT}$y$", 28) == 0);
	assert_non_null(strstr(text, ":1000:1000::/home/dave::quota=1G\n"));
	db = passwd_db_open(fx->path);
	assert_int_equal(passwd_db_verify(db, "dave@example.test", "new pw"), 1);
	passwd_db_free(db);
}

static void test_reload_after_change(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;
	char err[256];
	struct timespec ts[2];
	char hash[256], line[512];

	db = passwd_db_open(fx->path); /* missing file: empty, not an error */
	assert_non_null(db);
	assert_int_equal(passwd_db_count(db), 0);
	add_ok(fx->path, "alice@example.test", "pw");
	usleep(1100 * 1000);
	assert_int_equal(passwd_db_count(db), 1);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "pw"), 1);

	/* Changed through the tool: new inode. */
	assert_int_equal(passwd_file_set_password(fx->path, "alice@example.test", "pw2", err,
						  sizeof(err)),
			 0);
	usleep(1100 * 1000);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "pw"), 0);
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "pw2"), 1);

	/* Rewritten in place (same inode) with another user of the same
	 * length: only the mtime tells; set it explicitly. */
	assert_int_equal(passwd_hash("pw3", hash, sizeof(hash)), 0);
	snprintf(line, sizeof(line), "alicx@example.test:{CRYPT}%s::::::\n", hash);
	write_file(fx->path, line);
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, fx->path, ts, 0), 0);
	usleep(1100 * 1000);
	assert_false(passwd_db_exists(db, "alice@example.test"));
	assert_int_equal(passwd_db_verify(db, "alicx@example.test", "pw3"), 1);

	/* Removed: a failed reload, the users stay (a file being replaced
	 * by a non-atomic editor must not turn every RCPT into 550 5.1.1);
	 * once it is back it is read again. */
	assert_int_equal(unlink(fx->path), 0);
	usleep(1100 * 1000);
	assert_int_equal(passwd_db_count(db), 1);
	assert_true(passwd_db_exists(db, "alicx@example.test"));
	add_ok(fx->path, "bob@example.test", "pw");
	usleep(1100 * 1000);
	assert_false(passwd_db_exists(db, "alicx@example.test"));
	assert_true(passwd_db_exists(db, "bob@example.test"));
	passwd_db_free(db);
}

static void test_comments_kept(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	const char *text;
	struct names nm;

	write_file(fx->path, "# transit users\n\n#   disabled: old@example.test\n");
	add_ok(fx->path, "alice@example.test", "pw");
	add_ok(fx->path, "bob@example.test", "pw");
	assert_int_equal(passwd_file_del(fx->path, "alice@example.test", err, sizeof(err)), 0);
	text = read_file(fx->path);
	assert_true(strncmp(text, "# transit users\n\n#   disabled: old@example.test\nbob@", 52) ==
		    0);
	assert_null(strstr(text, "alice"));
	assert_int_equal(list_users(fx->path, &nm), 1);
	assert_string_equal(nm.list[0], "bob@example.test");
}

static void test_malformed_lines_skipped(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;
	struct names nm;
	char hash[256], text[2048];

	assert_int_equal(passwd_hash("pw", hash, sizeof(hash)), 0);
	snprintf(text, sizeof(text),
		 "no colon on this line\n"
		 ":{CRYPT}%s\n"
		 "sp ace@example.test:{CRYPT}%s\n"
		 "alice@example.test:{CRYPT}%s::::::\n"
		 "alice@example.test:{CRYPT}*::::::\n"
		 "plain@example.test:{PLAIN}pw::::::\n",
		 hash, hash, hash);
	write_file(fx->path, text);
	db = passwd_db_open(fx->path);
	assert_int_equal(passwd_db_count(db), 2); /* alice (first one wins) and plain */
	assert_int_equal(passwd_db_verify(db, "alice@example.test", "pw"), 1);
	assert_false(passwd_db_exists(db, "sp ace@example.test"));
	assert_false(passwd_db_exists(db, "no colon on this line"));
	assert_true(passwd_db_exists(db, "plain@example.test"));
	assert_int_equal(passwd_db_verify(db, "plain@example.test", "pw"), 0); /* {PLAIN} refused */
	passwd_db_free(db);

	assert_int_equal(list_users(fx->path, &nm), 3);
	/* A rewrite keeps the lines it does not understand. */
	add_ok(fx->path, "bob@example.test", "pw");
	assert_true(strncmp(read_file(fx->path), "no colon on this line\n:{CRYPT}", 30) == 0);
}

static void test_refused_names_and_passwords(void **state)
{
	static const char *const bad[] = {
		"alice",	       "alice@",	     "@example.test",
		"al:ice@example.test", "alice\n@example.test", "alice@example.test\n",
		"a b@example.test",    "a@b@example.test",   "#alice@example.test",
		"alice@exa mple.test", "alice..x@example.test", "alice@example..test",
		"",
	};
	struct fixture *fx = *state;
	char err[256], big[2048];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(passwd_file_add(fx->path, bad[i], "pw", err, sizeof(err)), -1);
		assert_non_null(strstr(err, "invalid user name"));
	}
	assert_int_equal(access(fx->path, F_OK), -1); /* nothing was written */

	assert_int_equal(passwd_file_add(fx->path, "alice@example.test", "", err, sizeof(err)),
			 -1);
	assert_string_equal(err, "empty password refused");
	assert_int_equal(
		passwd_file_add(fx->path, "alice@example.test", "a\nb", err, sizeof(err)), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(passwd_file_add(fx->path, "alice@example.test", big, err, sizeof(err)),
			 -1);
	/* UTF-8 addresses are fine (RFC 6531). */
	add_ok(fx->path, "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "pw");
}

static void test_bcrypt_accepted(void **state)
{
	struct fixture *fx = *state;
	struct passwd_db *db;
	struct crypt_data cd;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], line[512];
	const char *h;

	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
	memset(&cd, 0, sizeof(cd));
	h = crypt_rn("blowfish", salt, &cd, sizeof(cd));
	assert_non_null(h);
	snprintf(line, sizeof(line), "b@example.test:{BLF-CRYPT}%s\nbare@example.test:%s\n", h, h);
	write_file(fx->path, line);
	db = passwd_db_open(fx->path);
	assert_int_equal(passwd_db_verify(db, "b@example.test", "blowfish"), 1);
	assert_int_equal(passwd_db_verify(db, "bare@example.test", "blowfish"), 1);
	assert_int_equal(passwd_db_verify(db, "b@example.test", "blowfisH"), 0);
	passwd_db_free(db);
}

static void test_missing_directory(void **state)
{
	struct fixture *fx = *state;
	char path[256], err[256] = "";

	snprintf(path, sizeof(path), "%s/nodir/users", fx->dir);
	assert_int_equal(passwd_file_add(path, "alice@example.test", "pw", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_list_del_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_format_and_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_case_insensitive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_password_keeps_other_fields, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reload_after_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_comments_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_names_and_passwords, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bcrypt_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
