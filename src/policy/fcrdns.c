/*
 * fcrdns.c - see fcrdns.h. Forward-confirmed reverse DNS: PTR of the
 * client (RFC 1035 3.5, RFC 3596 2.5), then A/AAAA of the first PTR name;
 * confirmed when those contain the client address. Postfix's
 * reject_unknown_client_hostname does the same and answers 450 for every
 * failure, temporary or not; so does the caller (RFC 7372: 4.7.25).
 *
 * Logged: "fcrdns confirmed name=", "fcrdns failed reason=...".
 * The whole check (PTR, then A/AAAA) is bounded by its own timer,
 * ptr-timeout: libunbound's retries against a nameserver that does not
 * answer take far longer than a client waits for its RCPT reply. At the
 * timeout the check finishes unconfirmed ("reason=timeout"; the caller
 * answers 450 4.7.25, temporary, as for any failure) and the answer
 * still out is dropped when it comes.
 * Like dnsbl.c, net/dns has no cancel: the check stays allocated while a
 * lookup is out, and dnsbl_free's orphan rule applies.
 */
#include "policy/fcrdns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "net/dns.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct fcrdns_check {
	struct dns *dns;
	struct sockaddr_storage client;
	char id[20];
	char addr[INET6_ADDRSTRLEN];
	fcrdns_done_cb done;
	void *arg;
	struct event *timer; /* ptr-timeout; NULL: none (no memory) */
	bool pending;	/* a dns_resolve_* callback is still to come */
	bool finished;
	bool orphaned;
	char ptr[256];	/* the PTR name being confirmed */
	char name[256]; /* the confirmed name, or "" */
};

static void fcrdns_finish(struct fcrdns_check *c, const char *why)
{
	fcrdns_done_cb done = c->done;

	c->finished = true;
	c->done = NULL;
	if (c->timer)
		evtimer_del(c->timer);
	if (c->name[0])
		log_info("%s fcrdns confirmed address=%s name=%s", c->id, c->addr, c->name);
	else
		log_info("%s fcrdns failed address=%s reason=\"%s\"", c->id, c->addr, why);
	if (done)
		done(c->arg);
}

/* Was the client address one of the answers? */
static bool fcrdns_matches(const struct fcrdns_check *c, const struct dns_result *res)
{
	for (size_t h = 0; h < res->nhosts; h++)
		for (size_t i = 0; i < res->hosts[h].naddr; i++) {
			const struct sockaddr_storage *a = &res->hosts[h].addr[i];
			if (a->ss_family != c->client.ss_family)
				continue;
			if (a->ss_family == AF_INET &&
			    memcmp(&((const struct sockaddr_in *)a)->sin_addr,
				   &((const struct sockaddr_in *)&c->client)->sin_addr, 4) == 0)
				return true;
			if (a->ss_family == AF_INET6 &&
			    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
				   &((const struct sockaddr_in6 *)&c->client)->sin6_addr, 16) == 0)
				return true;
		}
	return false;
}

static void fcrdns_release(struct fcrdns_check *c)
{
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* An answer came: false when nobody wants it any more (the check was
 * freed, or finished by its timeout). */
static bool fcrdns_arrived(struct fcrdns_check *c)
{
	c->pending = false;
	if (c->orphaned) {
		fcrdns_release(c);
		return false;
	}
	return !c->finished;
}

static void fcrdns_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fcrdns_check *c = arg;
	(void)fd;
	(void)what;

	if (!c->finished)
		fcrdns_finish(c, "timeout");
}

static void fcrdns_on_forward(void *arg, const struct dns_result *res)
{
	struct fcrdns_check *c = arg;
	char why[400];

	if (!fcrdns_arrived(c))
		return;
	if (res->status == DNS_OK && fcrdns_matches(c, res)) {
		snprintf(c->name, sizeof(c->name), "%s", c->ptr);
		fcrdns_finish(c, NULL);
		return;
	}
	if (res->status == DNS_OK)
		snprintf(why, sizeof(why), "%s does not resolve to the client", c->ptr);
	else
		snprintf(why, sizeof(why), "%s", res->error);
	fcrdns_finish(c, why);
}

static void fcrdns_on_ptr(void *arg, const struct dns_result *res)
{
	struct fcrdns_check *c = arg;

	if (!fcrdns_arrived(c))
		return;
	if (res->status != DNS_OK || res->nhosts == 0) {
		fcrdns_finish(c, res->error[0] ? res->error : "no PTR record");
		return;
	}
	snprintf(c->ptr, sizeof(c->ptr), "%s", res->hosts[0].name);
	c->pending = true;
	dns_resolve_host(c->dns, c->ptr, fcrdns_on_forward, c);
}

struct fcrdns_check *fcrdns_start(struct dns *dns, struct event_base *base, uint64_t timeout_s,
				  const struct sockaddr *client, const char *addr_text,
				  const char *id, fcrdns_done_cb done, void *arg)
{
	struct fcrdns_check *c;
	struct timeval tv = {(time_t)timeout_s, 0};

	if (dns == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	/* no memory for the timer: bounded by net/dns's own limits only */
	if (base && timeout_s > 0 && (c->timer = evtimer_new(base, fcrdns_timeout, c)) != NULL)
		evtimer_add(c->timer, &tv);
	c->dns = dns;
	memcpy(&c->client, client,
	       client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in));
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->addr, sizeof(c->addr), "%s", addr_text);
	c->done = done;
	c->arg = arg;
	c->pending = true;
	dns_resolve_ptr(dns, client, fcrdns_on_ptr, c);
	return c;
}

bool fcrdns_finished(const struct fcrdns_check *c)
{
	return c == NULL || c->finished;
}

const char *fcrdns_name(const struct fcrdns_check *c)
{
	return c && c->name[0] ? c->name : NULL;
}

void fcrdns_free(struct fcrdns_check *c)
{
	if (c == NULL)
		return;
	c->done = NULL;
	if (c->timer)
		evtimer_del(c->timer);
	if (c->pending)
		c->orphaned = true;
	else
		fcrdns_release(c);
}
