/*
 * pidlock.h - an exclusive lock on a file, held for the life of the
 * process, with the holder's pid written in it (flock(2), so the kernel
 * drops the lock when the process dies, even by kill -9; a stale file
 * never blocks a start). No mail knowledge; transitd uses it so that two
 * daemons never share a spool.
 */
#ifndef TRANSIT_UTIL_PIDLOCK_H
#define TRANSIT_UTIL_PIDLOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Open (creating) path, take LOCK_EX|LOCK_NB and write our pid into it.
 * Returns the descriptor (O_CLOEXEC; keep it open to keep the lock).
 * -1 on failure, err says why; errno EWOULDBLOCK when another process
 * holds the lock, and then *holder is the pid it wrote (0: unreadable). */
int pidlock_acquire(const char *path, pid_t *holder, char *err, size_t errsz);


#endif
