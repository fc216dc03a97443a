/*
 * test_addr.c - mail/addr.c: path parsing (quoted local parts, UTF-8,
 * literals, routing tricks, source routes, limits, null path), rendering,
 * literal decoding, xtext; plus the golden file tests/golden/addr.in ->
 * addr.ref.
 *
 * Golden files: every line of addr.in is one path body (what stood
 * between '<' and '>'; the empty line is the null path, parsed with
 * allow_null), lines starting with '#' are comments copied to the .ref.
 * To regenerate addr.ref after an intended change, run
 *     UPDATE_GOLDEN=1 /tmp/build-X/tests/unit/test_addr
 * and review the diff of tests/golden/addr.ref before committing it.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mail/addr.h"
#include "util/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { Q = ADDR_F_QUOTED, U = ADDR_F_UTF8, L = ADDR_F_LITERAL, R = ADDR_F_ROUTING };
enum { SR = ADDR_F_SOURCE_ROUTE, ND = ADDR_F_NO_DOMAIN, NUL = ADDR_F_NULL };

struct ok_case {
	const char *in;
	const char *local, *domain;
	unsigned flags;
	const char *formatted;
};

static const struct ok_case ok_cases[] = {
	{"alice@example.test", "alice", "example.test", 0, "alice@example.test"},
	{"Alice@EXAMPLE.Test", "Alice", "example.test", 0, "Alice@example.test"},
	{"first.last+tag@sub.example.test", "first.last+tag", "sub.example.test", 0, NULL},
	{"a{b}c~d'e/f=g?h^i`j|k&l*m#n$o@x.test", "a{b}c~d'e/f=g?h^i`j|k&l*m#n$o", "x.test", 0,
	 NULL},
	{"a@localhost", "a", "localhost", 0, NULL},
	{"a@xn--bcher-kva.example", "a", "xn--bcher-kva.example", 0, NULL},
	{"a@a-b.c1.test", "a", "a-b.c1.test", 0, NULL},
	{"\"john doe\"@example.test", "john doe", "example.test", Q, "\"john doe\"@example.test"},
	{"\"john\\\"q\\\\x\"@example.test", "john\"q\\x", "example.test", Q,
	 "\"john\\\"q\\\\x\"@example.test"},
	{"\"plain\"@example.test", "plain", "example.test", Q, "plain@example.test"},
	{"\"a..b\"@example.test", "a..b", "example.test", Q, "\"a..b\"@example.test"},
	{"\"\\a\"@example.test", "a", "example.test", Q, "a@example.test"},
	{"δοκιμή@παράδειγμα.δοκιμή", "δοκιμή", "παράδειγμα.δοκιμή", U, "δοκιμή@παράδειγμα.δοκιμή"},
	{"用户@例子.广告", "用户", "例子.广告", U, NULL},
	{"alice@ÉXAMPLE.test", "alice", "Éxample.test", U, NULL}, /* only ASCII is folded */
	{"\"δοκιμή x\"@example.test", "δοκιμή x", "example.test", Q | U, NULL},
	{"emoji😀@example.test", "emoji😀", "example.test", U, NULL},
	{"a@[127.0.0.1]", "a", "[127.0.0.1]", L, "a@[127.0.0.1]"},
	{"a@[IPv6:::1]", "a", "[IPv6:::1]", L, "a@[IPv6:::1]"},
	{"a@[ipv6:2001:DB8:0:0::1]", "a", "[IPv6:2001:db8::1]", L, NULL},
	{"a@[IPv6:::ffff:192.0.2.1]", "a", "[IPv6:::ffff:192.0.2.1]", L, NULL},
	{"user@other@local", "user@other", "local", R, "\"user@other\"@local"},
	{"a@b@c@d.test", "a@b@c", "d.test", R, NULL},
	{"\"user@other\"@local", "user@other", "local", R | Q, "\"user@other\"@local"},
	{"user%other@local", "user%other", "local", R, "user%other@local"},
	{"other!user@local", "other!user", "local", R, "other!user@local"},
	{"\"a%b\"@local", "a%b", "local", R | Q, "a%b@local"},
	{"@local:user@other", "user", "other", SR, "user@other"},
	{"@a.test,@b.test:user@d.test", "user", "d.test", SR, NULL},
	{"@[192.0.2.1]:user@d.test", "user", "d.test", SR, NULL},
	{"@[IPv6:::1],@b.test:user@d.test", "user", "d.test", SR, NULL},
	{"@x.test:user@other@local", "user@other", "local", SR | R, NULL},
	{"postmaster", "postmaster", "", ND, "postmaster"},
	{"Postmaster", "Postmaster", "", ND, NULL},
	{"user%host", "user%host", "", ND | R, NULL},
	{"\"post master\"", "post master", "", ND | Q, "\"post master\""},
};

