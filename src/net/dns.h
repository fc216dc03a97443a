/*
 * dns.h - asynchronous DNS for delivery, on libunbound driven by the
 * libevent loop (ub_fd() watched for readability, ub_process() on it).
 *
 * dns_resolve_mx() turns a domain into the ordered list of hosts to try
 * for SMTP (RFC 5321 5.1): MX records sorted by preference, equal
 * preferences shuffled, each host with its A and AAAA addresses; no MX
 * record → the domain itself as an implicit MX (its A/AAAA); a null MX
 * ("0 ." RFC 7505) → DNS_NULL_MX. dns_resolve_host() is for a "[host]"
 * smart host: A/AAAA only. An IP address string resolves to itself.
 * dns_resolve_ptr() gives the names of an address (reverse DNS).
 *
 * Answers are never cached here beyond what libunbound caches itself.
 * Callbacks always run on the event loop thread, never from inside the
 * dns_resolve_* call itself (so callers need not be reentrant).
 */
#ifndef TRANSIT_NET_DNS_H
#define TRANSIT_NET_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK = 0,
	DNS_TEMPFAIL,	 /* SERVFAIL, timeout, no answer: retry later (4.4.3) */
	DNS_NXDOMAIN,	 /* the domain does not exist (5.1.2) */
	DNS_NO_ADDRESS,	 /* exists, but no MX and no A/AAAA (5.1.2), or MX hosts without addresses */
	DNS_NULL_MX,	 /* RFC 7505: the domain accepts no mail (5.1.10) */
};

#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 8

struct dns_host {
	char name[256];	/* MX exchange (lower-case, no trailing dot) */
	unsigned pref;
	size_t naddr;
	struct sockaddr_storage addr[DNS_MAX_ADDRS]; /* port 0: the caller sets it */
};

struct dns_result {
	enum dns_status status;
	char error[256];  /* why, for logs and DSNs, when status != DNS_OK */
	size_t nhosts;
	struct dns_host hosts[DNS_MAX_HOSTS]; /* in the order to try */
};

/* servers: "ADDRESS" or "ADDRESS:PORT" ("[v6]:port" for IPv6) to forward
 * every query to (e.g. a test nameserver); NULL/0: the system resolver
 * (/etc/resolv.conf, /etc/hosts). NULL + err on failure. */
struct dns *dns_new(struct event_base *base, char *const *servers, size_t nservers, char *err,
		    size_t errsz);
void dns_free(struct dns *d); /* pending callbacks are not called */

typedef void (*dns_cb)(void *arg, const struct dns_result *res); /* res valid during the call */
void dns_resolve_mx(struct dns *d, const char *domain, dns_cb cb, void *arg);
void dns_resolve_host(struct dns *d, const char *host, dns_cb cb, void *arg);
/* The PTR names of an address (in-addr.arpa / ip6.arpa, RFC 1035 3.5,
 * RFC 3596): DNS_OK with hosts[].name set (no addresses), DNS_NXDOMAIN or
 * DNS_NO_ADDRESS when there is none, DNS_TEMPFAIL. */
void dns_resolve_ptr(struct dns *d, const struct sockaddr *addr, dns_cb cb, void *arg);

#endif
