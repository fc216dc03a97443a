/*
 * reply.h - formatting SMTP replies (RFC 5321 4.2, multi-line 4.2.1) with
 * enhanced status codes (RFC 2034, RFC 3463). The text is sanitised: a
 * peer-supplied fragment can never inject CR/LF or a fake reply line.
 */
#ifndef TRANSIT_SMTP_REPLY_H
#define TRANSIT_SMTP_REPLY_H

#include "util/buf.h"

#define SMTP_REPLY_TEXT_MAX 480 /* keeps a reply line well under 512 octets */

/* Append "CODE ENH text\r\n" (enh may be NULL for the greeting/EHLO).
 * Text is cut at SMTP_REPLY_TEXT_MAX; control characters become '?'. */
void smtp_reply_format(struct buf *out, int code, const char *enh, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
/* Same for one line of a multi-line reply: "CODE-text" unless last. */
void smtp_reply_line(struct buf *out, int code, int last, const char *text);

#endif