static void check_ok(const struct ok_case *c)
{
	struct mail_addr a, again;
	const char *why = NULL;
	char text[ADDR_TEXT_MAX];

	if (addr_parse(c->in, strlen(c->in), false, &a, &why) != ADDR_OK)
		fail_msg("%s: refused: %s", c->in, why);
	assert_non_null(why);
	assert_string_equal(a.local, c->local);
	assert_string_equal(a.domain, c->domain);
	if (a.flags != c->flags)
		fail_msg("%s: flags 0x%x, want 0x%x", c->in, a.flags, c->flags);
	assert_true(addr_format(&a, text, sizeof(text)));
	if (c->formatted)
		assert_string_equal(text, c->formatted);
	/* the rendered form parses back to the same mailbox */
	assert_int_equal(addr_parse(text, strlen(text), false, &again, &why), ADDR_OK);
	assert_string_equal(again.local, a.local);
	assert_string_equal(again.domain, a.domain);
	assert_int_equal(again.flags & (U | L | R | ND), a.flags & (U | L | R | ND));
}

static void test_parse_ok(void **state)
{
	size_t i;
	(void)state;
	for (i = 0; i < N(ok_cases); i++)
		check_ok(&ok_cases[i]);
}

struct err_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum addr_status st;
};

static const struct err_case err_cases[] = {
	{"a@", 0, ADDR_ESYNTAX},
	{"@b", 0, ADDR_ESYNTAX},
	{"@b:", 0, ADDR_ESYNTAX},
	{"@b:postmaster", 0, ADDR_ESYNTAX},
	{"@b,c:u@d", 0, ADDR_ESYNTAX},
	{"@-b:u@d", 0, ADDR_ESYNTAX},
	{"@[1.2.3]:u@d", 0, ADDR_ESYNTAX},
	{"a@b.", 0, ADDR_ESYNTAX},
	{"a@.b", 0, ADDR_ESYNTAX},
	{"a@b..c", 0, ADDR_ESYNTAX},
	{"a@-b.test", 0, ADDR_ESYNTAX},
	{"a@b-.test", 0, ADDR_ESYNTAX},
	{"a@b_c.test", 0, ADDR_ESYNTAX},
	{"a@b c", 0, ADDR_ESYNTAX},
	{".a@b", 0, ADDR_ESYNTAX},
	{"a.@b", 0, ADDR_ESYNTAX},
	{"a..b@c", 0, ADDR_ESYNTAX},
	{"a b@c", 0, ADDR_ESYNTAX},
	{"a(b)@c", 0, ADDR_ESYNTAX},
	{"a@@b", 0, ADDR_ESYNTAX},
	{"@", 0, ADDR_ESYNTAX},
	{"a\"b\"@c", 0, ADDR_ESYNTAX},
	{"\"a\"b@c", 0, ADDR_ESYNTAX},
	{"\"a\"@b@c", 0, ADDR_ESYNTAX},
	{"\"unterminated@c", 0, ADDR_ESYNTAX},
	{"\"a\\\"@c", 0, ADDR_ESYNTAX},
	{"\"\"@example.test", 0, ADDR_ESYNTAX},
	{"<a@b>", 0, ADDR_ESYNTAX},
	{"a@[1.2.3]", 0, ADDR_ESYNTAX},
	{"a@[256.1.1.1]", 0, ADDR_ESYNTAX},
	{"a@[1.2.3.4.5]", 0, ADDR_ESYNTAX},
	{"a@[IPv6:1.2.3.4]", 0, ADDR_ESYNTAX},
	{"a@[::1]", 0, ADDR_ESYNTAX},
	{"a@[IPv6:::1", 0, ADDR_ESYNTAX},
	{"a@[IPv6:::g]", 0, ADDR_ESYNTAX},
	{"a@[IPv6:::1%eth0]", 0, ADDR_ESYNTAX},
	{"a@[x400:foo]", 0, ADDR_ESYNTAX},
	{"a@[]", 0, ADDR_ESYNTAX},
	{"a@[ 1.2.3.4]", 0, ADDR_ESYNTAX},
	{"a@x[1.2.3.4]", 0, ADDR_ESYNTAX},
	/* control characters and NUL */
	{"a\x01@b", 0, ADDR_ESYNTAX},
	{"\"a\x01\"@b", 0, ADDR_ESYNTAX},
	{"\"a\\\x01\"@b", 0, ADDR_ESYNTAX},
	{"\"a\t\"@b", 0, ADDR_ESYNTAX},
	{"a\0b@c", 5, ADDR_ESYNTAX},
	{"ab@c\0", 5, ADDR_ESYNTAX},
	{"a@[1.2.3.4\0]", 12, ADDR_ESYNTAX},
	{"a@b\x7f", 0, ADDR_ESYNTAX},
	/* malformed UTF-8: stray continuation, truncated, overlong, surrogate,
	 * beyond U+10FFFF, 0xFF */
	{"\x80@b", 0, ADDR_ESYNTAX},
	{"\xc3@b", 0, ADDR_ESYNTAX},
	{"\xc0\xaf@b", 0, ADDR_ESYNTAX},
	{"\xe0\x80\xaf@b", 0, ADDR_ESYNTAX},
	{"\xed\xa0\x80@b", 0, ADDR_ESYNTAX},
	{"\xf4\x90\x80\x80@b", 0, ADDR_ESYNTAX},
	{"\xff@b", 0, ADDR_ESYNTAX},
	{"a@\xce.test", 0, ADDR_ESYNTAX},
	{"a@b.\xe2\x82", 0, ADDR_ESYNTAX},
	{"\"\xff\"@b", 0, ADDR_ESYNTAX},
	{"\"\xc3\"@b", 0, ADDR_ESYNTAX},
};

