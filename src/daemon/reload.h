/*
 * reload.h - configuration reload without restart (SIGHUP, and the
 * control socket's "reload" verb once it exists).
 *
 * daemon_reload() checks the file exactly as `transitd -n` does (it runs
 * `transitd -n -c FILE` and keeps its error lines: every conf_load()
 * check, the open-relay refusal included), then loads it, builds the new
 * generation (TLS contexts, send connector secrets: read as server.user
 * now), logs what it cannot apply ("X changed: needs a restart"), and
 * hands the generation to the listeners, the SMTP server, the scheduler
 * and back pressure. Sessions and deliveries already running keep the
 * generation they started with (conf/gen.h). A refused file changes
 * nothing. Every attempt is recorded in <spool>/reload.status
 * (ctl/reload_status.h). Runs on the event loop.
 */
#ifndef TRANSIT_DAEMON_RELOAD_H
#define TRANSIT_DAEMON_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/gen.h"

struct listeners;
struct smtp_server;
struct sched;

struct daemon {
	const char *conf_path;
	const char *self;	 /* this program, for the -n check: /proc/self/exe */
	struct conf_gen *gen;	 /* the current generation (the daemon's reference) */
	uint64_t attempts;	 /* reload attempts so far */
	char spool[4096];	 /* where reload.status goes (the running spool) */
	struct listeners *ls;	 /* NULL once stopping */
	struct smtp_server *srv;
	struct sched *sched;
};

/* Reload d->conf_path. 0: the new generation is current (restart-only
 * changes were logged and left as they are); -1: refused, err holds the
 * reason ("transit.conf:12: ..."), the old generation stays. */
int daemon_reload(struct daemon *d, char *err, size_t errlen);

/* Record the current state in reload.status (at start: attempt 0). */
void daemon_reload_record(struct daemon *d, bool ok, const char *message);

#endif
