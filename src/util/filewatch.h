/*
 * filewatch.h - "has this file changed since it was read?", asked at most
 * once per interval: for the files transitd re-reads by itself while it
 * runs (the passwd-file, the aliases file). A file's identity is its
 * device, inode, size and modification time, so an edit in place and an
 * atomic replace (rename) are both seen. The interval is counted on the
 * monotonic clock (util/clock.h). No locking: the owner's lock covers it.
 */
#ifndef TRANSIT_UTIL_FILEWATCH_H
#define TRANSIT_UTIL_FILEWATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct file_watch {
	bool checked;		/* looked at once at least */
	uint64_t last_check_ms; /* clock_mono_ms() of that look */
	bool known;		/* id is the file as last read */
	struct stat id;
};

enum file_watch_state {
	FILE_WATCH_NOT_YET, /* looked at less than an interval ago */
	FILE_WATCH_SAME,    /* the file last read, unchanged */
	FILE_WATCH_CHANGED, /* another file, or changed, or never read */
	FILE_WATCH_GONE,    /* stat() failed: errno says why */
};

enum file_watch_state file_watch_poll(struct file_watch *w, const char *path,
				      uint64_t interval_ms);
/* The file just read (st: its stat before or while reading it). */
void file_watch_note(struct file_watch *w, const struct stat *st);

#endif
