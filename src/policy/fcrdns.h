/*
 * fcrdns.h - forward-confirmed reverse DNS of the client (`require-ptr`):
 * the client address's PTR name, whose A/AAAA records must contain the
 * client address again (FCrDNS). Started with the session; asked at RCPT.
 */
#ifndef TRANSIT_POLICY_FCRDNS_H
#define TRANSIT_POLICY_FCRDNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct dns;
struct event_base;
struct fcrdns_check;

typedef void (*fcrdns_done_cb)(void *arg);

/* NULL: no DNS (then the client counts as unverified). done(arg) runs
 * once, on the loop, when the answer is known or timeout_s (ptr-timeout)
 * has passed, whichever is first; after a timeout the client is
 * unverified. id: for log lines. */
struct fcrdns_check *fcrdns_start(struct dns *dns, struct event_base *base, uint64_t timeout_s,
				  const struct sockaddr *client, const char *addr_text,
				  const char *id, fcrdns_done_cb done, void *arg);
bool fcrdns_finished(const struct fcrdns_check *c);
/* The verified host name, or NULL (no PTR, not confirmed, lookup failed). */
const char *fcrdns_name(const struct fcrdns_check *c);
/* Safe with a lookup in flight: done() is not called after this. */
void fcrdns_free(struct fcrdns_check *c);

#endif
