/* route.c - see route.h. */
#include "route/route.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

int route_space_match(const struct address_space *a, const char *domain)
{
	size_t dl, al;
	int labels = 1;
	const char *p;

	if (a->domain == NULL) /* "*" */
		return 0;
	for (p = a->domain; *p; p++)
		labels += *p == '.';
	if (str_casecmp(domain, a->domain) == 0)
		return a->wildcard ? 2 * labels : 2 * labels + 1;
	if (!a->wildcard)
		return -1;
	dl = strlen(domain);
	al = strlen(a->domain);
	if (dl > al + 1 && domain[dl - al - 1] == '.' && str_casecmp(domain + dl - al, a->domain) == 0)
		return 2 * labels;
	return -1;
}

/* Best address space of one connector for the domain: specificity and cost. */
static int connector_match(const struct send_connector *sc, const char *domain, unsigned *cost)
{
	size_t i;
	int best = -1;

	for (i = 0; i < sc->nspaces; i++) {
		int m = route_space_match(&sc->spaces[i], domain);
		if (m > best || (m == best && m >= 0 && sc->spaces[i].cost < *cost)) {
			best = m;
			*cost = sc->spaces[i].cost;
		}
	}
	return best;
}

void route_domain(const struct config *c, const char *domain, struct route *r)
{
	const struct accepted_domain *ad = conf_find_domain(c, domain);
	size_t i;

	memset(r, 0, sizeof(*r));
	r->specificity = -1;
	if (ad && ad->type == DOMAIN_AUTHORITATIVE) {
		r->kind = ROUTE_MAILBOX;
		return;
	}
	r->kind = ROUTE_NONE;
	for (i = 0; i < c->nscs; i++) {
		const struct send_connector *sc = &c->scs[i];
		unsigned cost = ~0u;
		int m;

		if (!sc->enabled)
			continue;
		m = connector_match(sc, domain, &cost);
		if (m < 0)
			continue;
		if (m > r->specificity || (m == r->specificity && cost < r->cost)) {
			r->kind = ROUTE_CONNECTOR;
			r->sc = sc;
			r->specificity = m;
			r->cost = cost;
		}
	}
}

/* The null sender (our own DSNs, and bounces from other MTAs) is always
 * allowed: a sender restriction limits who may send, not who may be told. */
static bool sender_allowed(const struct send_connector *sc, const char *sender)
{
	size_t i;

	if (sc->nallowed == 0 || sender[0] == '\0')
		return true;
	for (i = 0; i < sc->nallowed; i++)
		if (fnmatch(sc->allowed_senders[i], sender, FNM_CASEFOLD) == 0)
			return true;
	return false;
}

bool route_check(const struct send_connector *sc, const char *sender, uint64_t size,
		 struct route_verdict *v)
{
	if (sc->max_message_size && size > sc->max_message_size) {
		v->code = 552;
		v->enh = "5.3.4";
		snprintf(v->text, sizeof(v->text),
			 "Message size %llu exceeds the limit of %llu octets of send connector %s",
			 (unsigned long long)size, (unsigned long long)sc->max_message_size, sc->name);
		return false;
	}
	if (!sender_allowed(sc, sender)) {
		v->code = 550;
		v->enh = "5.7.1";
		snprintf(v->text, sizeof(v->text), "Sender <%s> is not allowed to use send connector %s",
			 sender, sc->name);
		return false;
	}
	v->code = 250;
	v->enh = "2.1.5";
	v->text[0] = '\0';
	return true;
}

static void explain_space(struct buf *out, const struct address_space *a)
{
	if (a->domain == NULL)
		buf_printf(out, "*;%u", a->cost);
	else
		buf_printf(out, "%s%s;%u", a->wildcard ? "*." : "", a->domain, a->cost);
}

void route_explain_connectors(const struct config *c, const char *domain, const struct route *r,
			      struct buf *out)
{
	size_t i, j;

	buf_printf(out, "send connectors considered:\n");
	for (i = 0; i < c->nscs; i++) {
		const struct send_connector *sc = &c->scs[i];
		unsigned cost = ~0u;
		int m = connector_match(sc, domain, &cost);

		buf_printf(out, "  %-16s spaces=", sc->name);
		for (j = 0; j < sc->nspaces; j++) {
			if (j)
				buf_putc(out, ',');
			explain_space(out, &sc->spaces[j]);
		}
		if (!sc->enabled)
			buf_printf(out, "  dropped: disabled\n");
		else if (m < 0)
			buf_printf(out, "  dropped: no address space matches %s\n", domain);
		else if (r->sc == sc)
			buf_printf(out, "  CHOSEN: specificity=%d cost=%u\n", m, cost);
		else if (m < r->specificity)
			buf_printf(out, "  dropped: matches (specificity=%d) but %s is more specific (%d)\n",
				   m, r->sc->name, r->specificity);
		else
			buf_printf(out, "  dropped: as specific (%d) but cost %u > %u of %s\n", m, cost,
				   r->cost, r->sc->name);
	}
	if (r->kind != ROUTE_CONNECTOR)
		return;
	buf_printf(out, "chosen: %s (%s", r->sc->name, r->sc->nhosts ? "smart hosts" : "DNS MX");
	for (j = 0; j < r->sc->nhosts; j++)
		buf_printf(out, "%s%s%s%s:%u", j ? ", " : " ", r->sc->hosts[j].no_mx ? "[" : "",
			   r->sc->hosts[j].host, r->sc->hosts[j].no_mx ? "]" : "",
			   (unsigned)r->sc->hosts[j].port);
	buf_printf(out, "; tls=%s)\n", r->sc->tls == SC_TLS_REQUIRE	     ? "require"
					: r->sc->tls == SC_TLS_OPPORTUNISTIC ? "opportunistic"
									     : "none");
	buf_printf(out, "restrictions: max-message-size=%llu allowed-senders=",
		   (unsigned long long)r->sc->max_message_size);
	if (r->sc->nallowed == 0)
		buf_printf(out, "any");
	for (j = 0; j < r->sc->nallowed; j++)
		buf_printf(out, "%s%s", j ? "," : "", r->sc->allowed_senders[j]);
	buf_putc(out, '\n');
}

void route_hop_key(const struct config *c, const char *addr, char *key, size_t keysz)
{
	const char *at = strrchr(addr, '@');
	char domain[256];
	struct route r;

	str_copy(domain, at ? at + 1 : "", sizeof(domain));
	str_lower(domain);
	route_domain(c, domain, &r);
	if (r.kind == ROUTE_MAILBOX)
		snprintf(key, keysz, "mailbox:%s", domain);
	else if (r.kind == ROUTE_CONNECTOR)
		snprintf(key, keysz, "%s:%s", r.sc->name, domain);
	else
		snprintf(key, keysz, "no-route:%s", domain);
}
