/*
 * clock.h - the two clocks transit uses, and the only way it subtracts
 * times (no mail knowledge).
 *
 *  - Intervals (how long since, how long until, timeouts) come from
 *    CLOCK_MONOTONIC, which never steps: clock_mono_ms/us().
 *  - Ages of things whose start is a wall-clock time stored on disk (a
 *    message's arrival in its queue file) are taken with signed
 *    arithmetic and a clamp: age_seconds(). A wall clock stepped back
 *    makes such an age 0 (never a huge unsigned number, which is how
 *    "(uint64_t)(now - arrival)" once bounced a whole queue); a clock
 *    stepped forward makes everything older by the step, which is all
 *    the wall clock can tell (docs/operations.md, "Clock steps").
 *  - A wait until a wall-clock time read back from disk (a retry note)
 *    is clamped: wait_seconds().
 */
#ifndef TRANSIT_UTIL_CLOCK_H
#define TRANSIT_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds / microseconds (arbitrary origin). */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);

/* Whole seconds from then to now, 0 when then is in the future (the
 * clock went back, or then came from a machine ahead of us); never
 * overflows, whatever the two values are. */
uint64_t age_seconds(time_t now, time_t then);

/* Seconds from now until when, clamped to [0, max]: 0 when when is
 * already past, max when it is further away than max (a note written
 * before the clock stepped back). */
uint64_t wait_seconds(time_t now, time_t when, uint64_t max);

/* Elapsed milliseconds between two clock_mono_ms() readings, 0 if
 * later < earlier (never wraps). */
uint64_t mono_elapsed_ms(uint64_t earlier, uint64_t later);

#endif
