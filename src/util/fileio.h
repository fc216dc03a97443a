/*
 * fileio.h - the few file operations every durable writer in transit
 * needs (queue, Maildir, passwd-file, TLS keys): write everything despite
 * short writes and EINTR, and fsync a directory so a new or renamed entry
 * in it survives a power loss. No mail knowledge.
 */
#ifndef TRANSIT_UTIL_FILEIO_H
#define TRANSIT_UTIL_FILEIO_H

#include <stddef.h>

/* Write all n bytes; 0, or -1 with errno. */
int write_full(int fd, const void *p, size_t n);
/* fsync the directory dir; 0, or -1 with errno (preserved across close). */
int fsync_dir(const char *dir);
/* fsync the directory holding path ("." for a bare name); 0 or -1. */
int fsync_parent(const char *path);

#endif
