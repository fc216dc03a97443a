/*
 * reload_status.h - the result of the daemon's last configuration reload,
 * in <spool>/reload.status (JSON, replaced atomically by a rename):
 *
 *   {"pid": 1234, "attempt": 3, "generation": 2, "time": 1700000000,
 *    "result": "ok" | "error", "message": "transit.conf:12: ..."}
 *
 * transitd writes it at start (attempt 0) and after every reload attempt
 * (SIGHUP); `transitctl reload` sends SIGHUP and waits for an attempt
 * newer than the one it saw. When the control socket carries "reload",
 * the same daemon_reload() result goes back in its reply instead, and
 * this file stays as a record for `status`.
 */
#ifndef TRANSIT_CTL_RELOAD_STATUS_H
#define TRANSIT_CTL_RELOAD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct reload_status {
	long pid;
	uint64_t attempt;    /* reload attempts since start (0: none yet) */
	uint64_t generation; /* the configuration generation in use */
	int64_t time;	     /* wall clock of the attempt */
	bool ok;
	char message[1024];  /* the refusal ("file:line: ..."), or "" */
};

/* 0, or -1 with err. */
int reload_status_write(const char *spool, const struct reload_status *st, char *err,
			size_t errlen);
/* 0, or -1 (missing, unreadable or not the format above). */
int reload_status_read(const char *spool, struct reload_status *st);

#endif
