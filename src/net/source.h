/*
 * source.h - what counts as one source of connections: the client
 * address cut to a prefix. An IPv4 client is one address (/32) by
 * default, an IPv6 client its /64 (one customer's LAN or one host's
 * privacy addresses, RFC 4941: counting full IPv6 addresses would give
 * every /64 unlimited connections). An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, RFC 4291 2.5.5.2) is the IPv4 address it carries.
 */
#ifndef TRANSIT_NET_SOURCE_H
#define TRANSIT_NET_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "a.b.c.d/n" or "x:x::/n" (inet_ntop of the network) for sa, cut at
 * v4_prefix (1..32) or v6_prefix (1..128) bits. false when sa is not
 * AF_INET/AF_INET6 or out is too small (SOURCE_KEY_MAX is enough). */
#define SOURCE_KEY_MAX 64
bool source_prefix_key(const struct sockaddr *sa, unsigned v4_prefix, unsigned v6_prefix, char *out,
		       size_t outsz);

#endif
