/*
 * workq.h - a small pool of worker threads for blocking work (file
 * delivery, fsync) so the event loop never waits on the disk.
 *
 * work() runs on a worker thread and must not touch event-loop state;
 * done() then runs on the event loop thread. Jobs are started in FIFO
 * order. Completion is signalled to libevent with event_active() on an
 * internal event, so evthread_use_pthreads() must have been called
 * before the event_base was created.
 */
#ifndef TRANSIT_UTIL_WORKQ_H
#define TRANSIT_UTIL_WORKQ_H

struct event_base;
struct workq;

struct workq *workq_new(struct event_base *base, int nthreads);
void workq_submit(struct workq *wq, void (*work)(void *arg), void (*done)(void *arg), void *arg);
/* Jobs submitted and not yet done(). */
unsigned workq_pending(const struct workq *wq);
/* Stop accepting jobs, finish the running and queued ones (their done()
 * callbacks are NOT run), join the threads, free. */
void workq_free(struct workq *wq);

#endif
