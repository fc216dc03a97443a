/*
 * logdir.c - see logdir.h. Everything below bgwriter's sink and tick runs
 * on the writer thread; the only state shared with producers is the ring
 * (bgwriter) and the error counter (atomic).
 */
#include "log/logdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bgwriter.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define LOGDIR_PRUNE_EVERY_MS 60000
/* Lines reach the file at most about this late; under load the writer
 * wakes 50 times a second, not once per line (docs/performance.md). */
#define LOGDIR_BATCH_MS 20

struct logdir {
	struct bgwriter *w;
	char *dir, *prefix, *suffix;
	struct logdir_limits lim;
	/* writer thread only */
	int fd;
	uint64_t size;	      /* of the open file */
	char name[NAME_MAX + 1]; /* of the open file */
	unsigned seq;
	bool failing;	      /* the last write failed (logged once) */
	unsigned long lost_since; /* records lost since failing began */
	uint64_t last_prune_ms;
	/* shared */
	unsigned long errors; /* __atomic */
};

static unsigned long count_records(const char *p, size_t n)
{
	unsigned long k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

static void logdir_lost(struct logdir *d, const char *p, size_t n, const char *what, int err)
{
	unsigned long k = count_records(p, n);

	__atomic_add_fetch(&d->errors, k, __ATOMIC_RELAXED);
	d->lost_since += k;
	if (!d->failing)
		log_warn("log %s/%s: cannot %s: %s (records are lost and counted until it works "
			 "again)",
			 d->dir, d->name[0] ? d->name : d->prefix, what, strerror(err));
	d->failing = true;
}

static void logdir_works(struct logdir *d)
{
	if (d->failing)
		log_info("log %s: writing again, %lu records lost", d->dir, d->lost_since);
	d->failing = false;
	d->lost_since = 0;
}

static void mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	if (!str_copy(tmp, dir, sizeof(tmp)))
		return;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(tmp, 0750);
		*p = '/';
	}
	(void)mkdir(tmp, 0750);
}

static void logdir_close_file(struct logdir *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	d->size = 0;
}

static void logdir_maybe_prune(struct logdir *d, bool now)
{
	uint64_t ms = clock_mono_ms();

	if (!now && mono_elapsed_ms(d->last_prune_ms, ms) < LOGDIR_PRUNE_EVERY_MS)
		return;
	d->last_prune_ms = ms;
	(void)logdir_prune(d->dir, d->prefix, d->suffix, &d->lim, time(NULL),
			   d->fd >= 0 ? d->name : NULL);
}

/* A new file; false (errno) when it cannot be created. */
static bool logdir_new_file(struct logdir *d)
{
	char path[PATH_MAX];
	struct tm tm;
	struct stat st;
	time_t t = time(NULL);

	logdir_close_file(d);
	gmtime_r(&t, &tm);
	snprintf(d->name, sizeof(d->name), "%s-%04d%02d%02d-%02d%02d%02d-%04u%s", d->prefix,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 d->seq++ % 10000, d->suffix);
	mkdir_p(d->dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->dir, d->name) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return false;
	}
	d->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (d->fd < 0)
		return false;
	d->size = fstat(d->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	logdir_maybe_prune(d, true);
	return true;
}

/* Write p[0..n) to the open file; false (errno) on an error. */
static bool logdir_write_all(struct logdir *d, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(d->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return false;
		}
		p += w;
		n -= (size_t)w;
		d->size += (uint64_t)w;
	}
	return true;
}

/* How much of p[0..n) (whole records) fits in the open file: 0 means
 * rotate first; a record longer than a whole file goes alone into an
 * empty one. */
static size_t logdir_fit(const struct logdir *d, const char *p, size_t n)
{
	uint64_t room = d->size < d->lim.max_file_size ? d->lim.max_file_size - d->size : 0;
	const char *lf;

	if (n <= room)
		return n;
	for (lf = NULL; room > 0; room--)
		if (p[room - 1] == '\n') {
			lf = p + room;
			break;
		}
	if (lf != NULL)
		return (size_t)(lf - p);
	if (d->size > 0)
		return 0;
	lf = memchr(p, '\n', n);
	return lf ? (size_t)(lf - p) + 1 : n;
}

