/*
 * maildir.c - local delivery into Maildir (see maildir.h; the maildir(5)
 * format of qmail as read by Dovecot and Courier; RFC 5321 4.4 for the
 * Return-Path field added at final delivery; RFC 3463 status codes).
 *
 * Per job: name "<arrival>.<qid>_<rcpt_index>.<host>" (host from
 * gethostname(), '/' -> "\057", ':' -> "\072" as the spec asks), so a
 * retry after a crash picks the same name. tmp/<name> is created with
 * O_EXCL (a stale one can only be ours, from a crash, and is removed
 * first), "Return-Path: <sender>" and "Delivered-To: <rcpt>" are written,
 * then the content is copied from the queue file with pread() in 64 KiB
 * blocks, CRLF -> LF (a bare CR is kept). A missing maildir (and its
 * parents) is created 0700.
 *
 * Then per batch (in chunks of MAILDIR_CHUNK to bound open files): make
 * every tmp file durable, link(tmp, new/name) (EEXIST: delivered by an
 * earlier attempt, status 0; no stat() first, since a redelivery after a
 * crash is rare and a stat on every delivery is not), unlink tmp, and
 * make each new/ directory durable once (also after EEXIST: the crash may
 * have come before that sync).
 *
 * Sync strategy, measured on ext4 by counting device cache flushes
 * (/sys/block/<dev>/stat, field 16) per batch of 8 KiB files plus one
 * directory fsync:
 *     files   fdatasync each   sync_file_range+fdatasync   syncfs once
 *       1           2                    2                      2
 *       8           9                    9                      2
 *      64          65                   65                      2
 * and fsync of k distinct directories costs k flushes where one syncfs
 * costs 1. Wall time on this VM is flat (its flushes are nearly free),
 * but on a real disk a flush costs 0.1-10 ms, so the flush count is the
 * cost. fdatasync each is bounded to our own files (syncfs also writes
 * back whatever else is dirty on the filesystem), so: below
 * MAILDIR_SYNCFS_MIN files (or directories) sync each one; from there on
 * one syncfs(2) per filesystem (st_dev) the batch touches. Linux >= 5.8
 * reports writeback errors through syncfs; an error fails every job of
 * that filesystem with a temporary status, and the retry finds whatever
 * did reach new/ through EEXIST.
 *
 * Status: 0 delivered (or found delivered); 1 temporary (4.x.x: I/O,
 * permissions, anything unexpected; 4.2.2 for ENOSPC/EDQUOT); -1
 * permanent (5.x.x: a recipient the directory does not know (5.1.1), a
 * maildir path that is not absolute, too long or has a "." or ".."
 * component, a malformed queue id). Jobs of one batch must have distinct
 * (maildir, qid, rcpt_index).
 *
 * Runs on a worker thread: no event-loop state, no static buffers.
 */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define MAILDIR_IO_BLOCK (64 * 1024)
#define MAILDIR_CHUNK 64      /* jobs synced together; bounds open files */
#define MAILDIR_SYNCFS_MIN 8  /* from this many files/dirs on, syncfs */
#define MAILDIR_HOST_MAX 128  /* encoded host name in file names */

/* Per-job work state, private to one chunk. */
struct maildir_state {
	int fd;			  /* open tmp file, -1 when none */
	bool write_new;		  /* a tmp file was written and must be linked */
	char name[NAME_MAX + 1];
	/* same length as maildir_job.path ("tmp" vs "new"), so that size fits */
	char tmp[sizeof(((struct maildir_job *)0)->path)];
	char newdir[sizeof(((struct maildir_job *)0)->path)];
	dev_t dev; /* of the tmp file, then of new/ */
};

struct maildir_ctx {
	char host[MAILDIR_HOST_MAX];
	char in[MAILDIR_IO_BLOCK];
	char out[MAILDIR_IO_BLOCK];
	size_t outlen;
	int outfd;
	int qfd; /* queue file kept open across jobs of the same message */
	char qpath[PATH_MAX];
	struct maildir_state st[MAILDIR_CHUNK];
};

