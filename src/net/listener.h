/*
 * listener.h - listening sockets for the receive connectors.
 *
 * Bound once at start (as root, before privileges are dropped): one
 * socket per distinct binding, shared by every connector that names it.
 * On accept, the connector is chosen among those sharing the binding by
 * the most specific remote-ip-range containing the client (DESIGN.md,
 * receive connectors); a client no connector covers is disconnected.
 * A connection from a trusted proxy is picked for after its PROXY header.
 */
#ifndef TRANSIT_NET_LISTENER_H
#define TRANSIT_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

struct event_base;
struct smtp_server;
struct listeners;

struct listeners *listeners_bind(const struct config *c, char *err, size_t errsz);
void listeners_start(struct listeners *l, struct event_base *base, struct smtp_server *srv);
/* A reload: from now on connectors are picked from c (which must outlive
 * its use here: the daemon's current generation). Sockets of bindings c
 * still names are kept (nothing is refused meanwhile); a binding c no
 * longer names is closed; a new one is bound and started - as the
 * unprivileged user, so a port below 1024 fails: that is logged ("needs a
 * restart") and counted in the return value. */
unsigned listeners_reconfigure(struct listeners *l, const struct config *c);
/* Stop accepting (sockets closed). */
void listeners_free(struct listeners *l);

/* Which connector serves a client arriving on binding index b; -1: none. */
int listeners_pick_connector(const struct config *c, const struct binding *b,
			     const struct sockaddr *client);

/* Which connector on binding b lists peer in trusted-proxies (the first
 * one); -1: none, peer is an ordinary client. */
int listeners_trusting_connector(const struct config *c, const struct binding *b,
				 const struct sockaddr *peer);
/* Which connector serves client, as told by the PROXY header of a
 * connection from proxy: listeners_pick_connector() among the connectors
 * on b that trust proxy; -1: none. */
int listeners_pick_proxied(const struct config *c, const struct binding *b,
			   const struct sockaddr *client, const struct sockaddr *proxy);

/* true when ip is an address of this host that transit listens on
 * (the bound addresses, or every interface address when a wildcard
 * binding exists). Used for user@[ip] literals. */
bool listeners_is_local_ip(int family, const void *ip);
/* Learn those addresses from the configuration's bindings (and the
 * interfaces): listeners_bind() does it; "transitctl route explain" calls
 * it to judge user@[ip] as the daemon does. */
void listeners_note_local_ips(const struct config *c);

#endif