static void logdir_sink(void *arg, const char *p, size_t n)
{
	struct logdir *d = arg;

	while (n > 0) {
		size_t k;

		if (d->fd < 0 && !logdir_new_file(d)) {
			logdir_lost(d, p, n, "create a file", errno);
			logdir_close_file(d);
			return;
		}
		k = logdir_fit(d, p, n);
		if (k == 0) {
			if (!logdir_new_file(d)) {
				logdir_lost(d, p, n, "create a file", errno);
				logdir_close_file(d);
				return;
			}
			continue;
		}
		if (!logdir_write_all(d, p, k)) {
			logdir_lost(d, p, n, "write", errno);
			logdir_close_file(d); /* try a fresh file next time */
			return;
		}
		logdir_works(d);
		p += k;
		n -= k;
	}
}

static void logdir_tick(void *arg) { logdir_maybe_prune(arg, false); }

struct logdir *logdir_open(const char *dir, const char *prefix, const char *suffix,
			   const struct logdir_limits *lim, size_t ring_size)
{
	struct logdir *d = xcalloc(1, sizeof(*d));

	d->dir = xstrdup(dir);
	d->prefix = xstrdup(prefix);
	d->suffix = xstrdup(suffix);
	d->lim = *lim;
	d->fd = -1;
	d->last_prune_ms = clock_mono_ms();
	(void)logdir_prune(d->dir, d->prefix, d->suffix, &d->lim, time(NULL), NULL);
	d->w = bgwriter_start(ring_size, LOGDIR_BATCH_MS, logdir_sink, logdir_tick, NULL, d);
	if (d->w == NULL) {
		log_warn("log %s: cannot start the writer thread", dir);
		free(d->dir);
		free(d->prefix);
		free(d->suffix);
		free(d);
		return NULL;
	}
	return d;
}

bool logdir_put(struct logdir *d, const char *p, size_t n) { return bgwriter_put(d->w, p, n); }

unsigned long logdir_write_errors(const struct logdir *d)
{
	return __atomic_load_n(&d->errors, __ATOMIC_RELAXED);
}

unsigned long logdir_dropped(const struct logdir *d) { return bgwriter_dropped(d->w); }

void logdir_flush(struct logdir *d, int ms)
{
	if (d != NULL)
		bgwriter_flush(d->w, ms);
}

void logdir_close(struct logdir *d)
{
	if (d == NULL)
		return;
	bgwriter_stop(d->w);
	logdir_close_file(d);
	free(d->dir);
	free(d->prefix);
	free(d->suffix);
	free(d);
}

/* ---- pruning ---------------------------------------------------------------- */

struct logfile {
	char *name;
	uint64_t size;
	time_t mtime;
};

static int logfile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct logfile *)a)->name, ((const struct logfile *)b)->name);
}

static bool logdir_owns(const char *name, const char *prefix, const char *suffix)
{
	size_t n = strlen(name), p = strlen(prefix), s = strlen(suffix);

	return n > p + 1 + s && strncmp(name, prefix, p) == 0 && name[p] == '-' &&
	       strcmp(name + n - s, suffix) == 0;
}

unsigned logdir_prune(const char *dir, const char *prefix, const char *suffix,
		      const struct logdir_limits *lim, time_t now, const char *keep)
{
	DIR *dh = opendir(dir);
	struct logfile *f = NULL;
	size_t nf = 0, cap = 0, i;
	uint64_t total = 0;
	unsigned removed = 0;
	struct dirent *de;

	if (dh == NULL)
		return 0;
	while ((de = readdir(dh)) != NULL) {
		struct stat st;
		if (!logdir_owns(de->d_name, prefix, suffix) ||
		    fstatat(dirfd(dh), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (nf == cap) {
			cap = cap ? cap * 2 : 64;
			f = xrealloc(f, cap * sizeof(*f));
		}
		f[nf].name = xstrdup(de->d_name);
		f[nf].size = (uint64_t)st.st_size;
		f[nf].mtime = st.st_mtime;
		total += f[nf].size;
		nf++;
	}
	if (nf > 0)
		qsort(f, nf, sizeof(*f), logfile_cmp);
	for (i = 0; i < nf; i++) {
		bool too_old = age_seconds(now, f[i].mtime) > lim->max_age;
		if ((total > lim->max_dir_size || too_old) &&
		    (keep == NULL || strcmp(f[i].name, keep) != 0) &&
		    unlinkat(dirfd(dh), f[i].name, 0) == 0) {
			total -= f[i].size;
			removed++;
		}
		free(f[i].name);
	}
	free(f);
	closedir(dh);
	return removed;
}
