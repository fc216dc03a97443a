/*
 * maildir.h - local delivery into Maildir (the maildir(5) spec of
 * qmail/D. J. Bernstein, as read by Dovecot and Courier).
 *
 * maildir_deliver_batch() runs on a worker thread (util/workq.h). For
 * each job it copies the message content from the queue file into
 * <maildir>/tmp/<name>, converting CRLF to LF and prepending
 * Return-Path: and Delivered-To:, then makes the batch durable with one
 * round of syncs and links every file into <maildir>/new/<name>.
 *
 * The agent delivers only to mailboxes the directory knows (the
 * mailbox_known callback) and only to paths without "." or ".."
 * components; anything else is a permanent failure.
 *
 * Names are deterministic per (queue id, recipient index), so delivering
 * the same recipient twice after a crash finds the file already in new/
 * (link(2) EEXIST) and does not make a second copy.
 */
#ifndef TRANSIT_DELIVER_MAILDIR_H
#define TRANSIT_DELIVER_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "route/mailbox.h" /* maildir_expand(), the mailbox path */

struct maildir_job {
	/* in */
	const char *queue_path;	 /* queue file holding the content */
	uint64_t content_off;	 /* content position in that file */
	uint64_t content_len;
	const char *return_path; /* envelope sender, "" for <> */
	const char *rcpt;	 /* for Delivered-To: */
	const char *maildir;	 /* root of the Maildir (tmp/ new/ cur/ made if missing) */
	const char *qid;	 /* queue id */
	unsigned rcpt_index;	 /* index of the recipient in the envelope */
	time_t arrival;		 /* used in the file name */
	/* Does the directory know rcpt? Called on the worker thread, so it
	 * must be thread safe. An unknown recipient fails permanently
	 * (5.1.1) before any path is touched: no mailbox is ever created for
	 * an address the directory does not know. NULL: no check (tests). */
	int (*mailbox_known)(void *arg, const char *rcpt); /* 1 yes, 0 no, -1 cannot tell
							    * now (retried, 4.4.3) */
	void *known_arg;
	/* out */
	int status;		 /* 0 delivered, 1 temporary failure (retry), -1 permanent */
	char error[256];	 /* reason when status != 0, e.g. "4.3.0 open tmp/...: No space left" */
	char path[512];		 /* file in new/ when delivered */
};

/* Deliver every job; each job gets its own status. */
void maildir_deliver_batch(struct maildir_job *jobs, size_t n);

#endif
