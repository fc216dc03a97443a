/*
 * trackfilter.h - which tracking events (log/tracking.h JSON lines) a
 * query wants: `transitctl track` (ctl/track.c) reads the files line by
 * line and asks track_filter_line() about each.
 *
 * Matching: sender and recipient compare whole addresses, ASCII case
 * ignored (recipient also matches an entry of "recipients"); queue id,
 * Message-ID and event exactly (event ignores case); since/until compare
 * the "time" field (since <= time < until, both RFC 3339 UTC strings as
 * tracking writes them). A Message-ID appears only in RECEIVE: when it
 * matches, the queue id is remembered and the later events of that queue
 * id (and of its DSN, "related_qid") match too, so files must be read in
 * time order. A line that is not a JSON object is skipped (a torn last
 * line after a crash).
 *
 * Cheap first: before parsing, a line must contain each plain filter
 * value (case ignored), so most lines of a big log are never parsed.
 * Input is untrusted (the fuzz target tests/fuzz/fuzz_trackfilter.c).
 */
#ifndef TRANSIT_LOG_TRACKFILTER_H
#define TRANSIT_LOG_TRACKFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct track_filter {
	const char *sender, *recipient, *message_id, *qid, *event; /* NULL: any */
	char since[32], until[32]; /* "" : unbounded; "YYYY-MM-DDTHH:MM:SS.mmmZ" */
	struct htable *joined;	   /* queue ids found through message_id */
	char *scratch;		   /* the line, NUL-terminated, for the cheap test */
	size_t scratchsz;
};

void track_filter_init(struct track_filter *f);
void track_filter_free(struct track_filter *f);
/* A time for --since/--until: "2026-12-04T22:00:00Z", "2026-12-04 22:00",
 * "2026-12-04" (UTC), or an age "90m", "2h", "3d" before now. Writes the
 * comparable form into out (32 octets); false if it is not a time. */
bool track_filter_time(const char *s, long long now, char out[32]);
/* Does line[0..len) (no LF needed) match? When it does and obj is not
 * NULL, *obj is the parsed event (the caller json_decref()s it). */
bool track_filter_line(struct track_filter *f, const char *line, size_t len, json_t **obj);

#endif
