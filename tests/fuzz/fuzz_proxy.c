/*
 * fuzz_proxy.c - libFuzzer target for net/proxy.c, the PROXY protocol
 * header parser (v1 text, v2 binary). Beyond "no crash, no UB":
 *  - a header is never longer than the input nor than its bound (107
 *    octets for v1, PROXY_HEADER_MAX for v2), and need-more is answered
 *    only below those bounds (a peer cannot make the reader hold more);
 *  - the answer depends only on the header's own octets: the input cut
 *    right after the header gives the same result, one octet shorter
 *    needs more;
 *  - a client address is IPv4 or IPv6, never IPv4-mapped, and written as
 *    a v1 header it parses back to the same address and port.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		abort();
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		if (x->sin_port != y->sin_port || memcmp(&x->sin_addr, &y->sin_addr, 4) != 0)
			abort();
	} else {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		if (x->sin6_port != y->sin6_port || memcmp(&x->sin6_addr, &y->sin6_addr, 16) != 0)
			abort();
	}
}

/* Write the client address as a v1 header and parse it again. */
static void v1_round_trip(const struct proxy_result *r)
{
	char ip[INET6_ADDRSTRLEN], line[PROXY_V1_MAX + 1];
	struct proxy_result again;
	unsigned port;
	const char *proto;
	int n;

	if (r->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&r->src;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		port = ntohs(s->sin_port);
		proto = "TCP4";
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&r->src;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
			abort(); /* mapped addresses come back as IPv4 */
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		port = ntohs(s->sin6_port);
		proto = "TCP6";
	}
	n = snprintf(line, sizeof(line), "PROXY %s %s %s %u 25\r\n", proto, ip, ip, port);
	if (n < 0 || (size_t)n >= sizeof(line))
		abort();
	if (proxy_parse((const unsigned char *)line, (size_t)n, &again) != PROXY_DONE ||
	    !again.has_address || again.consumed != (size_t)n)
		abort();
	same_address(&r->src, &again.src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_result r, cut;
	enum proxy_status st = proxy_parse(data, size, &r);

	switch (st) {
	case PROXY_NEED_MORE:
		if (size >= PROXY_HEADER_MAX || (size > 0 && data[0] == 'P' && size >= PROXY_V1_MAX))
			abort();
		return 0;
	case PROXY_ERROR:
		if (r.error == NULL || r.error[0] == '\0')
			abort();
		return 0;
	case PROXY_DONE:
		break;
	default:
		abort();
	}
	if (r.consumed == 0 || r.consumed > size || r.consumed > PROXY_HEADER_MAX ||
	    (r.version == 1 && r.consumed > PROXY_V1_MAX) || (r.version != 1 && r.version != 2))
		abort();
	if (proxy_parse(data, r.consumed, &cut) != PROXY_DONE || cut.consumed != r.consumed ||
	    cut.has_address != r.has_address)
		abort();
	if (r.has_address) {
		if (r.src.ss_family != AF_INET && r.src.ss_family != AF_INET6)
			abort();
		same_address(&r.src, &cut.src);
		v1_round_trip(&r);
	}
	if (proxy_parse(data, r.consumed - 1, &cut) != PROXY_NEED_MORE)
		abort();
	return 0;
}
