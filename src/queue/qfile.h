/*
 * qfile.h - internals shared by the queue store's files (not for other
 * modules: they use queue.h).
 *
 *   qfile.c    the on-disk format: writer, parser/validator, qids,
 *              in-place recipient state, remove (docs/queue.md).
 *   recover.c  startup recovery (queue_scan) and the read-only walk.
 *   commit.c   queue_open/close, the group-commit sync thread, stats.
 */
#ifndef TRANSIT_QUEUE_QFILE_H
#define TRANSIT_QUEUE_QFILE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue/queue.h"

struct event;

#define QF_MAGIC "TRANSIT-QUEUE "
#define QF_VERSION 2		     /* written; 1 and 2 are read (docs/queue.md) */
#define QF_TRAILER_LEN 42	     /* "trailer <20 digits> <8 hex>\nend\n" */
#define QF_FIELD_MAX 8192	     /* longest envelope string (raw bytes) */
#define QF_LINE_MAX 65536	     /* longest header line, encoded */
#define QF_ENV_MAX (16u << 20)	     /* header (magic..data) at most 16 MiB */
#define QF_WBUF 65536		     /* writer buffer: one write(2) per flush */
#define QF_NODE_MAX 8		     /* node tag characters in a qid (40 bits) */

/* Outcome of reading one queue file. */
enum qf_status {
	QF_OK = 0,
	QF_TORN,    /* a prefix of a valid file: an unfinished or cut write */
	QF_CORRUPT, /* complete but wrong (CRC, syntax, unknown version) */
	QF_IOERR,   /* could not be read (permissions, EIO, EMFILE): leave it */
};

struct queue {
	char qdir[PATH_MAX];	  /* <spool>/queue */
	char corrupt_dir[PATH_MAX]; /* <spool>/corrupt */
	char node[QF_NODE_MAX + 1];
	enum queue_sync_mode sync;
	int dirfd; /* <spool>/queue, for fsync/syncfs */
	struct event_base *base;
	/* commit.c: sync thread state, all under mu */
	struct event *done_ev; /* activated by the sync thread; added while inflight > 0 */
	unsigned long inflight; /* commits whose callback has not run (loop thread only) */
	pthread_t thread;
	bool thread_started;
	bool stopping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queue_writer *pending, **pending_tail;
	struct queue_writer *done, **done_tail;
	struct queue_stats stats;
};

struct queue_writer {
	struct queue *q;
	int fd;
	int err; /* sticky errno; 0 while healthy */
	char path[PATH_MAX];
	struct envelope env; /* deep copy; state_off/content_off filled */
	uint32_t crc;	     /* over everything written, states counted as 'Q' */
	uint64_t off;	     /* logical file offset (written + buffered) */
	char *buf;
	size_t len;
	/* The content's CRC is taken over the write buffer when it is flushed
	 * (a few large crc32 calls, not one per line): buf[crc_from..len) is
	 * content not yet counted; crc_active between header and trailer. */
	size_t crc_from;
	bool crc_active;
	/* commit */
	queue_commit_cb cb;
	void *arg;
	int result;
	struct queue_writer *next;
};

/* commit.c: extra latency added to every group sync, in µs. Only the
 * benchmark in tests/unit/test_queue.c sets it, to show how batching
 * behaves on a disk slower than the one it runs on. Always 0 in transitd. */
extern unsigned qf_bench_sync_delay_us;

/* qfile.c */
/* Append the trailer and flush. 0, or -1 with errno (w->err set). */
int qf_writer_finish(struct queue_writer *w);
/* Close the fd, unlink on failure paths, free everything but w->env. */
void qf_writer_release(struct queue_writer *w, bool unlink_file);
/* A reusable read buffer for loading many files. */
struct qf_reader {
	char *buf;
	size_t cap;
};
enum qf_status qf_load(struct qf_reader *r, const char *path, struct envelope *env, char *err,
		       size_t errsz);
void qf_reader_free(struct qf_reader *r);
bool qf_valid_qid(const char *s);
/* The node tag put into qids: QF_NODE_MAX base-32 digits of a SHA-256
 * of the whole node name (ASCII case folded), so two nodes whose names
 * differ anywhere get different tags (40 bits: two of a thousand nodes
 * share one with a chance of about 5e-7). */
void qf_node_tag(const char *node, char out[QF_NODE_MAX + 1]);

#endif
