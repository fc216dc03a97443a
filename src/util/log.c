/*
 * log.c - see log.h. A line is formatted on the caller's stack, then
 * queued in a bounded in-memory ring (util/bgwriter.c) whose writer
 * thread writes it to stderr. So a log call never waits for stderr (a
 * full pipe, a slow journald, a terminal on hold): it takes a mutex for a
 * memcpy and returns. When the ring is full the line is dropped and
 * counted, and once the writer has made room it queues "log: N lines
 * dropped" (log_drop_note), so a loss is always visible; the ring never
 * grows.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/bgwriter.h"

#define LOG_LINE_MAX 4096
#define LOG_RING_SIZE (1024 * 1024) /* about 5000 lines of a burst */
#define LOG_EXIT_WAIT_MS 2000	    /* at exit: how long to wait for stderr */
/* After writing, the writer naps this long before it looks again, and is
 * woken by a producer only once it has found the ring empty after a nap:
 * under load lines are written in batches (one write(2) and no futex
 * wake-up per line; waking it per line cost ~5 futex calls a line), and a
 * line waits at most about this long before it reaches stderr. */
#define LOG_BATCH_MS 2

static const char *log_prog = "transit";
static int log_debug_on;
static struct bgwriter *log_writer; /* NULL: write directly */

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

static void log_write_all(const char *p, size_t n, int wait_ms)
{
	size_t off = 0;

	while (off < n)
		off += log_write(p + off, n - off, wait_ms);
}

/* the writer thread's sink: stderr, waiting as long as it takes */
static void log_sink(void *arg, const char *p, size_t n)
{
	(void)arg;
	log_write_all(p, n, -1);
}

static size_t log_drop_note(void *arg, unsigned long n, char *out, size_t outsz)
{
	(void)arg;
	return log_formatf(out, outsz, "warning", "log: %lu lines dropped", n);
}

static void log_drain(int ms) { bgwriter_flush(log_writer, ms); }

void log_flush(int ms) { log_drain(ms); }

static void log_at_exit(void) { log_drain(LOG_EXIT_WAIT_MS); }

void log_init(const char *progname, int debug)
{
	log_prog = progname;
	log_debug_on = debug;
	if (log_writer != NULL)
		return;
	log_writer = bgwriter_start(LOG_RING_SIZE, LOG_BATCH_MS, log_sink, NULL, log_drop_note,
				    NULL);
	if (log_writer != NULL)
		atexit(log_at_exit);
}

static void log_emit(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, sizeof(line), level, fmt, ap);

	if (log_writer == NULL)
		log_write_all(line, n, -1);
	else
		(void)bgwriter_put(log_writer, line, n); /* dropped: counted, noted */
}

/* The last words: what is queued first (bounded wait), then this line
 * straight to stderr, waiting at most LOG_EXIT_WAIT_MS for room. */
static void log_last(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, sizeof(line), level, fmt, ap);

	log_drain(LOG_EXIT_WAIT_MS);
	log_write_all(line, n, LOG_EXIT_WAIT_MS);
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