static void test_parse_errors(void **state)
{
	size_t i;
	(void)state;
	for (i = 0; i < N(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		struct mail_addr a;
		const char *why = NULL;
		size_t len = c->len ? c->len : strlen(c->in);
		enum addr_status st = addr_parse(c->in, len, true, &a, &why);
		if (st != c->st)
			fail_msg("case %zu \"%s\": status %d, want %d", i, c->in, st, c->st);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
		/* nothing half-parsed is left behind */
		assert_string_equal(a.local, "");
		assert_string_equal(a.domain, "");
		assert_int_equal(a.flags, 0);
	}
}

static void test_null_path(void **state)
{
	struct mail_addr a;
	const char *why;
	char text[8] = "x";
	(void)state;
	assert_int_equal(addr_parse("", 0, true, &a, &why), ADDR_OK);
	assert_int_equal(a.flags, ADDR_F_NULL);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
	assert_true(addr_format(&a, text, sizeof(text)));
	assert_string_equal(text, "");
	assert_int_equal(addr_parse("", 0, false, &a, &why), ADDR_ESYNTAX);
	/* the length, not the NUL, delimits the input */
	assert_int_equal(addr_parse("a@b", 0, false, &a, &why), ADDR_ESYNTAX);
	assert_int_equal(addr_parse("a@bc", 3, false, &a, &why), ADDR_OK);
	assert_string_equal(a.domain, "b");
}

static char *repeat(char *dst, const char *unit, size_t times)
{
	dst[0] = '\0';
	while (times--)
		strcat(dst, unit);
	return dst;
}

static enum addr_status parse_str(const char *s, struct mail_addr *a)
{
	const char *why;
	return addr_parse(s, strlen(s), false, a, &why);
}

static void test_limits(void **state)
{
	char local[600], label[70], in[1400];
	struct mail_addr a;
	(void)state;

	/* ASCII local part: 64 octets (RFC 5321 4.5.3.1.1) */
	snprintf(in, sizeof(in), "%s@x.test", repeat(local, "a", 64));
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "%s@x.test", repeat(local, "a", 65));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "%s", repeat(local, "a", 65));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	/* the limit applies to the canonical rendering (addr_format): quotes
	 * count only when they are needed */
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "a", 64));
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "a", 65));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"a %s\"@x.test", repeat(local, "a", 60)); /* renders 64 */
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "\"a %s\"@x.test", repeat(local, "a", 61)); /* renders 65 */
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"\\\"%s\"@x.test", repeat(local, "a", 60)); /* \" + 60: 64 */
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "\"\\\"%s\"@x.test", repeat(local, "a", 61));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "\\a", 200)); /* needless escapes */
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	/* routing: "user@other" renders quoted, so 62 octets is the most */
	snprintf(in, sizeof(in), "%s@b@x.test", repeat(local, "a", 60));
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "%s@b@x.test", repeat(local, "a", 61));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "a", 300));
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	/* UTF-8 local part: up to 255 octets */
	snprintf(in, sizeof(in), "%s@x.test", repeat(local, "é", 127)); /* 254 */
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 254);
	snprintf(in, sizeof(in), "%sa@x.test", repeat(local, "é", 127)); /* 255 */
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "%s@x.test", repeat(local, "é", 128)); /* 256 */
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "é", 127)); /* 254 */
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "\"%s\"@x.test", repeat(local, "é", 128)); /* 256 */
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	snprintf(in, sizeof(in), "\"%s x\"@x.test", repeat(local, "é", 126)); /* 254+2 */
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);

	/* labels: 63 octets */
	repeat(label, "b", 63);
	snprintf(in, sizeof(in), "a@%s.test", label);
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "a@%sb.test", label);
	assert_int_equal(parse_str(in, &a), ADDR_ESYNTAX);
	/* domain: 255 octets = 4 labels of 63 and 3 dots */
	snprintf(in, sizeof(in), "a@%s.%s.%s.%s", label, label, label, label);
	assert_int_equal(parse_str(in, &a), ADDR_OK);
	assert_int_equal(strlen(a.domain), 255);
	snprintf(in, sizeof(in), "a@%s.%s.%s.%s.c", label, label, label, label);
	assert_int_equal(parse_str(in, &a), ADDR_ETOOLONG);
	/* an over-long domain in a source route is refused too */
	snprintf(in, sizeof(in), "@%s.%s.%s.%s.c:a@b", label, label, label, label);
	assert_int_equal(parse_str(in, &a), ADDR_ESYNTAX);
}

