/*
 * test_msgdata.c - mail/msgdata.c: DATA line classification (end marker,
 * transparency, bare CR / bare LF), the SMTP smuggling stream shapes,
 * dot-stuffing both ways, and the header scanner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/msgdata.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *kind_name(enum dataline_kind k)
{
	switch (k) {
	case DATALINE_TEXT: return "TEXT";
	case DATALINE_END: return "END";
	case DATALINE_BARE_LF: return "BARE_LF";
	case DATALINE_BARE_CR: return "BARE_CR";
	}
	return "?";
}

static void test_classify(void **state)
{
	static const struct {
		const char *line;
		enum dataline_kind kind;
		const char *content;
	} cases[] = {
		{"hello\r\n", DATALINE_TEXT, "hello"},
		{"\r\n", DATALINE_TEXT, ""},
		{".\r\n", DATALINE_END, ""},
		{"..\r\n", DATALINE_TEXT, "."},
		{"...\r\n", DATALINE_TEXT, ".."},
		{"..x\r\n", DATALINE_TEXT, ".x"},
		{".x\r\n", DATALINE_TEXT, "x"},
		{" .\r\n", DATALINE_TEXT, " ."},
		{". \r\n", DATALINE_TEXT, " "},
		{"x.\r\n", DATALINE_TEXT, "x."},
		/* bare LF line ends: never the end marker */
		{".\n", DATALINE_BARE_LF, ""},
		{"\n", DATALINE_BARE_LF, ""},
		{"hello\n", DATALINE_BARE_LF, "hello"},
		{"..\n", DATALINE_BARE_LF, "."},
		/* a CR not followed by LF inside the line */
		{".\r\r\n", DATALINE_BARE_CR, "\r"},
		{"\r\r\n", DATALINE_BARE_CR, "\r"},
		{"a\rb\r\n", DATALINE_BARE_CR, "a\rb"},
		{"\r.\r\n", DATALINE_BARE_CR, "\r."},
		{".\rMAIL FROM:<x@y>\r\n", DATALINE_BARE_CR, "\rMAIL FROM:<x@y>"},
		/* both faults: the line ending is reported first */
		{"a\rb\n", DATALINE_BARE_LF, "a\rb"},
		{".\r\n\n", DATALINE_BARE_LF, "\r\n"}, /* not a real split, still not END */
	};
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		const char *out = NULL;
		size_t outlen = 99;
		enum dataline_kind k =
			dataline_classify(cases[i].line, strlen(cases[i].line), &out, &outlen);
		if (k != cases[i].kind)
			fail_msg("case %zu: %s, want %s", i, kind_name(k), kind_name(cases[i].kind));
		if (k == DATALINE_END) {
			assert_int_equal(outlen, 0);
			continue;
		}
		assert_non_null(out);
		assert_int_equal(outlen, strlen(cases[i].content));
		assert_memory_equal(out, cases[i].content, outlen);
	}
}

static void test_classify_contract_breach(void **state)
{
	const char *out;
	size_t outlen;
	(void)state;
	/* a line without its LF is never TEXT or END */
	assert_int_equal(dataline_classify(".\r", 2, &out, &outlen), DATALINE_BARE_LF);
	assert_int_equal(dataline_classify("abc", 3, &out, &outlen), DATALINE_BARE_LF);
	assert_int_equal(outlen, 3);
	assert_int_equal(dataline_classify("", 0, &out, &outlen), DATALINE_BARE_LF);
	assert_int_equal(outlen, 0);
	/* a NUL in the content is content, and the length is what counts */
	assert_int_equal(dataline_classify("a\0b\r\n", 5, &out, &outlen), DATALINE_TEXT);
	assert_int_equal(outlen, 3);
}

/* Split stream at LF the way the session does and return the kinds, one
 * letter per line: T(ext) E(nd) L (bare LF) C (bare CR). */
