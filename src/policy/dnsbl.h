/*
 * dnsbl.h - DNS block lists (RFC 5782) for a receive connector: at the
 * start of a session the client's address is looked up in each zone of
 * the connector's `dnsbl` list (unless `dnsbl-allow` covers it); RCPT
 * asks whether the client is listed, waiting (policy step) until every
 * answer is in or `dnsbl-timeout` passed. A zone that does not answer in
 * time, or answers SERVFAIL, counts as "not listed" and is logged.
 */
#ifndef TRANSIT_POLICY_DNSBL_H
#define TRANSIT_POLICY_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct dns;
struct event_base;
struct receive_connector;
struct dnsbl_zone;
struct dnsbl_check;

typedef void (*dnsbl_done_cb)(void *arg);

/* Start the lookups; NULL when there is nothing to ask (no zones, the
 * client in dnsbl-allow, an address family we cannot query, no memory).
 * id: the session id for log lines. done(arg) runs once, on the loop,
 * when the check is finished (every answer in, or the timeout). */
struct dnsbl_check *dnsbl_start(struct dns *dns, struct event_base *base,
				const struct receive_connector *rc, const struct sockaddr *client,
				const char *addr_text, const char *id, dnsbl_done_cb done,
				void *arg);
bool dnsbl_finished(const struct dnsbl_check *c);
/* The first zone (in configuration order) that lists the client, or
 * NULL; meaningful once finished. */
const struct dnsbl_zone *dnsbl_listed(const struct dnsbl_check *c);
/* Safe with lookups in flight: done() is not called after this, and the
 * late answers are dropped. */
void dnsbl_free(struct dnsbl_check *c);

/* The DNSBL query name for addr under zone: "4.3.2.1.zone" for IPv4, 32
 * reversed nibbles for IPv6 (RFC 5782 2.1, 2.4). false if it does not fit. */
bool dnsbl_query_name(const struct sockaddr *addr, const char *zone, char *out, size_t outsz);

/* Is this A record (RFC 5782 2.3) a listing? 127.0.0.0/8 except
 * 127.0.0.1 and the lists' error codes 127.255.255.0/24. */
bool dnsbl_answer_lists(const unsigned char b[4]);

#endif
