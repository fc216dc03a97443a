/*
 * proxy.h - the PROXY protocol header a load balancer (HAProxy) sends
 * before the client's first byte, versions 1 (text) and 2 (binary), as
 * HAProxy's proxy-protocol.txt specifies them.
 *
 * proxy_parse() is a pure function over the octets received so far: it
 * says whether they are a complete header (and how many octets it took),
 * need more, or can never be one. It reads at most PROXY_HEADER_MAX
 * octets, so a caller that gives it no more than that is bounded.
 *
 *  - v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n",
 *    at most 107 octets with the CRLF, single spaces, decimal ports
 *    0..65535;
 *  - v2: the 12-octet signature, version 2 with command LOCAL or PROXY,
 *    family UNSPEC/INET/INET6/UNIX with transport UNSPEC or STREAM, a
 *    length of at most PROXY_V2_MAX_LEN, addresses, then TLVs, which are
 *    checked to fit exactly and otherwise skipped.
 *
 * The result carries the client's address only when the proxy relayed a
 * TCP connection it knows (v1 TCP4/TCP6, v2 PROXY over INET/INET6); for
 * LOCAL (HAProxy's health checks), v1 UNKNOWN and v2 UNSPEC/UNIX it says
 * "no address": the caller keeps the connection's own peer, the proxy.
 * An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is returned as IPv4, the
 * way transit sees direct clients (listeners are IPV6_V6ONLY).
 */
#ifndef TRANSIT_NET_PROXY_H
#define TRANSIT_NET_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107      /* octets, CRLF included (the spec's bound) */
#define PROXY_V2_MAX_LEN 1024 /* the v2 length field: addresses and TLVs */
#define PROXY_HEADER_MAX (16 + PROXY_V2_MAX_LEN)

enum proxy_status {
	PROXY_NEED_MORE, /* a prefix of a header that may still be valid */
	PROXY_ERROR,	 /* never a valid header: r->error says why */
	PROXY_DONE,	 /* a header of r->consumed octets */
};

struct proxy_result {
	int version;	     /* 1 or 2 */
	bool has_address;    /* false: LOCAL, UNKNOWN, UNSPEC, UNIX (use the peer) */
	struct sockaddr_storage src; /* the client, when has_address */
	socklen_t srclen;
	struct sockaddr_storage dst; /* the address the client connected to */
	socklen_t dstlen;
	size_t consumed;     /* octets of the header, to drop before SMTP */
	const char *error;   /* PROXY_ERROR: a log key ("bad-signature", ...) */
};

enum proxy_status proxy_parse(const unsigned char *p, size_t len, struct proxy_result *r);

#endif
