/*
 * recover.c - startup recovery of the queue (queue_scan) and the
 * read-only listing used by "transitctl queue list" (queue_walk).
 *
 * Contract (docs/queue.md "Recovery"): every file in <spool>/queue is
 * read and validated (qfile.c). A valid file whose qid matches its name
 * is handed to the caller. A torn file (a prefix of a valid one: the
 * write of a message that was never acknowledged was cut) is unlinked.
 * Anything else that is wrong - CRC mismatch, bad records, an unknown
 * format version, a foreign file - is moved to <spool>/corrupt/ for the
 * admin and logged; it is never delivered and never silently deleted.
 * A file that cannot be read (EIO, EACCES, EMFILE) is left in place and
 * logged: it may be fine next time.
 *
 * Speed (a million messages in seconds): one readdir pass collects the
 * names, sorted by inode number (the inode table is then read mostly in
 * disk order), then up to SCAN_THREADS threads validate files in
 * parallel, each with one reusable buffer: open + fstat + one 128 KiB
 * pread (a whole typical message, so the CRC needs no second read) +
 * close per file. Callbacks, unlinks and moves run on the calling
 * thread afterwards, in that order.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/qfile.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SCAN_THREADS 8		/* enough to keep an SSD's queue busy on a cold cache */
#define SCAN_PER_THREAD 512	/* fewer files than this per thread: not worth a thread */

struct scan_item {
	char *name;
	ino_t ino;
	enum qf_status st;
	struct envelope *env; /* QF_OK */
	char *why;	      /* otherwise */
};

struct scan_set {
	const char *qdir;
	struct scan_item *items;
	size_t n, cap;
	_Atomic size_t next; /* next item to load */
};

static int by_inode(const void *a, const void *b)
{
	const struct scan_item *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Every name in qdir except ".", ".." and directories. */
static int collect_names(struct scan_set *set)
{
	struct dirent *de;
	DIR *d = opendir(set->qdir);

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    de->d_type == DT_DIR)
			continue;
		if (set->n == set->cap) {
			set->cap = set->cap ? set->cap * 2 : 1024;
			set->items = xrealloc(set->items, set->cap * sizeof(*set->items));
		}
		memset(&set->items[set->n], 0, sizeof(set->items[0]));
		set->items[set->n].name = xstrdup(de->d_name);
		set->items[set->n].ino = de->d_ino;
		set->n++;
	}
	closedir(d);
	if (set->n > 1)
		qsort(set->items, set->n, sizeof(*set->items), by_inode);
	return 0;
}

/* Load qdir/name; a valid file must also carry its own name as qid. */
static void load_item(struct qf_reader *r, const char *qdir, struct scan_item *it)
{
	char path[PATH_MAX], err[128];
	struct envelope env;

	envelope_init(&env);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", qdir, it->name) >= sizeof(path)) {
		it->st = QF_IOERR;
		snprintf(err, sizeof(err), "path too long");
	} else if (!qf_valid_qid(it->name)) {
		it->st = QF_CORRUPT;
		snprintf(err, sizeof(err), "not a queue file name");
	} else {
		it->st = qf_load(r, path, &env, err, sizeof(err));
		if (it->st == QF_OK && strcmp(env.qid, it->name) != 0) {
			envelope_free(&env);
			snprintf(err, sizeof(err), "qid does not match the file name");
			it->st = QF_CORRUPT;
		}
	}
	if (it->st == QF_OK) {
		it->env = xmalloc(sizeof(*it->env));
		*it->env = env;
	} else {
		it->why = xstrdup(err);
	}
}

static void *load_worker(void *arg)
{
	struct scan_set *set = arg;
	struct qf_reader r = {NULL, 0};
	size_t i;

	while ((i = atomic_fetch_add(&set->next, 1)) < set->n)
		load_item(&r, set->qdir, &set->items[i]);
	qf_reader_free(&r);
	return NULL;
}

/* Validate every item, in parallel when there are many. */
static void load_all(struct scan_set *set)
{
	pthread_t tid[SCAN_THREADS];
	size_t want = set->n / SCAN_PER_THREAD, started = 0, i;
	sigset_t all, old;

	if (want > SCAN_THREADS)
		want = SCAN_THREADS;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; started + 1 < want; started++)
		if (pthread_create(&tid[started], NULL, load_worker, set) != 0)
			break; /* fewer threads is fine */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	load_worker(set); /* the calling thread works too */
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

