/*
 * commit.c - opening and closing the queue store, and group commit
 * (DESIGN.md "Queue: what it must guarantee"; protocol in docs/queue.md).
 *
 * queue_writer_commit() writes the trailer on the caller's (event loop)
 * thread, then appends the writer to the pending list. One sync thread
 * per queue takes EVERYTHING pending as one batch and makes it durable:
 *   QUEUE_SYNC_FSYNC   start writeback of every file (sync_file_range),
 *                      fdatasync each file, then fsync the queue
 *                      directory once (the new names);
 *   QUEUE_SYNC_SYNCFS  one syncfs(2) of the spool filesystem.
 * While it syncs, new commits pile up for the next batch, so the number
 * of syncs per second stays at the disk's sync rate whatever the message
 * rate. The finished batch goes to a done list and event_active() wakes
 * the loop, where every callback runs (error 0 + the committed envelope,
 * or an errno after the file was unlinked). Requires
 * evthread_use_pthreads() before the event base was created. While a
 * commit is in flight the done event is added to the base, so
 * event_base_dispatch() does not return before its callback ran.
 * queue_close() lets the thread finish what is pending and runs the
 * remaining callbacks itself.
 *
 * Locking: q->mu guards pending, done, stopping and stats; the writer
 * objects are owned by the list they are on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "queue/qfile.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* Append the list starting at w to *tail, return the new tail. */
static struct queue_writer **list_append(struct queue_writer **tail, struct queue_writer *w)
{
	*tail = w;
	while (*tail)
		tail = &(*tail)->next;
	return tail;
}

/* ---- the sync thread ----------------------------------------------- */

static void fail_batch(struct queue_writer *batch, int err)
{
	for (; batch; batch = batch->next)
		if (batch->result == 0)
			batch->result = err;
}

/* Make every file of the batch durable; sets each w->result. Returns
 * the time spent syncing in µs. */
unsigned qf_bench_sync_delay_us;

