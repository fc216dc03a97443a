/* test_proxy.c - net/proxy.c: the PROXY protocol header parser (issue 7,
 * PROXY protocol), versions 1 and 2, table-driven; every valid header is
 * also cut at every offset (need more, never an answer from half). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/proxy.h"

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static const char *src_text(const struct proxy_result *r, char *out, size_t outsz)
{
	unsigned port;
	char ip[INET6_ADDRSTRLEN];

	if (r->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&r->src;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&r->src;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		port = ntohs(s->sin6_port);
	}
	snprintf(out, outsz, "%s %u", ip, port);
	return out;
}

/* Every proper prefix of a complete header needs more. */
static void assert_prefixes_need_more(const unsigned char *p, size_t len)
{
	struct proxy_result r;
	size_t i;

	for (i = 0; i < len; i++) {
		if (proxy_parse(p, i, &r) != PROXY_NEED_MORE)
			fail_msg("prefix of %zu/%zu octets: not need-more (%s)", i, len,
				 r.error ? r.error : "done");
	}
}

static void test_v1(void **state)
{
	static const struct {
		const char *in;
		enum proxy_status want;
		const char *src; /* "ip port", NULL: no address */
		size_t consumed;
		const char *error;
	} cases[] = {
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 587\r\nEHLO x\r\n", PROXY_DONE,
		 "192.0.2.7 56324", 45, NULL},
		{"PROXY TCP6 2001:db8::7 2001:db8::1 65535 25\r\n", PROXY_DONE, "2001:db8::7 65535", 45,
		 NULL},
		/* IPv4-mapped IPv6 comes back as IPv4 */
		{"PROXY TCP6 ::ffff:192.0.2.9 ::ffff:192.0.2.1 0 25\r\n", PROXY_DONE, "192.0.2.9 0", 51,
		 NULL},
		{"PROXY UNKNOWN\r\n", PROXY_DONE, NULL, 15, NULL},
		{"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", PROXY_DONE, NULL, 35, NULL},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n", PROXY_ERROR, NULL, 0, "v1-bad-fields"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 56324 587 9\r\n", PROXY_ERROR, NULL, 0,
		 "v1-bad-fields"},
		{"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-fields"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3 4\r\n", PROXY_ERROR, NULL, 0,
		 "v1-too-many-fields"},
		{"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-address"},
		{"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-address"},
		{"PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-address"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-port"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-port"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-port"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n", PROXY_ERROR, NULL, 0, "v1-bare-lf"},
		{"PROXY TCP4 192.0.2.7 198.51.100.1 1\r2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-character"},
		{"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-protocol"},
		{"PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "v1-bad-protocol"},
		{"PROXY \r\n", PROXY_ERROR, NULL, 0, "v1-bad-protocol"},
		{"PROXYTCP4 192.0.2.7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "bad-signature"},
		{"EHLO client.example\r\n", PROXY_ERROR, NULL, 0, "bad-signature"},
		{"proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n", PROXY_ERROR, NULL, 0, "bad-signature"},
		{"PRO", PROXY_NEED_MORE, NULL, 0, NULL},
		{"PROXY TCP4 192.0.2.7", PROXY_NEED_MORE, NULL, 0, NULL},
	};
	struct proxy_result r;
	char buf[64];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const unsigned char *in = (const unsigned char *)cases[i].in;
		enum proxy_status st = proxy_parse(in, strlen(cases[i].in), &r);
		if (st != cases[i].want)
			fail_msg("case %zu \"%s\": status %d, want %d (%s)", i, cases[i].in, st,
				 cases[i].want, r.error ? r.error : "");
		if (st == PROXY_ERROR)
			assert_string_equal(r.error, cases[i].error);
		if (st != PROXY_DONE)
			continue;
		assert_int_equal(r.version, 1);
		assert_int_equal(r.consumed, cases[i].consumed);
		assert_int_equal(r.has_address, cases[i].src != NULL);
		if (cases[i].src)
			assert_string_equal(src_text(&r, buf, sizeof(buf)), cases[i].src);
		assert_prefixes_need_more(in, r.consumed);
	}
}

static void test_v1_length_bound(void **state)
{
	char line[300];
	struct proxy_result r;
	(void)state;

	/* 107 octets with the CRLF is the longest header */
	memset(line, 0, sizeof(line));
	strcpy(line, "PROXY UNKNOWN ");
	memset(line + 14, 'x', 107 - 14 - 2);
	strcat(line, "\r\n");
	assert_int_equal(strlen(line), 107);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, &r), PROXY_DONE);
	assert_int_equal(r.consumed, 107);
	/* one more: never a header, however much follows */
	memset(line + 14, 'x', 108 - 14 - 2);
	strcpy(line + 106, "\r\n");
	assert_int_equal(proxy_parse((unsigned char *)line, 108, &r), PROXY_ERROR);
	assert_string_equal(r.error, "v1-too-long");
	/* 107 octets without a line end: an error already, not need-more */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY ", 6);
	assert_int_equal(proxy_parse((unsigned char *)line, 106, &r), PROXY_NEED_MORE);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, &r), PROXY_ERROR);
	assert_int_equal(proxy_parse((unsigned char *)line, sizeof(line), &r), PROXY_ERROR);
}

