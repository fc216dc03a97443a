/*
 * test_mime7bit.c - mail/mime7bit.c: the scan verdicts and the 7-bit form
 * of 8-bit messages (RFC 6152, RFC 2045 6.7 quoted-printable, RFC 2046
 * multipart), table-driven, each case fed whole and in small pieces
 * (the output must not depend on how the content was cut).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mail/mime7bit.h"
#include "util/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Scan then (when the verdict says so) convert, feeding `step` octets at a time. */
static enum mime7_verdict run(const char *in, size_t n, size_t step, struct buf *out)
{
	struct mime7 *m = malloc(sizeof(*m));
	enum mime7_verdict v;
	size_t i;

	assert_non_null(m);
	mime7_init(m);
	for (i = 0; i < n; i += step)
		mime7_feed(m, in + i, n - i < step ? n - i : step, NULL);
	v = mime7_end(m, NULL);
	if (v == MIME7_CONVERT) {
		mime7_start_convert(m);
		for (i = 0; i < n; i += step)
			mime7_feed(m, in + i, n - i < step ? n - i : step, out);
		mime7_end(m, out);
	}
	free(m);
	return v;
}

static void assert_7bit_lines(const struct buf *b)
{
	size_t i, col = 0;

	for (i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c >= 0x80)
			fail_msg("8-bit octet 0x%02x at %zu of output", c, i);
		if (c == '\n') {
			if (i == 0 || b->data[i - 1] != '\r')
				fail_msg("bare LF at %zu", i);
			col = 0;
		} else if (c != '\r') {
			col++;
			if (col > 998)
				fail_msg("line longer than 998 at %zu", i);
		}
	}
}

