/*
 * test_queue.c - the durable queue store (src/queue/qfile.c, recover.c,
 * commit.c): round trip of hostile envelopes and 8-bit content through a
 * real event loop and group commit, in-place state updates, torn and
 * corrupt files, qids, batching, abort and error paths.
 *
 * Also a hand-run benchmark (not part of the unit suite):
 *     test_queue bench [dir [delay_us [nscan]]]
 *         commit throughput, 1 KiB messages, 1/10/100 writers, both sync
 *         modes, the disk's raw sync rate, and the time to scan nscan
 *         (20k) queued files; delay_us adds that much latency to every group
 *         sync to show batching on a disk slower than this one.
 *     test_queue bench-io [dir]
 *         what the blocking file I/O of the scheduler costs (issue 6 item
 *         11c): one recipient state update (open, pread, pwrite, close;
 *         on the event loop) and building a DSN from a 10 MiB message,
 *         headers only and RET=FULL, warm and with the file's pages
 *         dropped (on a worker since item 11c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "mail/dsn.h"
#include "mail/envelope.h"
#include "queue/qfile.h" /* internals: to inject a write error */
#include "queue/queue.h"

struct fx {
	char dir[64];
	char qdir[128];
	char cdir[128];
	struct event_base *base;
	struct queue *q;
	enum queue_sync_mode mode;
};

/* ---- helpers -------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int setup_mode(void **state, enum queue_sync_mode mode)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_queue.XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->qdir, sizeof(f->qdir), "%s/queue", f->dir);
	snprintf(f->cdir, sizeof(f->cdir), "%s/corrupt", f->dir);
	f->mode = mode;
	f->base = event_base_new();
	f->q = queue_open(f->dir, "test-1", mode, f->base, err, sizeof(err));
	if (!f->base || !f->q) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_mode(state, QUEUE_SYNC_FSYNC); }
static int setup_syncfs(void **state) { return setup_mode(state, QUEUE_SYNC_SYNCFS); }

static int teardown(void **state)
{
	struct fx *f = *state;

	queue_close(f->q);
	event_base_free(f->base);
	rm_tree(f->dir);
	free(f);
	return 0;
}

struct result {
	int done;
	int error;
	struct envelope *env;
};

static void on_commit(void *arg, int error, struct envelope *env)
{
	struct result *r = arg;

	r->done++;
	r->error = error;
	r->env = env;
}

static void run_until(struct event_base *base, const int *counter, int want)
{
	time_t deadline = time(NULL) + 30;

	while (*counter < want) {
		assert_true(time(NULL) < deadline);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

static void free_env(struct envelope *e)
{
	if (e) {
		envelope_free(e);
		free(e);
	}
}

static void basic_env(struct queue *q, struct envelope *e, size_t nrcpt)
{
	size_t i;

	envelope_init(e);
	queue_new_qid(q, e->qid);
	e->arrival = 1712345678;
	envelope_set_str(&e->sender, "alice@example.test");
	envelope_set_str(&e->connector, "internet");
	envelope_set_str(&e->client_addr, "192.0.2.1");
	for (i = 0; i < nrcpt; i++) {
		char a[64];

		snprintf(a, sizeof(a), "user%zu@example.test", i);
		envelope_add_rcpt(e, a, i % 2 ? "rfc822;x@example.test" : NULL, (unsigned)i);
	}
}

/* Write + commit one message, wait for its callback; returns the
 * committed envelope (caller frees). */
static struct envelope *commit_one(struct fx *f, const struct envelope *e, const char *content,
				   size_t len)
{
	struct queue_writer *w = queue_writer_new(f->q, e);
	struct result r = {0, -1, NULL};

	assert_non_null(w);
	if (len > 0) {
		assert_int_equal(queue_writer_write(w, content, 1), 0);
		assert_int_equal(queue_writer_write(w, content + 1, len - 1), 0);
	}
	assert_int_equal(queue_writer_size(w), len);
	queue_writer_commit(w, on_commit, &r);
	run_until(f->base, &r.done, 1);
	assert_int_equal(r.error, 0);
	assert_non_null(r.env);
	return r.env;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *p;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	p = malloc((size_t)sb.st_size + 1);
	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)sb.st_size, 0), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return p;
}

static void spit(const char *path, const char *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* Overwrite one byte in place (no truncate: ext4 flushes a file that
 * was truncated and rewritten when it is closed, which is slow). */
static void poke(const char *path, size_t off, char c)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void assert_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_env_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	assert_string_equal(a->qid, b->qid);
	assert_int_equal(a->arrival, b->arrival);
	assert_str_eq(a->sender, b->sender);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->ret, b->ret);
	assert_str_eq(a->envid, b->envid);
	assert_str_eq(a->connector, b->connector);
	assert_str_eq(a->client_addr, b->client_addr);
	assert_str_eq(a->client_helo, b->client_helo);
	assert_str_eq(a->auth_user, b->auth_user);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (i = 0; i < a->nrcpt; i++) {
		assert_str_eq(a->rcpt[i].addr, b->rcpt[i].addr);
		assert_str_eq(a->rcpt[i].orcpt, b->rcpt[i].orcpt);
		assert_int_equal(a->rcpt[i].notify, b->rcpt[i].notify);
		assert_int_equal(a->rcpt[i].state, b->rcpt[i].state);
	}
}