/* A v2 header: signature, ver_cmd, fam, then body of n octets. */
static size_t v2(unsigned char *out, unsigned ver_cmd, unsigned fam, const unsigned char *body,
		 size_t n)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)ver_cmd;
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(n >> 8);
	out[15] = (unsigned char)n;
	if (n)
		memcpy(out + 16, body, n);
	return 16 + n;
}

static void test_v2(void **state)
{
	static const unsigned char inet[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x02, 0x4b};
	/* the same with two TLVs: NOOP (4) of 3 octets, AUTHORITY (2) of 0 */
	static const unsigned char inet_tlv[12 + 6 + 3] = {192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04,
							  0x02, 0x4b, 0x04, 0, 3, 'a', 'b', 'c',
							  0x02, 0, 0};
	static const unsigned char inet_badtlv[12 + 4] = {192, 0, 2, 7, 198, 51, 100, 1,
							  0xdc, 0x04, 0x02, 0x4b, 0x04, 0, 2, 'a'};
	static const unsigned char inet_shorttlv[12 + 2] = {192, 0, 2, 7, 198, 51, 100,
							    1, 0xdc, 0x04, 0x02, 0x4b, 0x04, 0};
	unsigned char inet6[36], mapped[36], unixb[216];
	static const struct {
		int body; /* 0 inet, 1 inet6, 2 mapped, 3 unix, 4 none, 5 tlv, 6 badtlv, 7 shorttlv,
			     8 inet cut to 11 */
		unsigned ver_cmd, fam;
		enum proxy_status want;
		const char *src;
		const char *error;
	} cases[] = {
		{0, 0x21, 0x11, PROXY_DONE, "192.0.2.7 56324", NULL},
		{1, 0x21, 0x21, PROXY_DONE, "2001:db8::7 443", NULL},
		{2, 0x21, 0x21, PROXY_DONE, "192.0.2.9 443", NULL},
		{3, 0x21, 0x31, PROXY_DONE, NULL, NULL},
		{5, 0x21, 0x11, PROXY_DONE, "192.0.2.7 56324", NULL},
		/* LOCAL: whatever follows is skipped, no address */
		{0, 0x20, 0x11, PROXY_DONE, NULL, NULL},
		{4, 0x20, 0x00, PROXY_DONE, NULL, NULL},
		{6, 0x20, 0x11, PROXY_DONE, NULL, NULL},
		/* PROXY over UNSPEC: no address */
		{4, 0x21, 0x00, PROXY_DONE, NULL, NULL},
		{0, 0x11, 0x11, PROXY_ERROR, NULL, "v2-bad-version"},
		{0, 0x31, 0x11, PROXY_ERROR, NULL, "v2-bad-version"},
		{0, 0x22, 0x11, PROXY_ERROR, NULL, "v2-bad-command"},
		{0, 0x2f, 0x11, PROXY_ERROR, NULL, "v2-bad-command"},
		{0, 0x21, 0x41, PROXY_ERROR, NULL, "v2-bad-family"},
		{0, 0x21, 0x13, PROXY_ERROR, NULL, "v2-bad-family"},
		{0, 0x21, 0x10, PROXY_ERROR, NULL, "v2-bad-family"},
		{0, 0x21, 0x12, PROXY_ERROR, NULL, "v2-not-stream"},
		{0, 0x21, 0x21, PROXY_ERROR, NULL, "v2-short-address"},
		{8, 0x21, 0x11, PROXY_ERROR, NULL, "v2-short-address"},
		{6, 0x21, 0x11, PROXY_ERROR, NULL, "v2-bad-tlv"},
		{7, 0x21, 0x11, PROXY_ERROR, NULL, "v2-bad-tlv"},
	};
	unsigned char buf[PROXY_HEADER_MAX + 64];
	struct proxy_result r;
	char text[64];
	size_t i, n;
	(void)state;

	memset(inet6, 0, sizeof(inet6));
	inet_pton(AF_INET6, "2001:db8::7", inet6);
	inet_pton(AF_INET6, "2001:db8::1", inet6 + 16);
	inet6[32] = 0x01, inet6[33] = 0xbb, inet6[34] = 0, inet6[35] = 25;
	memcpy(mapped, inet6, sizeof(mapped));
	inet_pton(AF_INET6, "::ffff:192.0.2.9", mapped);
	memset(unixb, 'u', sizeof(unixb));

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		switch (cases[i].body) {
		case 0: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet, sizeof(inet)); break;
		case 1: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet6, sizeof(inet6)); break;
		case 2: n = v2(buf, cases[i].ver_cmd, cases[i].fam, mapped, sizeof(mapped)); break;
		case 3: n = v2(buf, cases[i].ver_cmd, cases[i].fam, unixb, sizeof(unixb)); break;
		case 4: n = v2(buf, cases[i].ver_cmd, cases[i].fam, NULL, 0); break;
		case 5: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet_tlv, sizeof(inet_tlv)); break;
		case 6: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet_badtlv, sizeof(inet_badtlv)); break;
		case 7: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet_shorttlv, sizeof(inet_shorttlv)); break;
		default: n = v2(buf, cases[i].ver_cmd, cases[i].fam, inet, 11); break;
		}
		/* the client's first command behind the header is not taken */
		memcpy(buf + n, "EHLO x\r\n", 8);
		enum proxy_status st = proxy_parse(buf, n + 8, &r);
		if (st != cases[i].want)
			fail_msg("case %zu: status %d, want %d (%s)", i, st, cases[i].want,
				 r.error ? r.error : "");
		if (st == PROXY_ERROR) {
			assert_string_equal(r.error, cases[i].error);
			continue;
		}
		assert_int_equal(r.version, 2);
		assert_int_equal(r.consumed, n);
		assert_int_equal(r.has_address, cases[i].src != NULL);
		if (cases[i].src)
			assert_string_equal(src_text(&r, text, sizeof(text)), cases[i].src);
		assert_prefixes_need_more(buf, n);
	}
}

