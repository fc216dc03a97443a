/*
 * status_page.h - the read-only /status HTML page (ctl/http.c serves it):
 * what the daemon looks like now, as one snapshot taken on the event loop
 * thread. Everything shown that a peer or a remote server could have
 * written (addresses, replies, next-hop names) goes through
 * status_html_escape(); the page carries no script and no form.
 */
#ifndef TRANSIT_CTL_STATUS_PAGE_H
#define TRANSIT_CTL_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "queue/stats.h"
#include "util/buf.h"

#define STATUS_CERTS 16

struct status_cert {
	char connector[128]; /* receive connector, or "server" */
	char subject[256];
	time_t not_after;
};

struct status_snapshot {
	bool detail; /* asked for: the queue by next hop too (the page, not /metrics) */
	char version[32];
	char node[256];
	char fqdn[256];
	time_t started, taken; /* wall clock */
	unsigned sessions;
	const char *backpressure; /* "normal", "medium", "high" (static string) */
	struct sched_stats queue;
	size_t ncerts;
	struct status_cert certs[STATUS_CERTS];
	size_t nrecent;
	struct sched_recent recent[SCHED_RECENT];
};

/* s with & < > " ' as character references, appended to out. */
void status_html_escape(struct buf *out, const char *s);
/* The whole page. */
void status_page_render(const struct status_snapshot *st, struct buf *out);

#endif
