/*
 * test_logdir.c - log/logdir.c, util/bgwriter.c and the formats of
 * log/tracking.c, log/protolog.c, log/trackfilter.c:
 *  - rotation by max-file-size never splits a record and keeps each file
 *    under the limit; a record longer than a file gets a file of its own;
 *  - pruning by max-dir-size removes the oldest files first, by max-age
 *    files last written longer ago (a clock step back removes nothing),
 *    never the file being written nor a file of another prefix;
 *  - a directory that cannot be created: records counted as lost;
 *  - a full ring drops records and counts them, and never blocks;
 *  - tracking lines are JSON with the fields set, protocol lines escape
 *    control octets and are cut at PROTOLOG_TEXT_MAX;
 *  - the track filter: fields, case, the Message-ID join, time bounds,
 *    torn lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log/logdir.h"
#include "log/protolog.h"
#include "log/trackfilter.h"
#include "log/tracking.h"
#include "util/bgwriter.h"

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/test_logdir.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* names (sorted) and sizes of the regular files in dir */
static size_t list(const char *dir, char names[][128], off_t *sizes, size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		char p[1200];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(names[n], 128, "%.100s", de->d_name);
		sizes[n++] = st.st_size;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) /* insertion sort, keeping sizes with names */
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char t[128];
			off_t s = sizes[j];
			memcpy(t, names[j], 128);
			memcpy(names[j], names[j - 1], 128);
			memcpy(names[j - 1], t, 128);
			sizes[j] = sizes[j - 1];
			sizes[j - 1] = s;
		}
	return n;
}

static void touch(const char *dir, const char *name, size_t size, time_t mtime)
{
	char p[1200];
	FILE *f;
	struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		fputc(i % 64 == 63 ? '\n' : 'x', f);
	fclose(f);
	assert_int_equal(utimes(p, tv), 0);
}

static bool exists(const char *dir, const char *name)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* ---- rotation ------------------------------------------------------------------ */