static void test_v2_length_bound(void **state)
{
	unsigned char buf[16 + 65535];
	struct proxy_result r;
	(void)state;

	memset(buf, 0, sizeof(buf));
	/* the longest accepted: addresses and a NOOP TLV filling the rest */
	v2(buf, 0x21, 0x11, NULL, 0);
	buf[14] = PROXY_V2_MAX_LEN >> 8;
	buf[15] = PROXY_V2_MAX_LEN & 0xff;
	buf[16 + 12] = 0x04;
	buf[16 + 13] = (PROXY_V2_MAX_LEN - 15) >> 8;
	buf[16 + 14] = (PROXY_V2_MAX_LEN - 15) & 0xff;
	assert_int_equal(proxy_parse(buf, 16 + PROXY_V2_MAX_LEN, &r), PROXY_DONE);
	assert_int_equal(r.consumed, PROXY_HEADER_MAX);
	/* one more octet announced: refused from the 16 octets, before any body */
	buf[14] = (PROXY_V2_MAX_LEN + 1) >> 8;
	buf[15] = (PROXY_V2_MAX_LEN + 1) & 0xff;
	assert_int_equal(proxy_parse(buf, 16, &r), PROXY_ERROR);
	assert_string_equal(r.error, "v2-too-long");
	buf[14] = buf[15] = 0xff;
	assert_int_equal(proxy_parse(buf, sizeof(buf), &r), PROXY_ERROR);
	assert_string_equal(r.error, "v2-too-long");
	/* LOCAL is bounded the same way */
	buf[12] = 0x20;
	assert_int_equal(proxy_parse(buf, 16, &r), PROXY_ERROR);
}

static void test_bad_signatures(void **state)
{
	unsigned char buf[32];
	struct proxy_result r;
	size_t i;
	(void)state;

	/* one wrong octet anywhere in the v2 signature */
	for (i = 0; i < 12; i++) {
		v2(buf, 0x21, 0x11, NULL, 0);
		buf[i] ^= 0x20;
		assert_int_equal(proxy_parse(buf, 16, &r), PROXY_ERROR);
		assert_string_equal(r.error, "bad-signature");
		/* and refused as soon as the wrong octet is there */
		assert_int_equal(proxy_parse(buf, i + 1, &r), PROXY_ERROR);
	}
	/* TLS ClientHello, a NUL, plain SMTP */
	buf[0] = 0x16, buf[1] = 0x03, buf[2] = 0x01;
	assert_int_equal(proxy_parse(buf, 3, &r), PROXY_ERROR);
	buf[0] = 0;
	assert_int_equal(proxy_parse(buf, 1, &r), PROXY_ERROR);
	assert_int_equal(proxy_parse((const unsigned char *)"QUIT\r\n", 6, &r), PROXY_ERROR);
	assert_int_equal(proxy_parse((const unsigned char *)"", 0, &r), PROXY_NEED_MORE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_length_bound),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_v2_length_bound),
		cmocka_unit_test(test_bad_signatures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
