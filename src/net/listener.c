/*
 * listener.c - see listener.h. Uses libevent's evconnlistener on sockets
 * we bind ourselves (so binding happens before the privilege drop and
 * IPv6 sockets are IPV6_V6ONLY: "[::]:25" and "0.0.0.0:25" coexist).
 *
 * A full descriptor table (EMFILE, ENFILE) must not spin the loop: the
 * listening socket stays readable, so retrying at once fails at once,
 * forever. Instead that listener is paused for ACCEPT_PAUSE_MS (one log
 * line per pause, as OpenSMTPD's smtp.c does), and one waiting client is
 * told why: a reserve descriptor (/dev/null, opened at start) is given
 * up for a moment so the connection can be accepted, answered 421 and
 * closed rather than left hanging in the backlog; then the reserve is
 * taken again.
 *
 * A connection from a trusted proxy (some connector on the binding lists
 * the peer in trusted-proxies) is handed to smtp_server_accept_proxied():
 * the connector is chosen only once the PROXY header has named the real
 * client, and only among the connectors that trust that proxy - a proxy
 * trusted by the internet connector cannot claim an address in the relay
 * connector's remote-ip-ranges unless that connector trusts it too.
 */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "smtp/server.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct bound {
	struct listeners *owner;
	const struct binding *b;
	int fd;
	struct evconnlistener *evl;
	struct event *resume; /* ends a pause after EMFILE/ENFILE */
};

struct listeners {
	/* the daemon's current generation's configuration: bindings point
	 * into it; listeners_reconfigure() moves to the next one */
	const struct config *conf;
	struct smtp_server *srv;
	struct event_base *base;
	struct bound **v;
	size_t n;
	int reserve_fd; /* /dev/null, given up to shed a client when fds run out */
};

#define ACCEPT_PAUSE_MS 1000

#define LOCAL_MAX 64
static struct {
	int family;
	unsigned char ip[16];
} local_ips[LOCAL_MAX];
static size_t nlocal;
static bool local_any4, local_any6;

static void local_add(int family, const void *ip)
{
	if (nlocal >= LOCAL_MAX || listeners_is_local_ip(family, ip))
		return;
	local_ips[nlocal].family = family;
	memcpy(local_ips[nlocal].ip, ip, family == AF_INET ? 4 : 16);
	nlocal++;
}

static void local_add_interfaces(void)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) != 0)
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET && local_any4)
			local_add(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr);
		else if (i->ifa_addr->sa_family == AF_INET6 && local_any6)
			local_add(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr);
	}
	freeifaddrs(ifa);
}

