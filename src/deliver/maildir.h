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
 * Names are deterministic per (queue id, recipient index), so delivering
 * the same recipient twice after a crash finds the file already in new/
 * (link(2) EEXIST) and does not make a second copy.
 */
#ifndef TRANSIT_DELIVER_MAILDIR_H
#define TRANSIT_DELIVER_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
	/* out */
	int status;		 /* 0 delivered, 1 temporary failure (retry), -1 permanent */
	char error[256];	 /* reason when status != 0, e.g. "4.3.0 open tmp/...: No space left" */
	char path[512];		 /* file in new/ when delivered */
};

/* Deliver every job; each job gets its own status. */
void maildir_deliver_batch(struct maildir_job *jobs, size_t n);

/* Expand a template like "/var/mail/%d/%u": %d domain, %u local part,
 * %% a percent sign. Characters unsafe in a path component ('/', a
 * leading '.', control characters) are replaced by '_'; local part and
 * domain are lower-cased. Returns 0, or -1 if it did not fit / bad %x. */
int maildir_expand(const char *tmpl, const char *local, const char *domain, char *out,
		   size_t outsz);

#endif
