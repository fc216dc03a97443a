/*
 * track_bench.c - message tracking at scale (issue 8): writes N events
 * (default 1,000,000: 250,000 messages of RECEIVE, SUBMIT, ROUTE,
 * DELIVER, with a DEFER for every 50th) through the real writer
 * (log/tracking.c over log/logdir.c, 10 MB files) into DIR/tracking/,
 * and prints what one tracking_event() call costs the calling thread
 * (CPU time: what the event loop pays). bench/track_bench.sh builds it,
 * runs it and times `transitctl track` queries on the result.
 *
 *   track_bench DIR [N]
 *
 * The events carry the real time of the run (a few seconds). The sender of message i is s<i % 1000>@senders.example, its recipient
 * r<i>@example.test, its queue id Q<i>, its Message-ID <m<i>@bench>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/tracking.h"

int main(int argc, char **argv)
{
	struct logdir_limits lim = {10u << 20, 100ull << 30, 3650ull * 86400};
	long n = argc > 2 ? atol(argv[2]) : 1000000, written = 0, i;
	struct timespec c0, c1, w0, w1;
	double cpu, wall;

	if (argc < 2) {
		fprintf(stderr, "usage: track_bench DIR [N]\n");
		return 2;
	}
	if (!tracking_open(argv[1], "bench.example", &lim))
		return 1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	for (i = 0; written < n; i++) {
		static const char *const kinds[] = {"RECEIVE", "SUBMIT", "ROUTE", "DEFER", "DELIVER"};
		char qid[32], from[64], to[64], mid[64];
		const char *rcpts[1] = {to};
		snprintf(qid, sizeof(qid), "Q%ld", i);
		snprintf(from, sizeof(from), "s%ld@senders.example", i % 1000);
		snprintf(to, sizeof(to), "r%ld@example.test", i);
		snprintf(mid, sizeof(mid), "<m%ld@bench>", i);
		for (int k = 0; k < 5 && written < n; k++) {
			struct track_event ev = {.event = kinds[k], .qid = qid, .sender = from,
						 .has_size = true, .size = 1024 + (uint64_t)(i % 5000)};
			unsigned long dropped = tracking_dropped();
			if (k == 3 && i % 50 != 0)
				continue;
			if (k == 0) {
				ev.message_id = mid;
				ev.recipients = rcpts;
				ev.nrecipients = 1;
				ev.connector = "internet";
				ev.remote_host = "client.example.net";
				ev.remote_ip = "192.0.2.7";
				ev.status = "2.0.0";
				ev.session = "d9bcfed400000002";
			} else if (k >= 2) {
				ev.recipient = to;
				ev.connector = "mailbox";
				ev.status = k == 3 ? "4.2.2" : "2.0.0";
				ev.reply = k == 3 ? "452 4.2.2 mailbox full" : "delivered to maildir";
			}
			tracking_event(&ev);
			while (tracking_dropped() > dropped) { /* the disk is behind: wait, again */
				nanosleep(&(struct timespec){0, 1000000}, NULL);
				dropped = tracking_dropped();
				tracking_event(&ev);
			}
			written++;
		}
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	tracking_flush(60000);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	wall = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
	printf("events=%ld messages=%ld caller_cpu_us_per_event=%.2f wall_s=%.2f errors=%lu\n",
	       written, i, cpu * 1e6 / (double)written, wall, tracking_write_errors());
	tracking_close();
	return 0;
}
