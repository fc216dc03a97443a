/*
 * queue_view.h - the queue viewer's first page: the queue grouped by next
 * hop ("transitctl queue list --by-next-hop"). Read-only: works from the
 * queue files and the deferral notes in <spool>/defer/, so it answers
 * whether or not transitd is running.
 */
#ifndef TRANSIT_CTL_QUEUE_VIEW_H
#define TRANSIT_CTL_QUEUE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "conf/conf.h"
#include "mail/envelope.h"

/* One line (or JSON object) per next hop: connector + domain, or the
 * mailbox store for a domain; messages, recipients, oldest age and the
 * last error seen. */
void queue_view_by_next_hop(const struct config *c, struct envelope **env, size_t n, time_t now,
			    bool json, FILE *out);

/* What the scheduler noted about a deferred message in
 * <spool>/defer/<qid> (written by queue/sched.c). present = false when
 * the message has not been deferred (or is being tried for the first time). */
struct defer_note {
	bool present;
	unsigned attempts;
	long long next_try; /* epoch seconds */
	char error[600];
};
void queue_view_defer_note(const char *spool, const char *qid, struct defer_note *out);

/* An age for people: "42s", "5m", "3h", "2d". */
void queue_view_age(long long secs, char *out, size_t outsz);

#endif
