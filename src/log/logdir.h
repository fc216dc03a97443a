/*
 * logdir.h - a directory of rotating log files written off the event
 * loop (no mail knowledge): the tracking log (log/tracking.c) and the
 * protocol logs (log/protolog.c) are each one logdir.
 *
 * Records are whole lines (ending in LF) queued in a bounded ring
 * (util/bgwriter.c) and appended by a writer thread to
 * <dir>/<prefix>-YYYYMMDD-HHMMSS-NNNN<suffix> (UTC time the file was
 * started; names sort in time order). Limits:
 *   max_file_size  a file is closed and a new one started before a record
 *                  would take it past this (a record is never split);
 *   max_dir_size   after each rotation, at open and once a minute the
 *                  oldest files are removed until the files of this
 *                  prefix add up to at most this;
 *   max_age        ... and files last written longer ago than this are
 *                  removed (wall clock, signed, clamped: util/clock.h).
 * The file being written is never removed.
 *
 * Write errors (cannot create the directory or the file, a short write,
 * ENOSPC) lose the records concerned: they are counted and the first one
 * after a success is logged (log_warn), then the recovery (log_info), so
 * a full disk produces two log lines, not one per record.
 */
#ifndef TRANSIT_LOG_LOGDIR_H
#define TRANSIT_LOG_LOGDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct logdir_limits {
	uint64_t max_file_size; /* octets */
	uint64_t max_dir_size;	/* octets */
	uint64_t max_age;	/* seconds */
};

struct logdir;

/* NULL (logged) when the writer thread cannot be started. The directory
 * is created (mode 0750) when the first record is written. */
struct logdir *logdir_open(const char *dir, const char *prefix, const char *suffix,
			   const struct logdir_limits *lim, size_t ring_size);
/* Queue one record (a line ending in LF); false if dropped. */
bool logdir_put(struct logdir *d, const char *p, size_t n);
/* Records lost to write errors / dropped because the ring was full. */
unsigned long logdir_write_errors(const struct logdir *d);
unsigned long logdir_dropped(const struct logdir *d);
/* Wait at most ms until everything queued is written. */
void logdir_flush(struct logdir *d, int ms);
/* Flush (bounded), stop, free. NULL is fine. */
void logdir_close(struct logdir *d);

/* Remove the files of prefix/suffix in dir that break lim at time now,
 * oldest first, never the file named keep (may be NULL). Returns the
 * number removed. Exposed for the unit tests. */
unsigned logdir_prune(const char *dir, const char *prefix, const char *suffix,
		      const struct logdir_limits *lim, time_t now, const char *keep);

#endif
