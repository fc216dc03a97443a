/*
 * dns.c - see dns.h. Asynchronous MX / A / AAAA resolution for outbound
 * delivery on libunbound, driven by the caller's libevent loop.
 *
 * Standards: RFC 5321 5.1 (MX selection: preference order, equal
 * preferences in random order, implicit MX when there is none, no IP
 * literal as exchange), RFC 7505 (null MX), RFC 1035 3.3.9 (MX RDATA).
 *
 * libunbound mode: threaded (ub_ctx_async(ctx, 1)). Queries go to one
 * resolver thread per struct dns; answers come back on a pipe whose read
 * end (ub_fd) a persistent EV_READ event watches, and ub_process() runs
 * our callbacks on the loop thread without holding any libunbound lock.
 * The forked mode (the default) would fork the daemon after start-up,
 * and ub_ctx_create_event() gives raw packets instead of ub_result.
 *
 * Servers given (tests, or an operator's resolvers): one forwarder for
 * "." per server. An authoritative server (nsd) answers those RD=1
 * queries with AA and without RA, which unbound's forward mode accepts.
 * libunbound already sends to 127.0.0.0/8 (do-not-query-localhost is no
 * in a ub_ctx); we set it anyway to say so. unbound serves "test." as a
 * built-in NXDOMAIN zone (RFC 6761); test zones live there, so it is
 * made transparent ("nodefault" is not honoured by ub_ctx_set_option);
 * so is 127.in-addr.arpa, also built in, so that the servers given
 * answer reverse lookups of loopback clients (require-ptr tests).
 * No trust anchor and the iterator module only: no DNSSEC validation.
 * No servers: /etc/resolv.conf forwarders and /etc/hosts.
 *
 * Timing: unbound's defaults let a dead server cost 17 s and then 84 s
 * before SERVFAIL. We cap the retransmit timer (infra-cache-max-rtt) and
 * the retries (outbound-msg-retry): a dead forwarder gives DNS_TEMPFAIL
 * after ~2.3 s (servers given) or ~5.3 s (system resolver); unbound then
 * remembers it as down for infra-host-ttl seconds (10 / 60) and answers
 * SERVFAIL at once until then. A per-request deadline (DNS_DEADLINE_S)
 * guarantees completion whatever libunbound does.
 *
 * Bounds: at most DNS_INFLIGHT queries in flight per request, the best
 * DNS_MAX_HOSTS exchanges kept (chosen while scanning any number of MX
 * records), DNS_MAX_ADDRS addresses per host (IPv4 first). Names from
 * the wire are accepted only as LDH/underscore labels. Every request
 * completes exactly once through a deferred event (never inside
 * dns_resolve_*, never inside ub_process), or is freed by dns_free.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define RR_A 1
#define RR_PTR 12
#define RR_MX 15
#define RR_AAAA 28
#define CLASS_IN 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_REFUSED 5

#define DNS_INFLIGHT 8	   /* ub queries in flight per request */
#define DNS_DEADLINE_S 30 /* whole request, a backstop behind unbound's timers */

struct dns {
	struct event_base *base;
	struct ub_ctx *ub;
	struct event *ub_ev; /* ub_fd() readable */
	struct dns_req *reqs; /* live requests, for dns_free */
};

/* One ub_resolve_async in flight. */
struct dns_query {
	struct dns_req *req;
	int async_id;
	int rrtype;
	size_t host; /* index in req->result.hosts for A/AAAA */
	bool busy;
};

struct dns_addrs {
	size_t n4, n6;
	struct sockaddr_in v4[DNS_MAX_ADDRS];
	struct sockaddr_in6 v6[DNS_MAX_ADDRS];
};

enum dns_stage { STAGE_MX, STAGE_ADDRS, STAGE_PTR, STAGE_DONE };

enum dns_answer { ANS_DATA, ANS_NODATA, ANS_NXDOMAIN, ANS_TEMPFAIL };

struct dns_req {
	struct dns *d;
	struct dns_req *prev, *next;
	dns_cb cb;
	void *arg;
	char name[256]; /* the domain or host asked for, lower case */
	bool mx;	/* dns_resolve_mx (else dns_resolve_host) */
	bool implicit;	/* MX request answered NODATA: the domain is its own MX */
	enum dns_stage stage;
	struct event *done_ev, *deadline_ev;
	struct dns_query q[DNS_INFLIGHT];
	size_t inflight;
	size_t next_lookup, nlookups; /* lookup i: host i/2, A when even, AAAA when odd */
	size_t nnxdomain;	      /* address lookups answered NXDOMAIN */
	bool tempfail;		      /* an address lookup failed temporarily */
	char why[160];		      /* the first temporary failure */
	struct dns_addrs addrs[DNS_MAX_HOSTS];
	struct dns_result result;
};