/* ---- errors ----------------------------------------------------------- */

static void maildir_fail(struct maildir_job *j, int status, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void maildir_fail(struct maildir_job *j, int status, const char *fmt, ...)
{
	va_list ap;

	j->status = status;
	va_start(ap, fmt);
	vsnprintf(j->error, sizeof(j->error), fmt, ap);
	va_end(ap);
}

/* A system call failed: quota and full disk are 4.2.2, the rest 4.3.0. */
static void maildir_fail_errno(struct maildir_job *j, const char *op, const char *what, int err)
{
	char buf[128];
	const char *msg = strerror_r(err, buf, sizeof(buf));

	if (err == ENOSPC || err == EDQUOT)
		maildir_fail(j, 1, "4.2.2 mailbox full (%s %s: %s)", op, what, msg);
	else
		maildir_fail(j, 1, "4.3.0 %s %s: %s", op, what, msg);
}

/* ---- small file helpers ------------------------------------------------- */

/* mkdir one directory (0700); a new one is made durable in its parent. */
static int maildir_mkdir_one(char *path)
{
	char *slash;
	int rc;

	if (mkdir(path, 0700) < 0)
		return errno == EEXIST ? 0 : -1;
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return fsync_dir("/");
	*slash = '\0';
	rc = fsync_dir(path);
	*slash = '/';
	return rc;
}

/* Create root, its missing parents and tmp/ new/ cur/. -1 + errno. */
static int maildir_create(const char *root)
{
	static const char *const sub[] = {"tmp", "new", "cur"};
	char path[PATH_MAX];
	size_t i, n = strlen(root);

	if (n + 5 > sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, root, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		if (path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (maildir_mkdir_one(path) < 0)
			return -1;
		path[i] = root[i];
	}
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, sub[i]);
		if (maildir_mkdir_one(path) < 0)
			return -1;
	}
	return 0;
}

/* gethostname() encoded for a maildir file name. */
static void maildir_hostname(char *out, size_t outsz)
{
	char raw[256];
	size_t i, o = 0;

	if (gethostname(raw, sizeof(raw)) < 0 || raw[0] == '\0')
		str_copy(raw, "localhost", sizeof(raw));
	raw[sizeof(raw) - 1] = '\0';
	for (i = 0; raw[i] != '\0' && o + 5 < outsz; i++) {
		if (raw[i] == '/' || raw[i] == ':') {
			memcpy(out + o, raw[i] == '/' ? "\\057" : "\\072", 4);
			o += 4;
		} else {
			out[o++] = raw[i];
		}
	}
	out[o] = '\0';
}

static bool maildir_qid_ok(const char *qid)
{
	size_t i;

	if (qid == NULL || qid[0] == '\0' || strlen(qid) > 64)
		return false;
	for (i = 0; qid[i] != '\0'; i++)
		if (!((qid[i] >= 'A' && qid[i] <= 'Z') || (qid[i] >= 'a' && qid[i] <= 'z') ||
		      (qid[i] >= '0' && qid[i] <= '9')))
			return false;
	return true;
}

/* ---- writing one message ------------------------------------------------ */

static int maildir_out_flush(struct maildir_ctx *c)
{
	if (c->outlen == 0)
		return 0;
	if (write_full(c->outfd, c->out, c->outlen) < 0)
		return -1;
	c->outlen = 0;
	return 0;
}

static int maildir_out_putc(struct maildir_ctx *c, char ch)
{
	if (c->outlen == sizeof(c->out) && maildir_out_flush(c) < 0)
		return -1;
	c->out[c->outlen++] = ch;
	return 0;
}

/* "Name: <value>\n" (or without brackets); control characters in the
 * value become '?' so an address can never start a new header line. */
