/*
 * clock.c - see clock.h. Saturating, signed time arithmetic and the
 * monotonic clock; nothing here reads the wall clock (callers pass it).
 */
#include "util/clock.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ms(void) { return mono_ns() / 1000000u; }
uint64_t clock_mono_us(void) { return mono_ns() / 1000u; }

uint64_t age_seconds(time_t now, time_t then)
{
	long long d;

	if (__builtin_sub_overflow((long long)now, (long long)then, &d))
		return now > then ? UINT64_MAX : 0;
	return d > 0 ? (uint64_t)d : 0;
}

uint64_t wait_seconds(time_t now, time_t when, uint64_t max)
{
	uint64_t w = age_seconds(when, now);

	return w > max ? max : w;
}

uint64_t mono_elapsed_ms(uint64_t earlier, uint64_t later)
{
	return later > earlier ? later - earlier : 0;
}
