/* values.c - see values.h. */
#include "conf/values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/xmalloc.h"

bool parse_binding(const char *s, struct binding *b)
{
	char host[64];
	const char *port_s;
	char *end;
	long port;
	struct sockaddr_in *sin = (struct sockaddr_in *)&b->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&b->ss;

	memset(b, 0, sizeof(*b));
	if (!str_copy(b->text, s, sizeof(b->text)))
		return false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return false;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		port_s = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return false;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port_s = colon + 1;
	}
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || *port_s == '\0' || *end != '\0' || port < 1 || port > 65535)
		return false;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		b->sslen = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		b->sslen = sizeof(*sin6);
		return true;
	}
	return false;
}

bool parse_range(const char *s, struct ip_range *r)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxp;
	char *end;
	long p;

	memset(r, 0, sizeof(*r));
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, r->addr) == 1) {
		r->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, host, r->addr) == 1) {
		r->family = AF_INET6;
		maxp = 128;
	} else {
		return false;
	}
	r->prefix = maxp;
	if (slash) {
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (errno || slash[1] == '\0' || *end != '\0' || p < 0 || p > (long)maxp)
			return false;
		r->prefix = (unsigned)p;
	}
	return true;
}

bool ip_range_contains(const struct ip_range *r, const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned full, rest;
	unsigned char v4mapped[16];

	if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (r->family == AF_INET && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			memcpy(v4mapped, a + 12, 4);
			a = v4mapped;
		} else if (r->family != AF_INET6) {
			return false;
		}
	} else if (sa->sa_family == AF_INET) {
		if (r->family != AF_INET)
			return false;
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		return false;
	}
	full = r->prefix / 8;
	rest = r->prefix % 8;
	if (memcmp(a, r->addr, full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((a[full] & mask) != (r->addr[full] & mask))
			return false;
	}
	return true;
}

/* "example.com", "*.example.com" or "*", optionally followed by ";cost". */
bool parse_space(const char *s, struct address_space *a)
{
	char dom[256];
	const char *semi = strchr(s, ';');
	size_t n = semi ? (size_t)(semi - s) : strlen(s);
	char *end;
	long cost = 1;

	memset(a, 0, sizeof(*a));
	if (n == 0 || n >= sizeof(dom))
		return false;
	memcpy(dom, s, n);
	dom[n] = '\0';
	if (semi) {
		errno = 0;
		cost = strtol(semi + 1, &end, 10);
		if (errno || semi[1] == '\0' || *end != '\0' || cost < 1 || cost > 1000)
			return false;
	}
	a->cost = (unsigned)cost;
	if (strcmp(dom, "*") == 0) {
		a->wildcard = true;
		a->domain = NULL;
		return true;
	}
	if (strncmp(dom, "*.", 2) == 0) {
		a->wildcard = true;
		memmove(dom, dom + 2, strlen(dom + 2) + 1);
	}
	if (!valid_hostname(dom))
		return false;
	str_lower(dom);
	a->domain = xstrdup(dom);
	return true;
}

/* "[host]:port", "[host]", "host:port", "host"; an IPv6 address only in brackets. */
bool parse_smart_host(const char *s, struct smart_host *h)
{
	char host[256];
	const char *rest;
	long port = 25;
	char *end;
	unsigned char tmp[16];

	memset(h, 0, sizeof(*h));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (size_t)(close - s - 1) >= sizeof(host) || close == s + 1)
			return false;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		h->no_mx = true;
		rest = close + 1;
	} else {
		const char *colon = strchr(s, ':');
		size_t n = colon ? (size_t)(colon - s) : strlen(s);
		if (n == 0 || n >= sizeof(host))
			return false;
		memcpy(host, s, n);
		host[n] = '\0';
		rest = s + n;
	}
	if (*rest == ':') {
		errno = 0;
		port = strtol(rest + 1, &end, 10);
		if (errno || rest[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
			return false;
	} else if (*rest != '\0') {
		return false;
	}
	if (!valid_hostname(host) && inet_pton(AF_INET, host, tmp) != 1 &&
	    !(h->no_mx && inet_pton(AF_INET6, host, tmp) == 1))
		return false;
	str_lower(host);
	h->host = xstrdup(host);
	h->port = (uint16_t)port;
	return true;
}

bool valid_hostname(const char *s)
{
	size_t label = 0, n = 0;

	for (; *s; s++, n++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
		if (++label > 63)
			return false;
	}
	return n > 0 && n < 254 && label > 0;
}

bool parse_memory_limit(const char *s, unsigned *percent, uint64_t *bytes)
{
	size_t n = strlen(s);
	unsigned v = 0;
	size_t i;

	*percent = 0;
	*bytes = 0;
	if (n >= 2 && n <= 4 && s[n - 1] == '%') {
		for (i = 0; i + 1 < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		if (v < 1 || v > 100)
			return false;
		*percent = v;
		return true;
	}
	return parse_size(s, bytes) && *bytes > 0;
}

bool binding_is_loopback(const struct binding *b)
{
	if (b->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&b->ss;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (b->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&b->ss;
		const unsigned char *a = sin6->sin6_addr.s6_addr;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127);
	}
	return false;
}