static const struct {
	const char *name;
	const char *in;
	enum mime7_verdict verdict;
	const char *out; /* the converted form (MIME7_CONVERT only) */
} cases[] = {
	{"plain 7-bit", "Subject: hi\r\n\r\nhello\r\n", MIME7_CLEAN, NULL},
	{"non-MIME 8-bit text",
	 "Subject: x\r\n\r\ncaf\xc3\xa9 = ok\r\n",
	 MIME7_CONVERT,
	 "Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "caf=C3=A9 =3D ok\r\n"},
	{"existing CTE 8bit replaced in place, MIME-Version kept",
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\nContent-Type: text/plain;\r\n"
	 " charset=utf-8\r\n\r\n\xe9\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: "
	 "text/plain;\r\n charset=utf-8\r\n\r\n=E9\r\n"},
	{"folded CTE field replaced with its continuation",
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding:\r\n 8bit\r\nX: y\r\n\r\n\xe9\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\nX: y\r\n\r\n=E9\r\n"},
	{"multipart: 8-bit part encoded, base64 part and 7-bit part untouched",
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX y\"\r\n\r\n"
	 "preamble\r\n"
	 "--XX y\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	 "\r\nh\xc3\xa9llo\r\n"
	 "--XX y\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
	 "\r\nAAEC\r\n"
	 "--XX y \r\nContent-Type: text/plain\r\n\r\nseven = bit  \r\n"
	 "--XX y--\r\nepilogue\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX y\"\r\n\r\n"
	 "preamble\r\n"
	 "--XX y\r\nContent-Type: text/plain; charset=utf-8\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\n"
	 "\r\nh=C3=A9llo\r\n"
	 "--XX y\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
	 "\r\nAAEC\r\n"
	 "--XX y \r\nContent-Type: text/plain\r\n\r\nseven = bit  \r\n"
	 "--XX y--\r\nepilogue\r\n"},
	{"nested multipart: inner 8bit label becomes 7bit, leaf encoded, CTE added",
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n"
	 "--out\r\nContent-Type: multipart/alternative; boundary=in\r\n"
	 "Content-Transfer-Encoding: 8bit\r\n\r\n"
	 "--in\r\nContent-Type: text/plain\r\n\r\n\xe9t\xe9\r\n"
	 "--in\r\nContent-Type: text/html\r\n\r\n<p>ok</p>\r\n"
	 "--in--\r\n"
	 "--out--\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n"
	 "--out\r\nContent-Type: multipart/alternative; boundary=in\r\n"
	 "Content-Transfer-Encoding: 7bit\r\n\r\n"
	 "--in\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	 "\r\n=E9t=E9\r\n"
	 "--in\r\nContent-Type: text/html\r\n\r\n<p>ok</p>\r\n"
	 "--in--\r\n"
	 "--out--\r\n"},
	{"an outer boundary closes the inner multipart",
	 "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	 "--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n"
	 "--o\r\n\r\n\xe9\r\n--o--\r\n",
	 MIME7_CONVERT,
	 "Content-Type: multipart/mixed; boundary=o\r\nMIME-Version: 1.0\r\n\r\n"
	 "--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n"
	 "--o\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--o--\r\n"},
	{"message/rfc822 part converted recursively",
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	 "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	 "Subject: inner\r\n\r\n\xc3\xa9\r\n"
	 "--b--\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	 "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	 "Subject: inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n"
	 "--b--\r\n"},
	{"soft line break: no encoded line longer than 76",
	 "\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe9\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n"
	 "aaaaa=E9\r\n"},
	{"an escape is never split by a soft break",
	 "\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe9\xe9\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n"
	 "=E9=E9\r\n"},
	{"trailing white space encoded, inner white space kept",
	 "\r\nx \xe9 \r\ny\t\r\n z\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "x =E9=20\r\ny=09\r\n z\r\n"},
	{"a dot at the start of a line stays (the SMTP client dot-stuffs)",
	 "\r\n.\xe9\r\n.\r\n..\r\n",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 ".=E9\r\n.\r\n..\r\n"},
	{"LF line ends become CRLF, a CR inside a line is encoded",
	 "Subject: lf\n\n\xe9\na\rb\n",
	 MIME7_CONVERT,
	 "Subject: lf\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "=E9\r\na=0Db\r\n"},
	{"no final line end", "\r\n\xe9",
	 MIME7_CONVERT,
	 "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"},
	{"a line that is not a header ends the header; its 8-bit octets are body",
	 "Subject: x\r\nno colon here \xe9\r\n",
	 MIME7_CONVERT,
	 "Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "no colon here =E9\r\n"},
	{"no encoded line starts with '-', so none looks like a boundary",
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
	 "-\xe9\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa--b\r\n"
	 "--b--\r\n",
	 MIME7_CONVERT,
	 "Content-Type: multipart/mixed; boundary=b\r\nMIME-Version: 1.0\r\n\r\n--b\r\n"
	 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	 "=2D=E9\r\n"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n"
	 "=2D-b\r\n"
	 "--b--\r\n"},
	{"8-bit in the message header", "Subject: caf\xc3\xa9\r\n\r\nbody\r\n", MIME7_HEADER_8BIT,
	 NULL},
	{"8-bit in a folded header line", "Subject: a\r\n b\xc3\xa9\r\n\r\n\xe9\r\n",
	 MIME7_HEADER_8BIT, NULL},
	{"8-bit in a part header (file name)",
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	 "Content-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\n\r\nx\r\n--b--\r\n",
	 MIME7_HEADER_8BIT, NULL},
	{"8-bit in a base64 part", "Content-Transfer-Encoding: base64\r\n\r\nAA\xe9=\r\n",
	 MIME7_UNSUPPORTED, NULL},
	{"8-bit in an unknown encoding", "Content-Transfer-Encoding: x-uue\r\n\r\n\xe9\r\n",
	 MIME7_UNSUPPORTED, NULL},
	{"8-bit in a preamble",
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n",
	 MIME7_UNSUPPORTED, NULL},
	{"8-bit in an epilogue",
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n\xe9\r\n",
	 MIME7_UNSUPPORTED, NULL},
	{"a 7-bit message with odd structure is left alone",
	 "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nnot a header\r\n--b--\r\n",
	 MIME7_CLEAN, NULL},
};

static void test_cases(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 100000};
	size_t i, s;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		for (s = 0; s < N(steps); s++) {
			struct buf out = BUF_INIT;
			enum mime7_verdict v = run(cases[i].in, strlen(cases[i].in), steps[s], &out);
			if (v != cases[i].verdict)
				fail_msg("%s (step %zu): verdict %d, want %d", cases[i].name, steps[s],
					 (int)v, (int)cases[i].verdict);
			if (cases[i].out != NULL &&
			    (out.len != strlen(cases[i].out) || memcmp(out.data, cases[i].out, out.len)))
				fail_msg("%s (step %zu):\n got: %.*s\nwant: %s", cases[i].name, steps[s],
					 (int)out.len, out.data ? out.data : "", cases[i].out);
			if (v == MIME7_CONVERT)
				assert_7bit_lines(&out);
			buf_free(&out);
		}
	}
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 2045 6.7 decoding of body[0..n) (CRLF lines). */
static void qp_decode(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 3;
		} else if (p[i] == '=' && i + 2 < n && unhex(p[i + 1]) >= 0 && unhex(p[i + 2]) >= 0) {
			buf_putc(out, (char)(unhex(p[i + 1]) * 16 + unhex(p[i + 2])));
			i += 3;
		} else {
			buf_putc(out, p[i++]);
		}
	}
}

/* Long lines (longer than the line buffer), every octet value, white
 * space in every position: decodes to the original, lines <= 76. */
static void test_long_lines_round_trip(void **state)
{
	struct buf in = BUF_INIT, out = BUF_INIT, dec = BUF_INIT, want = BUF_INIT;
	const char *body;
	size_t i, col = 0;

	(void)state;
	buf_puts(&in, "Subject: long\r\n\r\n");
	for (i = 0; i < 3 * MIME7_LINE_MAX + 17; i++)
		buf_putc(&want, (char)(i % 7 == 0 ? ' ' : 0x80 + (i % 100)));
	buf_puts(&want, " \r\n");
	for (i = 1; i < 256; i++)
		if (i != '\r' && i != '\n')
			buf_putc(&want, (char)i);
	buf_puts(&want, "\t\r\n.\r\n");
	buf_append(&in, want.data, want.len);
	assert_int_equal(run(in.data, in.len, 333, &out), MIME7_CONVERT);
	body = strstr(out.data, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	for (i = (size_t)(body - out.data); i < out.len; i++) {
		if (out.data[i] == '\n')
			col = 0;
		else if (out.data[i] != '\r' && ++col > MIME7_QP_LINE)
			fail_msg("encoded line longer than %d at %zu", MIME7_QP_LINE, i);
	}
	qp_decode(body, out.len - (size_t)(body - out.data), &dec);
	assert_int_equal(dec.len, want.len);
	assert_memory_equal(dec.data, want.data, want.len);
	buf_free(&in);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&want);
}

static void test_parsers(void **state)
{
	char b[MIME7_BOUNDARY_MAX];
	size_t n = 0;
	char longv[400];

	(void)state;
	assert_int_equal(mime7_parse_cte(" 8BIT ", 6), CTE_8BIT);
	assert_int_equal(mime7_parse_cte("Quoted-Printable (c)", 20), CTE_QP);
	assert_int_equal(mime7_parse_cte("", 0), CTE_NONE);
	assert_int_equal(mime7_parse_cte("x-uue", 5), CTE_OTHER);
	assert_true(mime7_boundary("multipart/mixed; boundary=abc", 29, b, &n));
	assert_int_equal(n, 3);
	assert_memory_equal(b, "abc", 3);
	assert_true(mime7_boundary("multipart/mixed; name=\"a;b\"; BOUNDARY = \"q\\\"x\"", 46, b, &n));
	assert_int_equal(n, 3);
	assert_memory_equal(b, "q\"x", 3);
	assert_false(mime7_boundary("multipart/mixed", 15, b, &n));
	assert_false(mime7_boundary("multipart/mixed; boundary=\"\"", 28, b, &n));
	memset(longv, 'x', sizeof(longv));
	memcpy(longv, "multipart/mixed; boundary=", 26);
	assert_false(mime7_boundary(longv, sizeof(longv), b, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_lines_round_trip),
		cmocka_unit_test(test_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
