/*
 * protolog.h - protocol logs: the SMTP dialogue of the sessions of the
 * connectors with protocol-log = "verbose", one line per command or reply
 * line, in <logs.path>/SmtpReceive/ (receive connectors, smtp/server.c)
 * and <logs.path>/SmtpSend/ (send connectors, deliver/smtp_client.c):
 *
 *     2026-12-04T22:13:49.123Z S1a2b3c4d5e6f < EHLO client.example
 *     2026-12-04T22:13:49.124Z S1a2b3c4d5e6f > 250-mx.example.test
 *
 * time (UTC), the session id, the direction ('<' from the peer, '>' to the
 * peer, '*' a note of ours: connect, TLS, the size of message data, close)
 * and the line, with control and non-ASCII octets as \xHH, cut at
 * PROTOLOG_TEXT_MAX octets (marked "...").
 *
 * What is never written (the callers mask it): AUTH credentials (the
 * response lines and the initial response are shown as
 * "<SASL response, N octets>"), and message content (DATA/BDAT show the
 * command and one note with the octet count).
 *
 * Bounded: lines go through a bounded ring (log/logdir.c); when a peer
 * talks faster than the disk takes it, lines are dropped and counted
 * (protolog_dropped()), the session is never held.
 */
#ifndef TRANSIT_LOG_PROTOLOG_H
#define TRANSIT_LOG_PROTOLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "log/logdir.h"
#include "util/log.h"

#define PROTOLOG_TEXT_MAX 1000

enum protolog_side { PROTOLOG_RECEIVE = 0, PROTOLOG_SEND = 1 };

/* Start the writer of one side under <path>/SmtpReceive or SmtpSend;
 * false (logged) when it cannot start (its lines are then not written). */
bool protolog_open(enum protolog_side side, const char *path, const struct logdir_limits *lim);
/* One line of the dialogue (text[0..len), no CRLF). */
void protolog_line(enum protolog_side side, const char *sid, char dir, const char *text,
		   size_t len);
void protolog_note(enum protolog_side side, const char *sid, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
/* Each CRLF-separated line of p[0..n) (a block of replies) as its own line. */
void protolog_lines(enum protolog_side side, const char *sid, char dir, const char *p, size_t n);
unsigned long protolog_dropped(void);
unsigned long protolog_write_errors(void);
void protolog_flush(int ms);
void protolog_close(void);

/* The line as written (without time), for the unit tests: returns its
 * length (LF included). */
size_t protolog_format(const char *stamp, const char *sid, char dir, const char *text,
		       size_t len, char *out, size_t outsz);

#endif
