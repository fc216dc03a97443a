/* test_maildir.c - deliver/maildir.c: a batch from a fake queue file (content in the middle of
 * other bytes) into new/ with the exact expected bytes, redelivery finds the file, stale tmp
 * files, 64 KiB block edges, the syncfs path and chunking, error statuses, and the path
 * template with hostile local parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver/maildir.h"

#define ARRIVAL ((time_t)1700000000)
#define PREFIX "TRANSIT-QUEUE-HEADER\r\nenvelope bytes\r\n"
#define SUFFIX "\r\nTRAILER crc=12345678\r\n"

static char root[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup_root(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/transit-test-maildir-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	return chmod(root, 0755);
}

static int teardown_root(void **state)
{
	(void)state;
	return nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers -------------------------------------------------------------- */

struct qfile {
	char path[256];
	uint64_t off;
	uint64_t len;
};

/* A queue file: PREFIX, the content, SUFFIX. */
static void make_queue_file(struct qfile *q, const char *name, const char *content, size_t len)
{
	FILE *f;

	snprintf(q->path, sizeof(q->path), "%s/%s", root, name);
	f = fopen(q->path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(PREFIX, 1, strlen(PREFIX), f), strlen(PREFIX));
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fwrite(SUFFIX, 1, strlen(SUFFIX), f), strlen(SUFFIX));
	assert_int_equal(fclose(f), 0);
	chmod(q->path, 0644);
	q->off = strlen(PREFIX);
	q->len = len;
}

static void job_init(struct maildir_job *j, const struct qfile *q, const char *maildir,
		     const char *rcpt, unsigned idx)
{
	memset(j, 0, sizeof(*j));
	j->queue_path = q->path;
	j->content_off = q->off;
	j->content_len = q->len;
	j->return_path = "sender@example.org";
	j->rcpt = rcpt;
	j->maildir = maildir;
	j->qid = "0A1B2C3D4E5F";
	j->rcpt_index = idx;
	j->arrival = ARRIVAL;
	j->status = 99;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *data;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return data;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int count_sub(const char *maildir, const char *sub)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", maildir, sub);
	return count_entries(p);
}

/* What the delivered file must hold: the two fields, then CRLF -> LF. */
static char *expected(const char *rp, const char *rcpt, const char *content, size_t len,
		      size_t *outlen)
{
	size_t cap = len + strlen(rp) + strlen(rcpt) + 64, o, i;
	char *out = malloc(cap);

	assert_non_null(out);
	o = (size_t)snprintf(out, cap, "Return-Path: <%s>\nDelivered-To: %s\n", rp, rcpt);
	for (i = 0; i < len; i++) {
		if (content[i] == '\r' && i + 1 < len && content[i + 1] == '\n')
			continue;
		out[o++] = content[i];
	}
	*outlen = o;
	return out;
}

static void assert_delivered(const struct maildir_job *j, const char *content, size_t len)
{
	char *want, *got;
	size_t wantlen, gotlen;

	if (j->status != 0)
		fail_msg("status %d error %s", j->status, j->error);
	assert_string_equal(j->error, "");
	assert_non_null(strstr(j->path, "/new/"));
	want = expected(j->return_path, j->rcpt, content, len, &wantlen);
	got = read_file(j->path, &gotlen);
	assert_int_equal(gotlen, wantlen);
	assert_memory_equal(got, want, wantlen);
	free(want);
	free(got);
}

static const char message[] = "Received: from client.example.org\r\n"
			      "Subject: test\r\n"
			      "\r\n"
			      "line one\r\n"
			      "a bare\rCR stays\r\n"
			      "last line\r\n";

/* ---- tests ---------------------------------------------------------------- */