static int count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool exists(const char *dir, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

struct scan_seen {
	int n;
	struct envelope *last;
};

static void on_scan(struct envelope *env, void *arg)
{
	struct scan_seen *s = arg;

	s->n++;
	free_env(s->last);
	s->last = env;
}

static long scan(struct fx *f, struct scan_seen *s)
{
	memset(s, 0, sizeof(*s));
	return queue_scan(f->q, on_scan, s);
}

/* Silence stderr (recovery warns once per bad file) around a block. */
static int quiet_begin(void)
{
	int saved = dup(STDERR_FILENO);
	int null = open("/dev/null", O_WRONLY);

	dup2(null, STDERR_FILENO);
	close(null);
	return saved;
}

static void quiet_end(int saved)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* A message with every hostile value we can think of. */
static const char hostile_content[] =
	"Received: from x\r\n\tby y\r\nSubject: =?utf-8?q?caf=C3=A9?= \xc3\xa9\xff\x80\r\n\r\n"
	"8-bit: \xe4\xf6\xfc and a NUL here ->\0<- and a lone \n and \r\n"
	"trailer 00000000000000000010 deadbeef\nend\n"
	"data\nrcpt Q 0 =evil@x -\n.\r\n..\r\n";

static void hostile_env(struct queue *q, struct envelope *e)
{
	envelope_init(e);
	queue_new_qid(q, e->qid);
	e->arrival = 1712345678;
	envelope_set_str(&e->sender, "we ird%20\"x\"@ex\xc3\xa4mple.test\r\nRCPT TO:<evil>");
	e->body = 1;
	e->smtputf8 = true;
	e->ret = 2;
	envelope_set_str(&e->envid, "=x%41+2B");
	envelope_set_str(&e->connector, "-"); /* a dash, not NULL */
	envelope_set_str(&e->client_addr, "2001:db8::1");
	envelope_set_str(&e->client_helo, "helo with space\nand newline\t\x01\x7f\xff %");
	envelope_set_str(&e->auth_user, ""); /* empty, not NULL */
	envelope_add_rcpt(e, "bob@example.test", "rfc822;bob@example.test", 6);
	envelope_add_rcpt(e, "\xc3\xbcnic\xc3\xb6" "de@\xe4\xbe\x8b\xe3\x81\x88.test", NULL, 0);
	envelope_add_rcpt(e, "a b%c\nd@x", "rfc822;a b\r\nc", 1);
	envelope_add_rcpt(e, "-", "=", 14);
}

/* ---- tests ---------------------------------------------------------- */

static void test_roundtrip_hostile(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	char path[256], err[128];
	size_t i, flen;
	char *file;

	hostile_env(f->q, &e);
	c = commit_one(f, &e, hostile_content, sizeof(hostile_content) - 1);
	assert_env_equal(&e, c);

	queue_path(f->q, e.qid, path, sizeof(path));
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_env_equal(&e, &loaded);
	/* The store's offsets agree between commit and load and point where
	 * they say: the content verbatim, a state byte per recipient. */
	assert_int_equal(loaded.content_off, c->content_off);
	assert_int_equal(loaded.content_len, sizeof(hostile_content) - 1);
	file = slurp(path, &flen);
	assert_memory_equal(file + loaded.content_off, hostile_content, loaded.content_len);
	assert_memory_equal(file, "TRANSIT-QUEUE 2\n", 16);
	for (i = 0; i < loaded.nrcpt; i++) {
		assert_int_equal(loaded.rcpt[i].state_off, c->rcpt[i].state_off);
		assert_int_equal(file[loaded.rcpt[i].state_off], 'Q');
	}
	/* Peer-controlled bytes never leak format characters: the header has
	 * exactly one line per record. */
	{
		size_t lines = 0;

		for (i = 0; i < loaded.content_off; i++)
			lines += file[i] == '\n';
		assert_int_equal(lines, 1 + 11 + loaded.nrcpt + 1);
	}
	free(file);
	envelope_free(&loaded);
	free_env(c);
	envelope_free(&e);
}

static void test_empty_content(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	char path[256], err[128];

	basic_env(f->q, &e, 1);
	e.sender[0] = '\0'; /* null reverse-path */
	c = commit_one(f, &e, "", 0);
	queue_path(f->q, e.qid, path, sizeof(path));
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_string_equal(loaded.sender, "");
	assert_int_equal(loaded.content_len, 0);
	envelope_free(&loaded);
	free_env(c);
	envelope_free(&e);
}

static void test_state_update(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	struct scan_seen s;
	char path[256], err[128];

	basic_env(f->q, &e, 3);
	c = commit_one(f, &e, "Subject: x\r\n\r\nhi\r\n", 18);
	assert_int_equal(queue_set_rcpt_state(f->q, c, 0, RCPT_DELIVERED), 0);
	assert_int_equal(queue_set_rcpt_state(f->q, c, 2, RCPT_FAILED), 0);
	assert_int_equal(c->rcpt[0].state, RCPT_DELIVERED);
	assert_int_equal(envelope_pending(c), 1);
	/* Refused: bad state, bad index, an offset that is not a state byte. */
	assert_int_equal(queue_set_rcpt_state(f->q, c, 1, 'X'), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_set_rcpt_state(f->q, c, 3, RCPT_DELIVERED), -1);
	assert_int_equal(errno, EINVAL);
	c->rcpt[1].state_off -= 1;
	assert_int_equal(queue_set_rcpt_state(f->q, c, 1, RCPT_DELIVERED), -1);
	assert_int_equal(errno, EINVAL);
	c->rcpt[1].state_off += 1;

	queue_path(f->q, e.qid, path, sizeof(path));
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0); /* CRC still valid */
	assert_int_equal(loaded.rcpt[0].state, RCPT_DELIVERED);
	assert_int_equal(loaded.rcpt[1].state, RCPT_QUEUED);
	assert_int_equal(loaded.rcpt[2].state, RCPT_FAILED);
	envelope_free(&loaded);

	assert_int_equal(scan(f, &s), 1);
	assert_int_equal(s.last->rcpt[2].state, RCPT_FAILED);
	assert_int_equal(envelope_pending(s.last), 1);
	/* Back to queued works too (e.g. an admin requeue). */
	assert_int_equal(queue_set_rcpt_state(f->q, s.last, 2, RCPT_QUEUED), 0);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded.rcpt[2].state, RCPT_QUEUED);
	envelope_free(&loaded);
	free_env(s.last);

	assert_int_equal(queue_remove(f->q, e.qid), 0);
	assert_false(exists(f->qdir, e.qid));
	assert_int_equal(queue_remove(f->q, "../x"), -1);
	free_env(c);
	envelope_free(&e);
}

