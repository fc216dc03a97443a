/*
 * session_plog.c - the protocol log of a server session (receive
 * connectors with protocol-log = "verbose"; the format and the file are
 * log/protolog.c's). Commands come masked from auth_log_command (AUTH
 * credentials never written); replies as sent; DATA content never, only
 * a note with its size at the end of the message.
 */
#include "smtp/session.h"

#include <stdarg.h>
#include <stdio.h>

#include "log/protolog.h"

bool plog_on(const struct smtp_session *s) { return s->rc != NULL && s->rc->protocol_log; }

void plog_in(const struct smtp_session *s, const char *text, size_t len)
{
	if (plog_on(s))
		protolog_line(PROTOLOG_RECEIVE, s->id, '<', text, len);
}

void plog_out(const struct smtp_session *s, const char *p, size_t n)
{
	if (plog_on(s))
		protolog_lines(PROTOLOG_RECEIVE, s->id, '>', p, n);
}

void plog_note(const struct smtp_session *s, const char *fmt, ...)
{
	char text[PROTOLOG_TEXT_MAX + 1];
	va_list ap;
	int n;

	if (!plog_on(s))
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n > 0)
		protolog_line(PROTOLOG_RECEIVE, s->id, '*', text,
			      (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}
