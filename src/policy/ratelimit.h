/*
 * ratelimit.h - message and recipient rates (issue 7): token buckets in
 * a bounded keyed table. A bucket holds at most per_minute tokens and
 * refills per_minute tokens a minute, continuously; taking n tokens
 * fails (and takes nothing) when fewer are there. So a source or a login
 * may burst up to its limit at once, then goes on at the limit's pace.
 *
 * The keys are the caller's ("connector|source prefix" of net/source.h,
 * "connector|login"): the table is a util/htable (SipHash, a peer cannot
 * choose colliding keys) bounded at max_entries, the least recently used
 * evicted first (an evicted bucket restarts full: eviction can only let
 * a sender through earlier, never grow memory). A bucket that has been
 * idle for a minute is full again, i.e. holds no information: such
 * entries are freed as the table is used (a few per call, oldest first).
 * Event loop thread only. Intervals from CLOCK_MONOTONIC (now_ms is
 * clock_mono_ms()).
 */
#ifndef TRANSIT_POLICY_RATELIMIT_H
#define TRANSIT_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

#define RATELIMIT_IDLE_MS 60000u /* a bucket idle this long is full: freed */

struct ratelimit *ratelimit_new(unsigned max_entries);
void ratelimit_free(struct ratelimit *rl);

/* Take n tokens from key's bucket (per_minute tokens a minute, at most
 * per_minute held). true: taken; false: over the rate, nothing taken.
 * per_minute 0 means no limit (always true, no entry made). */
bool ratelimit_take(struct ratelimit *rl, const char *key, unsigned per_minute, unsigned n,
		    uint64_t now_ms);

/* Entries held (tests). */
unsigned ratelimit_entries(const struct ratelimit *rl);

#endif
