/*
 * test_log.c - util/log.c: a log call never blocks the caller, even when
 * stderr is a pipe nobody reads; lines that do not fit are counted and
 * reported ("log: N lines dropped") once the reader drains the pipe; the
 * lines that got through keep their order; log_fatal's line reaches stderr
 * before the process exits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define NLINES 40000 /* about 4 MB: far more than the ring and the pipe hold */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read what the pipe holds for up to `secs`; stops early once a whole
 * line containing `until` was read. */
static char *read_pipe(int fd, double secs, const char *until, size_t *len)
{
	size_t cap = 1 << 20, n = 0, scanned = 0, ulen = until != NULL ? strlen(until) : 0;
	char *s = malloc(cap + 1);
	double end = now() + secs;
	ssize_t at = -1; /* offset of `until` once seen */

	assert_non_null(s);
	while (now() < end) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if (n == cap) {
			cap *= 2;
			s = realloc(s, cap + 1);
			assert_non_null(s);
		}
		r = read(fd, s + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		s[n] = '\0';
		if (until != NULL && at < 0) {
			char *f = strstr(s + scanned, until);
			if (f != NULL)
				at = f - s;
			else if (n > ulen)
				scanned = n - ulen;
		}
		if (at >= 0 && strchr(s + at, '\n') != NULL)
			break;
	}
	s[n] = '\0';
	*len = n;
	return s;
}

/* log_fatal in a child whose stderr is a pipe: everything logged before
 * and the fatal line arrive, in order, and the exit status is 1. */
static void test_fatal_reaches_stderr(void **state)
{
	int p[2], status;
	pid_t pid;
	char *out, *fatal;
	size_t len;

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int i;
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		log_init("test_log", 0);
		for (i = 0; i < 100; i++)
			log_info("before seq=%d", i);
		log_fatal("bye seq=%d", i);
	}
	close(p[1]);
	out = read_pipe(p[0], 20, "fatal: bye", &len);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_non_null(strstr(out, "before seq=0\n"));
	assert_non_null(strstr(out, "before seq=99\n"));
	fatal = strstr(out, "fatal: bye seq=100\n");
	assert_non_null(fatal);
	assert_true(fatal > strstr(out, "before seq=99\n"));
	free(out);
	close(p[0]);
}

static volatile int logged; /* lines the logging thread got through */

static void *logger(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < NLINES; i++) {
		log_info("line seq=%06d padding=%s", i,
			 "....................................................................");
		logged = i + 1;
	}
	return NULL;
}

/* stderr is a pipe nobody reads: NLINES log calls return at once (the old
 * log.c blocked in write(2) after 64 KiB); once the pipe is read, the lines
 * that were kept arrive in order, followed by "log: N lines dropped" with N
 * the number that were not. */
static void test_blocked_stderr_does_not_block(void **state)
{
	int p[2], saved = dup(STDERR_FILENO), last = -1, got = 0;
	pthread_t t;
	double start;
	char *out, *line, *note;
	size_t len;
	unsigned long dropped = 0;

	(void)state;
	assert_true(saved >= 0);
	assert_int_equal(pipe(p), 0);
	dup2(p[1], STDERR_FILENO);
	log_init("test_log", 0);
	start = now();
	assert_int_equal(pthread_create(&t, NULL, logger, NULL), 0);
	while (logged < NLINES && now() - start < 20)
		usleep(10000);
	if (logged < NLINES) {
		dup2(saved, STDERR_FILENO);
		fail_msg("log calls blocked: %d of %d lines logged in 20 s", logged, NLINES);
	}
	pthread_join(t, NULL);
	print_message("%d log calls into a blocked pipe took %.3f s\n", NLINES, now() - start);
	start = now();
	out = read_pipe(p[0], 30, "lines dropped", &len);
	print_message("read %zu octets in %.3f s\n", len, now() - start);
	dup2(saved, STDERR_FILENO);
	close(saved);
	note = strstr(out, "warning: log: ");
	if (note == NULL)
		fail_msg("no drop notice in %zu octets read", len);
	assert_int_equal(sscanf(note, "warning: log: %lu lines dropped", &dropped), 1);
	for (line = out; line < note; line = strchr(line, '\n') + 1) {
		char *seqp = memmem(line, (size_t)(strchr(line, '\n') - line), "line seq=", 9);
		int seq;
		if (seqp == NULL)
			continue;
		seq = atoi(seqp + 9);
		if (seq <= last)
			fail_msg("line seq=%d after seq=%d: order lost", seq, last);
		last = seq;
		got++;
	}
	assert_int_equal(strstr(out, "line seq=000000") != NULL, 1);
	assert_true(dropped > 0);
	assert_int_equal((unsigned long)got + dropped, NLINES);
	free(out);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fatal_reaches_stderr),
		cmocka_unit_test(test_blocked_stderr_does_not_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
