/*
 * fuzz_qfile.c - libFuzzer target for the queue-file loader
 * (src/queue/qfile.c, docs/queue.md): the bytes of a queue file as the
 * loader finds them on disk after a crash, a bad disk or a hostile local
 * user. Byte 0, bit 0: append a trailer with the right length and CRC
 * (computed the way docs/queue.md says: everything before the trailer,
 * recipient state bytes counted as 'Q'), so the fuzzer gets past the CRC
 * and into the records; the rest is the file. The file is written to a
 * spool on tmpfs and loaded with queue_load().
 *
 * Checks when the loader accepts a file:
 *  - the envelope is self-consistent (valid qid, recipients with an
 *    address and a valid state, content inside the file, trailer last);
 *  - every recipient's state_off points at its state byte: setting a
 *    state with queue_set_rcpt_state() keeps the file loadable (the CRC
 *    does not cover states) and the new state reads back;
 *  - writing the loaded envelope and content again with the queue writer
 *    gives a file that loads to the same envelope (round trip).
 * A file the loader refuses must leave nothing allocated (leak check).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "mail/envelope.h"
#include "queue/qfile.h" /* the writer's internals: finish without the sync thread */
#include "queue/queue.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_spool[128], g_path[256];
static struct event_base *g_base;
static struct queue *g_q;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The spool on tmpfs goes when the fuzzer exits normally (a crash leaves
 * it, with the input, for whoever looks). */
static void remove_spool(void) { nftw(g_spool, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char err[256];
	(void)argc;
	(void)argv;

	snprintf(g_spool, sizeof(g_spool), "%s/fuzz_qfile.XXXXXX", tmp);
	if (!mkdtemp(g_spool) || evthread_use_pthreads() != 0 || !(g_base = event_base_new()))
		abort();
	atexit(remove_spool);
	g_q = queue_open(g_spool, "fz", QUEUE_SYNC_SYNCFS, g_base, err, sizeof(err));
	if (!g_q) {
		fprintf(stderr, "queue_open: %s\n", err);
		abort();
	}
	snprintf(g_path, sizeof(g_path), "%s/input", g_spool);
	return 0;
}

static void put_file(const char *path, const void *p, size_t n, const void *p2, size_t n2)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || (n2 && write(fd, p2, n2) != (ssize_t)n2))
		abort();
	close(fd);
}

/* The trailer a writer would have put after data[0, n). */
static void make_trailer(const uint8_t *data, size_t n, char t[QF_TRAILER_LEN + 1])
{
	static const char data_line[] = "\ndata\n";
	const uint8_t *d = memmem(data, n, data_line, sizeof(data_line) - 1);
	size_t content_off = d ? (size_t)(d - data) + sizeof(data_line) - 1 : n;
	uLong crc = crc32(0, NULL, 0);
	size_t off = 0;

	/* rcpt lines before "data": their state byte counts as 'Q' */
	for (size_t i = 0; i + 5 < content_off; i++) {
		if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "rcpt ", 5) == 0) {
			crc = crc32(crc, data + off, (uInt)(i + 5 - off));
			crc = crc32(crc, (const Bytef *)"Q", 1);
			off = i + 6;
		}
	}
	crc = crc32(crc, data + off, (uInt)(n - off));
	snprintf(t, QF_TRAILER_LEN + 1, "trailer %020zu %08" PRIx32 "\nend\n", n - content_off,
		 (uint32_t)crc);
}

