/*
 * sched.h - the delivery scheduler: which queued recipient is tried when.
 *
 * Every committed (or recovered) message is handed to sched_add(). The
 * scheduler routes each pending recipient (a mailbox of an authoritative
 * accepted domain goes to the Maildir agent; anything else waits for a
 * send connector), collects the ready deliveries of one loop iteration
 * into batches for the worker threads (one sync round per batch), records
 * each outcome in the queue file, retries temporary failures on the
 * queue.retry schedule, and expires recipients after queue.expire.
 * Runs on the event loop thread only.
 */
#ifndef TRANSIT_QUEUE_SCHED_H
#define TRANSIT_QUEUE_SCHED_H

#include <stddef.h>

#include "conf/conf.h"
#include "mail/envelope.h"

struct event_base;
struct queue;
struct sched;

struct sched *sched_new(const struct config *conf, struct event_base *base, struct queue *q);
/* Take ownership of a committed message (malloc'ed envelope). */
void sched_add(struct sched *s, struct envelope *env);
/* Messages the scheduler holds (queued, deferred or in flight). */
size_t sched_count(const struct sched *s);
/* Stop the workers (running deliveries finish), free everything. */
void sched_free(struct sched *s);

#endif