static void test_torn_every_offset(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	struct scan_seen s;
	char path[256], err[128];
	size_t cut, flen;
	char *file;
	int q;

	basic_env(f->q, &e, 2);
	c = commit_one(f, &e, "Subject: torn\r\n\r\nbody\r\n", 23);
	queue_path(f->q, e.qid, path, sizeof(path));
	file = slurp(path, &flen);
	q = quiet_begin();
	for (cut = 0; cut < flen; cut++) {
		spit(path, file, cut);
		if (queue_load(path, &loaded, err, sizeof(err)) == 0) {
			quiet_end(q);
			fail_msg("truncated at %zu of %zu loaded as valid", cut, flen);
		}
		if (scan(f, &s) != 0 || exists(f->qdir, e.qid) || count_dir(f->cdir) != 0) {
			quiet_end(q);
			fail_msg("truncated at %zu of %zu not removed as torn", cut, flen);
		}
	}
	quiet_end(q);
	spit(path, file, flen);
	assert_int_equal(scan(f, &s), 1);
	assert_env_equal(&e, s.last);
	free_env(s.last);
	free(file);
	free_env(c);
	envelope_free(&e);
}

static void test_flipped_bits(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	struct scan_seen s;
	char path[256], err[128];
	size_t i, flen;
	char *file;
	int q;

	hostile_env(f->q, &e);
	c = commit_one(f, &e, hostile_content, sizeof(hostile_content) - 1);
	queue_path(f->q, e.qid, path, sizeof(path));
	file = slurp(path, &flen);
	/* Every single-bit error anywhere in the file is detected. */
	for (i = 0; i < flen; i++) {
		static const unsigned char bits[] = {0x01, 0x20, 0x80};
		size_t b;

		for (b = 0; b < sizeof(bits); b++) {
			poke(path, i, (char)(file[i] ^ bits[b]));
			if (queue_load(path, &loaded, err, sizeof(err)) == 0)
				fail_msg("bit 0x%02x flipped at %zu of %zu loaded as valid", bits[b], i, flen);
		}
		poke(path, i, file[i]);
	}
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	envelope_free(&loaded);
	/* A flipped content byte: recovery moves the file aside. */
	file[c->content_off + 3] ^= 0x04;
	spit(path, file, flen);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CRC"));
	q = quiet_begin();
	assert_int_equal(scan(f, &s), 0);
	quiet_end(q);
	assert_false(exists(f->qdir, e.qid));
	assert_true(exists(f->cdir, e.qid));
	free(file);
	free_env(c);
	envelope_free(&e);
}

struct walk_seen {
	int n;
	char path[256];
};

static void on_walk(const char *path, struct envelope *env, void *arg)
{
	struct walk_seen *w = arg;

	w->n++;
	snprintf(w->path, sizeof(w->path), "%s", path);
	free_env(env);
}

static void test_scan_foreign_files(void **state)
{
	struct fx *f = *state;
	struct envelope e, other;
	struct envelope *c;
	struct scan_seen s;
	char path[256], p2[256];
	size_t flen;
	char *file;
	int q;

	basic_env(f->q, &e, 1);
	c = commit_one(f, &e, "x\r\n", 3);
	queue_path(f->q, e.qid, path, sizeof(path));
	file = slurp(path, &flen);
	/* a valid file under another valid name: qid mismatch */
	basic_env(f->q, &other, 1);
	queue_path(f->q, other.qid, p2, sizeof(p2));
	spit(p2, file, flen);
	/* a future format version */
	snprintf(p2, sizeof(p2), "%s/ZZZZZZZZZZZ0", f->qdir);
	spit(p2, "TRANSIT-QUEUE 3\nwhatever\n", 25);
	/* not a queue file name at all */
	snprintf(p2, sizeof(p2), "%s/junk.tmp", f->qdir);
	spit(p2, "junk", 4);
	/* an empty (torn) file */
	snprintf(p2, sizeof(p2), "%s/ZZZZZZZZZZZ1", f->qdir);
	spit(p2, "", 0);

	/* The read-only walk sees the one valid message and touches nothing;
	 * a read-only queue refuses writers. */
	{
		struct walk_seen w = {0, ""};
		struct queue *ro;
		char err[128];

		assert_int_equal(queue_walk(f->dir, on_walk, &w), 1);
		ro = queue_open(f->dir, "ro", QUEUE_SYNC_FSYNC, NULL, err, sizeof(err));
		assert_non_null(ro);
		assert_null(queue_writer_new(ro, &e));
		assert_int_equal(errno, EROFS);
		queue_close(ro);
	}
	assert_int_equal(count_dir(f->qdir), 5);

	q = quiet_begin();
	assert_int_equal(scan(f, &s), 1);
	quiet_end(q);
	assert_string_equal(s.last->qid, e.qid);
	free_env(s.last);
	assert_int_equal(count_dir(f->qdir), 1);
	assert_int_equal(count_dir(f->cdir), 3);
	assert_true(exists(f->cdir, other.qid));
	assert_true(exists(f->cdir, "ZZZZZZZZZZZ0"));
	assert_true(exists(f->cdir, "junk.tmp"));
	assert_false(exists(f->cdir, "ZZZZZZZZZZZ1"));
	free(file);
	free_env(c);
	envelope_free(&other);
	envelope_free(&e);
}

