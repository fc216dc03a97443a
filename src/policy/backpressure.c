/*
 * backpressure.c - back pressure (see backpressure.h for the contract):
 * the level functions with their hysteresis, the evaluation of one
 * sample, and the process-wide sampler on the event loop.
 *
 * What is measured, once per second:
 *  - disk: statvfs(2) of the spool directory, f_bavail * f_frsize: the
 *    space an unprivileged process may still use (transitd runs as
 *    server.user; the blocks reserved for root are not ours to count);
 *  - memory: the resident set of this process, /proc/self/statm (its
 *    second field, in pages), against memory-high: a percentage of the
 *    machine's physical memory (sysconf _SC_PHYS_PAGES), as Exchange
 *    measures the memory of its transport process, or an absolute size;
 *  - queue: the messages the scheduler holds (queued, deferred, in flight).
 * Each costs a system call or two; nothing here blocks on the network.
 */
#include "policy/backpressure.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"

#define BP_SAMPLE_SECONDS 1

const char *bp_level_name(enum bp_level l)
{
	switch (l) {
	case BP_NORMAL: return "normal";
	case BP_MEDIUM: return "medium";
	case BP_HIGH: return "high";
	}
	return "?";
}

/* ---- hysteresis ----------------------------------------------------------- */

/* BP_RELIEF_PERCENT of t, without overflow */
static uint64_t relief_margin(uint64_t t)
{
	return t / 100 * BP_RELIEF_PERCENT + t % 100 * BP_RELIEF_PERCENT / 100;
}

static uint64_t relief_below(uint64_t t) { return t - relief_margin(t); }

static uint64_t relief_above(uint64_t t)
{
	uint64_t add = relief_margin(t);
	return t > UINT64_MAX - add ? UINT64_MAX : t + add;
}

enum bp_level bp_level_above(enum bp_level prev, uint64_t v, uint64_t medium, uint64_t high)
{
	if (v >= high)
		return BP_HIGH;
	if (prev == BP_HIGH && v >= relief_below(high))
		return BP_HIGH;
	if (v >= medium)
		return BP_MEDIUM;
	if (prev >= BP_MEDIUM && v >= relief_below(medium))
		return BP_MEDIUM;
	return BP_NORMAL;
}

enum bp_level bp_level_below(enum bp_level prev, uint64_t v, uint64_t medium, uint64_t high)
{
	if (v < high)
		return BP_HIGH;
	if (prev == BP_HIGH && v < relief_above(high))
		return BP_HIGH;
	if (v < medium)
		return BP_MEDIUM;
	if (prev >= BP_MEDIUM && v < relief_above(medium))
		return BP_MEDIUM;
	return BP_NORMAL;
}

/* ---- one sample -------------------------------------------------------------- */

struct bp_resource {
	const char *reason; /* reason=... in the log */
	const char *key;    /* the value's name in the log */
	bool low_is_bad;
	uint64_t medium, high, value;
	enum bp_level *level;
	enum bp_level before;
};

/* The threshold that was crossed: rising into `to`, or falling out of `from`. */
static uint64_t crossed(const struct bp_resource *r, enum bp_level from, enum bp_level to)
{
	if (to > from)
		return to == BP_HIGH ? r->high : r->medium;
	if (from == BP_HIGH)
		return r->low_is_bad ? relief_above(r->high) : relief_below(r->high);
	return r->low_is_bad ? relief_above(r->medium) : relief_below(r->medium);
}

bool bp_evaluate(struct bp_state *st, const struct bp_limits *lim, const struct bp_reading *rd,
		 char *why, size_t whylen)
{
	struct bp_resource res[] = {
		{"disk-free", "free", true, lim->disk_free_medium, lim->disk_free_high,
		 rd->disk_free, &st->disk, st->disk},
		{"memory", "rss", false, lim->memory_high, lim->memory_high, rd->rss, &st->memory,
		 st->memory},
		{"queue-length", "messages", false, lim->queue_medium, lim->queue_high, rd->queue,
		 &st->queue, st->queue},
	};
	const bool known[] = {rd->disk_known, rd->memory_known, true};
	enum bp_level old = st->level, now = BP_NORMAL;
	const struct bp_resource *cause = NULL;
	size_t i;

	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
		struct bp_resource *r = &res[i];
		if (known[i])
			*r->level = r->low_is_bad
					    ? bp_level_below(*r->level, r->value, r->medium, r->high)
					    : bp_level_above(*r->level, r->value, r->medium, r->high);
		if (*r->level > now)
			now = *r->level;
	}
	st->level = now;
	if (now == old)
		return false;
	/* the cause: rising, a resource now at the new level; falling, one
	 * that held the old level and let go of it */
	for (i = 0; i < sizeof(res) / sizeof(res[0]) && cause == NULL; i++) {
		if (now > old ? *res[i].level == now : (res[i].before == old && *res[i].level < old))
			cause = &res[i];
	}
	if (cause == NULL)
		cause = &res[0];
	snprintf(why, whylen, "reason=%s %s=%" PRIu64 " threshold=%" PRIu64, cause->reason,
		 cause->key, cause->value, crossed(cause, now > old ? cause->before : old, now));
	return true;
}