static void test_format(void **state)
{
	struct mail_addr a;
	char small[8], big[ADDR_TEXT_MAX], local[300], label[64], in[700];
	const char *why;
	(void)state;

	assert_int_equal(parse_str("alice@example.test", &a), ADDR_OK);
	assert_false(addr_format(&a, small, sizeof(small)));
	assert_string_equal(small, "alice@e"); /* truncated but terminated */
	assert_false(addr_format(&a, small, 0));

	/* a local part that is not a dot-string is quoted, '"' and '\' escaped */
	memset(&a, 0, sizeof(a));
	strcpy(a.local, "a\"b\\c d");
	strcpy(a.domain, "x.test");
	assert_true(addr_format(&a, big, sizeof(big)));
	assert_string_equal(big, "\"a\\\"b\\\\c d\"@x.test");
	strcpy(a.local, ".a");
	assert_true(addr_format(&a, big, sizeof(big)));
	assert_string_equal(big, "\".a\"@x.test");

	/* the longest rendering of a valid address fits ADDR_TEXT_MAX: a
	 * UTF-8 routing local part rendering to 255 octets with its quotes
	 * and a 255-octet domain */
	repeat(local, "é", 125);
	strcat(local, "a@b");
	snprintf(in, sizeof(in), "%s@%s.%s.%s.%s", local, repeat(label, "c", 63), label, label,
		 label);
	assert_int_equal(addr_parse(in, strlen(in), false, &a, &why), ADDR_OK);
	assert_true(addr_format(&a, big, sizeof(big)));
	assert_int_equal(strlen(big), 255 + 1 + 255);
	/* one more octet in the local part and it is refused */
	repeat(local, "é", 125);
	strcat(local, "aa@b");
	snprintf(in, sizeof(in), "%s@%s", local, label);
	assert_int_equal(addr_parse(in, strlen(in), false, &a, &why), ADDR_ETOOLONG);
}