static void test_rotation_by_file_size(void **state)
{
	char *dir = make_tmpdir(), sub[600], names[64][128], rec[100];
	off_t sizes[64];
	struct logdir_limits lim = {1000, 1u << 30, 86400};
	struct logdir *d;
	size_t n, total = 0;
	(void)state;

	snprintf(sub, sizeof(sub), "%s/a/b", dir); /* created on the first write */
	d = logdir_open(sub, "tracking", ".jsonl", &lim, 1 << 20);
	assert_non_null(d);
	for (int i = 0; i < 100; i++) {
		int k = snprintf(rec, sizeof(rec), "{\"n\":%03d,\"pad\":\"%.*s\"}\n", i, 20 + i % 30,
				 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_true(logdir_put(d, rec, (size_t)k));
		total += (size_t)k;
	}
	/* a record longer than a whole file: alone in a file of its own */
	{
		char big[1500];
		memset(big, 'y', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\n';
		assert_true(logdir_put(d, big, sizeof(big)));
		total += sizeof(big);
	}
	logdir_close(d);
	n = list(sub, names, sizes, 64);
	assert_true(n >= 5);
	for (size_t i = 0; i < n; i++) {
		char p[1200], *line = NULL;
		size_t cap = 0;
		ssize_t r;
		FILE *f;
		assert_true(strncmp(names[i], "tracking-", 9) == 0);
		assert_true(sizes[i] <= 1000 || sizes[i] == 1500);
		total -= (size_t)sizes[i];
		snprintf(p, sizeof(p), "%s/%s", sub, names[i]);
		f = fopen(p, "r");
		while ((r = getline(&line, &cap, f)) > 0) /* whole records only */
			assert_true(line[r - 1] == '\n' && (line[0] == '{' || line[0] == 'y'));
		free(line);
		fclose(f);
	}
	assert_int_equal(total, 0); /* nothing lost, nothing doubled */
	rm_rf(dir);
	free(dir);
}

static void test_prune_by_dir_size_oldest_first(void **state)
{
	char *dir = make_tmpdir();
	struct logdir_limits lim = {1000, 2500, 86400};
	time_t now = time(NULL);
	(void)state;

	touch(dir, "tracking-20260101-000000-0000.jsonl", 1000, now);
	touch(dir, "tracking-20260101-000001-0000.jsonl", 1000, now);
	touch(dir, "tracking-20260102-000000-0000.jsonl", 1000, now);
	touch(dir, "tracking-20260103-000000-0000.jsonl", 1000, now);
	touch(dir, "other-20200101-000000-0000.jsonl", 5000, now); /* not ours */
	assert_int_equal(logdir_prune(dir, "tracking", ".jsonl", &lim, now, NULL), 2);
	assert_false(exists(dir, "tracking-20260101-000000-0000.jsonl"));
	assert_false(exists(dir, "tracking-20260101-000001-0000.jsonl"));
	assert_true(exists(dir, "tracking-20260102-000000-0000.jsonl"));
	assert_true(exists(dir, "tracking-20260103-000000-0000.jsonl"));
	assert_true(exists(dir, "other-20200101-000000-0000.jsonl"));
	/* the file being written is kept even when it alone is too much */
	lim.max_dir_size = 10;
	assert_int_equal(
		logdir_prune(dir, "tracking", ".jsonl", &lim, now, "tracking-20260103-000000-0000.jsonl"),
		1);
	assert_true(exists(dir, "tracking-20260103-000000-0000.jsonl"));
	rm_rf(dir);
	free(dir);
}

static void test_prune_by_age(void **state)
{
	char *dir = make_tmpdir();
	struct logdir_limits lim = {1000, 1u << 30, 3600};
	time_t now = time(NULL);
	(void)state;

	touch(dir, "SmtpSend-20260101-000000-0000.log", 10, now - 7200);
	touch(dir, "SmtpSend-20260101-000001-0000.log", 10, now - 3599);
	touch(dir, "SmtpSend-20260101-000002-0000.log", 10, now + 86400 * 365); /* ahead */
	assert_int_equal(logdir_prune(dir, "SmtpSend", ".log", &lim, now, NULL), 1);
	assert_false(exists(dir, "SmtpSend-20260101-000000-0000.log"));
	assert_true(exists(dir, "SmtpSend-20260101-000001-0000.log"));
	assert_true(exists(dir, "SmtpSend-20260101-000002-0000.log"));
	/* the clock stepped back a year: nothing is "older" than it, nothing goes */
	assert_int_equal(logdir_prune(dir, "SmtpSend", ".log", &lim, now - 86400 * 365, NULL), 0);
	/* a year on, everything is old */
	assert_int_equal(logdir_prune(dir, "SmtpSend", ".log", &lim, now + 86400 * 800, NULL), 2);
	rm_rf(dir);
	free(dir);
}

static void test_write_errors_counted(void **state)
{
	char *dir = make_tmpdir(), file[600], sub[700];
	struct logdir_limits lim = {1000, 1u << 30, 86400};
	struct logdir *d;
	FILE *f;
	(void)state;

	snprintf(file, sizeof(file), "%s/not-a-dir", dir);
	f = fopen(file, "w");
	fclose(f);
	snprintf(sub, sizeof(sub), "%s/tracking", file); /* below a regular file: ENOTDIR */
	d = logdir_open(sub, "tracking", ".jsonl", &lim, 1 << 16);
	assert_non_null(d);
	assert_true(logdir_put(d, "{\"a\":1}\n{\"b\":2}\n", 16));
	assert_true(logdir_put(d, "{\"c\":3}\n", 8));
	logdir_flush(d, 5000);
	assert_int_equal(logdir_write_errors(d), 3);
	assert_int_equal(logdir_dropped(d), 0);
	logdir_close(d);
	rm_rf(dir);
	free(dir);
}

/* ---- the ring ------------------------------------------------------------------ */

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static size_t sunk;

static void slow_sink(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	pthread_mutex_lock(&gate); /* held by the test: the "disk" hangs */
	sunk += n;
	pthread_mutex_unlock(&gate);
}

static void test_full_ring_drops_and_counts(void **state)
{
	struct bgwriter *w;
	char rec[64];
	unsigned ok = 0, dropped = 0;
	struct timespec t0, t1;
	(void)state;

	memset(rec, 'r', sizeof(rec));
	pthread_mutex_lock(&gate);
	w = bgwriter_start(4096, 2, slow_sink, NULL, NULL, NULL);
	assert_non_null(w);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 1000; i++)
		bgwriter_put(w, rec, sizeof(rec)) ? ok++ : dropped++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2); /* never waited for the sink */
	assert_true(ok <= 4096 / 64 * 2);	/* the ring, and at most one batch in the sink */
	assert_true(dropped >= 1000 - 4096 / 64 * 2);
	assert_int_equal(bgwriter_dropped(w), dropped);
	assert_false(bgwriter_put(w, rec, 4096 / 4 + 1)); /* too large for this ring, ever */
	pthread_mutex_unlock(&gate);
	bgwriter_flush(w, 5000);
	assert_int_equal(sunk, (size_t)ok * sizeof(rec));
	bgwriter_stop(w);
}

