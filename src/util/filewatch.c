/*
 * filewatch.c - see filewatch.h.
 */
#include "util/filewatch.h"

#include "util/clock.h"

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

enum file_watch_state file_watch_poll(struct file_watch *w, const char *path,
				      uint64_t interval_ms)
{
	uint64_t now = clock_mono_ms();
	struct stat st;

	if (w->checked && mono_elapsed_ms(w->last_check_ms, now) < interval_ms)
		return FILE_WATCH_NOT_YET;
	w->checked = true;
	w->last_check_ms = now;
	if (stat(path, &st) != 0)
		return FILE_WATCH_GONE;
	return w->known && same_file(&w->id, &st) ? FILE_WATCH_SAME : FILE_WATCH_CHANGED;
}

void file_watch_note(struct file_watch *w, const struct stat *st)
{
	w->id = *st;
	w->known = true;
}
