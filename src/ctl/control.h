/*
 * control.h - the control socket: the unix stream socket transitctl
 * talks to (control { socket }, default /run/transit/control.sock).
 *
 * Made while transitd is still root: owner root, group the primary group
 * of server.user, mode 0660. Each connection's peer is checked with
 * SO_PEERCRED / SO_PEERGROUPS: root, the server user, or a member of its
 * group; anyone else is refused and logged.
 *
 * Protocol: one JSON object per line, {"verb": "NAME", "args": {...}},
 * each answered by one JSON object on one line: {"ok": true, ...} or
 * {"ok": false, "error": "why"}. A request line is at most
 * CONTROL_MAX_REQUEST bytes; at most CONTROL_MAX_CONNS connections at once;
 * a connection idle for CONTROL_TIMEOUT seconds is closed. Everything
 * runs on the event loop, non-blocking; the verbs are in control_verbs.c.
 */
#ifndef TRANSIT_CTL_CONTROL_H
#define TRANSIT_CTL_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "conf/gen.h"

#define CONTROL_MAX_REQUEST (64 * 1024)
#define CONTROL_MAX_CONNS 16
#define CONTROL_TIMEOUT 30 /* seconds */
#define CONTROL_MAX_OUTPUT (1024 * 1024) /* unsent replies before reading pauses */

struct event_base;
struct sched;
struct smtp_server;

/* What the verbs may use: the daemon's parts (event loop thread only). */
struct control_env {
	struct conf_gen *const *gen; /* the daemon's current configuration generation:
				      * (*gen)->conf, replaced by a reload */
	struct event_base *base;
	struct sched *sched;
	struct smtp_server *srv;
	const char *version;
	time_t started;		/* wall clock, for display */
	uint64_t started_mono_ms; /* for the uptime */
	/* the "reload" verb: start one (daemon_reload_signal); NULL: refused */
	void (*reload)(void *arg);
	void *reload_arg;
};

struct control;

/* Create, bind and listen (as root, before privileges are dropped).
 * NULL + err when the socket cannot be made, or when another transitd
 * answers on it already. */
struct control *control_open(const struct config *c, char *err, size_t errsz);
/* Start serving on the loop; env must outlive the control. */
void control_start(struct control *ctl, struct event_base *base, const struct control_env *env);
/* Close the listener and every connection; removes the socket file if
 * it still can. */
void control_free(struct control *ctl);

#endif
