/*
 * stats.h - what the scheduler holds, summed for the status page and
 * /metrics: messages by state and recipients by next hop. Runs on the
 * event loop thread (it walks the scheduler's entries); the result is a
 * plain struct that the caller hands to another thread.
 * recent failures: a bounded ring (the last SCHED_RECENT recipients that
 * failed or were deferred), written by the loop, read by any thread.
 */
#ifndef TRANSIT_QUEUE_STATS_H
#define TRANSIT_QUEUE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "queue/sched.h"

#define SCHED_STATS_HOPS 25	 /* next hops shown (most recipients first) */
#define SCHED_STATS_HOPS_MAX 4096 /* distinct next hops counted at most */

struct sched_hop_stats {
	char key[300]; /* "connector:domain", "mailbox:domain", "no-route:domain" */
	size_t messages, recipients;
	time_t oldest; /* arrival of the oldest message */
};

struct sched_stats {
	size_t ready, active, deferred; /* messages */
	size_t nhops;			/* distinct next hops (capped at SCHED_STATS_HOPS_MAX) */
	size_t nshown;
	struct sched_hop_stats hops[SCHED_STATS_HOPS];
};

/* by_hop false: the counts by state only (no routing per recipient). */
void sched_stats(const struct sched *s, bool by_hop, struct sched_stats *out);

#define SCHED_RECENT 50

struct sched_recent {
	time_t when;
	char kind[12]; /* "failed" or "deferred" */
	char qid[64];
	char sender[320];
	char rcpt[320];
	char via[128];
	char status[16];
	char diag[600];
};

/* Record one outcome (scheduler, loop thread). */
void sched_recent_note(const char *kind, const char *qid, const char *sender, const char *rcpt,
		       const char *via, const char *status, const char *diag);
/* Copy up to max entries, newest first; returns how many. Any thread. */
size_t sched_recent_copy(struct sched_recent *out, size_t max);

#endif