static void test_literal_ip(void **state)
{
	unsigned char ip[16], want6[16];
	int family = 0;
	(void)state;

	assert_true(addr_literal_ip("[192.0.2.1]", &family, ip));
	assert_int_equal(family, AF_INET);
	assert_memory_equal(ip, "\xc0\x00\x02\x01", 4);
	assert_true(addr_literal_ip("[IPv6:2001:db8::1]", &family, ip));
	assert_int_equal(family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::1", want6);
	assert_memory_equal(ip, want6, 16);
	assert_false(addr_literal_ip("example.test", &family, ip));
	assert_false(addr_literal_ip("[", &family, ip));
	assert_false(addr_literal_ip("[]", &family, ip));
	assert_false(addr_literal_ip("", &family, ip));
	assert_false(addr_literal_ip("[::1]", &family, ip));
	assert_false(addr_literal_ip("[IPv6:192.0.2.1]", &family, ip));
	assert_false(addr_literal_ip("192.0.2.1", &family, ip));
}

static void test_xtext(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{"", ""},	   {"abc", "abc"}, {"a+2Bb", "a+b"}, {"+3D", "="},
		{"+2b", "+"},	   {"+20x", " x"}, {"rfc822;a@b", "rfc822;a@b"},
		{"+C3+A9", "é"},
	};
	static const char *const bad[] = {"+",	 "+2",	"+G0", "+0G", "a=b", "a b",
					  "+00", "a\tb", "\xc3\xa9", "+2+20", "a\x7f"};
	char s[64], enc[64], all[256];
	size_t i;
	(void)state;

	for (i = 0; i < N(good); i++) {
		strcpy(s, good[i].in);
		assert_true(xtext_decode(s));
		assert_string_equal(s, good[i].out);
	}
	for (i = 0; i < N(bad); i++) {
		strcpy(s, bad[i]);
		if (xtext_decode(s))
			fail_msg("xtext \"%s\" accepted", bad[i]);
	}
	assert_true(xtext_encode("a+b=c d", enc, sizeof(enc)));
	assert_string_equal(enc, "a+2Bb+3Dc+20d");
	assert_true(xtext_encode("é", enc, sizeof(enc)));
	assert_string_equal(enc, "+C3+A9");
	/* too small: false, terminated, no escape cut in half */
	assert_false(xtext_encode("ab+c", enc, 5));
	assert_string_equal(enc, "ab");
	assert_false(xtext_encode("abcdef", enc, 4));
	assert_string_equal(enc, "abc");
	assert_true(xtext_encode("abc", enc, 4));
	assert_false(xtext_encode("a", enc, 0));

	/* round trip over every octet but NUL */
	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	{
		char big[800];
		assert_true(xtext_encode(all, big, sizeof(big)));
		for (i = 0; big[i]; i++)
			assert_true(big[i] >= 33 && big[i] <= 126 && big[i] != '=');
		assert_true(xtext_decode(big));
		assert_string_equal(big, all);
	}
}

/* --- golden file ----------------------------------------------------------- */

static const char *status_name(enum addr_status st)
{
	return st == ADDR_ETOOLONG ? "toolong" : "syntax";
}