static void test_batch_exact_content(void **state)
{
	struct qfile q;
	struct maildir_job j[3];
	char md1[256], md2[256], host[128], name[1024];
	size_t len;
	char *got;
	struct stat st;

	(void)state;
	make_queue_file(&q, "q1", message, sizeof(message) - 1);
	snprintf(md1, sizeof(md1), "%s/mail/example.test/alice", root);
	snprintf(md2, sizeof(md2), "%s/mail/example.test/bob", root);
	job_init(&j[0], &q, md1, "alice@example.test", 0);
	job_init(&j[1], &q, md2, "bob@example.test", 1);
	job_init(&j[2], &q, md1, "alice+x@example.test", 2); /* same maildir */
	j[2].return_path = "";				      /* null reverse-path */
	maildir_deliver_batch(j, 3);

	assert_delivered(&j[0], message, sizeof(message) - 1);
	assert_delivered(&j[1], message, sizeof(message) - 1);
	assert_int_equal(j[2].status, 0);
	got = read_file(j[2].path, &len);
	assert_true(strncmp(got, "Return-Path: <>\nDelivered-To: alice+x@example.test\nReceived:",
			    60) == 0);
	free(got);

	/* name: <arrival>.<qid>_<rcpt_index>.<host> */
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	snprintf(name, sizeof(name), "%s/new/1700000000.0A1B2C3D4E5F_1.%s", md2, host);
	if (strchr(host, '/') == NULL && strchr(host, ':') == NULL)
		assert_string_equal(j[1].path, name);

	/* the maildir is complete, tmp/ is empty, the modes are private */
	assert_int_equal(count_sub(md1, "new"), 2);
	assert_int_equal(count_sub(md1, "tmp"), 0);
	assert_int_equal(count_sub(md1, "cur"), 0);
	assert_int_equal(count_sub(md2, "new"), 1);
	assert_int_equal(stat(md1, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(name, sizeof(name), "%s/mail", root);
	assert_int_equal(stat(name, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(j[0].path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_redelivery_is_one_file(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char md[256], first[512];

	(void)state;
	make_queue_file(&q, "q2", message, sizeof(message) - 1);
	snprintf(md, sizeof(md), "%s/again", root);
	job_init(&j, &q, md, "carol@example.test", 3);
	maildir_deliver_batch(&j, 1);
	assert_delivered(&j, message, sizeof(message) - 1);
	snprintf(first, sizeof(first), "%s", j.path);

	job_init(&j, &q, md, "carol@example.test", 3);
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 0);
	assert_string_equal(j.path, first);
	assert_int_equal(count_sub(md, "new"), 1);
	assert_int_equal(count_sub(md, "tmp"), 0);

	/* the same job twice in separate batches after a tmp file was left
	 * behind by a crash: the stale file is replaced, new/ still has one */
	job_init(&j, &q, md, "carol@example.test", 4);
	{
		char tmp[1024], host[128];
		FILE *f;
		gethostname(host, sizeof(host));
		snprintf(tmp, sizeof(tmp), "%s/tmp/1700000000.0A1B2C3D4E5F_4.%s", md, host);
		f = fopen(tmp, "w");
		assert_non_null(f);
		fputs("half a message from before the crash", f);
		fclose(f);
	}
	maildir_deliver_batch(&j, 1);
	assert_delivered(&j, message, sizeof(message) - 1);
	assert_int_equal(count_sub(md, "new"), 2);
	assert_int_equal(count_sub(md, "tmp"), 0);
}

static void test_block_edges(void **state)
{
	struct qfile q;
	struct maildir_job j;
	size_t len = 3 * 65536 + 100, i;
	char *content = malloc(len);
	char md[256];

	(void)state;
	assert_non_null(content);
	for (i = 0; i < len; i++)
		content[i] = (char)('a' + i % 26);
	/* CRLF split across the first block edge, CRLF right at the second,
	 * a lone CR at the end of the third block and CR as the last byte */
	content[65535] = '\r';
	content[65536] = '\n';
	content[2 * 65536 - 2] = '\r';
	content[2 * 65536 - 1] = '\n';
	content[3 * 65536 - 1] = '\r';
	content[len - 1] = '\r';
	make_queue_file(&q, "q3", content, len);
	snprintf(md, sizeof(md), "%s/big", root);
	job_init(&j, &q, md, "dave@example.test", 0);
	maildir_deliver_batch(&j, 1);
	assert_delivered(&j, content, len);
	free(content);
}

static void test_many_jobs_syncfs_and_chunks(void **state)
{
	enum { N = 150 };
	struct qfile q;
	struct maildir_job *j = calloc(N, sizeof(*j));
	char (*md)[256] = calloc(N, 256);
	char rcpt[N][64];
	int i;

	(void)state;
	assert_non_null(j);
	assert_non_null(md);
	make_queue_file(&q, "q4", message, sizeof(message) - 1);
	for (i = 0; i < N; i++) {
		snprintf(md[i], 256, "%s/many/u%d", root, i % 20); /* 20 maildirs */
		snprintf(rcpt[i], sizeof(rcpt[i]), "u%d@example.test", i);
		job_init(&j[i], &q, md[i], rcpt[i], (unsigned)i);
	}
	maildir_deliver_batch(j, N);
	for (i = 0; i < N; i++)
		assert_delivered(&j[i], message, sizeof(message) - 1);
	for (i = 0; i < 20; i++) {
		assert_int_equal(count_sub(md[i], "new"), N / 20 + (i < N % 20));
		assert_int_equal(count_sub(md[i], "tmp"), 0);
	}
	free(j);
	free(md);
}

static void test_header_values_cannot_inject(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char md[256];
	size_t len;
	char *got;

	(void)state;
	make_queue_file(&q, "q5", "X: y\r\n\r\nbody\r\n", 14);
	snprintf(md, sizeof(md), "%s/inject", root);
	job_init(&j, &q, md, "eve@example.test\r\nBcc: victim@example.org", 0);
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 0);
	got = read_file(j.path, &len);
	assert_string_equal(got, "Return-Path: <sender@example.org>\n"
				 "Delivered-To: eve@example.test??Bcc: victim@example.org\n"
				 "X: y\n\nbody\n");
	free(got);
}

static void test_temporary_errors(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char path[256];
	FILE *f;

	(void)state;
	make_queue_file(&q, "q6", message, sizeof(message) - 1);

	/* the maildir would be below a regular file */
	snprintf(path, sizeof(path), "%s/plainfile", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/plainfile/maildir", root);
	job_init(&j, &q, path, "frank@example.test", 0);
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 1);
	assert_true(strncmp(j.error, "4.3.0 ", 6) == 0);
	assert_non_null(strstr(j.error, "Not a directory"));
	assert_string_equal(j.path, "");

	/* the queue file is gone */
	snprintf(path, sizeof(path), "%s/qerr", root);
	job_init(&j, &q, path, "frank@example.test", 0);
	j.queue_path = "/nonexistent/queue/file";
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 1);
	assert_true(strncmp(j.error, "4.3.0 ", 6) == 0);
	assert_int_equal(count_sub(path, "new"), -1); /* nothing was created */

	/* the content range runs past the end of the queue file */
	job_init(&j, &q, path, "frank@example.test", 1);
	j.content_len = q.len + 1000;
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 1);
	assert_true(strncmp(j.error, "4.3.0 ", 6) == 0);
	assert_int_equal(count_sub(path, "new"), 0);
	assert_int_equal(count_sub(path, "tmp"), 0); /* the partial file is removed */
}

static void test_write_error_removes_tmp(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char md[256];
	struct rlimit old, small;
	size_t len = 20000;
	char *content = malloc(len);

	(void)state;
	assert_non_null(content);
	memset(content, 'x', len);
	make_queue_file(&q, "q7", content, len);
	snprintf(md, sizeof(md), "%s/fsize", root);
	job_init(&j, &q, md, "gina@example.test", 0);
	/* files may not grow past 4 KiB: the write fails with EFBIG */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_cur = 4096; /* soft limit only: raising a hard one needs CAP_SYS_RESOURCE */
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	maildir_deliver_batch(&j, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(j.status, 1);
	assert_true(strncmp(j.error, "4.3.0 write tmp file: ", 22) == 0);
	assert_int_equal(count_sub(md, "tmp"), 0);
	assert_int_equal(count_sub(md, "new"), 0);
	free(content);
}

/* As an unprivileged user, a maildir in a directory owned by root. */
static void test_permission_denied(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char parent[128], md[256];
	pid_t pid;
	int wstatus;

	(void)state;
	make_queue_file(&q, "q8", message, sizeof(message) - 1);
	snprintf(parent, sizeof(parent), "%s/rootonly", root);
	assert_int_equal(mkdir(parent, 0755), 0);
	snprintf(md, sizeof(md), "%s/henry", parent);
	job_init(&j, &q, md, "henry@example.test", 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() != 0 && chmod(parent, 0555) < 0)
			_exit(11);
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(10);
		maildir_deliver_batch(&j, 1);
		if (j.status != 1)
			_exit(12);
		if (strncmp(j.error, "4.3.0 ", 6) != 0 ||
		    strstr(j.error, "Permission denied") == NULL)
			_exit(13);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
	chmod(parent, 0755);
	assert_int_equal(count_entries(parent), 0);
}

static void test_permanent_errors(void **state)
{
	struct qfile q;
	struct maildir_job j[3];
	char md[256], longmd[600];

	(void)state;
	make_queue_file(&q, "q9", message, sizeof(message) - 1);
	snprintf(md, sizeof(md), "%s/perm", root);
	job_init(&j[0], &q, "relative/maildir", "ivan@example.test", 0);
	job_init(&j[1], &q, md, "ivan@example.test", 1);
	j[1].qid = "../../x";
	memset(longmd, 'a', sizeof(longmd) - 1);
	longmd[0] = '/';
	longmd[sizeof(longmd) - 1] = '\0';
	job_init(&j[2], &q, longmd, "ivan@example.test", 2);
	maildir_deliver_batch(j, 3);
	assert_int_equal(j[0].status, -1);
	assert_true(strncmp(j[0].error, "5.", 2) == 0);
	assert_int_equal(j[1].status, -1);
	assert_true(strncmp(j[1].error, "5.", 2) == 0);
	assert_int_equal(j[2].status, -1);
	assert_true(strncmp(j[2].error, "5.", 2) == 0);
	assert_int_equal(count_sub(md, "new"), -1);
}

static void test_mixed_batch_statuses_are_per_job(void **state)
{
	struct qfile q;
	struct maildir_job j[3];
	char good[256], bad[256];
	FILE *f;

	(void)state;
	make_queue_file(&q, "q10", message, sizeof(message) - 1);
	snprintf(good, sizeof(good), "%s/mixed", root);
	snprintf(bad, sizeof(bad), "%s/mixed-file", root);
	f = fopen(bad, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(bad, sizeof(bad), "%s/mixed-file/x", root); /* below a regular file */
	job_init(&j[0], &q, good, "a@example.test", 0);
	job_init(&j[1], &q, bad, "b@example.test", 1);
	job_init(&j[2], &q, good, "c@example.test", 2);
	maildir_deliver_batch(j, 3);
	assert_delivered(&j[0], message, sizeof(message) - 1);
	assert_int_equal(j[1].status, 1);
	assert_delivered(&j[2], message, sizeof(message) - 1);
}

/* The agent delivers only to what the directory knows, and only below
 * its template: an unknown recipient is a permanent 5.1.1 and nothing is
 * created; a path with a ".." component is refused. */
static int only_alice(void *arg, const char *rcpt)
{
	(void)arg;
	return strcmp(rcpt, "alice@example.test") == 0;
}

static void test_unknown_recipient_creates_nothing(void **state)
{
	struct qfile q;
	struct maildir_job j[3];
	char known[256], phantom[256], escape[256], parent[256];

	(void)state;
	make_queue_file(&q, "q11", message, sizeof(message) - 1);
	snprintf(known, sizeof(known), "%s/known/example.test/alice", root);
	snprintf(phantom, sizeof(phantom), "%s/known/example.test/phantom123", root);
	snprintf(escape, sizeof(escape), "%s/known/example.test/../../escape", root);
	job_init(&j[0], &q, known, "alice@example.test", 0);
	job_init(&j[1], &q, phantom, "phantom123@example.test", 1);
	job_init(&j[2], &q, escape, "alice@example.test", 2);
	for (int i = 0; i < 3; i++)
		j[i].mailbox_known = only_alice;
	maildir_deliver_batch(j, 3);
	assert_delivered(&j[0], message, sizeof(message) - 1);
	assert_int_equal(j[1].status, -1);
	assert_true(strncmp(j[1].error, "5.1.1 ", 6) == 0);
	assert_int_equal(count_entries(phantom), -1);
	assert_int_equal(j[2].status, -1);
	assert_true(strncmp(j[2].error, "5.3.5 ", 6) == 0);
	snprintf(parent, sizeof(parent), "%s/escape", root);
	assert_int_equal(count_entries(parent), -1);
	/* the example.test directory holds alice only */
	snprintf(parent, sizeof(parent), "%s/known/example.test", root);
	assert_int_equal(count_entries(parent), 1);

	assert_true(mailbox_path_contained("/m/example.test/alice"));
	assert_true(mailbox_path_contained("/m/example.test/_._.._etc"));
	assert_true(mailbox_path_contained("/m/..x/.y"));
	assert_false(mailbox_path_contained("/m/../x"));
	assert_false(mailbox_path_contained("/m/./x"));
	assert_false(mailbox_path_contained("/m/x/.."));
	assert_false(mailbox_path_contained("m/x"));
	assert_false(mailbox_path_contained(NULL));
}

/* The directory cannot tell (LDAP down): a temporary failure (retried),
 * never 5.1.1, and nothing is created. */
static int cannot_tell(void *arg, const char *rcpt)
{
	(void)arg;
	(void)rcpt;
	return -1;
}

static void test_directory_unavailable_is_temporary(void **state)
{
	struct qfile q;
	struct maildir_job j;
	char box[256];

	(void)state;
	make_queue_file(&q, "q12", message, sizeof(message) - 1);
	snprintf(box, sizeof(box), "%s/down/example.test/alice", root);
	job_init(&j, &q, box, "alice@example.test", 0);
	j.mailbox_known = cannot_tell;
	maildir_deliver_batch(&j, 1);
	assert_int_equal(j.status, 1);
	assert_true(strncmp(j.error, "4.4.3 ", 6) == 0);
	assert_int_equal(count_entries(box), -1);
}

static void test_expand(void **state)
{
	static const struct {
		const char *tmpl, *local, *domain, *want; /* want NULL: -1 */
	} cases[] = {
		{"/m/%d/%u", "Alice", "Example.TEST", "/m/example.test/alice"},
		{"/m/%d/%u", "../../etc", "example.test", "/m/example.test/_._.._etc"},
		{"/m/%d/%u", ".hidden", "example.test", "/m/example.test/_hidden"},
		{"/m/%d/%u", "a/b", "example.test", "/m/example.test/a_b"},
		{"/m/%d/%u", "..", "..", "/m/_./_."},
		{"/m/%d/%u", "", "example.test", "/m/example.test/_"},
		{"/m/%d/%u", "tab\there\x7f", "example.test", "/m/example.test/tab_here_"},
		{"/m/%d/%u", "j\xc3\xb6rg", "example.test", "/m/example.test/j\xc3\xb6rg"},
		{"/m/%u/%%/%d", "x", "y", "/m/x/%/y"},
		{"/m/%%u", "x", "y", "/m/%u"},
		{"/m/%x", "x", "y", NULL},
		{"/m/%", "x", "y", NULL},
		{"/m/static", "x", "y", "/m/static"},
	};
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = maildir_expand(cases[i].tmpl, cases[i].local, cases[i].domain, out,
					sizeof(out));
		if (cases[i].want == NULL) {
			assert_int_equal(rc, -1);
			assert_string_equal(out, "");
		} else {
			if (rc != 0)
				fail_msg("case %zu: rc %d", i, rc);
			assert_string_equal(out, cases[i].want);
		}
	}
	/* exactly fits, one byte short */
	assert_int_equal(maildir_expand("/m/%u", "abc", "d", out, 7), 0);
	assert_string_equal(out, "/m/abc");
	assert_int_equal(maildir_expand("/m/%u", "abc", "d", out, 6), -1);
	assert_string_equal(out, "");
	assert_int_equal(maildir_expand("/m/%u", "abc", "d", out, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_exact_content),
		cmocka_unit_test(test_unknown_recipient_creates_nothing),
		cmocka_unit_test(test_directory_unavailable_is_temporary),
		cmocka_unit_test(test_redelivery_is_one_file),
		cmocka_unit_test(test_block_edges),
		cmocka_unit_test(test_many_jobs_syncfs_and_chunks),
		cmocka_unit_test(test_header_values_cannot_inject),
		cmocka_unit_test(test_temporary_errors),
		cmocka_unit_test(test_write_error_removes_tmp),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_permanent_errors),
		cmocka_unit_test(test_mixed_batch_statuses_are_per_job),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, setup_root, teardown_root);
}
