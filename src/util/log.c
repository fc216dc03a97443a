/*
 * log.c - see log.h. A line is formatted on the caller's stack, then
 * queued in a bounded in-memory ring; one writer thread writes the ring to
 * stderr. So a log call never waits for stderr (a full pipe, a slow
 * journald, a terminal on hold): it takes a mutex for a memcpy and
 * returns. When the ring is full the line is dropped and counted, and once
 * the writer has made room it queues "log: N lines dropped" in its place,
 * so a loss is always visible; the ring never grows.
 *
 * Order: lines enter the ring under one mutex, so one thread's lines stay
 * in its order (and all threads' lines in the order they were queued).
 * Exit: an atexit handler waits (at most LOG_EXIT_WAIT_MS) for the ring to
 * drain. log_fatal and log_panic drain it the same way and then write
 * their own line directly, so the reason a process died reaches stderr
 * even when the ring is full. Before log_init (and if the thread cannot be
 * started) lines are written directly, one write(2) each.
 */
#include "util/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_RING_SIZE (1024 * 1024) /* about 5000 lines of a burst */
#define LOG_EXIT_WAIT_MS 2000	    /* at exit: how long to wait for stderr */
/* After writing, the writer naps this long before it looks again, and is
 * woken by a producer only once it has found the ring empty after a nap:
 * under load lines are written in batches (one write(2) and no futex
 * wake-up per line; waking it per line cost ~5 futex calls a line), and a
 * line waits at most about this long before it reaches stderr. */
#define LOG_BATCH_US 2000

static const char *log_prog = "transit";
static int log_debug_on;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t more;	/* the writer waits here for lines */
	pthread_cond_t drained; /* log_drain waits here for an empty ring */
	char *ring;
	size_t head, len;	/* queued bytes: [head, head + len) modulo the size */
	unsigned long dropped;	/* lines dropped since the last notice */
	bool running;		/* the writer thread exists */
	bool idle;		/* the writer waits on `more`: signal it */
} lq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	NULL, 0, 0, 0, false, false};

int log_debug_enabled(void) { return log_debug_on; }

static size_t log_format(char *line, size_t size, const char *level, const char *fmt, va_list ap)
{
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, size, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, size - n, ".%03ldZ %s[%ld]: %s%s", (long)tv.tv_usec / 1000, log_prog,
		     (long)getpid(), level, level[0] ? ": " : "");
	if (r > 0)
		n += (size_t)r;
	if (n < size) {
		r = vsnprintf(line + n, size - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > size - 2)
		n = size - 2;
	line[n++] = '\n';
	return n;
}

static size_t log_formatf(char *line, size_t size, const char *level, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
static size_t log_formatf(char *line, size_t size, const char *level, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = log_format(line, size, level, fmt, ap);
	va_end(ap);
	return n;
}

/* Write some of p[0..n) to stderr; waits up to wait_ms (-1: forever) for
 * room. Returns the octets taken: on an error stderr is gone and the
 * octets are dropped (nothing better to do with them). */
static size_t log_write(const char *p, size_t n, int wait_ms)
{
	for (;;) {
		ssize_t w = write(STDERR_FILENO, p, n);
		struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};

		if (w >= 0)
			return (size_t)w;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return n;
		if (poll(&pfd, 1, wait_ms) <= 0)
			return n;
	}
}

/* Append p[0..n) to the ring; lq.mu held, room checked. */
static void ring_put(const char *p, size_t n)
{
	size_t tail = (lq.head + lq.len) % LOG_RING_SIZE;
	size_t first = LOG_RING_SIZE - tail < n ? LOG_RING_SIZE - tail : n;

	memcpy(lq.ring + tail, p, first);
	memcpy(lq.ring, p + first, n - first);
	lq.len += n;
}