static void test_walk_read_only(void **state)
{
	struct fx *f = *state;
	struct envelope e;
	struct envelope *c;
	struct walk_seen w = {0, ""};
	char path[256];

	basic_env(f->q, &e, 1);
	c = commit_one(f, &e, "x\r\n", 3);
	snprintf(path, sizeof(path), "%s/ZZZZZZZZZZZ1", f->qdir);
	spit(path, "TRANSIT-QUE", 11); /* a message still being received */
	assert_int_equal(queue_walk(f->dir, on_walk, &w), 1);
	assert_int_equal(w.n, 1);
	queue_path(f->q, e.qid, path, sizeof(path));
	assert_string_equal(w.path, path);
	assert_true(exists(f->qdir, "ZZZZZZZZZZZ1"));
	assert_int_equal(queue_walk("/nonexistent-spool", on_walk, &w), -1);
	free_env(c);
	envelope_free(&e);
}

static void test_large_message(void **state)
{
	struct fx *f = *state;
	const size_t big = (3u << 20) + 17, nrcpt = 3000;
	struct envelope e, loaded;
	struct envelope *c;
	char path[256], err[128];
	size_t i, flen;
	char *content, *file;

	basic_env(f->q, &e, nrcpt); /* header > first read and > write buffer */
	content = malloc(big);
	assert_non_null(content);
	for (i = 0; i < big; i++)
		content[i] = (char)(i * 7 + (i >> 9));
	c = commit_one(f, &e, content, big);
	assert_int_equal(queue_set_rcpt_state(f->q, c, nrcpt - 1, RCPT_DELIVERED), 0);
	queue_path(f->q, e.qid, path, sizeof(path));
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded.nrcpt, nrcpt);
	assert_true(loaded.content_off > (128u << 10));
	assert_int_equal(loaded.content_len, big);
	assert_int_equal(loaded.rcpt[nrcpt - 1].state, RCPT_DELIVERED);
	file = slurp(path, &flen);
	assert_memory_equal(file + loaded.content_off, content, big);
	/* a flipped byte deep in the content is still caught */
	file[flen - 100] ^= 1;
	spit(path, file, flen);
	envelope_free(&loaded);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CRC"));
	envelope_free(&e);
	free(file);
	free(content);
	free_env(c);
}

static void test_qids(void **state)
{
	struct fx *f = *state;
	char prev[QID_MAX], cur[QID_MAX];
	struct queue *q2;
	char err[128];
	int i;

	char tag[QF_NODE_MAX + 1];

	qf_node_tag("test-1", tag);
	queue_new_qid(f->q, prev);
	assert_int_equal(strlen(prev), 11 + 8);
	assert_string_equal(prev + 11, tag);
	for (i = 0; i < 100000; i++) {
		queue_new_qid(f->q, cur);
		if (strcmp(prev, cur) >= 0)
			fail_msg("qid %s after %s", cur, prev);
		assert_int_equal(strlen(cur), 19);
		assert_int_equal(strspn(cur, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), 19);
		memcpy(prev, cur, QID_MAX);
	}
	/* another queue in the same process, another tag; the time part
	 * still sorts across both */
	q2 = queue_open(f->dir, "mx-1.example", QUEUE_SYNC_FSYNC, NULL, err, sizeof(err));
	assert_non_null(q2);
	queue_new_qid(q2, cur);
	qf_node_tag("mx-1.example", tag);
	assert_string_equal(cur + 11, tag);
	assert_true(strncmp(prev, cur, 11) < 0);
	queue_close(q2);
	q2 = queue_open(f->dir, "-.-", QUEUE_SYNC_FSYNC, NULL, err, sizeof(err));
	queue_new_qid(q2, cur);
	assert_int_equal(strlen(cur), 19);
	assert_true(qf_valid_qid(cur));
	queue_close(q2);
	/* ids of the old form (11 + a 1..4 character tag) stay valid names */
	assert_true(qf_valid_qid("1K0W2BFYH83MX1E"));
	assert_true(qf_valid_qid("1K0W2BFYH830"));
}

/* Node names that the 4-character tag made collide get different tags
 * (issue 6 item 11a); the tag depends on the whole name, not its case. */
static void test_node_tags_do_not_collide(void **state)
{
	static const char *const pairs[][2] = {
		{"mailhost1", "mailhost2"},
		{"mx1.site-a.example", "mx1.site-b.example"},
		{"mx-1.example", "mx1e"},
		{"relay", "relay.example"},
		{"", "-.-"},
	};
	char a[QF_NODE_MAX + 1], b[QF_NODE_MAX + 1];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		qf_node_tag(pairs[i][0], a);
		qf_node_tag(pairs[i][1], b);
		if (strcmp(a, b) == 0)
			fail_msg("node %s and node %s share the tag %s", pairs[i][0], pairs[i][1], a);
	}
	qf_node_tag("MX1.Example.ORG", a);
	qf_node_tag("mx1.example.org", b);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), QF_NODE_MAX);
	assert_int_equal(strspn(a, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), QF_NODE_MAX);
}

