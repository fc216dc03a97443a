/*
 * log.c - see log.h. Formats into a stack buffer and writes it with a
 * single write(2) so lines from several threads never interleave.
 */
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "transit";
static int log_debug_on;

void log_init(const char *progname, int debug)
{
	log_prog = progname;
	log_debug_on = debug;
}

int log_debug_enabled(void) { return log_debug_on; }

static void log_emit(const char *level, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld]: %s%s", (long)tv.tv_usec / 1000,
		     log_prog, (long)getpid(), level, level[0] ? ": " : "");
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write: best effort, nothing to do if stderr is gone. */
	if (write(STDERR_FILENO, line, n) < 0)
		(void)0;
}

#define LOG_BODY(level)                                                                            \
	do {                                                                                       \
		va_list ap;                                                                        \
		int saved = errno;                                                                 \
		va_start(ap, fmt);                                                                 \
		log_emit(level, fmt, ap);                                                          \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	} while (0)

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	LOG_BODY("debug");
}

void log_info(const char *fmt, ...) { LOG_BODY(""); }

void log_warn(const char *fmt, ...) { LOG_BODY("warning"); }

void log_fatal(const char *fmt, ...)
{
	LOG_BODY("fatal");
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	LOG_BODY("panic");
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