static int maildir_out_header(struct maildir_ctx *c, const char *name, const char *value,
			      bool brackets)
{
	const char *p;

	for (p = name; *p; p++)
		if (maildir_out_putc(c, *p) < 0)
			return -1;
	if (maildir_out_putc(c, ':') < 0 || maildir_out_putc(c, ' ') < 0 ||
	    (brackets && maildir_out_putc(c, '<') < 0))
		return -1;
	for (p = value != NULL ? value : ""; *p; p++) {
		unsigned char u = (unsigned char)*p;
		if (maildir_out_putc(c, (u < 0x20 || u == 0x7f) ? '?' : *p) < 0)
			return -1;
	}
	if ((brackets && maildir_out_putc(c, '>') < 0) || maildir_out_putc(c, '\n') < 0)
		return -1;
	return 0;
}

/* Open (or reuse) the queue file of the job. */
static int maildir_queue_fd(struct maildir_ctx *c, const char *path)
{
	if (c->qfd >= 0 && strcmp(c->qpath, path) == 0)
		return c->qfd;
	if (c->qfd >= 0)
		close(c->qfd);
	c->qfd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->qfd >= 0 && !str_copy(c->qpath, path, sizeof(c->qpath))) {
		close(c->qfd); /* too long to remember: use once */
		c->qfd = -1;
		errno = ENAMETOOLONG;
	}
	return c->qfd;
}

/* Copy [off, off+len) of the queue file as LF text. 0, or -1 with the
 * failing operation in *op and errno set (0 for a truncated file). */
static int maildir_copy_content(struct maildir_ctx *c, int qfd, uint64_t off, uint64_t len,
				const char **op)
{
	bool pending_cr = false;

	while (len > 0) {
		size_t want = len < sizeof(c->in) ? (size_t)len : sizeof(c->in);
		ssize_t r = pread(qfd, c->in, want, (off_t)off);
		size_t i;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			*op = "read";
			return -1;
		}
		for (i = 0; i < (size_t)r; i++) {
			char ch = c->in[i];
			if (pending_cr && ch != '\n' && maildir_out_putc(c, '\r') < 0)
				goto write_error;
			pending_cr = ch == '\r';
			if (!pending_cr && maildir_out_putc(c, ch) < 0)
				goto write_error;
		}
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	if (pending_cr && maildir_out_putc(c, '\r') < 0)
		goto write_error;
	if (maildir_out_flush(c) < 0)
		goto write_error;
	return 0;
write_error:
	*op = "write";
	return -1;
}

/* Create tmp/<name>, creating the maildir when it is missing. */
static int maildir_open_tmp(const struct maildir_job *j, const char *tmp)
{
	int fd, flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;

	if (unlink(tmp) < 0 && errno != ENOENT && errno != ENOTDIR)
		return -1;
	fd = open(tmp, flags, 0600);
	if (fd < 0 && errno == ENOENT) {
		if (maildir_create(j->maildir) < 0)
			return -1;
		fd = open(tmp, flags, 0600);
	}
	return fd;
}

/* Names and paths of a job; permanent failure when they cannot be made
 * (temporary when the directory cannot tell whether the mailbox exists). */
static int maildir_names(struct maildir_ctx *c, struct maildir_job *j, struct maildir_state *s)
{
	int n, known = j->mailbox_known ? j->mailbox_known(j->known_arg, j->rcpt) : 1;

	if (known < 0) {
		maildir_fail(j, 1, "4.4.3 directory unavailable: cannot tell whether <%s> exists",
			     j->rcpt);
		return -1;
	}
	if (known == 0) {
		maildir_fail(j, -1, "5.1.1 no such mailbox: the directory does not know <%s>", j->rcpt);
		return -1;
	}
	if (j->maildir == NULL || j->maildir[0] != '/') {
		maildir_fail(j, -1, "5.3.5 maildir path is not absolute");
		return -1;
	}
	if (!mailbox_path_contained(j->maildir)) {
		maildir_fail(j, -1, "5.3.5 maildir path has a \".\" or \"..\" component");
		return -1;
	}
	if (!maildir_qid_ok(j->qid)) {
		maildir_fail(j, -1, "5.3.0 malformed queue id");
		return -1;
	}
	n = snprintf(s->name, sizeof(s->name), "%lld.%s_%u.%s", (long long)j->arrival, j->qid,
		     j->rcpt_index, c->host);
	if (n < 0 || (size_t)n >= sizeof(s->name) ||
	    snprintf(s->tmp, sizeof(s->tmp), "%s/tmp/%s", j->maildir, s->name) >=
		(int)sizeof(s->tmp) ||
	    snprintf(s->newdir, sizeof(s->newdir), "%s/new", j->maildir) >=
		(int)sizeof(s->newdir) ||
	    snprintf(j->path, sizeof(j->path), "%s/%s", s->newdir, s->name) >=
		(int)sizeof(j->path)) {
		maildir_fail(j, -1, "5.3.5 maildir path too long");
		return -1;
	}
	return 0;
}