/* Rewrite a file's trailer CRC after changing its bytes (states as 'Q'). */
static void recrc(char *file, size_t flen, const struct envelope *env)
{
	char t[16];
	uLong crc = crc32(0, NULL, 0);
	size_t i, off = 0, end = flen - 42;

	for (i = 0; i < env->nrcpt; i++) {
		crc = crc32(crc, (const Bytef *)file + off, (uInt)(env->rcpt[i].state_off - off));
		crc = crc32(crc, (const Bytef *)"Q", 1);
		off = env->rcpt[i].state_off + 1;
	}
	crc = crc32(crc, (const Bytef *)file + off, (uInt)(end - off));
	snprintf(t, sizeof(t), "%08lx", crc);
	memcpy(file + end + 29, t, 8);
}

/* The DELAY notice is recorded in the file (state byte N, format 2), read
 * back at recovery, never over a final state; version 1 files are still
 * read, cannot record it, and may not contain N (issue 6 item 11b). */
static void test_delay_notified(void **state)
{
	struct fx *f = *state;
	struct envelope e, loaded;
	struct envelope *c;
	struct scan_seen s;
	char path[256], p2[256], err[128], *file;
	uint64_t offs[3];
	size_t flen;

	basic_env(f->q, &e, 3);
	c = commit_one(f, &e, "Subject: x\r\n\r\nhi\r\n", 18);
	assert_int_equal(queue_set_rcpt_state(f->q, c, 2, RCPT_DELIVERED), 0);
	offs[0] = c->rcpt[0].state_off;
	offs[1] = c->rcpt[2].state_off;
	queue_path(f->q, e.qid, path, sizeof(path));
	assert_int_equal(queue_file_set_states(path, offs, 2, QUEUE_STATE_DELAY_NOTIFIED), 0);
	file = slurp(path, &flen);
	assert_int_equal(file[c->rcpt[0].state_off], 'N');
	assert_int_equal(file[c->rcpt[1].state_off], 'Q');
	assert_int_equal(file[c->rcpt[2].state_off], 'D'); /* final: untouched */
	free(file);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded.rcpt[0].state, RCPT_QUEUED);
	assert_true(loaded.rcpt[0].delay_notified);
	assert_false(loaded.rcpt[1].delay_notified);
	assert_int_equal(loaded.rcpt[2].state, RCPT_DELIVERED);
	assert_int_equal(envelope_pending(&loaded), 2);
	envelope_free(&loaded);
	assert_int_equal(scan(f, &s), 1);
	assert_true(s.last->rcpt[0].delay_notified);
	/* a final state after the notice overwrites N */
	assert_int_equal(queue_set_rcpt_state(f->q, s.last, 0, RCPT_FAILED), 0);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded.rcpt[0].state, RCPT_FAILED);
	assert_false(loaded.rcpt[0].delay_notified);
	envelope_free(&loaded);
	free_env(s.last);
	/* not a state byte: refused */
	offs[2] = c->rcpt[1].state_off - 1;
	assert_int_equal(queue_file_set_states(path, offs + 2, 1, QUEUE_STATE_DELAY_NOTIFIED), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_file_set_states(path, offs, 1, 'X'), -1);
	assert_int_equal(errno, EINVAL);
	/* gone */
	queue_path(f->q, "ZZZZZZZZZZZ9", p2, sizeof(p2));
	assert_int_equal(queue_file_set_states(p2, offs, 1, QUEUE_STATE_DELAY_NOTIFIED), -1);
	assert_int_equal(errno, ENOENT);
	free_env(c);
	envelope_free(&e);

	/* A version 1 file (what transit wrote before): read as before */
	basic_env(f->q, &e, 2);
	c = commit_one(f, &e, "Subject: v1\r\n\r\nhi\r\n", 19);
	queue_path(f->q, e.qid, path, sizeof(path));
	file = slurp(path, &flen);
	memcpy(file, "TRANSIT-QUEUE 1\n", 16);
	recrc(file, flen, c);
	spit(path, file, flen);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), 0);
	assert_int_equal(loaded.nrcpt, 2);
	envelope_free(&loaded);
	offs[0] = c->rcpt[0].state_off;
	assert_int_equal(queue_file_set_states(path, offs, 1, QUEUE_STATE_DELAY_NOTIFIED), -1);
	assert_int_equal(errno, ENOTSUP);
	/* and N is not a version 1 state */
	file[c->rcpt[0].state_off] = 'N';
	spit(path, file, flen);
	assert_int_equal(queue_load(path, &loaded, err, sizeof(err)), -1);
	free(file);
	free_env(c);
	envelope_free(&e);
}

