/*
 * shutdown.c - the graceful stop of the SMTP server (smtp_server_shutdown,
 * server.h): every session is told "421 4.3.2 ... Service shutting down"
 * at its next safe point - a session in commit gets its 250 (or 451)
 * first, one in a TLS handshake is closed without a word - and closed
 * once that is sent; a tick every 100 ms sweeps the sessions, and past
 * the grace time the rest are dropped. done() is called when no session
 * is left.
 */
#include "smtp/session.h"

#include <stdbool.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "smtp/server.h"
#include "util/log.h"

#define SHUTDOWN_TICK_MS 100

/* What a shutdown does with one session now; called on every tick and
 * when a commit comes back (session_resume). */
void session_shutdown_step(struct smtp_session *s, bool force)
{
	if (s->dead)
		return; /* connection gone, waiting only for its commit callback */
	if (s->state == SS_STARTTLS && s->bev &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		return; /* starttls_switch() is scheduled with s: next tick */
	if (force) {
		log_info("%s smtp disconnect reason=shutdown-timeout state=%s messages=%u", s->id,
			 session_state_name(s->state), s->messages);
		session_free(s); /* with a commit pending: detached, freed by its callback */
		return;
	}
	switch (s->state) {
	case SS_COMMIT:	  /* the 250 (or 451) first: session_resume comes back here */
	case SS_CLOSING:  /* already saying goodbye; freed when flushed */
	case SS_STARTTLS: /* the 220 is not out yet: next tick */
		return;
	case SS_GREETING: /* TLS handshake: nothing can be said in clear */
		session_close(s, "shutdown");
		return;
	default:
		session_reply(s, 421, "4.3.2", "%s Service shutting down", s->rc->fqdn);
		session_close(s, "shutdown");
		return;
	}
}

static bool shutdown_overdue(const struct smtp_server *srv)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > srv->shutdown_deadline.tv_sec ||
	       (now.tv_sec == srv->shutdown_deadline.tv_sec &&
		now.tv_nsec >= srv->shutdown_deadline.tv_nsec);
}

static void shutdown_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *srv = arg;
	bool force = shutdown_overdue(srv);
	struct smtp_session *s, *next;
	(void)fd;
	(void)what;

	for (s = srv->sessions; s; s = next) {
		next = s->next; /* s may be freed (never another session) */
		session_shutdown_step(s, force);
	}
	if (srv->nsessions == 0) {
		event_del(srv->shutdown_tick);
		log_info("smtp shutdown complete");
		if (srv->shutdown_done)
			srv->shutdown_done(srv->shutdown_arg);
	}
}

void smtp_server_shutdown(struct smtp_server *srv, unsigned grace_seconds, void (*done)(void *arg),
			  void *arg)
{
	const struct timeval tick = {0, SHUTDOWN_TICK_MS * 1000};

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->shutdown_done = done;
	srv->shutdown_arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &srv->shutdown_deadline);
	srv->shutdown_deadline.tv_sec += (time_t)grace_seconds;
	log_info("smtp shutdown sessions=%u grace=%us", srv->nsessions, grace_seconds);
	srv->shutdown_tick = event_new(srv->p.base, -1, EV_PERSIST, shutdown_tick_cb, srv);
	if (srv->shutdown_tick == NULL)
		log_fatal("smtp shutdown: event_new failed");
	event_add(srv->shutdown_tick, &tick);
	event_active(srv->shutdown_tick, EV_TIMEOUT, 0); /* the first sweep right away */
}
