/*
 * slow_sync.c - an LD_PRELOAD shim for the integration tests: syncfs(2)
 * and fdatasync(2) first sleep SLOW_SYNC_MS milliseconds (from the
 * environment), so a test can hold a queue commit in flight for as long
 * as it needs (a slow disk, deterministically). Built by the test that
 * uses it; never linked into transit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void slow_down(void)
{
	const char *ms = getenv("SLOW_SYNC_MS");
	long v = ms ? atol(ms) : 0;
	struct timespec ts;

	if (v <= 0)
		return;
	ts.tv_sec = v / 1000;
	ts.tv_nsec = (v % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

int syncfs(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
	slow_down();
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	slow_down();
	return real(fd);
}