static const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK: return "ok";
	case DNS_TEMPFAIL: return "tempfail";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_NO_ADDRESS: return "no-address";
	case DNS_NULL_MX: return "null-mx";
	}
	return "?";
}

static void dns_vformat(char *out, size_t outsz, const char *fmt, va_list ap)
{
	if (vsnprintf(out, outsz, fmt, ap) < 0)
		out[0] = '\0';
}

static void dns_set_error(struct dns_req *r, enum dns_status st, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static void dns_set_error(struct dns_req *r, enum dns_status st, const char *fmt, ...)
{
	va_list ap;

	r->result.status = st;
	va_start(ap, fmt);
	dns_vformat(r->result.error, sizeof(r->result.error), fmt, ap);
	va_end(ap);
}

static void dns_note_tempfail(struct dns_req *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void dns_note_tempfail(struct dns_req *r, const char *fmt, ...)
{
	va_list ap;

	if (r->tempfail)
		return;
	r->tempfail = true;
	va_start(ap, fmt);
	dns_vformat(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* ---- names and literals ---- */

static bool dns_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* A presentation-format domain: LDH/underscore labels of 1..63 octets,
 * at most 253 octets without the optional final dot. Copied lower-case
 * without the dot into out (256 octets). */
static bool dns_domain_normalize(const char *s, char *out)
{
	size_t len = strlen(s), label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!dns_label_char((unsigned char)s[i]) || ++label > 63) {
			return false;
		}
		out[i] = ascii_lower(s[i]);
	}
	out[len] = '\0';
	return label > 0;
}

/* Decode the uncompressed wire name at p (n octets available) into
 * lower-case text without the final dot ("" for the root). false when it
 * is malformed, compressed, runs past n, or has a byte outside LDH/_. */
static bool dns_wire_name(const unsigned char *p, size_t n, char *out, size_t outsz)
{
	size_t i = 0, o = 0;

	for (;;) {
		if (i >= n)
			return false;
		size_t lablen = p[i++];
		if (lablen == 0)
			break;
		if (lablen > 63 || lablen > n - i || o + lablen + 1 >= outsz)
			return false;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < lablen; k++) {
			if (!dns_label_char(p[i + k]))
				return false;
			out[o++] = ascii_lower((char)p[i + k]);
		}
		i += lablen;
	}
	out[o] = '\0';
	return o <= 253;
}

/* "192.0.2.1", "2001:db8::1", "[192.0.2.1]", "[IPv6:2001:db8::1]"
 * (RFC 5321 4.1.3) → the address (port 0) and its text without brackets. */
static bool dns_parse_literal(const char *s, struct sockaddr_storage *ss, char *text,
			      size_t textsz)
{
	char buf[64];
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		if (len > 5 && str_ncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			len -= 5;
		}
	}
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return false;
	str_copy(text, buf, textsz);
	return true;
}

/* ---- server list ---- */

/* "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT", "V6" → "ADDR@PORT" for
 * ub_ctx_set_fwd. */
static bool dns_server_spec(const char *s, char *out, size_t outsz)
{
	char addr[64];
	const char *port = NULL, *colon = strchr(s, ':');
	size_t alen;
	unsigned char bin[16];

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			return false;
		alen = (size_t)(end - s - 1);
		s++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return false;
	} else if (colon && !strchr(colon + 1, ':')) {
		alen = (size_t)(colon - s);
		port = colon + 1;
	} else {
		alen = strlen(s);
	}
	if (alen == 0 || alen >= sizeof(addr))
		return false;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
		return false;
	unsigned long pnum = 53;
	if (port) {
		char *end;
		if (*port < '0' || *port > '9')
			return false;
		pnum = strtoul(port, &end, 10);
		if (*end != '\0' || pnum == 0 || pnum > 65535)
			return false;
	}
	int n = snprintf(out, outsz, "%s@%lu", addr, pnum);
	return n > 0 && (size_t)n < outsz;
}

/* ---- requests ---- */