static void *log_writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lq.mu);
	for (;;) {
		size_t n, done;

		if (lq.len == 0 && lq.dropped == 0) {
			/* nap once, unsignalled, so that lines arriving now are
			 * written together; then wait to be woken */
			pthread_mutex_unlock(&lq.mu);
			nanosleep(&(struct timespec){0, LOG_BATCH_US * 1000L}, NULL);
			pthread_mutex_lock(&lq.mu);
			lq.idle = true;
			while (lq.len == 0 && lq.dropped == 0)
				pthread_cond_wait(&lq.more, &lq.mu);
			lq.idle = false;
		}
		if (lq.dropped > 0) {
			char note[LOG_LINE_MAX];
			size_t k = log_formatf(note, sizeof(note), "warning", "log: %lu lines dropped",
					       lq.dropped);
			if (LOG_RING_SIZE - lq.len >= k) {
				ring_put(note, k);
				lq.dropped = 0;
			}
		}
		/* the queued bytes up to the end of the ring; the writer alone
		 * moves head, producers only write after head + len */
		n = lq.len < LOG_RING_SIZE - lq.head ? lq.len : LOG_RING_SIZE - lq.head;
		pthread_mutex_unlock(&lq.mu);
		done = log_write(lq.ring + lq.head, n, -1);
		pthread_mutex_lock(&lq.mu);
		lq.head = (lq.head + done) % LOG_RING_SIZE;
		lq.len -= done;
		if (lq.len == 0 && lq.dropped == 0)
			pthread_cond_broadcast(&lq.drained);
	}
	return NULL;
}

/* Wait at most ms for the writer to empty the ring. */
static void log_drain(int ms)
{
	struct timespec until;

	if (!lq.running)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lq.mu);
	while (lq.len > 0 || lq.dropped > 0)
		if (pthread_cond_timedwait(&lq.drained, &lq.mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&lq.mu);
}

static void log_at_exit(void) { log_drain(LOG_EXIT_WAIT_MS); }

static void log_start_writer(void)
{
	pthread_condattr_t ca;
	pthread_attr_t ta;
	pthread_t t;
	sigset_t all, old;
	bool ok;

	if (lq.running || (lq.ring = malloc(LOG_RING_SIZE)) == NULL)
		return;
	/* the drain deadline is on the monotonic clock (a clock step must not
	 * make exit wait for hours) */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&lq.drained);
	pthread_cond_init(&lq.drained, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	/* signals stay with the threads that handle them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ok = pthread_create(&t, &ta, log_writer, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	if (!ok) {
		free(lq.ring);
		lq.ring = NULL;
		return;
	}
	lq.running = true;
	atexit(log_at_exit);
}

void log_init(const char *progname, int debug)
{
	log_prog = progname;
	log_debug_on = debug;
	log_start_writer();
}

static void log_emit(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, sizeof(line), level, fmt, ap);

	if (!lq.running) {
		size_t off = 0;
		while (off < n)
			off += log_write(line + off, n - off, -1);
		return;
	}
	pthread_mutex_lock(&lq.mu);
	if (LOG_RING_SIZE - lq.len < n) {
		lq.dropped++;
	} else {
		ring_put(line, n);
		if (lq.idle) /* else it is writing, or napping and will look */
			pthread_cond_signal(&lq.more);
	}
	pthread_mutex_unlock(&lq.mu);
}

/* The last words: what is queued first (bounded wait), then this line
 * straight to stderr, waiting at most LOG_EXIT_WAIT_MS for room. */
static void log_last(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, sizeof(line), level, fmt, ap), off = 0;

	log_drain(LOG_EXIT_WAIT_MS);
	while (off < n)
		off += log_write(line + off, n - off, LOG_EXIT_WAIT_MS);
}

#define LOG_BODY(emit, level)                                                                      \
	do {                                                                                       \
		va_list ap;                                                                        \
		int saved = errno;                                                                 \
		va_start(ap, fmt);                                                                 \
		emit(level, fmt, ap);                                                              \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	} while (0)

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	LOG_BODY(log_emit, "debug");
}

void log_info(const char *fmt, ...) { LOG_BODY(log_emit, ""); }

void log_warn(const char *fmt, ...) { LOG_BODY(log_emit, "warning"); }

void log_fatal(const char *fmt, ...)
{
	LOG_BODY(log_last, "fatal");
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	LOG_BODY(log_last, "panic");
	abort();
}

const char *log_quote(const char *s, char *out, unsigned long outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int quote = 0;
	const unsigned char *p;

	if (outsz < 8) {
		if (outsz)
			out[0] = '\0';
		return out;
	}
	for (p = (const unsigned char *)s; *p; p++)
		if (*p == ' ' || *p == '"')
			quote = 1;
	if (quote)
		out[o++] = '"';
	for (p = (const unsigned char *)s; *p && o + 6 < outsz; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\' || (*p == '"' && quote)) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}