/* ---- formats ------------------------------------------------------------------- */

static void test_tracking_format(void **state)
{
	const char *rcpts[] = {"a@x.test", "b@x.test"};
	struct track_event ev = {.event = "RECEIVE",
				 .qid = "Q1",
				 .sender = "",
				 .recipients = rcpts,
				 .nrecipients = 2,
				 .remote_ip = "192.0.2.1",
				 .has_size = true,
				 .size = 1234,
				 .reply = "250 caf\xc3\xa9 \"quoted\"\r\n",
				 .message_id = "<\xff\xfe@bad>"};
	char out[4096];
	size_t n = tracking_format(&ev, "node1", 1764806400123LL, out, sizeof(out));
	json_t *o;
	(void)state;

	assert_true(n > 0 && out[n - 1] == '\n' && memchr(out, '\n', n - 1) == NULL);
	o = json_loadb(out, n, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "time")), "2025-12-04T00:00:00.123Z");
	assert_string_equal(json_string_value(json_object_get(o, "node")), "node1");
	assert_string_equal(json_string_value(json_object_get(o, "sender")), "");
	assert_int_equal(json_array_size(json_object_get(o, "recipients")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "size")), 1234);
	assert_string_equal(json_string_value(json_object_get(o, "tls")), "no");
	assert_string_equal(json_string_value(json_object_get(o, "reply")),
			    "250 caf\xc3\xa9 \"quoted\"\r\n");
	assert_string_equal(json_string_value(json_object_get(o, "message_id")), "<??@bad>");
	assert_null(json_object_get(o, "recipient"));
	json_decref(o);
	assert_int_equal(tracking_format(&ev, "node1", 0, out, 40), 0); /* does not fit */
}

/* A RECEIVE with 200 recipients of 250 octets (50 KB) is written whole. */
static void test_tracking_event_many_recipients(void **state)
{
	char *dir = make_tmpdir(), sub[700], names[4][128], addrs[200][251], *line = NULL;
	const char *rcpts[200];
	struct logdir_limits lim = {10u << 20, 1u << 30, 86400};
	off_t sizes[4];
	size_t cap = 0;
	FILE *f;
	json_t *o;
	(void)state;

	for (int i = 0; i < 200; i++) {
		memset(addrs[i], 'a', 250);
		snprintf(addrs[i] + 230, 21, "%03d@example.test", i);
		rcpts[i] = addrs[i];
	}
	assert_true(tracking_open(dir, "n", &lim));
	tracking_event(&(struct track_event){.event = "RECEIVE", .qid = "Q", .sender = "s@x.test",
					     .recipients = rcpts, .nrecipients = 200});
	tracking_flush(5000);
	tracking_close();
	snprintf(sub, sizeof(sub), "%s/tracking", dir);
	assert_int_equal(list(sub, names, sizes, 4), 1);
	assert_true(sizes[0] > 45000);
	snprintf(sub, sizeof(sub), "%s/tracking/%.100s", dir, names[0]);
	f = fopen(sub, "r");
	assert_non_null(f);
	assert_true(getline(&line, &cap, f) > 45000);
	o = json_loads(line, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(o, "recipients")), 200);
	json_decref(o);
	free(line);
	fclose(f);
	rm_rf(dir);
	free(dir);
}