/* Writers finished in the same loop iteration share one sync. */
static void test_group_commit(void **state)
{
	struct fx *f = *state;
	enum { N = 20 };
	struct queue_writer *w[N];
	struct envelope e[N];
	struct result r[N];
	struct queue_stats before, after;
	char body[1024];
	int done = 0, i;

	memset(body, 'x', sizeof(body));
	/* Make each sync take 50 ms, as on a slow disk: the commits made while
	 * the first one syncs must then share the next sync, however slowly
	 * this machine (or a sanitizer build) writes the files. */
	qf_bench_sync_delay_us = 50000;
	queue_stats(f->q, &before);
	for (i = 0; i < N; i++) {
		basic_env(f->q, &e[i], 1);
		w[i] = queue_writer_new(f->q, &e[i]);
		assert_non_null(w[i]);
		assert_int_equal(queue_writer_write(w[i], body, sizeof(body)), 0);
		memset(&r[i], 0, sizeof(r[i]));
	}
	for (i = 0; i < N; i++)
		queue_writer_commit(w[i], on_commit, &r[i]);
	while (done < N) {
		event_base_loop(f->base, EVLOOP_ONCE);
		for (done = 0, i = 0; i < N; i++)
			done += r[i].done;
	}
	queue_stats(f->q, &after);
	qf_bench_sync_delay_us = 0;
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].error, 0);
		assert_string_equal(r[i].env->qid, e[i].qid);
		free_env(r[i].env);
		envelope_free(&e[i]);
	}
	assert_int_equal(after.messages - before.messages, N);
	assert_int_equal(after.failed, 0);
	/* One sync per message would be N batches: the first commit may wake
	 * the thread alone, the rest pile up behind its sync. */
	assert_true(after.batches - before.batches <= 4);
	assert_true(after.max_batch >= 5);
	assert_true(after.sync_us > 0);
}

static void test_abort_and_errors(void **state)
{
	struct fx *f = *state;
	struct queue_writer *w;
	struct envelope e;
	struct result r = {0, 0, NULL};

	basic_env(f->q, &e, 1);
	w = queue_writer_new(f->q, &e);
	assert_non_null(w);
	assert_true(exists(f->qdir, e.qid));
	assert_int_equal(queue_writer_write(w, "abc", 3), 0);
	queue_writer_abort(w);
	assert_false(exists(f->qdir, e.qid));

	/* a qid that exists already */
	w = queue_writer_new(f->q, &e);
	assert_non_null(w);
	assert_null(queue_writer_new(f->q, &e));
	assert_int_equal(errno, EEXIST);
	/* a write error is sticky and reported through the callback */
	w->err = EIO;
	assert_int_equal(queue_writer_write(w, "abc", 3), -1);
	assert_int_equal(errno, EIO);
	queue_writer_commit(w, on_commit, &r);
	assert_int_equal(r.done, 0); /* never synchronously */
	run_until(f->base, &r.done, 1);
	assert_int_equal(r.error, EIO);
	assert_null(r.env);
	assert_false(exists(f->qdir, e.qid));

	/* invalid envelopes are refused before touching the disk */
	strcpy(e.qid, "../etc");
	assert_null(queue_writer_new(f->q, &e));
	assert_int_equal(errno, EINVAL);
	queue_new_qid(f->q, e.qid);
	e.rcpt[0].state = 'X';
	assert_null(queue_writer_new(f->q, &e));
	assert_int_equal(errno, EINVAL);
	assert_false(exists(f->qdir, e.qid));
	envelope_free(&e);
}

/* queue_close finishes the pending batch and runs its callbacks. */
static void test_close_flushes(void **state)
{
	struct fx *f = *state;
	enum { N = 5 };
	struct result r[N];
	struct envelope e[N];
	struct scan_seen s;
	char err[128];
	int i;

	for (i = 0; i < N; i++) {
		struct queue_writer *w;

		basic_env(f->q, &e[i], 1);
		w = queue_writer_new(f->q, &e[i]);
		assert_non_null(w);
		assert_int_equal(queue_writer_write(w, "hello\r\n", 7), 0);
		memset(&r[i], 0, sizeof(r[i]));
		queue_writer_commit(w, on_commit, &r[i]);
	}
	queue_close(f->q);
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].done, 1);
		assert_int_equal(r[i].error, 0);
		free_env(r[i].env);
		envelope_free(&e[i]);
	}
	f->q = queue_open(f->dir, "test-1", f->mode, f->base, err, sizeof(err));
	assert_non_null(f->q);
	assert_int_equal(scan(f, &s), N);
	free_env(s.last);
}

/* Enough files for the parallel recovery path, with bad ones mixed in. */
static void test_scan_many(void **state)
{
	struct fx *f = *state;
	enum { ROUNDS = 15, PER = 100, N = ROUNDS * PER };
	static char qids[N][QID_MAX];
	struct result r[PER];
	struct walk_seen w = {0, ""};
	struct scan_seen s;
	int round, i, done, q;

	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < PER; i++) {
			struct queue_writer *wr;
			struct envelope e;

			basic_env(f->q, &e, 2);
			memcpy(qids[round * PER + i], e.qid, QID_MAX);
			wr = queue_writer_new(f->q, &e);
			assert_non_null(wr);
			assert_int_equal(queue_writer_write(wr, "Subject: many\r\n\r\nx\r\n", 20), 0);
			memset(&r[i], 0, sizeof(r[i]));
			queue_writer_commit(wr, on_commit, &r[i]);
			envelope_free(&e);
		}
		for (done = 0; done < PER;) {
			event_base_loop(f->base, EVLOOP_ONCE);
			for (done = 0, i = 0; i < PER; i++)
				done += r[i].done;
		}
		for (i = 0; i < PER; i++) {
			assert_int_equal(r[i].error, 0);
			free_env(r[i].env);
		}
	}
	/* every 100th torn, every 300th (offset 7) corrupt */
	for (i = 0; i < N; i += 100) {
		char path[256];

		queue_path(f->q, qids[i], path, sizeof(path));
		assert_int_equal(truncate(path, 50), 0);
	}
	for (i = 7; i < N; i += 300) {
		char path[256];
		size_t len;
		char *file;

		queue_path(f->q, qids[i], path, sizeof(path));
		file = slurp(path, &len);
		file[len - 45] ^= 0x10; /* last content byte */
		spit(path, file, len);
		free(file);
	}
	assert_int_equal(queue_walk(f->dir, on_walk, &w), N - 15 - 5);
	assert_int_equal(count_dir(f->qdir), N);
	q = quiet_begin();
	assert_int_equal(scan(f, &s), N - 15 - 5);
	quiet_end(q);
	free_env(s.last);
	assert_int_equal(count_dir(f->qdir), N - 15 - 5);
	assert_int_equal(count_dir(f->cdir), 5);
	assert_true(exists(f->cdir, qids[307]));
	assert_false(exists(f->qdir, qids[300]));
}

