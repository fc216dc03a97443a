/* reply.c - see reply.h. */
#include "smtp/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void put_clean(struct buf *out, const char *text)
{
	size_t n = 0;
	for (; *text && n < SMTP_REPLY_TEXT_MAX; text++, n++) {
		unsigned char c = (unsigned char)*text;
		buf_putc(out, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
}

void smtp_reply_format(struct buf *out, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	buf_printf(out, "%03d ", code);
	if (enh) {
		buf_puts(out, enh);
		buf_putc(out, ' ');
	}
	put_clean(out, text);
	buf_append(out, "\r\n", 2);
}

void smtp_reply_line(struct buf *out, int code, int last, const char *text)
{
	buf_printf(out, "%03d%c", code, last ? ' ' : '-');
	put_clean(out, text);
	buf_append(out, "\r\n", 2);
}
