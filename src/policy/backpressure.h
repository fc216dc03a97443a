/*
 * backpressure.h - back pressure: whether the server still takes new
 * mail, from the free space on the spool volume, the daemon's own memory
 * and the length of the queue (the model is Exchange transport's back
 * pressure; see docs/operations.md, "Back pressure").
 *
 * Three levels. Normal: everything is accepted. Medium: MAIL from a
 * client that did not authenticate gets 452 4.3.1 (a relay-permission
 * connector is not authentication: IP restrictions are not). High: every
 * MAIL gets 452 4.3.1. Delivery of the queue, and the DSNs the queue
 * generates, go on at every level; a transaction that started before the
 * level rose is let finish.
 *
 * Every resource has a rising threshold per level and a relief threshold
 * 10% of it back on the safe side (BP_RELIEF_PERCENT), so a value that
 * wobbles around a threshold does not make the level flap. The level of
 * the server is the worst of the three resources' levels.
 *
 * One instance per process (like the log): the daemon starts it on its
 * event loop (a sample at once, then one per second), the SMTP server
 * asks backpressure_admits_mail(). Nothing started (transitctl, unit
 * tests of other modules) reads as Normal. Event loop thread only.
 */
#ifndef TRANSIT_POLICY_BACKPRESSURE_H
#define TRANSIT_POLICY_BACKPRESSURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct event_base;

enum bp_level { BP_NORMAL = 0, BP_MEDIUM = 1, BP_HIGH = 2 };

#define BP_RELIEF_PERCENT 10 /* leave a level 10% of its threshold back on the safe side */

/* "normal", "medium", "high" */
const char *bp_level_name(enum bp_level l);

/* The next level of a resource that is worse when larger (memory, queue
 * length), from its level now and a new value; medium <= high (medium ==
 * high: the resource has no Medium level). Enters a level at its
 * threshold, leaves it only below threshold - BP_RELIEF_PERCENT%. */
enum bp_level bp_level_above(enum bp_level prev, uint64_t v, uint64_t medium, uint64_t high);

/* The same for a resource that is worse when smaller (free disk space);
 * high <= medium. Enters a level below its threshold, leaves it only at
 * threshold + BP_RELIEF_PERCENT% or more. */
enum bp_level bp_level_below(enum bp_level prev, uint64_t v, uint64_t medium, uint64_t high);

/* The decision at MAIL for a level: High refuses everyone, Medium the
 * clients that did not authenticate. */
bool bp_admits_mail(enum bp_level l, bool authenticated);

/* The thresholds in bytes and messages, resolved from the configuration
 * (memory-high in percent becomes bytes of physical memory). */
struct bp_limits {
	uint64_t disk_free_medium, disk_free_high; /* bytes available on the spool volume */
	uint64_t memory_high;			   /* bytes of resident memory of the process */
	uint64_t queue_medium, queue_high;	   /* messages held by the scheduler */
};

/* One sample of the three resources. */
struct bp_reading {
	bool disk_known; /* false: statvfs failed, the disk level stays as it was */
	uint64_t disk_free;
	bool memory_known;
	uint64_t rss;
	uint64_t queue;
};

/* The levels of the resources and of the server. */
struct bp_state {
	enum bp_level disk, memory, queue;
	enum bp_level level; /* the worst of the three */
};

/* Take a reading into st. When the server's level changes, writes one
 * log-ready description of why into why ("reason=disk-free free=... threshold=...")
 * and returns true. Pure: no clock, no I/O. */
bool bp_evaluate(struct bp_state *st, const struct bp_limits *lim, const struct bp_reading *r,
		 char *why, size_t whylen);

/* memory-high of the configuration in bytes: a percentage of the
 * machine's physical memory, or a size. */
uint64_t bp_memory_limit(const struct config *c);

/* ---- the process-wide instance ------------------------------------------ */

/* Start sampling (or, with back-pressure { enabled = false }, log a
 * warning and stay Normal). queue_len returns the messages the scheduler
 * holds. Takes the first sample before it returns. */
void backpressure_start(const struct config *c, struct event_base *base,
			size_t (*queue_len)(void *arg), void *arg);
/* A reload: the thresholds of c from the next sample on (the level and
 * its hysteresis carry over; the spool and enabled are restart-only). */
void backpressure_set_limits(const struct config *c);
void backpressure_stop(void);

/* The level now (Normal when nothing was started). */
enum bp_level backpressure_level(void);

/* The decision at MAIL: false means 452 4.3.1 Insufficient system
 * resources. High refuses everyone; Medium refuses clients that did not
 * authenticate. */
bool backpressure_admits_mail(bool authenticated);

#endif