static void free_set(struct scan_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		free(set->items[i].name);
		free(set->items[i].why);
		if (set->items[i].env) {
			envelope_free(set->items[i].env);
			free(set->items[i].env);
		}
	}
	free(set->items);
}

static void move_aside(struct queue *q, const char *name, const char *why)
{
	char src[PATH_MAX + 256], dst[PATH_MAX + 256];

	if (mkdir(q->corrupt_dir, 0700) < 0 && errno != EEXIST) {
		log_warn("queue corrupt file left in place file=%s reason=\"%s\" error=\"mkdir %s: %s\"",
			 name, why, q->corrupt_dir, strerror(errno));
		return;
	}
	snprintf(src, sizeof(src), "%s/%s", q->qdir, name);
	snprintf(dst, sizeof(dst), "%s/%s", q->corrupt_dir, name);
	if (rename(src, dst) < 0)
		log_warn("queue corrupt file left in place file=%s reason=\"%s\" error=\"%s\"", name,
			 why, strerror(errno));
	else
		log_warn("queue corrupt file moved file=%s to=%s reason=\"%s\"", name, dst, why);
}

static void remove_torn(struct queue *q, const char *name, const char *why)
{
	char path[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/%s", q->qdir, name);
	if (unlink(path) < 0)
		log_warn("queue torn file not removed file=%s error=\"%s\"", name, strerror(errno));
	else
		log_warn("queue torn file removed file=%s reason=\"%s\"", name, why);
}

long queue_scan(struct queue *q, void (*cb)(struct envelope *env, void *arg), void *arg)
{
	struct scan_set set = {.qdir = q->qdir};
	long ok = 0, torn = 0, corrupt = 0, skipped = 0;
	uint64_t t0 = clock_mono_us(), t1;
	size_t i;

	if (collect_names(&set) < 0) {
		log_warn("queue scan failed dir=%s error=\"%s\"", q->qdir, strerror(errno));
		free_set(&set);
		return -1;
	}
	load_all(&set);
	t1 = clock_mono_us();
	for (i = 0; i < set.n; i++) {
		struct scan_item *it = &set.items[i];

		switch (it->st) {
		case QF_OK:
			ok++;
			cb(it->env, arg);
			it->env = NULL; /* the callback owns it */
			break;
		case QF_TORN:
			torn++;
			remove_torn(q, it->name, it->why);
			break;
		case QF_CORRUPT:
			corrupt++;
			move_aside(q, it->name, it->why);
			break;
		case QF_IOERR:
			skipped++;
			log_warn("queue file unreadable, left in place file=%s reason=\"%s\"", it->name,
				 it->why);
			break;
		}
	}
	free_set(&set);
	log_info("queue recovered messages=%ld torn=%ld corrupt=%ld unreadable=%ld load_us=%" PRIu64
		 " total_us=%" PRIu64,
		 ok, torn, corrupt, skipped, t1 - t0, clock_mono_us() - t0);
	return ok;
}

long queue_walk(const char *spool, void (*cb)(const char *path, struct envelope *env, void *arg),
		void *arg)
{
	struct scan_set set;
	char qdir[PATH_MAX];
	long n = 0;
	size_t i;

	if ((size_t)snprintf(qdir, sizeof(qdir), "%s/queue", spool) >= sizeof(qdir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&set, 0, sizeof(set));
	set.qdir = qdir;
	if (collect_names(&set) < 0) {
		free_set(&set);
		return -1;
	}
	load_all(&set);
	for (i = 0; i < set.n; i++) {
		struct scan_item *it = &set.items[i];
		char path[PATH_MAX + 256];

		/* Invalid files are normal here: a message still being received. */
		if (it->st != QF_OK) {
			log_debug("queue walk skipped file=%s reason=\"%s\"", it->name, it->why);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", qdir, it->name);
		n++;
		cb(path, it->env, arg);
		it->env = NULL;
	}
	free_set(&set);
	return n;
}