/* Phase 1: write tmp/<name>. */
static void maildir_prepare(struct maildir_ctx *c, struct maildir_job *j, struct maildir_state *s)
{
	struct stat st;
	const char *op = "open";
	int qfd, saved;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	j->status = 0;
	j->error[0] = '\0';
	j->path[0] = '\0';
	if (maildir_names(c, j, s) < 0)
		return;

	if ((qfd = maildir_queue_fd(c, j->queue_path)) < 0) {
		maildir_fail_errno(j, "open", "queue file", errno);
		return;
	}
	if ((s->fd = maildir_open_tmp(j, s->tmp)) < 0) {
		maildir_fail_errno(j, "create", "tmp file", errno);
		return;
	}
	c->outfd = s->fd;
	c->outlen = 0;
	if (maildir_out_header(c, "Return-Path", j->return_path, true) < 0 ||
	    maildir_out_header(c, "Delivered-To", j->rcpt, false) < 0 ||
	    maildir_copy_content(c, qfd, j->content_off, j->content_len, &op) < 0 ||
	    fstat(s->fd, &st) < 0) {
		saved = errno;
		if (saved == 0)
			maildir_fail(j, 1, "4.3.0 queue file shorter than its content");
		else
			maildir_fail_errno(
			    j, op, strcmp(op, "read") == 0 ? "queue file" : "tmp file", saved);
		close(s->fd);
		s->fd = -1;
		unlink(s->tmp);
		return;
	}
	s->dev = st.st_dev;
	s->write_new = true;
}

/* ---- batch phases ---------------------------------------------------- */

static bool maildir_ready(const struct maildir_job *j, const struct maildir_state *s)
{
	return j->status == 0 && s->fd >= 0;
}

/* Fail written job i: close and remove its tmp file. */
static void maildir_drop(struct maildir_job *jobs, struct maildir_state *st, size_t i,
			 const char *op, int err)
{
	maildir_fail_errno(&jobs[i], op, "tmp file", err);
	close(st[i].fd);
	st[i].fd = -1;
	unlink(st[i].tmp);
}

/* Phase 2: make the tmp files durable. */
static void maildir_sync_files(struct maildir_job *jobs, struct maildir_state *st, size_t n)
{
	size_t i, k, nready = 0;

	for (i = 0; i < n; i++)
		nready += maildir_ready(&jobs[i], &st[i]);
	if (nready < MAILDIR_SYNCFS_MIN) {
		for (i = 0; i < n; i++)
			if (maildir_ready(&jobs[i], &st[i]) && fdatasync(st[i].fd) < 0)
				maildir_drop(jobs, st, i, "fdatasync", errno);
		return;
	}
	/* one syncfs per filesystem, run from its first file */
	for (i = 0; i < n; i++) {
		bool first = maildir_ready(&jobs[i], &st[i]);
		int err = 0;

		for (k = 0; first && k < i; k++)
			if (maildir_ready(&jobs[k], &st[k]) && st[k].dev == st[i].dev)
				first = false;
		if (!first || syncfs(st[i].fd) == 0)
			continue;
		err = errno;
		for (k = n; k-- > i;)
			if (maildir_ready(&jobs[k], &st[k]) && st[k].dev == st[i].dev)
				maildir_drop(jobs, st, k, "syncfs", err);
	}
}