static void flags_text(unsigned f, struct buf *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{ADDR_F_NULL, "NULL"},	  {ADDR_F_QUOTED, "QUOTED"},
		     {ADDR_F_UTF8, "UTF8"},	  {ADDR_F_LITERAL, "LITERAL"},
		     {ADDR_F_ROUTING, "ROUTING"}, {ADDR_F_SOURCE_ROUTE, "SOURCE_ROUTE"},
		     {ADDR_F_NO_DOMAIN, "NO_DOMAIN"}};
	size_t i;
	const char *sep = "";

	if (f == 0)
		buf_puts(out, "-");
	for (i = 0; i < N(names); i++)
		if (f & names[i].bit) {
			buf_printf(out, "%s%s", sep, names[i].name);
			sep = ",";
		}
}

static void golden_addr_line(const char *line, size_t len, struct buf *out)
{
	struct mail_addr a;
	const char *why;
	char text[ADDR_TEXT_MAX];
	enum addr_status st = addr_parse(line, len, true, &a, &why);

	if (st != ADDR_OK) {
		buf_printf(out, "ERR %s: %s", status_name(st), why);
		return;
	}
	addr_format(&a, text, sizeof(text));
	buf_printf(out, "OK local={%s} domain={%s} flags=", a.local, a.domain);
	flags_text(a.flags, out);
	buf_printf(out, " fmt={%s}", text);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	buf_reserve(&b, 0);
	*len = b.len;
	return buf_steal(&b);
}

/* Run each non-comment line of GOLDEN_DIR/<name>.in through fn and
 * compare the result with <name>.ref (or rewrite it with UPDATE_GOLDEN). */
static void golden_run(const char *name, void (*fn)(const char *, size_t, struct buf *))
{
	char in_path[512], ref_path[512];
	struct buf got = BUF_INIT;
	size_t in_len, ref_len, pos = 0, line_no = 1, i;
	char *in, *ref;

	snprintf(in_path, sizeof(in_path), "%s/%s.in", GOLDEN_DIR, name);
	snprintf(ref_path, sizeof(ref_path), "%s/%s.ref", GOLDEN_DIR, name);
	if (!(in = slurp(in_path, &in_len)))
		fail_msg("cannot read %s", in_path);
	while (pos < in_len) {
		const char *nl = memchr(in + pos, '\n', in_len - pos);
		size_t n = nl ? (size_t)(nl - (in + pos)) : in_len - pos;
		if (n > 0 && in[pos] == '#')
			buf_append(&got, in + pos, n);
		else
			fn(in + pos, n, &got);
		buf_putc(&got, '\n');
		pos += n + 1;
	}
	free(in);
	if (getenv("UPDATE_GOLDEN")) {
		FILE *f = fopen(ref_path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(got.data, 1, got.len, f), got.len);
		assert_int_equal(fclose(f), 0);
		print_message("rewrote %s\n", ref_path);
		buf_free(&got);
		return;
	}
	if (!(ref = slurp(ref_path, &ref_len))) {
		buf_free(&got);
		fail_msg("cannot read %s (UPDATE_GOLDEN=1 creates it)", ref_path);
	}
	for (i = 0; i < got.len && i < ref_len && got.data[i] == ref[i]; i++)
		if (ref[i] == '\n')
			line_no++;
	if (i != got.len || i != ref_len) {
		const char *g = got.data + i, *r = ref + i;
		while (g > got.data && g[-1] != '\n')
			g--;
		while (r > ref && r[-1] != '\n')
			r--;
		print_error("%s.ref line %zu differs:\n  want: %.*s\n  got:  %.*s\n", name, line_no,
			    (int)strcspn(r, "\n"), r, (int)strcspn(g, "\n"), g);
		free(ref);
		buf_free(&got);
		fail_msg("golden mismatch (UPDATE_GOLDEN=1 regenerates after review)");
	}
	free(ref);
	buf_free(&got);
}

static void test_golden(void **state)
{
	(void)state;
	golden_run("addr", golden_addr_line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),     cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_null_path),    cmocka_unit_test(test_limits),
		cmocka_unit_test(test_format),	     cmocka_unit_test(test_literal_ip),
		cmocka_unit_test(test_xtext),	     cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
