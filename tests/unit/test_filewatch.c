/* test_filewatch.c - util/filewatch.c: when the passwd-file and the
 * aliases file are read again (at most once per interval, when their
 * identity changed, and a missing file said apart). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/filewatch.h"

static char path[64];

static void write_text(const char *text)
{
	char tmp[80];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0); /* as transitctl rewrites it */
}

static void note_now(struct file_watch *w)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	file_watch_note(w, &st);
}

static void test_changes_seen_once_per_interval(void **state)
{
	struct file_watch w;
	(void)state;

	memset(&w, 0, sizeof(w));
	write_text("alice@example.test:x\n");
	assert_int_equal(file_watch_poll(&w, path, 0), FILE_WATCH_CHANGED); /* never read */
	note_now(&w);
	assert_int_equal(file_watch_poll(&w, path, 0), FILE_WATCH_SAME);
	/* within the interval nothing is looked at, even a change */
	write_text("alice@example.test:x\nbob@example.test:y\n");
	assert_int_equal(file_watch_poll(&w, path, 60000), FILE_WATCH_NOT_YET);
	assert_int_equal(file_watch_poll(&w, path, 0), FILE_WATCH_CHANGED);
	note_now(&w);
	/* replaced by a file of the same size: another inode */
	write_text("alice@example.test:x\ncarl@example.test:y\n");
	assert_int_equal(file_watch_poll(&w, path, 0), FILE_WATCH_CHANGED);
	note_now(&w);
	assert_int_equal(unlink(path), 0);
	errno = 0;
	assert_int_equal(file_watch_poll(&w, path, 0), FILE_WATCH_GONE);
	assert_int_equal(errno, ENOENT);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_filewatch.%ld", (long)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_seen_once_per_interval),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
