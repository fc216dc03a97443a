/* proxy.c - see proxy.h (HAProxy proxy-protocol.txt, sections 2.1 and 2.2). */
#include "net/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_prefix[] = "PROXY ";

#define V1_FIELDS_MAX 6

static enum proxy_status fail(struct proxy_result *r, const char *why)
{
	r->error = why;
	return PROXY_ERROR;
}

/* Fill ss with family/ip/port; an IPv4-mapped IPv6 address becomes IPv4. */
static void set_address(struct sockaddr_storage *ss, socklen_t *sslen, int family,
			const unsigned char *ip, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ip)) {
		family = AF_INET;
		ip += 12;
	}
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip, 4);
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip, 16);
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
	}
}

/* A v1 port: decimal 0..65535, no sign, no leading zero. */
static bool v1_port(const char *s, unsigned *port)
{
	size_t n = strlen(s), i;
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = v;
	return true;
}

static enum proxy_status parse_v1(const unsigned char *p, size_t len, struct proxy_result *r)
{
	size_t scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	const unsigned char *lf = memchr(p, '\n', scan);
	char line[PROXY_V1_MAX + 1];
	char *field[V1_FIELDS_MAX], *c;
	size_t linelen, nfields = 0;
	unsigned char src[16], dst[16];
	unsigned sport, dport;
	int family;

	if (lf == NULL)
		return len < PROXY_V1_MAX ? PROXY_NEED_MORE : fail(r, "v1-too-long");
	linelen = (size_t)(lf - p);
	if (linelen == 0 || p[linelen - 1] != '\r')
		return fail(r, "v1-bare-lf");
	linelen--; /* without the CR */
	if (memchr(p, '\0', linelen) != NULL || memchr(p, '\r', linelen) != NULL)
		return fail(r, "v1-bad-character");
	memcpy(line, p, linelen);
	line[linelen] = '\0';
	r->version = 1;
	r->consumed = (size_t)(lf - p) + 1;

	/* split what follows "PROXY " on single spaces */
	c = line + sizeof(v1_prefix) - 1;
	for (;;) {
		char *sp = strchr(c, ' ');
		if (nfields == V1_FIELDS_MAX)
			return fail(r, "v1-too-many-fields");
		field[nfields++] = c;
		if (sp == NULL)
			break;
		*sp = '\0';
		c = sp + 1;
		if (strcmp(field[0], "UNKNOWN") == 0)
			break; /* the rest of an UNKNOWN line is ignored (2.1) */
	}
	if (strcmp(field[0], "UNKNOWN") == 0) {
		r->has_address = false;
		return PROXY_DONE;
	}
	if (strcmp(field[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(field[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return fail(r, "v1-bad-protocol");
	if (nfields != 5)
		return fail(r, "v1-bad-fields");
	if (inet_pton(family, field[1], src) != 1 || inet_pton(family, field[2], dst) != 1)
		return fail(r, "v1-bad-address");
	if (!v1_port(field[3], &sport) || !v1_port(field[4], &dport))
		return fail(r, "v1-bad-port");
	r->has_address = true;
	set_address(&r->src, &r->srclen, family, src, sport);
	set_address(&r->dst, &r->dstlen, family, dst, dport);
	return PROXY_DONE;
}

/* The TLVs after the addresses (2.2.7): each must fit; their contents
 * are not used. */
static bool v2_tlvs_fit(const unsigned char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t n;
		if (len - off < 3)
			return false;
		n = ((size_t)p[off + 1] << 8) | p[off + 2];
		if (n > len - off - 3)
			return false;
		off += 3 + n;
	}
	return true;
}

static enum proxy_status parse_v2(const unsigned char *p, size_t len, struct proxy_result *r)
{
	unsigned version, command, family, transport;
	size_t blen, addrlen;

	if (len < 16)
		return PROXY_NEED_MORE;
	version = p[12] >> 4;
	command = p[12] & 0x0f;
	family = p[13] >> 4;
	transport = p[13] & 0x0f;
	blen = ((size_t)p[14] << 8) | p[15];
	if (version != 2)
		return fail(r, "v2-bad-version");
	if (command > 1)
		return fail(r, "v2-bad-command");
	if (blen > PROXY_V2_MAX_LEN)
		return fail(r, "v2-too-long");
	if (len < 16 + blen)
		return PROXY_NEED_MORE;
	r->version = 2;
	r->consumed = 16 + blen;
	if (command == 0) {
		/* LOCAL: the proxy speaks for itself; the block is skipped */
		r->has_address = false;
		return PROXY_DONE;
	}
	if (family > 3 || transport > 2)
		return fail(r, "v2-bad-family");
	if (transport == 2)
		return fail(r, "v2-not-stream"); /* a datagram cannot be an SMTP session */
	switch (family) {
	case 0: /* UNSPEC: the whole block is skipped */
		r->has_address = false;
		return PROXY_DONE;
	case 1:
		addrlen = 12;
		break;
	case 2:
		addrlen = 36;
		break;
	default:
		addrlen = 216; /* UNIX: two paths, no address for us */
		break;
	}
	if (transport != 1)
		return fail(r, "v2-bad-family"); /* an address needs STREAM */
	if (blen < addrlen)
		return fail(r, "v2-short-address");
	if (!v2_tlvs_fit(p + 16 + addrlen, blen - addrlen))
		return fail(r, "v2-bad-tlv");
	if (family == 3) {
		r->has_address = false;
		return PROXY_DONE;
	}
	if (family == 1) {
		set_address(&r->src, &r->srclen, AF_INET, p + 16, ((unsigned)p[24] << 8) | p[25]);
		set_address(&r->dst, &r->dstlen, AF_INET, p + 20, ((unsigned)p[26] << 8) | p[27]);
	} else {
		set_address(&r->src, &r->srclen, AF_INET6, p + 16, ((unsigned)p[48] << 8) | p[49]);
		set_address(&r->dst, &r->dstlen, AF_INET6, p + 32, ((unsigned)p[50] << 8) | p[51]);
	}
	r->has_address = true;
	return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char *p, size_t len, struct proxy_result *r)
{
	size_t n;

	memset(r, 0, sizeof(*r));
	if (len == 0)
		return PROXY_NEED_MORE;
	if (p[0] == v1_prefix[0]) {
		n = len < sizeof(v1_prefix) - 1 ? len : sizeof(v1_prefix) - 1;
		if (memcmp(p, v1_prefix, n) != 0)
			return fail(r, "bad-signature");
		return n < sizeof(v1_prefix) - 1 ? PROXY_NEED_MORE : parse_v1(p, len, r);
	}
	n = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
	if (memcmp(p, v2_signature, n) != 0)
		return fail(r, "bad-signature");
	return n < sizeof(v2_signature) ? PROXY_NEED_MORE : parse_v2(p, len, r);
}