static void classify_stream(const char *stream, char *kinds, size_t kindsz)
{
	static const char letter[] = {[DATALINE_TEXT] = 'T', [DATALINE_END] = 'E',
				      [DATALINE_BARE_LF] = 'L', [DATALINE_BARE_CR] = 'C'};
	size_t len = strlen(stream), pos = 0, k = 0;

	while (pos < len && k + 1 < kindsz) {
		const char *nl = memchr(stream + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - stream - pos) + 1 : len - pos;
		const char *out;
		size_t outlen;
		kinds[k++] = letter[dataline_classify(stream + pos, n, &out, &outlen)];
		pos += n;
	}
	kinds[k] = '\0';
}

/* Line index where the data ends under the caller's rule from msgdata.c
 * (an END right after a BARE_LF line is no end); -1 for none. */
static int effective_end(const char *kinds)
{
	int i;

	for (i = 0; kinds[i]; i++)
		if (kinds[i] == 'E' && (i == 0 || kinds[i - 1] != 'L'))
			return i;
	return -1;
}

/* The five smuggling shapes (CVE-2023-51764 and friends): each puts a
 * fake end of data and a second transaction inside one message. The
 * fake marker is always flagged (a bare kind is the first non-TEXT line)
 * and, with the caller's rule, the data ends only at the real CRLF.CRLF,
 * so the smuggled commands stay inside the (refused) message. */
static void test_smuggling_shapes(void **state)
{
	static const struct {
		const char *shape, *kinds;
	} cases[] = {
		{"\n.\n", "TTLLTTTTE"},
		{"\n.\r\n", "TTLETTTTE"},
		{"\r\n.\n", "TTTLTTTTE"},
		{"\r.\r\n", "TTCTTTTE"},
		{"\r\n.\r", "TTTCTTTE"},
		{"\r\n.\r\n", "TTTETTTTE"}, /* the real thing, for contrast */
	};
	char stream[512], kinds[32];
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		const char *first_special;
		snprintf(stream, sizeof(stream),
			 "Subject: x\r\n\r\nbody%sMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n"
			 "DATA\r\nsmuggled\r\n.\r\n",
			 cases[i].shape);
		classify_stream(stream, kinds, sizeof(kinds));
		if (strcmp(kinds, cases[i].kinds) != 0)
			fail_msg("shape %zu: kinds %s, want %s", i, kinds, cases[i].kinds);
		first_special = kinds + strspn(kinds, "T");
		if (i + 1 < N(cases)) {
			assert_true(*first_special == 'L' || *first_special == 'C');
			assert_int_equal(effective_end(kinds), (int)strlen(kinds) - 1);
		} else {
			assert_int_equal(*first_special, 'E');
			assert_int_equal(effective_end(kinds), 3);
		}
	}
}

static void test_stuff(void **state)
{
	static const struct {
		const char *line, *wire;
	} cases[] = {
		{"", "\r\n"},	   {".", "..\r\n"},	{"..", "...\r\n"},
		{".x", "..x\r\n"}, {"x.y", "x.y\r\n"},	{" .", " .\r\n"},
		{"hello", "hello\r\n"},
	};
	char out[32];
	size_t i, n;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		const char *back;
		size_t backlen, len = strlen(cases[i].line);
		n = dataline_stuff(cases[i].line, len, out, sizeof(out));
		assert_int_equal(n, strlen(cases[i].wire));
		assert_memory_equal(out, cases[i].wire, n);
		/* and the receiving side gets the line back, never END */
		assert_int_equal(dataline_classify(out, n, &back, &backlen), DATALINE_TEXT);
		assert_int_equal(backlen, len);
		assert_memory_equal(back, cases[i].line, len);
	}
	/* room: exactly what is needed works, one less does not */
	assert_int_equal(dataline_stuff(".ab", 3, out, 6), 6);
	assert_int_equal(dataline_stuff(".ab", 3, out, 5), 0);
	assert_int_equal(dataline_stuff("ab", 2, out, 4), 4);
	assert_int_equal(dataline_stuff("ab", 2, out, 3), 0);
	assert_int_equal(dataline_stuff("", 0, out, 1), 0);
}

static void feed(struct hdrscan *h, const char *line, enum hdrline_kind want)
{
	enum hdrline_kind k = hdrscan_line(h, line, strlen(line));
	if (k != want)
		fail_msg("line \"%s\": kind %d, want %d", line, k, want);
}

