/*
 * sched_admin.h - what an administrator may do to the live queue
 * (transitctl queue freeze|thaw|retry|delete|suspend|resume, through the
 * control socket): the scheduler owns the queue, so every change goes
 * through it, on the event loop thread.
 *
 * Persistence (docs/queue.md, "Freeze and suspend"):
 *  - a frozen message has an empty marker file <spool>/frozen/<qid>; the
 *    queue file itself is not touched, so its format version stays and a
 *    transit without this feature still reads it (it just delivers).
 *  - suspended next hops are listed in <spool>/suspended, one per line
 *    ("*" = every next hop), written whole (temporary file + rename).
 * Both are written on the scheduler's file thread, never on the loop.
 *
 * Each operation on one message returns NULL on success or a short
 * reason it was not done ("no such message", "a delivery is in progress").
 */
#ifndef TRANSIT_QUEUE_SCHED_ADMIN_H
#define TRANSIT_QUEUE_SCHED_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct sched;

/* Stop trying the message (an attempt in progress finishes) until thawed. */
const char *sched_freeze(struct sched *s, const char *qid);
const char *sched_thaw(struct sched *s, const char *qid);
/* Try a deferred message now instead of at its retry time. */
const char *sched_retry(struct sched *s, const char *qid);
/* Remove the message. ndr: every pending recipient fails with 5.0.0 and
 * the sender gets the usual failure DSN (RFC 3464, as NOTIFY asks) before
 * the file goes; otherwise it goes silently. */
const char *sched_delete(struct sched *s, const char *qid, bool ndr);

/* A next hop as "transitctl queue list --by-next-hop" names it:
 * "CONNECTOR:DOMAIN", "mailbox:DOMAIN", a send connector's name alone (all
 * its domains), or "*" (everything: queue suspend --all). Mail keeps being
 * accepted and queued; it is not delivered until resumed. */
const char *sched_suspend(struct sched *s, const char *hop);
const char *sched_resume(struct sched *s, const char *hop);
/* The suspended next hops, for status. */
void sched_suspended_each(const struct sched *s, void (*cb)(const char *hop, void *arg), void *arg);

/* Messages held by the scheduler, by state. */
struct sched_counts {
	size_t total;
	size_t active;	 /* ready or being delivered */
	size_t deferred; /* waiting for their retry time */
	size_t frozen;
	size_t held;	 /* waiting for a suspended next hop */
};
void sched_counts(const struct sched *s, struct sched_counts *out);

#endif