/* ---- what the machine says --------------------------------------------------- */

static uint64_t physical_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size;
}

uint64_t bp_memory_limit(const struct config *c)
{
	uint64_t phys;

	if (c->back_pressure.memory_high_percent == 0)
		return c->back_pressure.memory_high_bytes;
	if ((phys = physical_memory()) == 0)
		return UINT64_MAX; /* unknown: the memory resource never rises */
	return phys / 100 * c->back_pressure.memory_high_percent;
}

/* Resident set size of this process in bytes (/proc/self/statm). */
static bool read_rss(uint64_t *out)
{
	char text[256];
	unsigned long long size, resident;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	long page = sysconf(_SC_PAGESIZE);

	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0 || page <= 0)
		return false;
	text[n] = '\0';
	if (sscanf(text, "%llu %llu", &size, &resident) != 2)
		return false;
	*out = (uint64_t)resident * (uint64_t)page;
	return true;
}

/* ---- the sampler ------------------------------------------------------------- */

static struct backpressure {
	bool running;
	char *spool;
	struct bp_limits lim;
	struct bp_state st;
	size_t (*queue_len)(void *arg);
	void *arg;
	struct event *timer;
	bool disk_error_logged;
} bp;

static void sample(void)
{
	struct bp_reading rd = {0};
	struct statvfs sv;
	char why[160];
	enum bp_level old = bp.st.level;

	if (statvfs(bp.spool, &sv) == 0) {
		rd.disk_known = true;
		rd.disk_free = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
		bp.disk_error_logged = false;
	} else if (!bp.disk_error_logged) {
		log_warn("back-pressure cannot read the free space of %s: %s (the disk level "
			 "stays %s)", bp.spool, strerror(errno), bp_level_name(bp.st.disk));
		bp.disk_error_logged = true;
	}
	rd.memory_known = read_rss(&rd.rss);
	rd.queue = bp.queue_len(bp.arg);
	if (!bp_evaluate(&bp.st, &bp.lim, &rd, why, sizeof(why)))
		return;
	if (bp.st.level > old)
		log_warn("back-pressure level=%s previous=%s %s", bp_level_name(bp.st.level),
			 bp_level_name(old), why);
	else
		log_info("back-pressure level=%s previous=%s %s", bp_level_name(bp.st.level),
			 bp_level_name(old), why);
}

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sample();
}

void backpressure_start(const struct config *c, struct event_base *base,
			size_t (*queue_len)(void *arg), void *arg)
{
	const struct timeval every = {BP_SAMPLE_SECONDS, 0};

	backpressure_stop();
	if (!c->back_pressure.enabled) {
		log_warn("back-pressure is disabled (back-pressure { enabled = false }): transit "
			 "takes new mail whatever the free disk space, memory and queue length");
		return;
	}
	bp.spool = xstrdup(c->server.spool);
	bp.lim.disk_free_medium = c->back_pressure.disk_free_medium;
	bp.lim.disk_free_high = c->back_pressure.disk_free_high;
	bp.lim.memory_high = bp_memory_limit(c);
	bp.lim.queue_medium = c->back_pressure.queue_medium;
	bp.lim.queue_high = c->back_pressure.queue_high;
	bp.queue_len = queue_len;
	bp.arg = arg;
	if ((bp.timer = event_new(base, -1, EV_PERSIST, sample_cb, NULL)) == NULL)
		log_fatal("back-pressure: event_new failed");
	bp.running = true;
	log_info("back-pressure enabled disk-free-medium=%" PRIu64 " disk-free-high=%" PRIu64
		 " memory-high=%" PRIu64 " queue-medium=%" PRIu64 " queue-high=%" PRIu64,
		 bp.lim.disk_free_medium, bp.lim.disk_free_high, bp.lim.memory_high,
		 bp.lim.queue_medium, bp.lim.queue_high);
	sample();
	event_add(bp.timer, &every);
}

void backpressure_set_limits(const struct config *c)
{
	if (!bp.running)
		return; /* enabled = false: that switch is restart-only */
	bp.lim.disk_free_medium = c->back_pressure.disk_free_medium;
	bp.lim.disk_free_high = c->back_pressure.disk_free_high;
	bp.lim.memory_high = bp_memory_limit(c);
	bp.lim.queue_medium = c->back_pressure.queue_medium;
	bp.lim.queue_high = c->back_pressure.queue_high;
}

void backpressure_stop(void)
{
	if (bp.timer)
		event_free(bp.timer);
	free(bp.spool);
	memset(&bp, 0, sizeof(bp));
}

enum bp_level backpressure_level(void) { return bp.running ? bp.st.level : BP_NORMAL; }

bool backpressure_admits_mail(bool authenticated)
{
	return bp_admits_mail(backpressure_level(), authenticated);
}

bool bp_admits_mail(enum bp_level l, bool authenticated)
{
	switch (l) {
	case BP_NORMAL: return true;
	case BP_MEDIUM: return authenticated;
	case BP_HIGH: return false;
	}
	return false;
}
