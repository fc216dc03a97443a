/* source.c - see source.h. */
#include "net/source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Clear every bit of ip (len octets) after the first prefix bits. */
static void mask_bits(unsigned char *ip, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * (unsigned)i : 0;
		ip[i] &= (unsigned char)(0xff00u >> keep);
	}
}

static bool format_key(int family, const unsigned char *ip, unsigned prefix, char *out,
		       size_t outsz)
{
	char text[INET6_ADDRSTRLEN];
	int n;

	if (inet_ntop(family, ip, text, sizeof(text)) == NULL)
		return false;
	n = snprintf(out, outsz, "%s/%u", text, prefix);
	return n > 0 && (size_t)n < outsz;
}

bool source_prefix_key(const struct sockaddr *sa, unsigned v4_prefix, unsigned v6_prefix, char *out,
		       size_t outsz)
{
	unsigned char ip[16];

	if (v4_prefix < 1 || v4_prefix > 32 || v6_prefix < 1 || v6_prefix > 128)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(ip, a, 16);
			mask_bits(ip, 16, v6_prefix);
			return format_key(AF_INET6, ip, v6_prefix, out, outsz);
		}
		memcpy(ip, &a->s6_addr[12], 4);
	} else {
		return false;
	}
	mask_bits(ip, 4, v4_prefix);
	return format_key(AF_INET, ip, v4_prefix, out, outsz);
}