static void dns_cancel_queries(struct dns_req *r)
{
	for (size_t i = 0; i < DNS_INFLIGHT; i++) {
		if (!r->q[i].busy)
			continue;
		ub_cancel(r->d->ub, r->q[i].async_id);
		r->q[i].busy = false;
	}
	r->inflight = 0;
}

/* The result is final: stop all work and call back from the loop. */
static void dns_complete(struct dns_req *r)
{
	if (r->stage == STAGE_DONE)
		return;
	r->stage = STAGE_DONE;
	dns_cancel_queries(r);
	event_del(r->deadline_ev);
	event_active(r->done_ev, EV_TIMEOUT, 0);
}

static void dns_req_free(struct dns_req *r)
{
	event_free(r->done_ev);
	event_free(r->deadline_ev);
	free(r);
}

static void dns_unlink(struct dns_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		r->d->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void dns_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;
	const struct dns_result *res = &r->result;

	(void)fd;
	(void)what;
	if (log_debug_enabled())
		log_debug("dns %s name=%s status=%s hosts=%zu%s%s", r->mx ? "mx" : "host", r->name,
			  dns_status_name(res->status), res->nhosts, res->error[0] ? " error=" : "",
			  res->error);
	/* Unlinked first: the callback may call dns_free(), which then
	 * leaves this request alone; it must not touch r->d afterwards. */
	dns_unlink(r);
	r->cb(r->arg, res);
	dns_req_free(r);
}

static const char *dns_rcode_name(int rcode)
{
	switch (rcode) {
	case RCODE_SERVFAIL: return "SERVFAIL";
	case RCODE_NXDOMAIN: return "NXDOMAIN";
	case RCODE_REFUSED: return "REFUSED";
	case 1: return "FORMERR";
	case 4: return "NOTIMP";
	}
	return "error rcode";
}

/* What one answer says; why gets the reason of a temporary failure. */
static enum dns_answer dns_classify(int err, const struct ub_result *ub, char *why, size_t whysz)
{
	if (err != 0 || !ub) {
		snprintf(why, whysz, "resolver error: %s", ub_strerror(err));
		return ANS_TEMPFAIL;
	}
	if (ub->bogus) {
		snprintf(why, whysz, "DNSSEC validation failed");
		return ANS_TEMPFAIL;
	}
	if (ub->rcode == RCODE_NXDOMAIN || ub->nxdomain)
		return ANS_NXDOMAIN;
	if (ub->rcode != 0) {
		snprintf(why, whysz, "%s", dns_rcode_name(ub->rcode));
		return ANS_TEMPFAIL;
	}
	if (ub->havedata && ub->data && ub->data[0] && ub->len)
		return ANS_DATA;
	return ANS_NODATA;
}

static void dns_on_answer(void *mydata, int err, struct ub_result *ub);

static bool dns_start_query(struct dns_req *r, int rrtype, const char *name, size_t host)
{
	struct dns_query *q = NULL;
	int rc;

	for (size_t i = 0; i < DNS_INFLIGHT && !q; i++)
		if (!r->q[i].busy)
			q = &r->q[i];
	if (!q)
		log_panic("dns: no free query slot for %s", name);
	q->req = r;
	q->rrtype = rrtype;
	q->host = host;
	rc = ub_resolve_async(r->d->ub, name, rrtype, CLASS_IN, q, dns_on_answer, &q->async_id);
	if (rc != 0) {
		dns_note_tempfail(r, "%s: resolver error: %s", name, ub_strerror(rc));
		return false;
	}
	q->busy = true;
	r->inflight++;
	return true;
}

/* ---- address stage ---- */

static void dns_add_addrs(struct dns_req *r, size_t host, int rrtype, const struct ub_result *ub)
{
	struct dns_addrs *a = &r->addrs[host];

	for (size_t i = 0; ub->data[i]; i++) {
		if (rrtype == RR_A && ub->len[i] == 4 && a->n4 < DNS_MAX_ADDRS) {
			struct sockaddr_in *sin = &a->v4[a->n4++];
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, ub->data[i], 4);
		} else if (rrtype == RR_AAAA && ub->len[i] == 16 && a->n6 < DNS_MAX_ADDRS) {
			struct sockaddr_in6 *sin6 = &a->v6[a->n6++];
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, ub->data[i], 16);
		}
	}
}

