/*
 * fuzz_dns.c - libFuzzer target for the DNS answer handling of
 * src/net/dns.c: how libunbound results become the ordered MX host list
 * with addresses (RFC 5321 5.1, RFC 7505 null MX, RFC 1035 3.3.9 MX
 * RDATA as libunbound hands it over: preference + uncompressed name).
 *
 * libunbound's ub_resolve_async() and ub_cancel() are replaced here (the
 * executable's definitions win at link time), so no query leaves the
 * process: dns.c's queries are recorded, and the fuzz input answers them
 * one by one, in an order it chooses, with results built like libunbound
 * builds them (freed by the real ub_resolve_free()): resolver errors,
 * SERVFAIL, NXDOMAIN, NODATA, bogus, or records of any length and bytes.
 * Input: byte 0 bit 0 = dns_resolve_mx (else dns_resolve_host), byte 1 =
 * length of the name that follows; then per answer: which pending query
 * (byte), what kind (byte), and for data a record count and per record a
 * length byte and the bytes.
 *
 * Checks: the callback runs exactly once, never inside dns_resolve_*;
 * no more than 8 queries in flight; every query name is lower-case
 * LDH/underscore and the type MX, A or AAAA; nothing is left in flight
 * after the callback; DNS_OK has 1..16 hosts, each with 1..8 addresses,
 * names unique, preferences in order, and every address was in an A or
 * AAAA answer for that host; any other status has a reason and no hosts.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "net/dns.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_Q 256
#define MAX_GIVEN 512

struct fake_query {
	bool live;
	int id;
	char name[256];
	int rrtype;
	void *mydata;
	ub_callback_type cb;
};

/* An A/AAAA record the fuzzer answered, to check the result against. */
struct given {
	char name[256];
	int family;
	unsigned char addr[16];
};

static struct event_base *g_base;
static struct dns *g_dns;
static struct fake_query g_q[MAX_Q];
static size_t g_nq;
static int g_next_id = 1;
static bool g_in_resolve;
static struct given g_given[MAX_GIVEN];
static size_t g_ngiven;
static int g_calls;

static size_t live_count(void)
{
	size_t n = 0;
	for (size_t i = 0; i < g_nq; i++)
		n += g_q[i].live;
	return n;
}

static bool ldh_lower(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

int ub_resolve_async(struct ub_ctx *ctx, const char *name, int rrtype, int rrclass, void *mydata,
		     ub_callback_type callback, int *async_id)
{
	struct fake_query *q;
	(void)ctx;

	if (rrclass != 1 || (rrtype != 1 && rrtype != 15 && rrtype != 28) || !ldh_lower(name) ||
	    strlen(name) > 253)
		abort();
	if (g_nq == MAX_Q)
		return UB_NOMEM; /* dns.c must take a resolver error */
	q = &g_q[g_nq++];
	q->live = true;
	q->id = g_next_id++;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->rrtype = rrtype;
	q->mydata = mydata;
	q->cb = callback;
	*async_id = q->id;
	if (live_count() > 8)
		abort();
	return 0;
}

int ub_cancel(struct ub_ctx *ctx, int async_id)
{
	(void)ctx;
	for (size_t i = 0; i < g_nq; i++)
		if (g_q[i].live && g_q[i].id == async_id) {
			g_q[i].live = false;
			return 0;
		}
	return UB_NOID;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *servers[] = {"127.0.0.1:1"};
	char err[256];
	(void)argc;
	(void)argv;

	g_base = event_base_new();
	g_dns = g_base ? dns_new(g_base, servers, 1, err, sizeof(err)) : NULL;
	if (!g_dns) {
		fprintf(stderr, "dns_new: %s\n", g_base ? err : "no event base");
		abort();
	}
	return 0;
}

struct cursor {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct cursor *c)
{
	if (c->n == 0)
		return 0;
	c->n--;
	return *c->p++;
}

/* A result as libunbound allocates it (ub_resolve_free frees it). */
static struct ub_result *build_result(const struct fake_query *q, struct cursor *c, int *err)
{
	struct ub_result *r = calloc(1, sizeof(*r));
	unsigned kind = take(c) % 8, nrec = 0;

	*err = 0;
	r->qname = strdup(q->name);
	r->qtype = q->rrtype;
	r->qclass = 1;
	switch (kind) {
	case 0: *err = UB_SERVFAIL; free(r->qname); free(r); return NULL;
	case 1: r->rcode = 2; break;			 /* SERVFAIL */
	case 2: r->rcode = 3; r->nxdomain = 1; break;	 /* NXDOMAIN */
	case 3: r->rcode = (int)(take(c) % 16); break;	 /* any rcode, no data */
	case 4: r->bogus = 1; r->why_bogus = strdup("fuzz"); break;
	default: nrec = take(c) % 24; break;		 /* data */
	}
	r->data = calloc(nrec + 1, sizeof(*r->data));
	r->len = calloc(nrec + 1, sizeof(*r->len));
	for (unsigned i = 0; i < nrec; i++) {
		unsigned len = take(c);
		/* A and AAAA answers mostly of the right size, to reach the addresses */
		if (q->rrtype != 15 && kind != 7)
			len = q->rrtype == 1 ? 4 : 16;
		r->data[i] = malloc(len ? len : 1);
		r->len[i] = (int)len;
		for (unsigned k = 0; k < len; k++)
			r->data[i][k] = (char)take(c);
		if ((q->rrtype == 1 && len == 4) || (q->rrtype == 28 && len == 16)) {
			if (g_ngiven < MAX_GIVEN) {
				struct given *g = &g_given[g_ngiven++];
				snprintf(g->name, sizeof(g->name), "%s", q->name);
				g->family = q->rrtype == 1 ? AF_INET : AF_INET6;
				memcpy(g->addr, r->data[i], len);
			}
		}
	}
	r->havedata = nrec > 0;
	return r;
}

static bool was_given(const char *name, const struct sockaddr_storage *ss)
{
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	size_t len = ss->ss_family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < g_ngiven; i++)
		if (g_given[i].family == ss->ss_family && strcmp(g_given[i].name, name) == 0 &&
		    memcmp(g_given[i].addr, a, len) == 0)
			return true;
	return false;
}