static void test_protolog_format(void **state)
{
	char out[PROTOLOG_TEXT_MAX * 4 + 128], text[PROTOLOG_TEXT_MAX + 50];
	size_t n;
	(void)state;

	n = protolog_format("T", "S1", '<', "EHLO a\tb\\\x01\xe9", 11, out, sizeof(out));
	assert_int_equal(n, strlen("T S1 < EHLO a\\x09b\\x5c\\x01\\xe9\n"));
	assert_memory_equal(out, "T S1 < EHLO a\\x09b\\x5c\\x01\\xe9\n", n);
	memset(text, 'z', sizeof(text));
	n = protolog_format("T", "S1", '>', text, sizeof(text), out, sizeof(out));
	assert_int_equal(n, strlen("T S1 > ") + PROTOLOG_TEXT_MAX + 3 + 1);
	assert_memory_equal(out + n - 4, "...\n", 4);
}

static bool match(struct track_filter *f, const char *line)
{
	return track_filter_line(f, line, strlen(line), NULL);
}

static void test_track_filter(void **state)
{
	struct track_filter f;
	const char *rx = "{\"time\":\"2026-12-04T10:00:00.000Z\",\"event\":\"RECEIVE\",\"qid\":\"Q1\","
			 "\"message_id\":\"<m1@x>\",\"sender\":\"Bob@X.test\","
			 "\"recipients\":[\"a@x.test\",\"c@x.test\"]}";
	const char *dl = "{\"time\":\"2026-12-04T10:00:01.000Z\",\"event\":\"DELIVER\",\"qid\":\"Q1\","
			 "\"sender\":\"Bob@X.test\",\"recipient\":\"a@x.test\"}";
	const char *dsn = "{\"time\":\"2026-12-04T10:00:02.000Z\",\"event\":\"DSN\",\"qid\":\"Q1\","
			  "\"related_qid\":\"Q2\"}";
	const char *dsn_sub = "{\"time\":\"2026-12-04T10:00:02.000Z\",\"event\":\"SUBMIT\",\"qid\":\"Q2\"}";
	const char *other = "{\"time\":\"2026-12-04T11:00:00.000Z\",\"event\":\"DELIVER\",\"qid\":\"Q3\","
			    "\"sender\":\"eve@y.test\",\"recipient\":\"a@x.test\"}";
	char t[32];
	(void)state;

	track_filter_init(&f);
	f.sender = "bob@x.TEST";
	assert_true(match(&f, rx) && match(&f, dl) && !match(&f, other));
	f.sender = "ob@x.test"; /* whole addresses, not substrings */
	assert_false(match(&f, rx));
	f.sender = NULL;
	f.recipient = "C@x.test";
	assert_true(match(&f, rx) && !match(&f, dl));
	f.recipient = NULL;
	f.event = "deliver";
	assert_true(!match(&f, rx) && match(&f, dl) && match(&f, other));
	f.event = NULL;
	assert_true(track_filter_time("2026-12-04T10:30:00Z", 0, f.since));
	assert_true(!match(&f, dl) && match(&f, other));
	assert_true(track_filter_time("2026-12-04 10:59", 0, f.until));
	assert_false(match(&f, other));
	f.since[0] = f.until[0] = '\0';
	assert_true(track_filter_time("2h", 7200 + 86400, t));
	assert_string_equal(t, "1970-01-02T00:00:00.000Z");
	assert_false(track_filter_time("2 hours", 0, t));
	assert_false(track_filter_time("2026-13-45", 0, t));
	/* torn and hostile lines */
	assert_false(match(&f, "{\"time\":\"2026"));
	assert_false(match(&f, "[1,2,3]"));
	assert_false(match(&f, ""));
	assert_false(match(&f, "{\"a\":1,\"a\":2}"));
	track_filter_free(&f);

	/* the Message-ID join: the RECEIVE names it, the rest follow by queue id,
	 * and the DSN's own message by related_qid */
	track_filter_init(&f);
	f.message_id = "<m1@x>";
	assert_false(match(&f, dl)); /* not seen yet */
	assert_true(match(&f, rx));
	assert_true(match(&f, dl) && match(&f, dsn) && match(&f, dsn_sub) && !match(&f, other));
	track_filter_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation_by_file_size),
		cmocka_unit_test(test_prune_by_dir_size_oldest_first),
		cmocka_unit_test(test_prune_by_age),
		cmocka_unit_test(test_write_errors_counted),
		cmocka_unit_test(test_full_ring_drops_and_counts),
		cmocka_unit_test(test_tracking_format),
		cmocka_unit_test(test_tracking_event_many_recipients),
		cmocka_unit_test(test_protolog_format),
		cmocka_unit_test(test_track_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