/* Fill hosts[i].addr (IPv4 first), drop the hosts without one, decide. */
static void dns_finish_addrs(struct dns_req *r)
{
	struct dns_result *res = &r->result;
	size_t kept = 0;

	for (size_t i = 0; i < res->nhosts; i++) {
		struct dns_host *h = &res->hosts[i];
		const struct dns_addrs *a = &r->addrs[i];
		h->naddr = 0;
		for (size_t k = 0; k < a->n4 && h->naddr < DNS_MAX_ADDRS; k++)
			memcpy(&h->addr[h->naddr++], &a->v4[k], sizeof(a->v4[k]));
		for (size_t k = 0; k < a->n6 && h->naddr < DNS_MAX_ADDRS; k++)
			memcpy(&h->addr[h->naddr++], &a->v6[k], sizeof(a->v6[k]));
		if (h->naddr == 0)
			continue;
		if (kept != i)
			res->hosts[kept] = *h;
		kept++;
	}
	res->nhosts = kept;
	if (kept > 0) {
		res->status = DNS_OK;
		res->error[0] = '\0';
	} else if (r->tempfail) {
		dns_set_error(r, DNS_TEMPFAIL, "address lookup for %s failed: %s", r->name, r->why);
	} else if (r->mx && !r->implicit) {
		dns_set_error(r, DNS_NO_ADDRESS, "no MX host of %s has an address", r->name);
	} else if (r->nnxdomain == r->nlookups) {
		dns_set_error(r, DNS_NXDOMAIN, "%s: no such domain", r->name);
	} else {
		dns_set_error(r, DNS_NO_ADDRESS, "%s has no %sA/AAAA record", r->name,
			      r->implicit ? "MX and no " : "");
	}
	dns_complete(r);
}

/* Keep DNS_INFLIGHT address lookups running; finish after the last. */
static void dns_pump(struct dns_req *r)
{
	while (r->stage == STAGE_ADDRS && r->inflight < DNS_INFLIGHT &&
	       r->next_lookup < r->nlookups) {
		size_t i = r->next_lookup++;
		dns_start_query(r, i % 2 ? RR_AAAA : RR_A, r->result.hosts[i / 2].name, i / 2);
	}
	if (r->stage == STAGE_ADDRS && r->inflight == 0 && r->next_lookup >= r->nlookups)
		dns_finish_addrs(r);
}

static void dns_start_addrs(struct dns_req *r)
{
	r->stage = STAGE_ADDRS;
	r->next_lookup = 0;
	r->nlookups = 2 * r->result.nhosts;
	dns_pump(r);
}

static void dns_on_addr(struct dns_req *r, size_t host, int rrtype, int err,
			const struct ub_result *ub)
{
	char why[128];

	switch (dns_classify(err, ub, why, sizeof(why))) {
	case ANS_DATA: dns_add_addrs(r, host, rrtype, ub); break;
	case ANS_NODATA: break;
	case ANS_NXDOMAIN: r->nnxdomain++; break;
	case ANS_TEMPFAIL:
		dns_note_tempfail(r, "%s %s: %s", r->result.hosts[host].name,
				  rrtype == RR_A ? "A" : "AAAA", why);
		break;
	}
	dns_pump(r);
}

/* ---- MX stage ---- */

struct dns_mx_pick {
	unsigned pref;
	uint32_t key; /* random: shuffles equal preferences */
	char name[256];
};

static bool dns_mx_before(unsigned pref, uint32_t key, const struct dns_mx_pick *p)
{
	return pref < p->pref || (pref == p->pref && key < p->key);
}

/* Insert into the sorted best-DNS_MAX_HOSTS list, one entry per name. */
static void dns_mx_insert(struct dns_mx_pick *best, size_t *n, unsigned pref, const char *name)
{
	uint32_t key = arc4random();
	size_t pos;

	for (size_t i = 0; i < *n; i++) {
		if (strcmp(best[i].name, name) != 0)
			continue;
		if (best[i].pref <= pref)
			return;
		memmove(&best[i], &best[i + 1], (*n - i - 1) * sizeof(*best));
		(*n)--;
		break;
	}
	for (pos = 0; pos < *n && !dns_mx_before(pref, key, &best[pos]); pos++)
		;
	if (pos >= DNS_MAX_HOSTS)
		return;
	if (*n == DNS_MAX_HOSTS)
		(*n)--;
	memmove(&best[pos + 1], &best[pos], (*n - pos) * sizeof(*best));
	best[pos].pref = pref;
	best[pos].key = key;
	str_copy(best[pos].name, name, sizeof(best[pos].name));
	(*n)++;
}