static bool same_str(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

static void check_same(const struct envelope *a, const struct envelope *b)
{
	if (strcmp(a->qid, b->qid) != 0 || a->arrival != b->arrival || !same_str(a->sender, b->sender) ||
	    a->body != b->body || a->smtputf8 != b->smtputf8 || a->ret != b->ret ||
	    !same_str(a->envid, b->envid) || !same_str(a->connector, b->connector) ||
	    !same_str(a->client_addr, b->client_addr) || !same_str(a->client_helo, b->client_helo) ||
	    !same_str(a->auth_user, b->auth_user) || a->nrcpt != b->nrcpt ||
	    a->content_len != b->content_len)
		abort();
	for (size_t i = 0; i < a->nrcpt; i++)
		if (strcmp(a->rcpt[i].addr, b->rcpt[i].addr) != 0 ||
		    !same_str(a->rcpt[i].orcpt, b->rcpt[i].orcpt) ||
		    a->rcpt[i].notify != b->rcpt[i].notify || a->rcpt[i].state != b->rcpt[i].state)
			abort();
}

/* Write env and its content (read from src) with the queue writer, load
 * it back and compare. */
static void round_trip(const struct envelope *env, const char *src)
{
	char path[512], err[256];
	struct queue_writer *w;
	struct envelope again;
	char *content = malloc(env->content_len + 1);
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	if (!content || fd < 0 ||
	    pread(fd, content, env->content_len, (off_t)env->content_off) != (ssize_t)env->content_len)
		abort();
	close(fd);
	queue_path(g_q, env->qid, path, sizeof(path));
	unlink(path);
	w = queue_writer_new(g_q, env);
	if (!w) {
		fprintf(stderr, "queue_writer_new refused a loaded envelope: %s\n", strerror(errno));
		abort();
	}
	if (queue_writer_write(w, content, env->content_len) != 0 || qf_writer_finish(w) != 0)
		abort();
	qf_writer_release(w, false);
	envelope_free(&w->env);
	free(w);
	free(content);
	if (queue_load(path, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "a rewritten file does not load: %s\n", err);
		abort();
	}
	check_same(env, &again);
	envelope_free(&again);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char trailer[QF_TRAILER_LEN + 1], err[256], path[512];
	struct envelope env, again;
	struct stat sb;
	bool fix;

	if (size < 1 || size > (1u << 20))
		return 0;
	fix = data[0] & 1;
	data++;
	size--;
	if (fix)
		make_trailer(data, size, trailer);
	put_file(g_path, data, size, trailer, fix ? QF_TRAILER_LEN : 0);

	if (queue_load(g_path, &env, err, sizeof(err)) != 0) {
		if (getenv("FUZZ_QFILE_TRACE"))
			fprintf(stderr, "refused: %s\n", err);
		return 0;
	}
	if (getenv("FUZZ_QFILE_TRACE"))
		fprintf(stderr, "loaded %s: %zu recipients, %" PRIu64 " content octets\n", env.qid,
			env.nrcpt, env.content_len);
	if (stat(g_path, &sb) != 0 || !qf_valid_qid(env.qid) ||
	    env.content_off + env.content_len + QF_TRAILER_LEN != (uint64_t)sb.st_size)
		abort();
	for (size_t i = 0; i < env.nrcpt; i++)
		if (!env.rcpt[i].addr ||
		    (env.rcpt[i].state != RCPT_QUEUED && env.rcpt[i].state != RCPT_DELIVERED &&
		     env.rcpt[i].state != RCPT_FAILED) ||
		    env.rcpt[i].state_off >= env.content_off)
			abort();

	round_trip(&env, g_path);

	/* in-place state updates, through the path the store uses */
	queue_path(g_q, env.qid, path, sizeof(path));
	if (rename(g_path, path) != 0)
		abort();
	for (size_t i = 0; i < env.nrcpt; i++) {
		char st = i % 2 ? RCPT_FAILED : RCPT_DELIVERED;
		if (queue_set_rcpt_state(g_q, &env, i, st) != 0 || env.rcpt[i].state != st)
			abort();
	}
	if (queue_load(path, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "state update broke the file: %s\n", err);
		abort();
	}
	for (size_t i = 0; i < env.nrcpt; i++)
		if (again.rcpt[i].state != env.rcpt[i].state)
			abort();
	envelope_free(&again);
	if (queue_remove(g_q, env.qid) != 0)
		abort();
	envelope_free(&env);
	return 0;
}
