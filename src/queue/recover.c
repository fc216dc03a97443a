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
 * Speed: one open + fstat + one pread (128 KiB: a whole typical message,
 * so the CRC needs no second read) + close per file; one reusable buffer.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/qfile.h"
#include "util/log.h"
#include "util/xmalloc.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Entries worth a look: not "." / "..", not a directory. */
static bool scannable(const struct dirent *de)
{
	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
		return false;
	return de->d_type != DT_DIR;
}

/* Load qdir/name; a valid file must also carry its own name as qid. */
static enum qf_status load_entry(struct qf_reader *r, const char *qdir, const char *name,
				 char *path, size_t pathsz, struct envelope *env, char *err,
				 size_t errsz)
{
	enum qf_status st;

	if ((size_t)snprintf(path, pathsz, "%s/%s", qdir, name) >= pathsz) {
		envelope_init(env);
		snprintf(err, errsz, "path too long");
		return QF_IOERR;
	}
	if (!qf_valid_qid(name)) {
		envelope_init(env);
		snprintf(err, errsz, "not a queue file name");
		return QF_CORRUPT;
	}
	st = qf_load(r, path, env, err, errsz);
	if (st == QF_OK && strcmp(env->qid, name) != 0) {
		envelope_free(env);
		snprintf(err, errsz, "qid does not match the file name");
		st = QF_CORRUPT;
	}
	return st;
}

static void move_aside(struct queue *q, const char *name, const char *path, const char *why)
{
	char dst[PATH_MAX + 256];

	if (mkdir(q->corrupt_dir, 0700) < 0 && errno != EEXIST) {
		log_warn("queue corrupt file left in place file=%s reason=\"%s\" error=\"mkdir %s: %s\"",
			 name, why, q->corrupt_dir, strerror(errno));
		return;
	}
	snprintf(dst, sizeof(dst), "%s/%s", q->corrupt_dir, name);
	if (rename(path, dst) < 0)
		log_warn("queue corrupt file left in place file=%s reason=\"%s\" error=\"%s\"", name,
			 why, strerror(errno));
	else
		log_warn("queue corrupt file moved file=%s to=%s reason=\"%s\"", name, dst, why);
}

long queue_scan(struct queue *q, void (*cb)(struct envelope *env, void *arg), void *arg)
{
	struct qf_reader r = {NULL, 0};
	long ok = 0, torn = 0, corrupt = 0, skipped = 0;
	uint64_t t0 = now_us();
	struct dirent *de;
	DIR *d;

	d = opendir(q->qdir);
	if (!d) {
		log_warn("queue scan failed dir=%s error=\"%s\"", q->qdir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX], err[128];
		struct envelope env;
		enum qf_status st;

		if (!scannable(de))
			continue;
		st = load_entry(&r, q->qdir, de->d_name, path, sizeof(path), &env, err, sizeof(err));
		switch (st) {
		case QF_OK: {
			struct envelope *e = xmalloc(sizeof(*e));

			*e = env;
			ok++;
			cb(e, arg);
			break;
		}
		case QF_TORN:
			torn++;
			if (unlink(path) < 0)
				log_warn("queue torn file not removed file=%s error=\"%s\"", de->d_name,
					 strerror(errno));
			else
				log_warn("queue torn file removed file=%s reason=\"%s\"", de->d_name, err);
			break;
		case QF_CORRUPT:
			corrupt++;
			move_aside(q, de->d_name, path, err);
			break;
		case QF_IOERR:
			skipped++;
			log_warn("queue file unreadable, left in place file=%s reason=\"%s\"", de->d_name,
				 err);
			break;
		}
	}
	closedir(d);
	qf_reader_free(&r);
	log_info("queue recovered messages=%ld torn=%ld corrupt=%ld unreadable=%ld us=%" PRIu64, ok,
		 torn, corrupt, skipped, now_us() - t0);
	return ok;
}

long queue_walk(const char *spool, void (*cb)(const char *path, struct envelope *env, void *arg),
		void *arg)
{
	struct qf_reader r = {NULL, 0};
	char qdir[PATH_MAX];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if ((size_t)snprintf(qdir, sizeof(qdir), "%s/queue", spool) >= sizeof(qdir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	d = opendir(qdir);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX], err[128];
		struct envelope env;

		if (!scannable(de))
			continue;
		/* Invalid files are normal here: a message still being received. */
		if (load_entry(&r, qdir, de->d_name, path, sizeof(path), &env, err, sizeof(err)) !=
		    QF_OK) {
			log_debug("queue walk skipped file=%s reason=\"%s\"", de->d_name, err);
			continue;
		}
		struct envelope *e = xmalloc(sizeof(*e));

		*e = env;
		n++;
		cb(path, e, arg);
	}
	closedir(d);
	qf_reader_free(&r);
	return n;
}
