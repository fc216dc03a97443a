/*
 * envelope.h - the envelope of one queued message: who sent it, to whom,
 * with which ESMTP options (RFC 5321 MAIL/RCPT, RFC 3461 DSN parameters,
 * RFC 6531 SMTPUTF8, RFC 6152 BODY), and where it came from.
 *
 * The queue store persists it (queue/qfile.c), the SMTP server fills it,
 * delivery agents read it. Recipient state is the only part that changes
 * after the message is committed.
 */
#ifndef TRANSIT_MAIL_ENVELOPE_H
#define TRANSIT_MAIL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define QID_MAX 32 /* queue id, NUL included */

enum env_rcpt_state {
	RCPT_QUEUED = 'Q',    /* still to be delivered */
	RCPT_DELIVERED = 'D', /* final: delivered (or relayed) */
	RCPT_FAILED = 'F',    /* final: failed, sender notified if asked */
};

struct env_rcpt {
	char *addr;	   /* RFC 5321 form without brackets, e.g. alice@example.test */
	char *orcpt;	   /* RFC 3461 ORCPT, decoded ("rfc822;alice@example.test"), or NULL */
	unsigned notify;   /* DSN_NOTIFY_* bits (smtp/cmd.h values) */
	char state;	   /* enum env_rcpt_state */
	bool delay_notified; /* RCPT_QUEUED and a DELAY DSN reported it (durable: queue/qfile.c) */
	uint64_t state_off; /* byte offset of the state byte in the queue file (store-owned) */
};

struct envelope {
	char qid[QID_MAX];
	time_t arrival;	     /* seconds since the epoch */
	char *sender;	     /* "" for the null reverse-path */
	int body;	     /* BODY_7BIT / BODY_8BITMIME */
	bool smtputf8;
	int ret;	     /* DSN_RET_* */
	char *envid;	     /* RFC 3461 ENVID or NULL */
	char *connector;     /* receive connector name */
	char *client_addr;   /* "192.0.2.1" or "2001:db8::1" */
	char *client_helo;   /* EHLO/HELO argument, or NULL */
	char *auth_user;     /* authenticated login or NULL */
	size_t nrcpt;
	struct env_rcpt *rcpt;
	/* Filled by the store: the message content (RFC 5322, CRLF line
	 * endings, our Received field first) lives in the queue file at
	 * [content_off, content_off + content_len). */
	uint64_t content_off;
	uint64_t content_len;
};

/* Helpers that keep allocation in one place. All strings are copied. */
void envelope_init(struct envelope *e);
void envelope_free(struct envelope *e); /* frees members, not e itself */
void envelope_set_str(char **field, const char *value); /* value may be NULL */
struct env_rcpt *envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt,
				   unsigned notify);
size_t envelope_pending(const struct envelope *e); /* recipients still RCPT_QUEUED */

#endif
