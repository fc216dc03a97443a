/*
 * proxy_wait.c - the first state of a session from a trusted proxy
 * (SS_PROXY): read the PROXY header (net/proxy.h, HAProxy's
 * proxy-protocol.txt) before the banner, then hand the real client to
 * session_proxied() (server.c).
 *
 * The header is read straight from the socket, with no bufferevent:
 * each time it is readable, the bytes waiting are peeked (MSG_PEEK) and
 * parsed behind what was taken before, and only the octets that belong
 * to the header are taken out of the socket. Whatever the client sent
 * behind the header (its EHLO, or the TLS ClientHello on an implicit TLS
 * connector) stays in the socket for the session. Bounded: at most
 * PROXY_HEADER_MAX octets are held, and the whole header must arrive
 * within PROXY_HEADER_TIMEOUT_S seconds (or the connector's
 * command-timeout, if shorter), measured from the accept on the
 * monotonic clock, however slowly it trickles.
 *
 * A connection from a trusted proxy without a valid header is refused
 * (421 4.7.0, logged with the reason) and closed: a trusted address that
 * speaks plain SMTP is not served under the proxy's own address, so a
 * misconfigured balancer is noticed at once.
 */
#include "smtp/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/listener.h"
#include "net/proxy.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define PROXY_HEADER_TIMEOUT_S 10

struct proxy_wait {
	const struct binding *b;
	struct event *ev;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	size_t have;		  /* octets of the header taken so far */
	unsigned char buf[PROXY_HEADER_MAX];
};

void proxy_say(struct smtp_session *s, const char *text)
{
	/* The socket is non-blocking and its buffer empty: best effort. */
	if (s->fd >= 0 && write(s->fd, text, strlen(text)) < 0)
		(void)0;
}

void proxy_wait_free(struct smtp_session *s)
{
	if (s->proxy == NULL)
		return;
	if (s->proxy->ev)
		event_free(s->proxy->ev);
	free(s->proxy);
	s->proxy = NULL;
}

static void refuse(struct smtp_session *s, const char *reason, const char *detail)
{
	log_info("%s smtp refused address=%s reason=%s%s%s", s->id, s->proxy_addr, reason,
		 detail ? " error=" : "", detail ? detail : "");
	proxy_say(s, "421 4.7.0 PROXY protocol header missing or invalid, closing connection\r\n");
	session_close(s, reason);
}

/* Wait for more of the header, until the deadline. */
static void rearm(struct smtp_session *s)
{
	struct timespec now;
	struct timeval tv;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = ((long long)s->proxy->deadline.tv_sec - (long long)now.tv_sec) * 1000 +
	     ((long long)s->proxy->deadline.tv_nsec - (long long)now.tv_nsec) / 1000000;
	if (ms < 1)
		ms = 1; /* past already: the timeout fires on the next turn */
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	event_add(s->proxy->ev, &tv);
}

/* The header is complete: which connector serves whom. */
static void header_done(struct smtp_session *s, const struct proxy_result *r)
{
	const struct config *c = s->gen->conf;
	const struct binding *b = s->proxy->b;
	struct sockaddr_storage proxy = s->ss;
	int rc;

	proxy_wait_free(s);
	if (!r->has_address) {
		/* LOCAL (health checks), UNKNOWN, UNSPEC: the proxy itself */
		rc = listeners_pick_connector(c, b, (const struct sockaddr *)&proxy);
		log_debug("%s smtp proxy v%d header without a client address", s->id, r->version);
		if (rc < 0) {
			log_info("%s smtp refused address=%s reason=no-connector-for-address", s->id,
				 s->proxy_addr);
			session_close(s, "no-connector-for-address");
			return;
		}
		session_proxied(s, (const struct sockaddr *)&proxy, sizeof(proxy), (size_t)rc);
		return;
	}
	rc = listeners_pick_proxied(c, b, (const struct sockaddr *)&r->src,
				    (const struct sockaddr *)&proxy);
	if (rc < 0) {
		char addr[INET6_ADDRSTRLEN] = "?";
		if (r->src.ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)&r->src)->sin_addr, addr,
				  sizeof(addr));
		else
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&r->src)->sin6_addr, addr,
				  sizeof(addr));
		log_info("%s smtp refused address=%s proxy=%s reason=no-connector-for-address", s->id,
			 addr, s->proxy_addr);
		session_close(s, "no-connector-for-address");
		return;
	}
	session_proxied(s, (const struct sockaddr *)&r->src, r->srclen, (size_t)rc);
}

static void proxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct proxy_wait *w = s->proxy;
	struct proxy_result r;
	ssize_t n;
	size_t take;

	if (what & EV_TIMEOUT) {
		log_info("%s smtp timeout kind=proxy-header state=proxy address=%s", s->id,
			 s->proxy_addr);
		refuse(s, "proxy-header-timeout", NULL);
		return;
	}
	n = recv(fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		rearm(s);
		return;
	}
	if (n <= 0) {
		log_info("%s smtp refused address=%s reason=proxy-header-missing error=%s", s->id,
			 s->proxy_addr, n == 0 ? "connection-closed" : strerror(errno));
		session_close(s, "proxy-header-missing");
		return;
	}
	switch (proxy_parse(w->buf, w->have + (size_t)n, &r)) {
	case PROXY_NEED_MORE:
		/* every octet peeked belongs to the header: take them */
		take = (size_t)n;
		break;
	case PROXY_ERROR:
		refuse(s, "proxy-header-invalid", r.error);
		return;
	case PROXY_DONE:
	default:
		take = r.consumed - w->have;
		break;
	}
	if (recv(fd, w->buf + w->have, take, 0) != (ssize_t)take) {
		/* peeked octets are in the socket; only a broken socket gets here */
		log_info("%s smtp refused address=%s reason=proxy-header-missing error=%s", s->id,
			 s->proxy_addr, strerror(errno));
		session_close(s, "proxy-header-missing");
		return;
	}
	w->have += take;
	if (w->have == r.consumed && r.consumed > 0) {
		header_done(s, &r);
		return;
	}
	rearm(s);
}

void proxy_wait_start(struct smtp_session *s, const struct binding *b)
{
	struct proxy_wait *w = xcalloc(1, sizeof(*w));
	uint64_t secs = PROXY_HEADER_TIMEOUT_S;

	if (s->rc->command_timeout < secs)
		secs = s->rc->command_timeout;
	w->b = b;
	s->proxy = w;
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += (time_t)secs;
	w->ev = event_new(s->srv->p.base, s->fd, EV_READ, proxy_read_cb, s);
	if (w->ev == NULL) {
		log_warn("%s smtp session setup failed: no memory for its PROXY header event", s->id);
		session_close(s, "out-of-memory");
		return;
	}
	rearm(s);
}