static uint64_t sync_batch(struct queue *q, struct queue_writer *batch)
{
	uint64_t t0 = clock_mono_us();
	struct queue_writer *w;

	if (qf_bench_sync_delay_us)
		usleep(qf_bench_sync_delay_us);
	if (q->sync == QUEUE_SYNC_SYNCFS) {
		if (syncfs(q->dirfd) < 0)
			fail_batch(batch, errno);
	} else {
		/* Start all the writeback first so the disk sees it together. */
		for (w = batch; w; w = w->next)
			(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		for (w = batch; w; w = w->next)
			if (fdatasync(w->fd) < 0)
				w->result = errno;
		if (fsync(q->dirfd) < 0)
			fail_batch(batch, errno);
	}
	return clock_mono_us() - t0;
}

static void batch_done(struct queue *q, struct queue_writer *batch, uint64_t us)
{
	uint64_t n = 0, failed = 0;
	struct queue_writer *w;

	for (w = batch; w; w = w->next) {
		n++;
		if (w->result) {
			failed++;
			log_warn("%s queue sync failed error=\"%s\"", w->env.qid, strerror(w->result));
		}
		qf_writer_release(w, w->result != 0);
	}
	log_debug("queue sync batch=%" PRIu64 " failed=%" PRIu64 " mode=%s us=%" PRIu64, n, failed,
		  q->sync == QUEUE_SYNC_SYNCFS ? "syncfs" : "fsync", us);
	pthread_mutex_lock(&q->mu);
	q->stats.batches++;
	q->stats.messages += n;
	q->stats.failed += failed;
	q->stats.sync_us += us;
	if (n > q->stats.max_batch)
		q->stats.max_batch = n;
	q->done_tail = list_append(q->done_tail, batch);
	pthread_mutex_unlock(&q->mu);
	event_active(q->done_ev, 0, 0);
}

static void *sync_main(void *arg)
{
	struct queue *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct queue_writer *batch;
		uint64_t us;

		while (!q->pending && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->pending)
			break; /* stopping, nothing left */
		batch = q->pending;
		q->pending = NULL;
		q->pending_tail = &q->pending;
		pthread_mutex_unlock(&q->mu);
		us = sync_batch(q, batch);
		batch_done(q, batch, us);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- back on the event loop ---------------------------------------- */

/* While commits are in flight the done event stays added (with a long
 * timeout), so event_base_dispatch() cannot return before their
 * callbacks ran even when nothing else is registered on the base. */
static const struct timeval keepalive = {3600, 0};

static void inflight_inc(struct queue *q)
{
	if (q->inflight++ == 0)
		event_add(q->done_ev, &keepalive);
}

static void inflight_dec(struct queue *q)
{
	if (q->inflight > 0 && --q->inflight == 0)
		event_del(q->done_ev);
}

static void run_callbacks(struct queue *q, struct queue_writer *w)
{
	while (w) {
		struct queue_writer *next = w->next;
		struct envelope *env = NULL;
		queue_commit_cb cb = w->cb;
		void *arg = w->arg;
		int error = w->result;

		if (error == 0) {
			env = xmalloc(sizeof(*env));
			*env = w->env; /* ownership moves to the callback */
		} else {
			envelope_free(&w->env);
		}
		free(w);
		inflight_dec(q);
		if (cb) {
			cb(arg, error, env);
		} else if (env) {
			envelope_free(env);
			free(env);
		}
		w = next;
	}
}

static struct queue_writer *take_done(struct queue *q)
{
	struct queue_writer *list;

	pthread_mutex_lock(&q->mu);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->mu);
	return list;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	run_callbacks(arg, take_done(arg));
}

void queue_writer_commit(struct queue_writer *w, queue_commit_cb cb, void *arg)
{
	struct queue *q = w->q;

	w->cb = cb;
	w->arg = arg;
	w->next = NULL;
	w->result = 0;
	inflight_inc(q);
	if (qf_writer_finish(w) < 0) {
		/* Never synced: report it through the loop like any result. */
		w->result = w->err ? w->err : EIO;
		log_warn("%s queue write failed error=\"%s\"", w->env.qid, strerror(w->result));
		qf_writer_release(w, true);
		pthread_mutex_lock(&q->mu);
		q->done_tail = list_append(q->done_tail, w);
		pthread_mutex_unlock(&q->mu);
		event_active(q->done_ev, 0, 0);
		return;
	}
	pthread_mutex_lock(&q->mu);
	q->pending_tail = list_append(q->pending_tail, w);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void queue_stats(struct queue *q, struct queue_stats *out)
{
	if (!q->thread_started) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&q->mu);
	*out = q->stats;
	pthread_mutex_unlock(&q->mu);
}

unsigned long queue_inflight(const struct queue *q) { return q->inflight; }

/* ---- open / close -------------------------------------------------- */

static bool start_thread(struct queue *q, char *err, size_t errsz)
{
	sigset_t all, old;
	int e;

	q->done_ev = event_new(q->base, -1, EV_PERSIST, done_cb, q);
	if (!q->done_ev) {
		snprintf(err, errsz, "event_new failed");
		return false;
	}
	/* The sync thread takes no signals: they belong to the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&q->thread, NULL, sync_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errsz, "pthread_create: %s", strerror(e));
		event_free(q->done_ev);
		q->done_ev = NULL;
		return false;
	}
	q->thread_started = true;
	return true;
}

struct queue *queue_open(const char *spool, const char *node, enum queue_sync_mode sync,
			 struct event_base *base, char *err, size_t errsz)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->dirfd = -1;
	q->sync = sync;
	q->base = base;
	q->pending_tail = &q->pending;
	q->done_tail = &q->done;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	qf_node_tag(node, q->node);
	log_debug("queue node tag=%s (from node=%s)", q->node, node ? node : "(none)");
	if (sync != QUEUE_SYNC_FSYNC && sync != QUEUE_SYNC_SYNCFS) {
		snprintf(err, errsz, "unknown sync mode %d", (int)sync);
		goto fail;
	}
	if ((size_t)snprintf(q->qdir, sizeof(q->qdir), "%s/queue", spool) >= sizeof(q->qdir) ||
	    (size_t)snprintf(q->corrupt_dir, sizeof(q->corrupt_dir), "%s/corrupt", spool) >=
		    sizeof(q->corrupt_dir) ||
	    strlen(q->qdir) + 1 + QID_MAX > sizeof(q->qdir)) {
		snprintf(err, errsz, "spool path too long");
		goto fail;
	}
	if (base && mkdir(q->qdir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "mkdir %s: %s", q->qdir, strerror(errno));
		goto fail;
	}
	q->dirfd = open(q->qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0) {
		snprintf(err, errsz, "open %s: %s", q->qdir, strerror(errno));
		goto fail;
	}
	if (base && !start_thread(q, err, errsz))
		goto fail;
	return q;
fail:
	queue_close(q);
	return NULL;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	if (q->thread_started) {
		pthread_mutex_lock(&q->mu);
		q->stopping = true; /* the thread finishes what is pending first */
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
		run_callbacks(q, take_done(q)); /* nobody else will run them now */
		event_free(q->done_ev);
	}
	if (q->dirfd >= 0)
		close(q->dirfd);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
