/*
 * tracking.h - message tracking: one JSON object per line (JSON Lines)
 * per thing that happens to a message, in <logs.path>/tracking/
 * (docs/operations.md "Where is my mail?", read by `transitctl track`).
 *
 * Events and where they are emitted (docs/architecture.md):
 *   RECEIVE  smtp/content.c   the message is committed, before the 250
 *   SUBMIT   queue/sched.c    the scheduler takes it (new messages and our DSNs)
 *   ROUTE    queue/sched.c    a recipient's next hop (first attempt)
 *   SEND     queue/sched.c    a recipient accepted by the next hop (relayed)
 *   DELIVER  queue/sched.c    a recipient delivered into its mailbox
 *   DEFER    queue/sched.c    a temporary failure, retried later
 *   FAIL     queue/sched.c    a permanent failure
 *   EXPIRE   queue/sched.c    a recipient given up at queue.expire
 *   DSN      queue/notify.c   a delivery status notification queued
 *   FREEZE, THAW, DELETE      the queue-management code (transitctl queue)
 *
 * Each line has "time" (RFC 3339 UTC, milliseconds), "node" (server.node)
 * and "event", then the fields of struct track_event that are set.
 *
 * tracking_event() may be called from any thread: it formats the line
 * (jansson) on the caller's stack and queues it in a bounded ring that a
 * writer thread appends to the files (log/logdir.c); it never waits for
 * the disk. Before tracking_open() (or when tracking is off) it does
 * nothing.
 */
#ifndef TRANSIT_LOG_TRACKING_H
#define TRANSIT_LOG_TRACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/logdir.h"

struct track_event {
	const char *event;	 /* "RECEIVE", "DELIVER", ... (required) */
	const char *qid;	 /* queue id */
	const char *message_id;	 /* Message-ID field, RECEIVE only (others join by qid) */
	const char *sender;	 /* envelope sender, "" for <> */
	const char *recipient;	 /* one recipient */
	const char *const *recipients; /* RECEIVE / DSN: all recipients */
	size_t nrecipients;
	const char *connector;	 /* receive or send connector, "mailbox", "route", ... */
	const char *remote_host; /* the client's HELO or the next hop's name */
	const char *remote_ip;	 /* the client's or the next hop's address */
	const char *tls;	 /* "version=... cipher=..." or NULL (no TLS) */
	bool has_size;
	uint64_t size;		 /* message size in octets */
	const char *status;	 /* enhanced status code, "2.0.0" */
	const char *reply;	 /* the remote (or our) reply text */
	const char *reason;	 /* a note: who froze it, why it expired, ... */
	const char *related_qid; /* DSN: the queue id of the notification */
	const char *session;	 /* SMTP session id (joins the protocol log) */
	int attempt;		 /* DEFER: the attempt number; 0: omitted */
};

/* Start writing under <path>/tracking/ (files tracking-*.jsonl). node is
 * copied. Called once at start; false (logged) if it cannot start. */
bool tracking_open(const char *path, const char *node, const struct logdir_limits *lim);
/* Record one event (see the header comment). */
void tracking_event(const struct track_event *ev);
/* Events lost: failed writes, and events dropped because the ring was
 * full (for /metrics: transit_tracking_write_errors_total). */
unsigned long tracking_write_errors(void);
unsigned long tracking_dropped(void);
/* Wait at most ms until queued events are in the files (tests, stop). */
void tracking_flush(int ms);
void tracking_close(void);

/* Format ev as one JSON line (with LF) into out; the length, or 0 when it
 * does not fit. time_ms is milliseconds since the epoch. Exposed for the
 * unit tests and the benchmark. */
size_t tracking_format(const struct track_event *ev, const char *node, int64_t time_ms,
		       char *out, size_t outsz);

#endif