static void dns_on_mx_data(struct dns_req *r, const struct ub_result *ub)
{
	struct dns_mx_pick best[DNS_MAX_HOSTS];
	size_t nbest = 0, nrecords = 0, nroot = 0;
	char name[256];
	struct sockaddr_storage ss;
	char lit[64];

	for (size_t i = 0; ub->data[i]; i++) {
		const unsigned char *p = (const unsigned char *)ub->data[i];
		if (ub->len[i] < 3)
			continue;
		nrecords++;
		unsigned pref = (unsigned)p[0] << 8 | p[1];
		if (!dns_wire_name(p + 2, (size_t)ub->len[i] - 2, name, sizeof(name)))
			continue;
		if (name[0] == '\0') {
			nroot++;
			continue;
		}
		if (dns_parse_literal(name, &ss, lit, sizeof(lit)))
			continue; /* an IP address is not a host name (5.1) */
		dns_mx_insert(best, &nbest, pref, name);
	}
	if (nrecords > 0 && nroot == nrecords) {
		dns_set_error(r, DNS_NULL_MX, "%s accepts no mail (null MX, RFC 7505)", r->name);
		dns_complete(r);
		return;
	}
	if (nbest == 0) {
		dns_set_error(r, DNS_NO_ADDRESS, "%s has no usable MX host name", r->name);
		dns_complete(r);
		return;
	}
	for (size_t i = 0; i < nbest; i++) {
		struct dns_host *h = &r->result.hosts[i];
		str_copy(h->name, best[i].name, sizeof(h->name));
		h->pref = best[i].pref;
	}
	r->result.nhosts = nbest;
	dns_start_addrs(r);
}

/* The domain itself as the only host (implicit MX, or dns_resolve_host). */
static void dns_self_host(struct dns_req *r)
{
	str_copy(r->result.hosts[0].name, r->name, sizeof(r->result.hosts[0].name));
	r->result.hosts[0].pref = 0;
	r->result.nhosts = 1;
	dns_start_addrs(r);
}

static void dns_on_mx(struct dns_req *r, int err, const struct ub_result *ub)
{
	char why[128];

	switch (dns_classify(err, ub, why, sizeof(why))) {
	case ANS_DATA: dns_on_mx_data(r, ub); break;
	case ANS_NODATA:
		r->implicit = true;
		dns_self_host(r);
		break;
	case ANS_NXDOMAIN:
		dns_set_error(r, DNS_NXDOMAIN, "%s: no such domain", r->name);
		dns_complete(r);
		break;
	case ANS_TEMPFAIL:
		dns_set_error(r, DNS_TEMPFAIL, "MX lookup for %s failed: %s", r->name, why);
		dns_complete(r);
		break;
	}
}

/* PTR answer: each name (valid host names only) in hosts[].name. */
static void dns_on_ptr(struct dns_req *r, int err, const struct ub_result *ub)
{
	char why[128];
	struct dns_result *res = &r->result;

	switch (dns_classify(err, ub, why, sizeof(why))) {
	case ANS_DATA:
		for (size_t i = 0; ub->data[i] && res->nhosts < DNS_MAX_HOSTS; i++)
			if (dns_wire_name((const unsigned char *)ub->data[i], (size_t)ub->len[i],
					  res->hosts[res->nhosts].name,
					  sizeof(res->hosts[0].name)))
				res->nhosts++;
		if (res->nhosts > 0) {
			res->status = DNS_OK;
			break;
		}
		dns_set_error(r, DNS_NO_ADDRESS, "%s: no usable PTR name", r->name);
		break;
	case ANS_NODATA:
		dns_set_error(r, DNS_NO_ADDRESS, "%s: no PTR record", r->name);
		break;
	case ANS_NXDOMAIN:
		dns_set_error(r, DNS_NXDOMAIN, "%s: no such domain", r->name);
		break;
	case ANS_TEMPFAIL:
		dns_set_error(r, DNS_TEMPFAIL, "PTR lookup for %s failed: %s", r->name, why);
		break;
	}
	dns_complete(r);
}

