/*
 * queue.h - the durable message store (DESIGN.md "Queue: what it must
 * guarantee"; on-disk format in docs/queue.md).
 *
 * One file per message under <spool>/queue/, named by its queue id,
 * holding a versioned header, the envelope, the content and a trailer
 * with a CRC32; a file whose trailer is missing or wrong is torn and is
 * discarded at startup, never delivered.
 *
 * Group commit: queue_writer_commit() hands the finished file to a sync
 * thread that makes everything waiting durable with one round of syncs
 * (see queue.sync) and then calls every waiting callback on the event
 * loop. Only then may the server answer 250.
 *
 * All functions except the sync thread's internals run on the event loop
 * thread (or in a tool like transitctl with base == NULL, read-only).
 */
#ifndef TRANSIT_QUEUE_QUEUE_H
#define TRANSIT_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/envelope.h"

struct event_base;
struct queue;
struct queue_writer;

enum queue_sync_mode {
	QUEUE_SYNC_FSYNC = 0, /* fdatasync each file of the batch, then fsync the directory once */
	QUEUE_SYNC_SYNCFS = 1, /* one syncfs(2) of the spool filesystem per batch */
};

/* Open (creating <spool>/queue if needed) the store. node: this node's
 * name; a hash of it ends every queue id so ids are unique across nodes.
 * base may be NULL for read-only use (transitctl); then no sync thread
 * is started and writers must not be used. NULL + err on failure. */
struct queue *queue_open(const char *spool, const char *node, enum queue_sync_mode sync,
			 struct event_base *base, char *err, size_t errsz);
void queue_close(struct queue *q);

/* New unique, sortable queue id (time-based, strictly increasing in
 * this process; A-Z0-9 only, fixed length: 11 + 8 characters). */
void queue_new_qid(struct queue *q, char out[QID_MAX]);

/* Full path of a message file. */
void queue_path(const struct queue *q, const char *qid, char *out, size_t outsz);

/* --- receiving ------------------------------------------------------- */

/* Start a message: env->qid must already be set (queue_new_qid); the
 * envelope (with all recipients) is written now. NULL + errno on error. */
struct queue_writer *queue_writer_new(struct queue *q, const struct envelope *env);
/* Append content bytes (buffered). -1 + errno on a write error; after an
 * error the writer only accepts abort. */
int queue_writer_write(struct queue_writer *w, const void *p, size_t n);
uint64_t queue_writer_size(const struct queue_writer *w); /* content bytes so far */
/* Drop the message: close and unlink. Frees w. */
void queue_writer_abort(struct queue_writer *w);

/* Write the trailer and commit. cb runs later on the event loop, after
 * the group sync, with error 0 (durable: answer 250) or an errno (the
 * file was removed: answer 451 4.3.0). On success env is the committed
 * envelope with content_off/len and state_off filled (owned by the
 * store's caller after the callback: the callback takes ownership and
 * must envelope_free() + free() it). w is freed by the store. */
typedef void (*queue_commit_cb)(void *arg, int error, struct envelope *env);
void queue_writer_commit(struct queue_writer *w, queue_commit_cb cb, void *arg);

/* --- after commit ---------------------------------------------------- */

/* Record a recipient's final state in place (one byte, Postfix-style,
 * not synced: a lost update means at-least-once redelivery). */
int queue_set_rcpt_state(struct queue *q, struct envelope *env, size_t idx, char state);
/* On disk only: still queued, and a DELAY DSN reported it (format 2). In
 * memory such a recipient is RCPT_QUEUED with delay_notified set. */
#define QUEUE_STATE_DELAY_NOTIFIED 'N'
/* The same for a thread that has no struct queue (the scheduler's file
 * worker): state ('Q', 'D', 'F', or 'N' = delay notified, which only
 * replaces 'Q' and only in a version 2 file) into the state bytes at
 * state_off[0..n) of the queue file at path, each checked to be a state
 * byte after "rcpt " first. 0, or -1 + errno. */
int queue_file_set_states(const char *path, const uint64_t *state_off, size_t n, char state);
/* Remove a message whose recipients are all final. */
int queue_remove(struct queue *q, const char *qid);

/* Read one queue file (full path). Returns 0 and fills env (caller
 * envelope_free()s), or -1 with a reason in err (torn, bad version...). */
int queue_load(const char *path, struct envelope *env, char *err, size_t errsz);

/* Startup recovery: visit every valid message (cb takes ownership of a
 * malloc'ed envelope); torn or unreadable files are logged and removed
 * (moved to <spool>/corrupt/ when they parse partly, for the admin).
 * Returns the number of messages recovered, -1 on a directory error. */
long queue_scan(struct queue *q, void (*cb)(struct envelope *env, void *arg), void *arg);

/* The list used by "transitctl queue list": like queue_scan but
 * read-only (never removes anything). */
long queue_walk(const char *spool, void (*cb)(const char *path, struct envelope *env, void *arg),
		void *arg);

/* --- observing group commit (added by the queue store) --------------- */

/* Counters of the sync thread since queue_open. messages / batches is
 * the mean group size; sync_us / batches the mean cost of one sync. */
struct queue_stats {
	uint64_t batches;   /* group syncs done */
	uint64_t messages;  /* messages that went through them (ok or failed) */
	uint64_t failed;    /* messages whose sync failed (unlinked, cb got errno) */
	uint64_t max_batch; /* largest batch seen */
	uint64_t sync_us;   /* total time spent in fdatasync/fsync/syncfs, µs */
};
void queue_stats(struct queue *q, struct queue_stats *out);

/* --- shutdown ---------------------------------------------------------- */

/* Commits whose callback has not run yet (event loop thread). The daemon
 * closes the store only when this is 0, so no callback runs after the
 * sessions and the scheduler that wait for them are gone. */
unsigned long queue_inflight(const struct queue *q);

#endif