/* Phase 3: close, link into new/, remove tmp. */
static void maildir_link_all(struct maildir_job *jobs, struct maildir_state *st, size_t n)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (st[i].fd >= 0) {
			close(st[i].fd);
			st[i].fd = -1;
		}
		if (jobs[i].status != 0 || !st[i].write_new)
			continue;
		r = link(st[i].tmp, jobs[i].path);
		if (r < 0 && errno == ENOENT && maildir_create(jobs[i].maildir) == 0)
			r = link(st[i].tmp, jobs[i].path);
		if (r < 0 && errno != EEXIST) /* EEXIST: delivered before */
			maildir_fail_errno(&jobs[i], "link", "into new/", errno);
		if (unlink(st[i].tmp) < 0 && errno != ENOENT)
			log_warn("%s maildir unlink tmp=%s error=%d", jobs[i].qid, st[i].tmp,
				 errno);
	}
}

/* Phase 4: make each distinct new/ directory durable once (or one
 * syncfs per filesystem when there are many). */
static void maildir_sync_dirs(struct maildir_job *jobs, struct maildir_state *st, size_t n)
{
	size_t owner[MAILDIR_CHUNK]; /* first job with the same new/ */
	size_t i, k, ndirs = 0;
	struct stat sb;
	bool many;

	for (i = 0; i < n; i++) {
		owner[i] = i;
		if (jobs[i].status != 0)
			continue;
		for (k = 0; k < i && owner[i] == i; k++)
			if (jobs[k].status == 0 && strcmp(st[k].newdir, st[i].newdir) == 0)
				owner[i] = owner[k];
		if (owner[i] == i) {
			ndirs++;
			st[i].dev = stat(st[i].newdir, &sb) == 0 ? sb.st_dev : 0;
		} else {
			st[i].dev = st[owner[i]].dev;
		}
	}
	many = ndirs >= MAILDIR_SYNCFS_MIN;
	for (i = 0; i < n; i++) {
		bool done = false;
		int fd, rc, err;

		if (jobs[i].status != 0 || owner[i] != i)
			continue;
		for (k = 0; many && k < i && !done; k++) /* this filesystem was synced */
			done = jobs[k].status == 0 && owner[k] == k && st[k].dev == st[i].dev;
		if (done)
			continue;
		fd = open(st[i].newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = fd < 0 ? -1 : (many ? syncfs(fd) : fsync(fd));
		err = errno;
		if (fd >= 0)
			close(fd);
		if (rc == 0)
			continue;
		for (k = i; k < n; k++)
			if (jobs[k].status == 0 && (many ? st[k].dev == st[i].dev : owner[k] == i))
				maildir_fail_errno(&jobs[k], "sync", "new/", err);
	}
}

static void maildir_chunk(struct maildir_ctx *c, struct maildir_job *jobs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		maildir_prepare(c, &jobs[i], &c->st[i]);
	maildir_sync_files(jobs, c->st, n);
	maildir_link_all(jobs, c->st, n);
	maildir_sync_dirs(jobs, c->st, n);
	for (i = 0; i < n; i++)
		if (jobs[i].status != 0)
			jobs[i].path[0] = '\0';
}

void maildir_deliver_batch(struct maildir_job *jobs, size_t n)
{
	struct maildir_ctx *c;
	size_t i;

	if (n == 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->qfd = -1;
	maildir_hostname(c->host, sizeof(c->host));
	for (i = 0; i < n; i += MAILDIR_CHUNK)
		maildir_chunk(c, jobs + i, n - i < MAILDIR_CHUNK ? n - i : MAILDIR_CHUNK);
	if (c->qfd >= 0)
		close(c->qfd);
	free(c);
}