/* ---- the hand-run benchmark ----------------------------------------- */

struct bench {
	struct queue *q;
	struct event_base *base;
	char payload[1024];
	double until;
	long started, done, failed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_start(struct bench *b);

static void bench_cb(void *arg, int error, struct envelope *env)
{
	struct bench *b = arg;

	b->done++;
	if (error)
		b->failed++;
	free_env(env);
	if (now_s() < b->until)
		bench_start(b);
}

static void bench_start(struct bench *b)
{
	struct envelope e;
	struct queue_writer *w;

	basic_env(b->q, &e, 1);
	w = queue_writer_new(b->q, &e);
	envelope_free(&e);
	if (!w) {
		perror("queue_writer_new");
		exit(1);
	}
	queue_writer_write(w, b->payload, sizeof(b->payload));
	b->started++;
	queue_writer_commit(w, bench_cb, b);
}

static double bench_commit(const char *dir, enum queue_sync_mode mode, int writers, double secs,
			   struct queue_stats *st)
{
	struct bench b;
	char err[256];
	double t0, t;
	int i;

	memset(&b, 0, sizeof(b));
	memset(b.payload, 'm', sizeof(b.payload));
	b.base = event_base_new();
	b.q = queue_open(dir, "bench", mode, b.base, err, sizeof(err));
	if (!b.q) {
		fprintf(stderr, "queue_open: %s\n", err);
		exit(1);
	}
	t0 = now_s();
	b.until = t0 + secs;
	for (i = 0; i < writers; i++)
		bench_start(&b);
	event_base_dispatch(b.base); /* returns when nothing is in flight */
	t = now_s() - t0;
	queue_stats(b.q, st);
	queue_close(b.q);
	event_base_free(b.base);
	if (b.failed)
		fprintf(stderr, "%ld commits failed\n", b.failed);
	return (double)b.done / t;
}

/* The disk's own rate: create, write 1 KiB, fdatasync, fsync the dir. */
static double bench_raw_sync(const char *dir, double secs)
{
	char p[700], buf[1024];
	double t0 = now_s();
	long n = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	memset(buf, 'r', sizeof(buf));
	while (now_s() - t0 < secs) {
		int fd;

		snprintf(p, sizeof(p), "%s/raw%ld", dir, n);
		fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) < 0 ||
		    fsync(dfd) < 0) {
			perror("raw sync");
			exit(1);
		}
		close(fd);
		n++;
	}
	close(dfd);
	return (double)n / (now_s() - t0);
}

static void bench_scan_cb(struct envelope *env, void *arg)
{
	(*(long *)arg)++;
	free_env(env);
}

static void bench_walk_cb(const char *path, struct envelope *env, void *arg)
{
	(void)path;
	(void)arg;
	free_env(env);
}