static void test_hdrscan_message(void **state)
{
	struct hdrscan h;
	(void)state;

	hdrscan_init(&h);
	assert_false(h.in_body);
	feed(&h, "Received: from a.test", HDRLINE_FIELD);
	feed(&h, "\tby b.test; Mon, 1 Jan 2024 00:00:00 +0000", HDRLINE_FIELD);
	feed(&h, "received: from c.test", HDRLINE_FIELD);
	feed(&h, "RECEIVED : obsolete space before the colon", HDRLINE_FIELD);
	feed(&h, "Received-SPF: pass", HDRLINE_FIELD);
	feed(&h, "X-Received: by mailer", HDRLINE_FIELD);
	feed(&h, "Message-ID: <1@a.test>", HDRLINE_FIELD);
	feed(&h, "Subject: a subject", HDRLINE_FIELD);
	feed(&h, "  folded over", HDRLINE_FIELD);
	feed(&h, " Date: inside a continuation is not a Date", HDRLINE_FIELD);
	feed(&h, "Empty:", HDRLINE_FIELD);
	assert_int_equal(h.received, 3);
	assert_true(h.has_message_id);
	assert_false(h.has_date);
	assert_false(h.has_from);
	assert_int_equal(h.lines, 11);
	assert_false(h.in_body);
	feed(&h, "", HDRLINE_END);
	assert_true(h.in_body);
	feed(&h, "From: in the body", HDRLINE_BODY);
	feed(&h, "Received: in the body", HDRLINE_BODY);
	feed(&h, "", HDRLINE_BODY);
	assert_int_equal(h.received, 3);
	assert_false(h.has_from);
	assert_int_equal(h.lines, 11);
}

static void test_hdrscan_fields(void **state)
{
	struct hdrscan h;
	(void)state;

	hdrscan_init(&h);
	feed(&h, "DATE: Mon, 1 Jan 2024 00:00:00 +0000", HDRLINE_FIELD);
	feed(&h, "from:a@b.test", HDRLINE_FIELD);
	feed(&h, "Message-Id: <x@y>", HDRLINE_FIELD);
	assert_true(h.has_date);
	assert_true(h.has_from);
	assert_true(h.has_message_id);
	assert_int_equal(h.received, 0);

	hdrscan_init(&h);
	feed(&h, "From-Address: x", HDRLINE_FIELD);
	feed(&h, "Fromx: x", HDRLINE_FIELD);
	feed(&h, "Dat: x", HDRLINE_FIELD);
	feed(&h, "Receive: x", HDRLINE_FIELD);
	assert_false(h.has_from);
	assert_false(h.has_date);
	assert_int_equal(h.received, 0);
}

static void test_hdrscan_no_blank_line(void **state)
{
	static const char *const not_headers[] = {
		"this is body text",
		" folded first line",
		"\tfolded first line",
		":no name",
		"Two words: x",
		"Bad\x01name: x",
		"Caf\xc3\xa9: x",
		"no colon at all",
		">From someone",
	};
	struct hdrscan h;
	size_t i;
	(void)state;

	for (i = 0; i < N(not_headers); i++) {
		hdrscan_init(&h);
		if (not_headers[i][0] != ' ' && not_headers[i][0] != '\t')
			feed(&h, "Subject: x", HDRLINE_FIELD);
		feed(&h, not_headers[i], HDRLINE_NOT_HEADER);
		assert_true(h.in_body);
		/* everything after is body, even what looks like a header */
		feed(&h, "Received: x", HDRLINE_BODY);
		feed(&h, "", HDRLINE_BODY);
		assert_int_equal(h.received, 0);
	}
	/* the length, not a NUL, ends the line */
	hdrscan_init(&h);
	assert_int_equal(hdrscan_line(&h, "Received: x", 8), HDRLINE_NOT_HEADER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_classify_contract_breach),
		cmocka_unit_test(test_smuggling_shapes),
		cmocka_unit_test(test_stuff),
		cmocka_unit_test(test_hdrscan_message),
		cmocka_unit_test(test_hdrscan_fields),
		cmocka_unit_test(test_hdrscan_no_blank_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
