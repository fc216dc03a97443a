/*
 * bgwriter.c - see bgwriter.h. The ring holds [head, head + len) modulo
 * size; records are kept whole by a parallel counter of complete octets
 * (producers only append whole records under the mutex, so everything in
 * the ring is whole). The writer takes the contiguous part at head,
 * unlocks, calls the sink, relocks and advances head: producers only
 * write after head + len, so the sink can read without the lock.
 *
 * Batching as in log.c: after a write the writer naps batch_ms, and a
 * producer signals the condition only when the writer is idle, so under
 * load there is one sink call (one write(2)) per batch and no futex
 * wake-up per record.
 */
#include "util/bgwriter.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BGW_TICK_MS 1000

struct bgwriter {
	pthread_mutex_t mu;
	pthread_cond_t more;	/* the writer waits here */
	pthread_cond_t drained; /* flush waits here */
	pthread_t thread;
	char *ring;
	size_t size, head, len;
	size_t busy;		/* octets handed to the sink, not yet released */
	unsigned long dropped;
	unsigned long noted;	/* dropped records a note has reported */
	bool idle, stopping;
	unsigned batch_ms;
	bgwriter_sink sink;
	bgwriter_tick tick;
	bgwriter_note note;
	void *arg;
	/* a record that wraps the ring end is copied here for the sink */
	char *wrap;
};

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Room again after drops: queue the note (w->mu held). */
static void bgw_put_note(struct bgwriter *w)
{
	char text[512];
	size_t n;

	if (w->note == NULL || w->dropped == w->noted)
		return;
	n = w->note(w->arg, w->dropped - w->noted, text, sizeof(text));
	if (n == 0 || w->size - w->len < n)
		return; /* no room yet: next time */
	{
		size_t tail = (w->head + w->len) % w->size;
		size_t first = w->size - tail < n ? w->size - tail : n;
		memcpy(w->ring + tail, text, first);
		memcpy(w->ring, text + first, n - first);
	}
	w->len += n;
	w->noted = w->dropped;
}

static bool bgw_note_due(const struct bgwriter *w)
{
	return w->note != NULL && w->dropped != w->noted;
}

static void *bgw_main(void *arg)
{
	struct bgwriter *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		size_t n;

		bgw_put_note(w);
		if (w->len == 0) {
			if (w->stopping)
				break;
			pthread_mutex_unlock(&w->mu);
			nanosleep(&(struct timespec){w->batch_ms / 1000, (long)(w->batch_ms % 1000) * 1000000L},
				  NULL);
			pthread_mutex_lock(&w->mu);
			w->idle = true;
			while (w->len == 0 && !w->stopping && !bgw_note_due(w)) {
				struct timespec until;
				deadline_in(&until, BGW_TICK_MS);
				if (pthread_cond_timedwait(&w->more, &w->mu, &until) == ETIMEDOUT &&
				    w->len == 0 && w->tick != NULL) {
					pthread_mutex_unlock(&w->mu);
					w->tick(w->arg);
					pthread_mutex_lock(&w->mu);
				}
			}
			w->idle = false;
			continue;
		}
		/* everything queued, whole records; copy out when it wraps */
		n = w->len;
		w->busy = n;
		pthread_mutex_unlock(&w->mu);
		if (w->head + n <= w->size) {
			w->sink(w->arg, w->ring + w->head, n);
		} else {
			size_t first = w->size - w->head;
			memcpy(w->wrap, w->ring + w->head, first);
			memcpy(w->wrap + first, w->ring, n - first);
			w->sink(w->arg, w->wrap, n);
		}
		pthread_mutex_lock(&w->mu);
		w->head = (w->head + n) % w->size;
		w->len -= n;
		w->busy = 0;
		if (w->len == 0 && !bgw_note_due(w))
			pthread_cond_broadcast(&w->drained);
	}
	pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct bgwriter *bgwriter_start(size_t ring_size, unsigned batch_ms, bgwriter_sink sink,
				bgwriter_tick tick, bgwriter_note note, void *arg)
{
	struct bgwriter *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	sigset_t all, old;
	bool ok;

	if (w == NULL)
		return NULL;
	w->ring = malloc(ring_size);
	w->wrap = malloc(ring_size);
	if (w->ring == NULL || w->wrap == NULL) {
		free(w->ring);
		free(w->wrap);
		free(w);
		return NULL;
	}
	w->size = ring_size;
	w->batch_ms = batch_ms;
	w->sink = sink;
	w->tick = tick;
	w->note = note;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	/* deadlines on the monotonic clock: a clock step does not stretch them */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->more, &ca);
	pthread_cond_init(&w->drained, &ca);
	pthread_condattr_destroy(&ca);
	/* signals stay with the threads that handle them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ok = pthread_create(&w->thread, NULL, bgw_main, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok) {
		pthread_cond_destroy(&w->more);
		pthread_cond_destroy(&w->drained);
		pthread_mutex_destroy(&w->mu);
		free(w->ring);
		free(w->wrap);
		free(w);
		return NULL;
	}
	return w;
}

bool bgwriter_put(struct bgwriter *w, const char *p, size_t n)
{
	bool ok;

	pthread_mutex_lock(&w->mu);
	ok = n <= w->size / 4 && w->size - w->len >= n && !w->stopping;
	if (ok) {
		size_t tail = (w->head + w->len) % w->size;
		size_t first = w->size - tail < n ? w->size - tail : n;
		memcpy(w->ring + tail, p, first);
		memcpy(w->ring, p + first, n - first);
		w->len += n;
		if (w->idle)
			pthread_cond_signal(&w->more);
	} else {
		w->dropped++;
	}
	pthread_mutex_unlock(&w->mu);
	return ok;
}

unsigned long bgwriter_dropped(const struct bgwriter *w)
{
	unsigned long n;

	pthread_mutex_lock((pthread_mutex_t *)&w->mu);
	n = w->dropped;
	pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
	return n;
}

void bgwriter_flush(struct bgwriter *w, int ms)
{
	struct timespec until;

	if (w == NULL)
		return;
	deadline_in(&until, ms);
	pthread_mutex_lock(&w->mu);
	if (w->idle)
		pthread_cond_signal(&w->more);
	while (w->len > 0 || bgw_note_due(w))
		if (pthread_cond_timedwait(&w->drained, &w->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->mu);
}

void bgwriter_stop(struct bgwriter *w)
{
	if (w == NULL)
		return;
	bgwriter_flush(w, 2000);
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	w->len = w->busy; /* what is not written by now is abandoned */
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->more);
	pthread_cond_destroy(&w->drained);
	pthread_mutex_destroy(&w->mu);
	free(w->ring);
	free(w->wrap);
	free(w);
}