bool listeners_is_local_ip(int family, const void *ip)
{
	size_t i;
	for (i = 0; i < nlocal; i++)
		if (local_ips[i].family == family &&
		    memcmp(local_ips[i].ip, ip, family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

void listeners_note_local_ips(const struct config *c)
{
	size_t i, j;

	nlocal = 0;
	local_any4 = local_any6 = false;
	for (i = 0; i < c->nrcs; i++) {
		for (j = 0; j < c->rcs[i].nbindings; j++) {
			const struct binding *b = &c->rcs[i].bindings[j];
			if (b->ss.ss_family == AF_INET) {
				const struct sockaddr_in *sin = (const struct sockaddr_in *)&b->ss;
				if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
					local_any4 = true;
				else
					local_add(AF_INET, &sin->sin_addr);
			} else {
				const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&b->ss;
				if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
					local_any6 = true;
				else
					local_add(AF_INET6, &sin6->sin6_addr);
			}
		}
	}
	if (local_any4 || local_any6)
		local_add_interfaces();
}

static bool same_binding(const struct binding *a, const struct binding *b)
{
	return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

static bool rc_on_binding(const struct receive_connector *rc, const struct binding *b)
{
	size_t j;

	for (j = 0; j < rc->nbindings; j++)
		if (same_binding(&rc->bindings[j], b))
			return true;
	return false;
}

static bool rc_trusts_proxy(const struct receive_connector *rc, const struct sockaddr *peer)
{
	size_t k;

	for (k = 0; k < rc->ntrusted_proxies; k++)
		if (ip_range_contains(&rc->trusted_proxies[k], peer))
			return true;
	return false;
}

/* The most specific remote-ip-range match for client among the
 * connectors on b (only those trusting proxy, when proxy is given). */
static int pick(const struct config *c, const struct binding *b, const struct sockaddr *client,
		const struct sockaddr *proxy)
{
	size_t i, k;
	int best = -1;
	int best_prefix = -1;

	for (i = 0; i < c->nrcs; i++) {
		const struct receive_connector *rc = &c->rcs[i];
		if (!rc_on_binding(rc, b) || (proxy && !rc_trusts_proxy(rc, proxy)))
			continue;
		for (k = 0; k < rc->nranges; k++) {
			if (ip_range_contains(&rc->ranges[k], client) &&
			    (int)rc->ranges[k].prefix > best_prefix) {
				best = (int)i;
				best_prefix = (int)rc->ranges[k].prefix;
			}
		}
	}
	return best;
}

int listeners_pick_connector(const struct config *c, const struct binding *b,
			     const struct sockaddr *client)
{
	return pick(c, b, client, NULL);
}

int listeners_trusting_connector(const struct config *c, const struct binding *b,
				 const struct sockaddr *peer)
{
	size_t i;

	for (i = 0; i < c->nrcs; i++)
		if (rc_on_binding(&c->rcs[i], b) && rc_trusts_proxy(&c->rcs[i], peer))
			return (int)i;
	return -1;
}

int listeners_pick_proxied(const struct config *c, const struct binding *b,
			   const struct sockaddr *client, const struct sockaddr *proxy)
{
	return pick(c, b, client, proxy);
}

static int bind_one(const struct binding *b, char *err, size_t errsz)
{
	int fd, one = 1;

	fd = socket(b->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket for %s: %s", b->text, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (b->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&b->ss, b->sslen) != 0) {
		snprintf(err, errsz, "bind %s: %s", b->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, 4096) != 0) { /* the kernel caps it at net.core.somaxconn */
		snprintf(err, errsz, "listen %s: %s", b->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The bound socket for b, or NULL. */
static struct bound *find_bound(const struct listeners *l, const struct binding *b)
{
	for (size_t k = 0; k < l->n; k++)
		if (same_binding(l->v[k]->b, b))
			return l->v[k];
	return NULL;
}

static struct bound *bound_add(struct listeners *l, const struct binding *b, int fd)
{
	struct bound *bd = xcalloc(1, sizeof(*bd));

	bd->owner = l;
	bd->b = b;
	bd->fd = fd;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = bd;
	return bd;
}

static void bound_free(struct bound *bd)
{
	if (bd->resume)
		event_free(bd->resume);
	if (bd->evl)
		evconnlistener_free(bd->evl);
	else if (bd->fd >= 0)
		close(bd->fd);
	free(bd);
}

struct listeners *listeners_bind(const struct config *c, char *err, size_t errsz)
{
	struct listeners *l = xcalloc(1, sizeof(*l));
	size_t i, j;

	l->conf = c;
	l->reserve_fd = -1;
	for (i = 0; i < c->nrcs; i++) {
		for (j = 0; j < c->rcs[i].nbindings; j++) {
			const struct binding *b = &c->rcs[i].bindings[j];
			int fd;
			if (find_bound(l, b))
				continue;
			if ((fd = bind_one(b, err, errsz)) < 0) {
				listeners_free(l);
				return NULL;
			}
			bound_add(l, b, fd);
		}
	}
	listeners_note_local_ips(c);
	return l;
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct bound *bd = arg;
	int rc;
	(void)evl;

	/* each reply is written whole: send it now, not after the client's ACK */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (listeners_trusting_connector(bd->owner->conf, bd->b, sa) >= 0) {
		/* a load balancer: its PROXY header says who the client is,
		 * and the connector is picked for that client */
		smtp_server_accept_proxied(bd->owner->srv, fd, sa, (socklen_t)salen, bd->b);
		return;
	}
	rc = listeners_pick_connector(bd->owner->conf, bd->b, sa);
	if (rc < 0) {
		log_info("smtp refused binding=%s reason=no-connector-for-address", bd->b->text);
		close(fd);
		return;
	}
	smtp_server_accept(bd->owner->srv, fd, sa, (socklen_t)salen, (size_t)rc);
}

static void reserve_take(struct listeners *l)
{
	if (l->reserve_fd < 0)
		l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors: free the reserve, take the oldest waiting client,
 * tell it 421 and close it, take the reserve again. Returns true when a
 * client was shed. */
static bool shed_one_client(struct bound *bd)
{
	struct listeners *l = bd->owner;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd, rc;

	if (l->reserve_fd < 0)
		return false;
	close(l->reserve_fd);
	l->reserve_fd = -1;
	fd = accept4(bd->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		rc = listeners_pick_connector(l->conf, bd->b, (struct sockaddr *)&ss);
		smtp_server_refuse_busy(l->srv, fd, rc < 0 ? NULL : &l->conf->rcs[rc]);
	}
	reserve_take(l);
	return fd >= 0;
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bound *bd = arg;
	(void)fd;
	(void)what;
	log_debug("accepting again address=%s", bd->b->text);
	evconnlistener_enable(bd->evl);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct bound *bd = arg;
	int e = EVUTIL_SOCKET_ERROR();
	const struct timeval pause = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
	bool shed;

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		/* per-connection trouble (ECONNABORTED...): the next one may work */
		log_warn("accept on %s: %s", bd->b->text, strerror(e));
		return;
	}
	evconnlistener_disable(evl);
	evtimer_add(bd->resume, &pause);
	shed = shed_one_client(bd);
	log_warn("accept on %s: %s: not accepting for %d ms%s", bd->b->text, strerror(e),
		 ACCEPT_PAUSE_MS, shed ? ", one waiting client refused with 421" : "");
}

/* Start accepting on bd (fatal at start, logged at a reload). */
static bool bound_start(struct bound *bd, bool fatal)
{
	struct listeners *l = bd->owner;

	bd->evl = evconnlistener_new(l->base, accept_cb, bd,
				     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, bd->fd);
	if (bd->evl)
		bd->resume = evtimer_new(l->base, accept_resume_cb, bd);
	if (bd->evl == NULL || bd->resume == NULL) {
		if (fatal)
			log_fatal("cannot listen on %s", bd->b->text);
		log_warn("cannot listen on %s: out of memory", bd->b->text);
		return false;
	}
	evconnlistener_set_error_cb(bd->evl, accept_error_cb);
	log_info("listening address=%s", bd->b->text);
	return true;
}

void listeners_start(struct listeners *l, struct event_base *base, struct smtp_server *srv)
{
	size_t i;

	l->srv = srv;
	l->base = base;
	reserve_take(l);
	if (l->reserve_fd < 0)
		log_warn("cannot open /dev/null for the reserve descriptor: %s", strerror(errno));
	for (i = 0; i < l->n; i++)
		bound_start(l->v[i], true);
}

unsigned listeners_reconfigure(struct listeners *l, const struct config *c)
{
	struct bound **old = l->v;
	size_t nold = l->n, i, j, k;
	unsigned restart = 0;
	char err[256];

	/* keep the sockets whose binding is still named, in the new order */
	l->v = NULL;
	l->n = 0;
	for (i = 0; i < c->nrcs; i++) {
		for (j = 0; j < c->rcs[i].nbindings; j++) {
			const struct binding *b = &c->rcs[i].bindings[j];
			struct bound *bd = NULL;
			int fd;

			if (find_bound(l, b))
				continue;
			for (k = 0; k < nold && bd == NULL; k++)
				if (old[k] && same_binding(old[k]->b, b)) {
					bd = old[k];
					old[k] = NULL;
				}
			if (bd) {
				bd->b = b;
				l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
				l->v[l->n++] = bd;
				continue;
			}
			/* a new binding: bound as we are now (not root any more) */
			if ((fd = bind_one(b, err, sizeof(err))) < 0) {
				log_warn("reload: receive-connector %s: new binding %s: %s: needs a "
					 "restart", c->rcs[i].name, b->text, err);
				restart++;
				continue;
			}
			bd = bound_add(l, b, fd);
			if (!bound_start(bd, false)) {
				l->n--;
				bound_free(bd);
			}
		}
	}
	for (k = 0; k < nold; k++) {
		if (old[k] == NULL)
			continue;
		log_info("reload: not listening any more address=%s", old[k]->b->text);
		bound_free(old[k]);
	}
	free(old);
	l->conf = c;
	listeners_note_local_ips(c);
	return restart;
}

void listeners_free(struct listeners *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		bound_free(l->v[i]);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	free(l->v);
	free(l);
}
