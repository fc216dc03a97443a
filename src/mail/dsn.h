/*
 * dsn.h - delivery status notifications (RFC 3464 message format, RFC
 * 3461 semantics, RFC 3463 status codes, RFC 6522 multipart/report).
 *
 * dsn_build() writes a complete RFC 5322 message (CRLF line endings)
 * ready to be queued with the null reverse-path to the original sender:
 *   From: MAILER-DAEMON@<reporting fqdn>, To: <original sender>,
 *   Auto-Submitted: auto-replied, Subject by kind, Date, Message-ID,
 *   MIME-Version, Content-Type: multipart/report; report-type=delivery-status
 *   1. text/plain: the human-readable part from a template (built in, or
 *      the admin's file) with the per-recipient lines, quoting the remote
 *      server's own reply;
 *   2. message/delivery-status: per-message fields (Reporting-MTA,
 *      Original-Envelope-Id, Arrival-Date, X-Transit-Queue-ID) and a
 *      per-recipient block (Original-Recipient, Final-Recipient, Action,
 *      Status, Remote-MTA, Diagnostic-Code: smtp; ..., Last-Attempt-Date,
 *      Will-Retry-Until for delays);
 *   3. text/rfc822-headers (RET=HDRS or unspecified for failures, and always
 *      for delay/success) or message/rfc822 with the whole original (RET=FULL),
 *      read from the queue file.
 * The caller decides WHEN a DSN is due (never to a null sender, NOTIFY
 * rules); this file only builds it.
 */
#ifndef TRANSIT_MAIL_DSN_H
#define TRANSIT_MAIL_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

enum dsn_kind { DSN_FAILURE, DSN_DELAY, DSN_SUCCESS };

struct dsn_rcpt {
	const char *addr;	  /* final recipient, e.g. bob@partner.test */
	const char *orcpt;	  /* "rfc822;bob@partner.test" or NULL */
	const char *action;	  /* "failed", "delayed", "delivered", "relayed", "expanded" */
	const char *status;	  /* "5.1.1" */
	const char *remote_mta;	  /* "mx1.partner.test" (the host we talked to) or NULL */
	/* The remote reply, starting with its code ("550 5.1.1 <bob@...>:
	 * unknown user"), or our own reason ("no route to far.test"), or NULL.
	 * Only a reply (with remote_mta) is reported as the server's: "The
	 * server X said:", Remote-MTA, "Diagnostic-Code: smtp;". Our own reason
	 * gets "Reason:", no Remote-MTA, "Diagnostic-Code: X-Transit;". */
	const char *diagnostic;
	time_t last_attempt;	  /* 0: none */
};

struct dsn_info {
	enum dsn_kind kind;
	const char *reporting_mta;  /* our FQDN */
	const char *qid;	    /* the original message's queue id */
	const char *envid;	    /* RFC 3461 ENVID or NULL */
	const char *sender;	    /* original envelope sender (the DSN's recipient) */
	time_t arrival;
	time_t retry_until;	    /* for DSN_DELAY: when we give up */
	int ret;		    /* DSN_RET_* from smtp/cmd.h values: 0 unspecified, 1 FULL, 2 HDRS */
	const struct dsn_rcpt *rcpt;
	size_t nrcpt;
	/* the original message: content in a file at [off, off+len) */
	const char *content_path;
	uint64_t content_off;
	uint64_t content_len;
	uint64_t max_full_size;	    /* over this, RET=FULL is downgraded to headers (0: no limit) */
	const char *template_path;  /* NULL: built-in text */
	const char *message_id;	    /* Message-ID to use, e.g. "<QID@fqdn>" */
	int smtputf8;		    /* original needed SMTPUTF8: use message/global-* types (RFC 6533) */
};

/* 0 on success; -1 with err filled (e.g. the queue file cannot be read). */
int dsn_build(const struct dsn_info *info, struct buf *out, char *err, size_t errsz);

#endif