static int bench_main(const char *parent, unsigned delay_us, long nscan)
{
	static const int writers[] = {1, 10, 100};
	static const char *const mode_name[] = {"fsync", "syncfs"};
	char dir[512], qdir[600], err[256];
	struct queue_stats st;
	struct event_base *base;
	struct queue *q;
	long n = 0;
	double t0;
	int m, i;

	snprintf(dir, sizeof(dir), "%s/queue-bench.XXXXXX", parent);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(qdir, sizeof(qdir), "%s/raw", dir);
	mkdir(qdir, 0700);
	printf("disk raw sync rate (create+write 1KiB+fdatasync+fsync dir, 1 thread): %.0f/s\n",
	       bench_raw_sync(qdir, 3.0));
	rm_tree(qdir);
	qf_bench_sync_delay_us = delay_us;
	if (delay_us)
		printf("simulating a slower disk: +%u us per group sync\n", delay_us);
	for (m = 0; m < 2; m++) {
		for (i = 0; i < 3; i++) {
			double rate = bench_commit(dir, (enum queue_sync_mode)m, writers[i], 3.0, &st);

			printf("mode=%-6s writers=%3d  %8.0f msgs/s  batches=%lu mean_batch=%.1f "
			       "max_batch=%lu mean_sync=%.0fus\n",
			       mode_name[m], writers[i], rate, (unsigned long)st.batches,
			       st.batches ? (double)st.messages / (double)st.batches : 0.0,
			       (unsigned long)st.max_batch,
			       st.batches ? (double)st.sync_us / (double)st.batches : 0.0);
			fflush(stdout);
			snprintf(qdir, sizeof(qdir), "%s/queue", dir);
			rm_tree(qdir);
		}
	}
	qf_bench_sync_delay_us = 0;
	/* Recovery speed: nscan (20k) 1 KiB messages. */
	{
		struct bench b;

		memset(&b, 0, sizeof(b));
		memset(b.payload, 'm', sizeof(b.payload));
		b.base = event_base_new();
		b.q = queue_open(dir, "bench", QUEUE_SYNC_SYNCFS, b.base, err, sizeof(err));
		b.until = 1e300;
		for (i = 0; i < 100; i++)
			bench_start(&b);
		while (b.done < nscan)
			event_base_loop(b.base, EVLOOP_ONCE);
		b.until = 0;
		event_base_dispatch(b.base);
		queue_close(b.q);
		event_base_free(b.base);
		printf("queued %ld messages for the scan\n", b.done);
	}
	base = event_base_new();
	q = queue_open(dir, "bench", QUEUE_SYNC_SYNCFS, base, err, sizeof(err));
	t0 = now_s();
	queue_scan(q, bench_scan_cb, &n);
	printf("queue_scan (warm cache): %ld messages in %.3f s (%.1f us/msg)\n", n, now_s() - t0,
	       (now_s() - t0) * 1e6 / (double)(n ? n : 1));
	{
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

		sync();
		if (fd >= 0 && write(fd, "3\n", 2) == 2) {
			n = 0;
			t0 = now_s();
			queue_scan(q, bench_scan_cb, &n);
			printf("queue_scan (cold cache): %ld messages in %.3f s\n", n, now_s() - t0);
		} else {
			printf("queue_scan (cold cache): cannot drop caches here\n");
		}
		if (fd >= 0)
			close(fd);
	}
	t0 = now_s();
	n = queue_walk(dir, bench_walk_cb, NULL);
	printf("queue_walk (warm cache): %ld messages in %.3f s\n", n, now_s() - t0);
	queue_close(q);
	event_base_free(base);
	rm_tree(dir);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench_io_main(const char *parent)
{
	enum { N = 20000, SIZE = 10 << 20, DSN_RUNS = 5 };
	static double t[N];
	struct fx *f;
	struct envelope e, *c;
	char *content = malloc(SIZE), path[256];
	size_t i;
	void *st;

	(void)parent;
	if (setup(&st) != 0)
		return 1;
	f = st;
	for (i = 0; i < SIZE; i++)
		content[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'a' + (char)(i % 26);
	{
		static const char hdr[] = "Subject: bench\r\nFrom: <a@example.test>\r\n\r\n";
		memcpy(content, hdr, sizeof(hdr) - 1);
	}
	basic_env(f->q, &e, 4);
	c = commit_one(f, &e, content, SIZE);
	for (i = 0; i < N; i++) {
		double t0 = now_s();
		queue_set_rcpt_state(f->q, c, i % 4, i % 2 ? RCPT_QUEUED : RCPT_DELIVERED);
		t[i] = now_s() - t0;
	}
	qsort(t, N, sizeof(t[0]), cmp_double);
	printf("state update (open+pread+pwrite+close), %d runs: p50 %.1f us, p99 %.1f us, "
	       "max %.1f us\n", N, t[N / 2] * 1e6, t[N * 99 / 100] * 1e6, t[N - 1] * 1e6);
	queue_path(f->q, c->qid, path, sizeof(path));
	for (int full = 0; full < 2; full++)
		for (int cold = 0; cold < 2; cold++) {
			double best = 1e9, worst = 0;
			for (int r = 0; r < DSN_RUNS; r++) {
				struct dsn_rcpt rc = {.addr = "x@example.net", .action = "failed",
						      .status = "5.1.1", .diagnostic = "550 5.1.1 no"};
				struct dsn_info info = {
					.kind = DSN_FAILURE, .reporting_mta = "mx.example.test",
					.qid = c->qid, .sender = "a@example.test", .ret = full ? 1 : 2,
					.rcpt = &rc, .nrcpt = 1, .content_path = path,
					.content_off = c->content_off, .content_len = c->content_len,
					.max_full_size = SIZE + 1, .message_id = "<b@x>"};
				struct buf out = BUF_INIT;
				char err[128];
				double t0, dt;

				if (cold) {
					int fd = open(path, O_RDONLY);
					fdatasync(fd);
					posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
					close(fd);
				}
				t0 = now_s();
				if (dsn_build(&info, &out, err, sizeof(err)) != 0)
					printf("dsn_build: %s\n", err);
				dt = now_s() - t0;
				best = dt < best ? dt : best;
				worst = dt > worst ? dt : worst;
				buf_free(&out);
			}
			printf("dsn_build %s, %s: best %.2f ms, worst %.2f ms (%d runs)\n",
			       full ? "RET=FULL 10 MiB" : "headers only", cold ? "pages dropped" : "warm",
			       best * 1e3, worst * 1e3, DSN_RUNS);
		}
	free_env(c);
	envelope_free(&e);
	free(content);
	return teardown(&st);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest fsync_tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_foreign_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qids, setup, teardown),
		cmocka_unit_test(test_node_tags_do_not_collide),
		cmocka_unit_test_setup_teardown(test_delay_notified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
	};
	const struct CMUnitTest syncfs_tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_hostile, setup_syncfs, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup_syncfs, teardown),
		cmocka_unit_test_setup_teardown(test_close_flushes, setup_syncfs, teardown),
		cmocka_unit_test_setup_teardown(test_scan_many, setup_syncfs, teardown),
	};
	int failed;

	evthread_use_pthreads();
	if (argc > 1 && strcmp(argv[1], "bench-io") == 0)
		return bench_io_main(argc > 2 ? argv[2] : "/tmp");
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return bench_main(argc > 2 ? argv[2] : "/tmp",
				  argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0,
				  argc > 4 ? strtol(argv[4], NULL, 10) : 20000);
	failed = cmocka_run_group_tests_name("queue_fsync", fsync_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("queue_syncfs", syncfs_tests, NULL, NULL);
	return failed;
}
