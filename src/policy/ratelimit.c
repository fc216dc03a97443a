/*
 * ratelimit.c - token buckets in a bounded table (see ratelimit.h).
 *
 * A bucket's level is kept in 1/60000 token units, so that refilling
 * per_minute tokens a minute is exact integer arithmetic: each elapsed
 * millisecond adds per_minute units, a full bucket holds per_minute *
 * 60000 units. The list orders the entries by last use, oldest first,
 * which gives both the eviction order and the idle sweep. Postfix's
 * anvil counts in fixed windows (a burst of twice the limit across a
 * window edge passes); a bucket has no edge.
 */
#include "policy/ratelimit.h"

#include <stdlib.h>

#include "util/clock.h"
#include "util/htable.h"
#include "util/xmalloc.h"

#define UNITS_PER_TOKEN 60000u /* milliseconds in a minute */
#define SWEEP_PER_CALL 4       /* idle entries freed per call, at most */

struct bucket {
	struct bucket *older, *newer; /* by last use */
	char *key;
	uint64_t units;	  /* tokens * UNITS_PER_TOKEN */
	uint64_t last_ms; /* last refill */
};

struct ratelimit {
	struct htable *h;
	struct bucket *oldest, *newest;
	unsigned n, max;
};

struct ratelimit *ratelimit_new(unsigned max_entries)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	rl->h = htable_new();
	rl->max = max_entries ? max_entries : 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	struct bucket *b, *next;

	if (rl == NULL)
		return;
	for (b = rl->oldest; b; b = next) {
		next = b->newer;
		free(b->key);
		free(b);
	}
	htable_free(rl->h, NULL);
	free(rl);
}

static void unlink_bucket(struct ratelimit *rl, struct bucket *b)
{
	if (b->older)
		b->older->newer = b->newer;
	else
		rl->oldest = b->newer;
	if (b->newer)
		b->newer->older = b->older;
	else
		rl->newest = b->older;
	b->older = b->newer = NULL;
}

static void push_newest(struct ratelimit *rl, struct bucket *b)
{
	b->older = rl->newest;
	if (rl->newest)
		rl->newest->newer = b;
	else
		rl->oldest = b;
	rl->newest = b;
}

static void drop_bucket(struct ratelimit *rl, struct bucket *b)
{
	unlink_bucket(rl, b);
	htable_del(rl->h, b->key);
	free(b->key);
	free(b);
	rl->n--;
}

/* Free a few of the oldest entries that have been idle for a minute. */
static void sweep_idle(struct ratelimit *rl, uint64_t now_ms)
{
	for (int i = 0; i < SWEEP_PER_CALL && rl->oldest; i++) {
		if (mono_elapsed_ms(rl->oldest->last_ms, now_ms) < RATELIMIT_IDLE_MS)
			return;
		drop_bucket(rl, rl->oldest);
	}
}

bool ratelimit_take(struct ratelimit *rl, const char *key, unsigned per_minute, unsigned n,
		    uint64_t now_ms)
{
	const uint64_t full = (uint64_t)per_minute * UNITS_PER_TOKEN;
	const uint64_t need = (uint64_t)n * UNITS_PER_TOKEN;
	struct bucket *b;

	if (per_minute == 0)
		return true;
	sweep_idle(rl, now_ms);
	b = htable_get(rl->h, key);
	if (b == NULL) {
		while (rl->n >= rl->max && rl->oldest)
			drop_bucket(rl, rl->oldest);
		b = xcalloc(1, sizeof(*b));
		b->key = xstrdup(key);
		b->units = full;
		b->last_ms = now_ms;
		htable_put(rl->h, key, b);
		rl->n++;
	} else {
		/* elapsed is clamped by mono_elapsed_ms; the product stays far
		 * below 2^64 (per_minute < 2^32, a minute's worth fills it) */
		uint64_t elapsed = mono_elapsed_ms(b->last_ms, now_ms);

		if (elapsed >= UNITS_PER_TOKEN)
			b->units = full;
		else if ((b->units += elapsed * per_minute) > full)
			b->units = full; /* also when per_minute was lowered by a reload */
		if (now_ms > b->last_ms)
			b->last_ms = now_ms;
		unlink_bucket(rl, b);
	}
	push_newest(rl, b);
	if (b->units < need)
		return false;
	b->units -= need;
	return true;
}

unsigned ratelimit_entries(const struct ratelimit *rl) { return rl->n; }
