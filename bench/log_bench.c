/*
 * log_bench.c - cost of one log_info() call as the event loop sees it
 * (util/log.c), with stderr on /dev/null, on a file, and on a pipe read
 * by another process. Build and run (from the top of the tree):
 *
 *   cc -O2 -pthread -Isrc bench/log_bench.c src/util/log.c src/util/bgwriter.c -o /tmp/log_bench
 *   /tmp/log_bench 2>/dev/null; /tmp/log_bench 2>/tmp/log_bench.out
 *   /tmp/log_bench 2>&1 >/dev/tty | cat >/dev/null
 *
 * Prints the mean wall time and the mean CPU time of the calling thread
 * per call over N calls of a typical 150-octet line (on stdout, so stderr
 * can be redirected freely). The CPU time is what the event loop pays and
 * is the figure to compare on a busy machine.
 */
#include <stdio.h>
#include <time.h>

#include "util/log.h"

#define N 200000

int main(void)
{
	struct timespec a, b, ca, cb;
	int i;

	log_init("log_bench", 0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < N; i++)
		log_info("1K1TG611FSGMX send to=<bob@down.test> from=<alice@example.test> via=down "
			 "relay=mx1.example.net[192.0.2.1]:25 delay=0s status=2.0.0 seq=%d", i);
	clock_gettime(CLOCK_MONOTONIC, &b);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
	printf("%d log_info calls: %.0f ns wall %.0f ns cpu per call\n", N,
	       ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N,
	       ((double)(cb.tv_sec - ca.tv_sec) * 1e9 + (double)(cb.tv_nsec - ca.tv_nsec)) / N);
	return 0;
}
