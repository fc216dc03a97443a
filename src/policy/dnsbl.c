/*
 * dnsbl.c - see dnsbl.h. DNS block lists, RFC 5782: the query name is the
 * client address reversed (IPv4 octets, IPv6 nibbles) under the zone; an
 * A record in 127.0.0.0/8 means "listed" (its value is logged; a list's
 * error codes 127.255.255.x and answers elsewhere are logged as "dnsbl
 * ignored"); NXDOMAIN or no A record means "not listed". A lookup that fails (SERVFAIL, a dead
 * nameserver) or is still out at dnsbl-timeout means "not listed" too:
 * a broken list must not stop mail. Logged as "dnsbl listed", "dnsbl
 * error", "dnsbl timeout".
 *
 * net/dns has no cancel: each lookup's callback argument is a slot of the
 * check, and the check stays allocated until the last answer is in. The
 * session drops it with dnsbl_free(), which only marks it orphaned while
 * lookups are out; the last answer then frees it. (At daemon shutdown
 * dns_free() drops the pending answers, and with them the orphans.)
 */
#include "policy/dnsbl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "net/dns.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct dnsbl_slot {
	struct dnsbl_check *c;
	size_t zone;
	bool answered;
	bool listed;
};

struct dnsbl_check {
	const struct receive_connector *rc;
	char id[20];
	char addr[INET6_ADDRSTRLEN];
	struct event *timer;
	dnsbl_done_cb done;
	void *arg;
	size_t pending;	 /* lookups whose callback has not run */
	bool finished;
	bool orphaned;	 /* dnsbl_free() ran: free at the last answer */
	size_t nslots;
	struct dnsbl_slot slots[];
};

