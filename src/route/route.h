/*
 * route.h - where a recipient goes (DESIGN.md "send connector").
 *
 * A recipient of an authoritative accepted domain goes to its mailbox.
 * Anything else is routed through a send connector: among the ENABLED
 * connectors whose address space matches the recipient domain, the most
 * specific match wins (exact domain > *.longer.suffix > *.suffix > *),
 * the lowest cost breaks a tie, then configuration order. Only then are
 * the chosen connector's restrictions (size, allowed senders) applied; a
 * message that breaks them is refused or failed with the reason and
 * never falls back to a less specific connector (so a size limit or a
 * TLS requirement on partner.test cannot be bypassed through "*").
 */
#ifndef TRANSIT_ROUTE_ROUTE_H
#define TRANSIT_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "util/buf.h"

enum route_kind {
	ROUTE_MAILBOX,	 /* authoritative domain: local delivery */
	ROUTE_CONNECTOR, /* through sc */
	ROUTE_NONE,	 /* no enabled connector matches: 550 5.4.4 */
};

struct route {
	enum route_kind kind;
	const struct send_connector *sc;
	int specificity; /* of the winning address space */
	unsigned cost;
};

/* Route a (lower-case) recipient domain. */
void route_domain(const struct config *c, const char *domain, struct route *r);

/* The next hop of a recipient address as the queue viewer, transitctl
 * queue suspend and /status name it: "CONNECTOR:domain", "mailbox:domain"
 * or "no-route:domain" (domain lower-cased). */
void route_hop_key(const struct config *c, const char *addr, char *key, size_t keysz);

/* Specificity of one address space for a domain: -1 no match, else
 * higher is more specific. */
int route_space_match(const struct address_space *a, const char *domain);

/* Apply the chosen connector's restrictions. size 0 = not known yet.
 * Returns true when allowed; otherwise fills code/enh/text (a reply or
 * DSN status: 552 5.3.4 size, 550 5.7.1 sender). */
struct route_verdict {
	int code;
	const char *enh;
	char text[256];
};
bool route_check(const struct send_connector *sc, const char *sender, uint64_t size,
		 struct route_verdict *v);

/* For "transitctl route explain" (policy/explain.c): every send connector
 * considered for domain, kept or dropped and why, then the chosen one
 * with its restrictions (r as filled by route_domain()). */
void route_explain_connectors(const struct config *c, const char *domain, const struct route *r,
			      struct buf *out);

#endif