/* Called from ub_process() on the loop thread, no libunbound lock held. */
static void dns_on_answer(void *mydata, int err, struct ub_result *ub)
{
	struct dns_query *q = mydata;
	struct dns_req *r = q->req;
	int rrtype = q->rrtype;
	size_t host = q->host;

	if (!q->busy) { /* cancelled: libunbound does not call back, but be sure */
		ub_resolve_free(ub);
		return;
	}
	q->busy = false;
	r->inflight--;
	if (r->stage == STAGE_PTR && rrtype == RR_PTR)
		dns_on_ptr(r, err, ub);
	else if (r->stage == STAGE_MX && rrtype == RR_MX)
		dns_on_mx(r, err, ub);
	else if (r->stage == STAGE_ADDRS && rrtype != RR_MX)
		dns_on_addr(r, host, rrtype, err, ub);
	ub_resolve_free(ub);
}

static void dns_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;

	(void)fd;
	(void)what;
	if (r->stage == STAGE_MX || r->stage == STAGE_PTR) {
		dns_set_error(r, DNS_TEMPFAIL, "%s lookup for %s timed out",
			      r->stage == STAGE_MX ? "MX" : "PTR", r->name);
		dns_complete(r);
	} else if (r->stage == STAGE_ADDRS) {
		dns_cancel_queries(r);
		r->next_lookup = r->nlookups;
		dns_note_tempfail(r, "timed out");
		dns_finish_addrs(r); /* the hosts resolved so far still count */
	}
}

static struct dns_req *dns_req_new(struct dns *d, bool mx, dns_cb cb, void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));
	struct timeval tv = {.tv_sec = DNS_DEADLINE_S};

	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->mx = mx;
	r->stage = STAGE_MX;
	r->done_ev = event_new(d->base, -1, 0, dns_on_done, r);
	r->deadline_ev = evtimer_new(d->base, dns_on_deadline, r);
	if (!r->done_ev || !r->deadline_ev)
		log_fatal("dns: cannot create events");
	evtimer_add(r->deadline_ev, &tv);
	r->next = d->reqs;
	if (d->reqs)
		d->reqs->prev = r;
	d->reqs = r;
	return r;
}

/* An IP literal or an invalid name: answered without any query. */
static bool dns_answer_locally(struct dns_req *r, const char *name)
{
	struct dns_host *h = &r->result.hosts[0];

	if (dns_parse_literal(name, &h->addr[0], h->name, sizeof(h->name))) {
		h->naddr = 1;
		h->pref = 0;
		r->result.nhosts = 1;
		r->result.status = DNS_OK;
		str_copy(r->name, h->name, sizeof(r->name));
		dns_complete(r);
		return true;
	}
	if (!dns_domain_normalize(name, r->name)) {
		char q[128];
		log_quote(name, q, sizeof(q));
		str_copy(r->name, q, sizeof(r->name));
		dns_set_error(r, DNS_NXDOMAIN, "invalid domain name %s", q);
		dns_complete(r);
		return true;
	}
	return false;
}

void dns_resolve_mx(struct dns *d, const char *domain, dns_cb cb, void *arg)
{
	struct dns_req *r = dns_req_new(d, true, cb, arg);

	if (dns_answer_locally(r, domain))
		return;
	if (!dns_start_query(r, RR_MX, r->name, 0)) {
		dns_set_error(r, DNS_TEMPFAIL, "MX lookup for %s failed: %s", r->name, r->why);
		dns_complete(r);
	}
}

void dns_resolve_host(struct dns *d, const char *host, dns_cb cb, void *arg)
{
	struct dns_req *r = dns_req_new(d, false, cb, arg);

	if (!dns_answer_locally(r, host))
		dns_self_host(r);
}

void dns_resolve_ptr(struct dns *d, const struct sockaddr *addr, dns_cb cb, void *arg)
{
	static const char hex[] = "0123456789abcdef";
	struct dns_req *r = dns_req_new(d, false, cb, arg);
	char *o = r->name;

	r->stage = STAGE_PTR;
	if (addr->sa_family == AF_INET) {
		const unsigned char *b =
			(const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
		snprintf(r->name, sizeof(r->name), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1],
			 b[0]);
	} else if (addr->sa_family == AF_INET6) {
		const unsigned char *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		for (int i = 15; i >= 0; i--) {
			*o++ = hex[b[i] & 0xf];
			*o++ = '.';
			*o++ = hex[b[i] >> 4];
			*o++ = '.';
		}
		str_copy(o, "ip6.arpa", sizeof(r->name) - (size_t)(o - r->name));
	} else {
		str_copy(r->name, "?", sizeof(r->name));
		dns_set_error(r, DNS_NXDOMAIN, "no PTR for this address family");
		dns_complete(r);
		return;
	}
	if (!dns_start_query(r, RR_PTR, r->name, 0)) {
		dns_set_error(r, DNS_TEMPFAIL, "PTR lookup for %s failed: %s", r->name, r->why);
		dns_complete(r);
	}
}

