/*
 * reload.h - configuration reload without restart (SIGHUP, and the
 * control socket's "reload" verb once it exists).
 *
 * daemon_reload() first checks the file exactly as `transitd -n` does: it
 * runs `transitd -n -c FILE` (the running binary) in a child and keeps its
 * error lines - every conf_load() check, the open-relay refusal included.
 * The child runs while the event loop goes on serving (its stderr is an
 * event on the loop; bounded by RELOAD_CHECK_TIMEOUT). When it accepts
 * the file, the daemon loads it, builds the next generation (TLS
 * contexts, send connector secrets: read as server.user now, see
 * daemon/gen_build.h), logs what it cannot apply ("X changed: needs a
 * restart"), and hands the generation to the listeners, the SMTP server,
 * the scheduler and back pressure. Sessions and deliveries already
 * running keep the generation they started with (conf/gen.h). A refused
 * file changes nothing.
 *
 * Every attempt ends in done() (when given), in the log, and in
 * <spool>/reload.status (ctl/reload_status.h), which `transitctl reload`
 * reads today. One reload runs at a time: a SIGHUP during one makes
 * another follow it (the file may have changed after the check read it).
 */
#ifndef TRANSIT_DAEMON_RELOAD_H
#define TRANSIT_DAEMON_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/gen.h"

struct event_base;
struct listeners;
struct smtp_server;
struct sched;
struct reload_check;

/* The outcome: ok, or the reason the file was refused ("transit.conf:12:
 * ..."; the old generation stays). Runs on the loop. */
typedef void (*daemon_reload_done)(void *arg, bool ok, const char *message);

struct daemon {
	const char *conf_path;
	const char *self;	 /* this program, for the -n check: /proc/self/exe */
	struct event_base *base;
	struct conf_gen *gen;	 /* the current generation (the daemon's reference) */
	uint64_t attempts;	 /* reload attempts finished so far */
	char spool[4096];	 /* where reload.status goes (the running spool) */
	struct listeners *ls;	 /* NULL once stopping: reloads are refused */
	struct smtp_server *srv;
	struct sched *sched;
	time_t started;		 /* for status: the uptime */
	/* the reload under way */
	struct reload_check *check;
	daemon_reload_done done;
	void *done_arg;
	bool again;		 /* a SIGHUP came meanwhile: reload once more after */
};

/* Open the tracking log and the protocol logs the configuration asks for
 * (at start, after the privilege drop, and at each reload). */
void daemon_logs_start(const struct config *c);

/* Start a reload of d->conf_path. 0: started, done(arg, ...) follows on
 * the loop; -1: not started, err says why: another reload is under way
 * (nothing recorded: wait for that one, or use daemon_reload_signal()),
 * or transitd is stopping or cannot run the check (recorded as a refused
 * attempt). */
int daemon_reload(struct daemon *d, daemon_reload_done done, void *arg, char *err,
		  size_t errlen);

/* SIGHUP: daemon_reload() without a caller waiting, or, while one runs,
 * one more after it. */
void daemon_reload_signal(struct daemon *d);

/* Record the current state in reload.status (at start: attempt 0). */
void daemon_reload_record(struct daemon *d, bool ok, const char *message);

/* At exit: stop a check still running (its child is killed and reaped). */
void daemon_reload_cancel(struct daemon *d);

#endif
