/*
 * workq.c - a fixed pool of pthreads for blocking work (see workq.h).
 *
 * Two singly linked FIFO lists under one mutex: "queued" (submitted, not
 * started) and "done" (work() finished, done() not yet run). A worker
 * takes the head of queued, runs work() without the lock, appends the job
 * to done and calls event_active() on an internal event of the loop's
 * event_base (thread safe because the daemon called
 * evthread_use_pthreads() before creating the base). The event callback
 * runs on the loop thread, detaches the whole done list under the lock
 * and calls each done() without the lock, so done() may submit again.
 *
 * workq_free(): sets "stopping", wakes the workers, which drain queued
 * (work() still runs for every queued job, as the header promises) and
 * exit; after the join the done list is freed without calling done().
 * done() must not call workq_free() on its own queue.
 */
#include "util/workq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"

#define WORKQ_MAX_THREADS 64

struct workq_job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct workq_job *next;
};

struct workq_list {
	struct workq_job *head;
	struct workq_job *tail;
};

struct workq {
	struct event *done_ev; /* activated by workers, runs on the loop */
	pthread_mutex_t mu;
	pthread_cond_t wake; /* queued became non-empty, or stopping */
	struct workq_list queued;
	struct workq_list done;
	bool stopping;
	atomic_uint pending; /* submitted and done() not yet called */
	int nthreads;
	pthread_t *threads;
};

static void workq_list_push(struct workq_list *l, struct workq_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct workq_job *workq_list_pop(struct workq_list *l)
{
	struct workq_job *j = l->head;

	if (j == NULL)
		return NULL;
	l->head = j->next;
	if (l->head == NULL)
		l->tail = NULL;
	return j;
}

static void workq_list_free(struct workq_list *l)
{
	struct workq_job *j;

	while ((j = workq_list_pop(l)) != NULL)
		free(j);
}

/* Worker thread: FIFO over queued until stopping and queued is empty. */
static void *workq_thread(void *p)
{
	struct workq *wq = p;
	struct workq_job *j;

	for (;;) {
		pthread_mutex_lock(&wq->mu);
		while (wq->queued.head == NULL && !wq->stopping)
			pthread_cond_wait(&wq->wake, &wq->mu);
		j = workq_list_pop(&wq->queued);
		pthread_mutex_unlock(&wq->mu);
		if (j == NULL)
			return NULL; /* stopping and nothing left */

		j->work(j->arg);

		pthread_mutex_lock(&wq->mu);
		workq_list_push(&wq->done, j);
		pthread_mutex_unlock(&wq->mu);
		/* After the join in workq_free() nobody calls this, so the
		 * event is alive here. */
		event_active(wq->done_ev, EV_READ, 0);
	}
}

/* Event callback on the loop thread: run done() for everything finished. */
static void workq_on_done(evutil_socket_t fd, short what, void *p)
{
	struct workq *wq = p;
	struct workq_list ready;
	struct workq_job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&wq->mu);
	ready = wq->done;
	wq->done.head = wq->done.tail = NULL;
	pthread_mutex_unlock(&wq->mu);

	while ((j = workq_list_pop(&ready)) != NULL) {
		atomic_fetch_sub(&wq->pending, 1);
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

struct workq *workq_new(struct event_base *base, int nthreads)
{
	struct workq *wq = xcalloc(1, sizeof(*wq));
	int i, r;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > WORKQ_MAX_THREADS)
		nthreads = WORKQ_MAX_THREADS;
	wq->done_ev = event_new(base, -1, 0, workq_on_done, wq);
	if (wq->done_ev == NULL)
		log_fatal("workq: event_new failed");
	pthread_mutex_init(&wq->mu, NULL);
	pthread_cond_init(&wq->wake, NULL);
	atomic_init(&wq->pending, 0);
	wq->threads = xcalloc((size_t)nthreads, sizeof(*wq->threads));
	for (i = 0; i < nthreads; i++) {
		r = pthread_create(&wq->threads[i], NULL, workq_thread, wq);
		if (r != 0)
			log_fatal("workq: pthread_create: %s", strerror(r));
		wq->nthreads++;
	}
	return wq;
}

void workq_submit(struct workq *wq, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct workq_job *j = xmalloc(sizeof(*j));

	if (work == NULL)
		log_panic("workq_submit: work is NULL");
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&wq->mu);
	if (wq->stopping) {
		pthread_mutex_unlock(&wq->mu);
		free(j);
		log_panic("workq_submit after workq_free");
	}
	workq_list_push(&wq->queued, j);
	atomic_fetch_add(&wq->pending, 1);
	pthread_cond_signal(&wq->wake);
	pthread_mutex_unlock(&wq->mu);
}

unsigned workq_pending(const struct workq *wq)
{
	return atomic_load(&wq->pending);
}

void workq_free(struct workq *wq)
{
	int i;

	if (wq == NULL)
		return;
	pthread_mutex_lock(&wq->mu);
	wq->stopping = true;
	pthread_cond_broadcast(&wq->wake);
	pthread_mutex_unlock(&wq->mu);
	for (i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
	/* No worker is left to touch the event or the lists. event_free()
	 * also removes a pending activation from the base. */
	event_free(wq->done_ev);
	workq_list_free(&wq->queued);
	workq_list_free(&wq->done);
	pthread_cond_destroy(&wq->wake);
	pthread_mutex_destroy(&wq->mu);
	free(wq->threads);
	free(wq);
}