/* ---- the resolver ---- */

static void dns_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	int rc;

	(void)fd;
	(void)what;
	rc = ub_process(d->ub);
	if (rc != 0)
		log_warn("dns resolver error=\"%s\"", ub_strerror(rc));
}

static bool dns_option(struct ub_ctx *ub, const char *opt, const char *val, char *err,
		       size_t errsz)
{
	int rc = ub_ctx_set_option(ub, opt, val);

	if (rc != 0)
		snprintf(err, errsz, "dns: option %s %s: %s", opt, val, ub_strerror(rc));
	return rc == 0;
}

/* Explicit servers: forwarders for ".", no validation, "test." served
 * by them, short timers (they are expected to be near). */
static bool dns_setup_forward(struct ub_ctx *ub, char *const *servers, size_t nservers, char *err,
			      size_t errsz)
{
	char spec[80];

	for (size_t i = 0; i < nservers; i++) {
		int rc;
		if (!servers[i] || !dns_server_spec(servers[i], spec, sizeof(spec))) {
			snprintf(err, errsz, "dns: bad server address \"%s\"",
				 servers[i] ? servers[i] : "(null)");
			return false;
		}
		rc = ub_ctx_set_fwd(ub, spec);
		if (rc != 0) {
			snprintf(err, errsz, "dns: server %s: %s", spec, ub_strerror(rc));
			return false;
		}
	}
	return dns_option(ub, "do-not-query-localhost:", "no", err, errsz) &&
	       dns_option(ub, "module-config:", "iterator", err, errsz) &&
	       dns_option(ub, "local-zone:", "test. transparent", err, errsz) &&
	       dns_option(ub, "local-zone:", "127.in-addr.arpa. transparent", err, errsz) &&
	       dns_option(ub, "infra-cache-max-rtt:", "1000", err, errsz) &&
	       dns_option(ub, "outbound-msg-retry:", "2", err, errsz) &&
	       dns_option(ub, "infra-host-ttl:", "10", err, errsz);
}

static bool dns_setup_system(struct ub_ctx *ub, char *err, size_t errsz)
{
	int rc = ub_ctx_resolvconf(ub, NULL);

	if (rc != 0)
		log_warn("dns resolv.conf error=\"%s\" (resolving from the root)", ub_strerror(rc));
	rc = ub_ctx_hosts(ub, NULL);
	if (rc != 0)
		log_warn("dns hosts error=\"%s\"", ub_strerror(rc));
	return dns_option(ub, "infra-cache-max-rtt:", "3000", err, errsz) &&
	       dns_option(ub, "outbound-msg-retry:", "3", err, errsz) &&
	       dns_option(ub, "infra-host-ttl:", "60", err, errsz);
}

struct dns *dns_new(struct event_base *base, char *const *servers, size_t nservers, char *err,
		    size_t errsz)
{
	struct ub_ctx *ub = ub_ctx_create();
	int rc;

	if (!ub) {
		snprintf(err, errsz, "dns: cannot create the resolver");
		return NULL;
	}
	bool forward = servers && nservers > 0;
	if (forward ? !dns_setup_forward(ub, servers, nservers, err, errsz)
		    : !dns_setup_system(ub, err, errsz)) {
		ub_ctx_delete(ub);
		return NULL;
	}
	rc = ub_ctx_async(ub, 1);
	if (rc != 0) {
		snprintf(err, errsz, "dns: threaded mode: %s", ub_strerror(rc));
		ub_ctx_delete(ub);
		return NULL;
	}
	struct dns *d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->ub = ub;
	d->ub_ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST, dns_on_readable, d);
	if (!d->ub_ev || event_add(d->ub_ev, NULL) != 0) {
		snprintf(err, errsz, "dns: cannot watch the resolver");
		dns_free(d);
		return NULL;
	}
	return d;
}

void dns_free(struct dns *d)
{
	struct dns_req *r, *next;

	if (!d)
		return;
	for (r = d->reqs; r; r = next) {
		next = r->next;
		dns_req_free(r);
	}
	if (d->ub_ev)
		event_free(d->ub_ev);
	ub_ctx_delete(d->ub); /* joins the resolver thread, drops pending queries */
	free(d);
}
