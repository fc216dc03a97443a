/*
 * authlimit.h - AUTH brute-force control: failure counters per source
 * prefix (net/source.h's key) and per login name, in a sliding-ish window
 * (a counter restarts when its first failure is older than the window),
 * the wait before each 535 (delay, doubling per failure of the source, up
 * to delay-max) and the lockout (after max-per-source failures from a
 * source, or max-per-login failures for a login from anywhere, AUTH is
 * refused with 454 4.7.0 for the lockout time). Both tables are keyed
 * hash tables (util/htable.c, SipHash: a peer cannot choose colliding
 * keys) bounded at table-size entries each, the least recently failed
 * evicted first. Event loop thread only. Intervals from CLOCK_MONOTONIC.
 */
#ifndef TRANSIT_POLICY_AUTHLIMIT_H
#define TRANSIT_POLICY_AUTHLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct authlimit;

struct authlimit_params {
	uint64_t delay_ms, delay_max_ms; /* wait before a failure's reply */
	uint64_t window_ms;
	unsigned max_per_source, max_per_login;
	uint64_t lockout_ms;
	unsigned table_size;
};

struct authlimit *authlimit_new(const struct authlimit_params *p);
void authlimit_free(struct authlimit *al);

/* Is AUTH refused now for this source (login NULL: not known yet) or
 * this login? *which says which ("source" or "login"). now_ms: clock_mono_ms(). */
bool authlimit_locked(struct authlimit *al, const char *source, const char *login, uint64_t now_ms,
		      const char **which);

/* A failure: count it for the source and the login (may be NULL or "").
 * Returns how long to wait before the 535; *locked is set when this
 * failure started a lockout. */
uint64_t authlimit_failure(struct authlimit *al, const char *source, const char *login,
			   uint64_t now_ms, bool *locked);

/* A success: the source's and the login's failures are forgotten. */
void authlimit_success(struct authlimit *al, const char *source, const char *login);

/* Entries held (tests). */
unsigned authlimit_entries(const struct authlimit *al);

#endif
