/*
 * bgwriter.h - a bounded byte ring emptied by a writer thread (no mail
 * knowledge). A producer (the event loop, any thread) hands a complete
 * record to bgwriter_put(): one mutex, one memcpy, never a wait for the
 * disk. The writer thread passes what is queued to a sink callback in
 * batches. When the ring is full the record is dropped and counted (the
 * ring never grows, so no peer can make us hold more than its size).
 *
 * util/log.c's stderr queue and the rotating log files of src/log/ are
 * each one bgwriter.
 *
 * Records are never split across sink calls: the sink sees whole
 * records, in order, possibly several per call.
 */
#ifndef TRANSIT_UTIL_BGWRITER_H
#define TRANSIT_UTIL_BGWRITER_H

#include <stdbool.h>
#include <stddef.h>

/* Write p[0..n) somewhere; runs on the writer thread only. Whatever it
 * returns, the octets are consumed (a failing sink counts its own
 * errors). */
typedef void (*bgwriter_sink)(void *arg, const char *p, size_t n);
/* Called on the writer thread about once a second when idle (pruning by
 * age, retrying a failed open), may be NULL. */
typedef void (*bgwriter_tick)(void *arg);
/* Called on the writer thread when records were dropped since the last
 * notice and there is room again: format a record saying that n were
 * lost into out (outsz) and return its length (0: none). May be NULL. */
typedef size_t (*bgwriter_note)(void *arg, unsigned long n, char *out, size_t outsz);

struct bgwriter;

/* ring_size octets of queue; a record larger than ring_size / 4 is
 * always dropped. After each write the thread naps batch_ms before it
 * looks again (records wait at most about that long; one sink call and
 * one wake-up per batch instead of per record). NULL if the thread cannot
 * be started. */
struct bgwriter *bgwriter_start(size_t ring_size, unsigned batch_ms, bgwriter_sink sink,
				bgwriter_tick tick, bgwriter_note note, void *arg);
/* Queue one record; false if dropped (ring full or too large). */
bool bgwriter_put(struct bgwriter *w, const char *p, size_t n);
/* Records dropped since the start. */
unsigned long bgwriter_dropped(const struct bgwriter *w);
/* Wait at most ms for everything queued to reach the sink. */
void bgwriter_flush(struct bgwriter *w, int ms);
/* Flush (bounded), stop the thread, free. NULL is fine. */
void bgwriter_stop(struct bgwriter *w);

#endif
