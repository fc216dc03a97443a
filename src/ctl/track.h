/*
 * track.h - `transitctl track`: the message tracking query (log/trackfilter.h
 * over the files of log/tracking.h). Reads the files directly, so it
 * works with the daemon down.
 */
#ifndef TRANSIT_CTL_TRACK_H
#define TRANSIT_CTL_TRACK_H

/* argv[0] is "track". Exit status: 0 (even when nothing matched), 1 the
 * files cannot be read, 2 usage. */
int ctl_track(int argc, char **argv, const char *conf_path);

#endif
