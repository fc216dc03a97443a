/*
 * protolog.c - see protolog.h. A line is formatted on the caller's stack
 * (bounded by PROTOLOG_TEXT_MAX) and queued; nothing here blocks.
 */
#include "log/protolog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define PROTOLOG_RING_SIZE (2u << 20)

static struct logdir *plog[2];

static const char *const plog_dirs[2] = {"SmtpReceive", "SmtpSend"};

bool protolog_open(enum protolog_side side, const char *path, const struct logdir_limits *lim)
{
	char dir[4200];

	if (plog[side] != NULL)
		return true;
	snprintf(dir, sizeof(dir), "%s/%s", path, plog_dirs[side]);
	plog[side] = logdir_open(dir, plog_dirs[side], ".log", lim, PROTOLOG_RING_SIZE);
	return plog[side] != NULL;
}

size_t protolog_format(const char *stamp, const char *sid, char dir, const char *text,
		       size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	int r = snprintf(out, outsz, "%s %s %c ", stamp, sid, dir);
	size_t o, i;

	if (r < 0 || (size_t)r + PROTOLOG_TEXT_MAX * 4 + 8 > outsz)
		return 0;
	o = (size_t)r;
	for (i = 0; i < len && i < PROTOLOG_TEXT_MAX; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '\n';
	return o;
}

void protolog_line(enum protolog_side side, const char *sid, char dir, const char *text,
		   size_t len)
{
	char line[PROTOLOG_TEXT_MAX * 4 + 128], stamp[40];
	struct timeval tv;
	struct tm tm;
	size_t n;

	if (plog[side] == NULL)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", (long)tv.tv_usec / 1000);
	n = protolog_format(stamp, sid, dir, text, len, line, sizeof(line));
	if (n > 0)
		(void)logdir_put(plog[side], line, n);
}

void protolog_note(enum protolog_side side, const char *sid, const char *fmt, ...)
{
	char text[PROTOLOG_TEXT_MAX + 1];
	va_list ap;
	int n;

	if (plog[side] == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	protolog_line(side, sid, '*', text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void protolog_lines(enum protolog_side side, const char *sid, char dir, const char *p, size_t n)
{
	if (plog[side] == NULL)
		return;
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t k = lf ? (size_t)(lf - p) + 1 : n, t = k;
		if (t > 0 && p[t - 1] == '\n')
			t--;
		if (t > 0 && p[t - 1] == '\r')
			t--;
		protolog_line(side, sid, dir, p, t);
		p += k;
		n -= k;
	}
}

unsigned long protolog_dropped(void)
{
	return (plog[0] ? logdir_dropped(plog[0]) : 0) + (plog[1] ? logdir_dropped(plog[1]) : 0);
}

unsigned long protolog_write_errors(void)
{
	return (plog[0] ? logdir_write_errors(plog[0]) : 0) +
	       (plog[1] ? logdir_write_errors(plog[1]) : 0);
}

void protolog_flush(int ms)
{
	logdir_flush(plog[0], ms);
	logdir_flush(plog[1], ms);
}

void protolog_close(void)
{
	for (int i = 0; i < 2; i++) {
		logdir_close(plog[i]);
		plog[i] = NULL;
	}
}