bool dnsbl_query_name(const struct sockaddr *addr, const char *zone, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	char rev[80];
	size_t n = 0;
	int w;

	if (addr->sa_family == AF_INET) {
		const unsigned char *b =
			(const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
		n = (size_t)snprintf(rev, sizeof(rev), "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
	} else if (addr->sa_family == AF_INET6) {
		const unsigned char *b =
			((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		for (int i = 15; i >= 0; i--) {
			rev[n++] = hex[b[i] & 0xf];
			rev[n++] = '.';
			rev[n++] = hex[b[i] >> 4];
			rev[n++] = i > 0 ? '.' : '\0';
		}
	} else {
		return false;
	}
	w = snprintf(out, outsz, "%s.%s", rev, zone);
	return w > 0 && (size_t)w < outsz && (size_t)w < 254;
}

static bool dnsbl_allowed(const struct receive_connector *rc, const struct sockaddr *client)
{
	for (size_t i = 0; i < rc->ndnsbl_allow; i++)
		if (ip_range_contains(&rc->dnsbl_allow[i], client))
			return true;
	return false;
}

static void dnsbl_finish(struct dnsbl_check *c)
{
	dnsbl_done_cb done = c->done;

	if (c->finished)
		return;
	c->finished = true;
	evtimer_del(c->timer);
	c->done = NULL;
	if (done)
		done(c->arg);
}

static void dnsbl_release(struct dnsbl_check *c)
{
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* RFC 5782 2.3: listings answer in 127.0.0.0/8, never 127.0.0.1.
 * 127.255.255.0/24 is what lists (Spamhaus) answer for refused queries,
 * e.g. from a public resolver: an error, not a listing of everybody. */
bool dnsbl_answer_lists(const unsigned char b[4])
{
	if (b[0] != 127 || (b[1] == 0 && b[2] == 0 && b[3] == 1))
		return false;
	return !(b[1] == 255 && b[2] == 255);
}

static void dnsbl_on_answer(void *arg, const struct dns_result *res)
{
	struct dnsbl_slot *sl = arg;
	struct dnsbl_check *c = sl->c;
	const char *zone;

	c->pending--;
	if (c->orphaned) { /* the session is gone (and maybe its connector) */
		if (c->pending == 0)
			dnsbl_release(c);
		return;
	}
	if (c->finished)
		return; /* after the timeout: already logged as such */
	zone = c->rc->dnsbl[sl->zone].zone;
	sl->answered = true;
	if (res->status == DNS_OK && res->nhosts > 0) {
		char ans[INET6_ADDRSTRLEN] = "?";
		const struct dns_host *h = &res->hosts[0];
		for (size_t i = 0; i < h->naddr && !sl->listed; i++) {
			const struct sockaddr_storage *ss = &h->addr[i];
			const unsigned char *b;
			if (ss->ss_family != AF_INET)
				continue;
			b = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
			inet_ntop(AF_INET, b, ans, sizeof(ans));
			sl->listed = dnsbl_answer_lists(b);
		}
		if (sl->listed)
			log_info("%s dnsbl listed address=%s zone=%s answer=%s", c->id, c->addr,
				 zone, ans);
		else
			log_warn("%s dnsbl ignored address=%s zone=%s answer=%s (not a listing: "
				 "outside 127.0.0.0/8 or a list's error code)",
				 c->id, c->addr, zone, ans);
	} else if (res->status == DNS_TEMPFAIL) {
		log_warn("%s dnsbl error address=%s zone=%s error=\"%s\" (taken as not listed)",
			 c->id, c->addr, zone, res->error);
	}
	if (c->pending == 0)
		dnsbl_finish(c);
}

static void dnsbl_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dnsbl_check *c = arg;
	(void)fd;
	(void)what;

	for (size_t i = 0; i < c->nslots; i++)
		if (!c->slots[i].answered)
			log_warn("%s dnsbl timeout address=%s zone=%s after=%llus (taken as not listed)",
				 c->id, c->addr, c->rc->dnsbl[c->slots[i].zone].zone,
				 (unsigned long long)c->rc->dnsbl_timeout);
	dnsbl_finish(c);
}

struct dnsbl_check *dnsbl_start(struct dns *dns, struct event_base *base,
				const struct receive_connector *rc, const struct sockaddr *client,
				const char *addr_text, const char *id, dnsbl_done_cb done,
				void *arg)
{
	struct dnsbl_check *c;
	struct timeval tv = {(time_t)rc->dnsbl_timeout, 0};
	char name[512];

	if (dns == NULL || rc->ndnsbl == 0 || dnsbl_allowed(rc, client) ||
	    !dnsbl_query_name(client, rc->dnsbl[0].zone, name, sizeof(name)))
		return NULL;
	c = xcalloc(1, sizeof(*c) + rc->ndnsbl * sizeof(c->slots[0]));
	c->rc = rc;
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->addr, sizeof(c->addr), "%s", addr_text);
	c->done = done;
	c->arg = arg;
	if ((c->timer = evtimer_new(base, dnsbl_on_timeout, c)) == NULL) {
		log_warn("%s dnsbl skipped: no memory for its timer", id);
		free(c);
		return NULL;
	}
	evtimer_add(c->timer, &tv);
	for (size_t i = 0; i < rc->ndnsbl; i++) {
		if (!dnsbl_query_name(client, rc->dnsbl[i].zone, name, sizeof(name)))
			continue; /* too long a name: that zone cannot be asked */
		c->slots[c->nslots].c = c;
		c->slots[c->nslots].zone = i;
		c->pending++;
		dns_resolve_host(dns, name, dnsbl_on_answer, &c->slots[c->nslots]);
		c->nslots++;
	}
	return c;
}

bool dnsbl_finished(const struct dnsbl_check *c)
{
	return c == NULL || c->finished;
}

const struct dnsbl_zone *dnsbl_listed(const struct dnsbl_check *c)
{
	const struct dnsbl_zone *best = NULL;

	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < c->nslots; i++)
		if (c->slots[i].listed &&
		    (best == NULL || &c->rc->dnsbl[c->slots[i].zone] < best))
			best = &c->rc->dnsbl[c->slots[i].zone];
	return best;
}

void dnsbl_free(struct dnsbl_check *c)
{
	if (c == NULL)
		return;
	c->done = NULL;
	evtimer_del(c->timer);
	if (c->pending > 0) {
		c->orphaned = true;
		return;
	}
	dnsbl_release(c);
}