static bool g_literal;

static void on_result(void *arg, const struct dns_result *res)
{
	(void)arg;
	if (g_in_resolve || ++g_calls > 1)
		abort();
	if (getenv("FUZZ_DNS_TRACE"))
		fprintf(stderr, "status=%d hosts=%zu first=%s error=%s\n", (int)res->status,
			res->nhosts, res->nhosts ? res->hosts[0].name : "-", res->error);
	if (!memchr(res->error, '\0', sizeof(res->error)))
		abort();
	if (res->status != DNS_OK) {
		if (res->error[0] == '\0')
			abort();
		return;
	}
	if (res->nhosts < 1 || res->nhosts > DNS_MAX_HOSTS)
		abort();
	for (size_t i = 0; i < res->nhosts; i++) {
		const struct dns_host *h = &res->hosts[i];
		if (h->naddr < 1 || h->naddr > DNS_MAX_ADDRS || !memchr(h->name, '\0', sizeof(h->name)))
			abort();
		if (i > 0 && h->pref < res->hosts[i - 1].pref)
			abort();
		for (size_t k = 0; k < i; k++)
			if (strcmp(res->hosts[k].name, h->name) == 0)
				abort();
		for (size_t k = 0; k < h->naddr; k++) {
			int fam = h->addr[k].ss_family;
			if (fam != AF_INET && fam != AF_INET6)
				abort();
			if (!g_literal && !was_given(h->name, &h->addr[k]))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c = {data, size};
	char name[256];
	bool mx;
	unsigned nlen;

	if (size < 2)
		return 0;
	mx = take(&c) & 1;
	nlen = take(&c);
	if (nlen > c.n)
		nlen = (unsigned)c.n;
	memcpy(name, c.p, nlen);
	name[nlen] = '\0';
	c.p += nlen;
	c.n -= nlen;
	if (strlen(name) != nlen)
		return 0; /* names are C strings */

	g_nq = 0;
	g_ngiven = 0;
	g_calls = 0;
	g_literal = false;
	g_in_resolve = true;
	if (mx)
		dns_resolve_mx(g_dns, name, on_result, NULL);
	else
		dns_resolve_host(g_dns, name, on_result, NULL);
	g_in_resolve = false;
	g_literal = g_nq == 0; /* answered locally: an IP literal (or refused) */

	/* answer the pending queries in the order the input picks; when
	 * the input runs out, the rest fail as a resolver error would */
	for (unsigned rounds = 0; g_calls == 0 && rounds < 10000; rounds++) {
		size_t live[MAX_Q], nlive = 0;
		struct fake_query *q;
		struct ub_result *r;
		int err;

		event_base_loop(g_base, EVLOOP_NONBLOCK);
		if (g_calls)
			break;
		for (size_t i = 0; i < g_nq; i++)
			if (g_q[i].live)
				live[nlive++] = i;
		if (nlive == 0)
			continue; /* the completion is on its way through the loop */
		q = &g_q[live[take(&c) % nlive]];
		q->live = false;
		if (c.n == 0) {
			r = NULL;
			err = UB_SERVFAIL;
		} else {
			r = build_result(q, &c, &err);
		}
		q->cb(q->mydata, err, r);
	}
	if (g_calls != 1)
		abort();
	if (live_count() != 0)
		abort(); /* a finished request left a query running */
	return 0;
}
