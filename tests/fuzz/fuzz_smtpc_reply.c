/*
 * fuzz_smtpc_reply.c - libFuzzer target for the SMTP client's reply and
 * EHLO parsers (src/deliver/smtp_client.c: smtpc_parse_line,
 * smtpc_enh_len, smtpc_ext_line; RFC 5321 4.2, RFC 3463, RFC 5321
 * 4.1.1.1). The input is what a peer sends: it is cut into lines the way
 * the client's reader cuts it (LF or CRLF, lines over SMTPC_LINE_MAX
 * dropped, control characters shown as '?'), each line is parsed and the
 * text of every 2xx line after the first of a reply is taken as an EHLO
 * extension line. Checks against a plain re-reading of RFC 5321 4.2:
 *  - a line is accepted exactly when it starts with a code 200..559 and
 *    then ends, or goes on with ' ' (last line) or '-' (more follow);
 *  - the text pointer stays inside the line;
 *  - the enhanced code length is exactly the "c.sss.ddd" prefix (class
 *    equal to the reply's, 1-3 digits each) plus one space, or 0;
 *  - an extension line with a keyword the client does not know leaves the
 *    extension set unchanged, a known one sets its flag; SIZE reads the
 *    decimal value or 0 when it is absurd.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_client_int.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool digit(char c) { return c >= '0' && c <= '9'; }

static size_t oracle_enh_len(const char *t, int code)
{
	size_t i = 0, k;

	if (t[0] != (char)('0' + code / 100) || t[1] != '.')
		return 0;
	i = 2;
	for (k = 0; k < 3 && digit(t[i]); k++, i++)
		;
	if (k == 0 || t[i] != '.')
		return 0;
	i++;
	for (k = 0; k < 3 && digit(t[i]); k++, i++)
		;
	if (k == 0)
		return 0;
	if (t[i] == ' ')
		return i + 1;
	return t[i] == '\0' ? i : 0;
}

/* SIZE parameter as RFC 1870 reads it; 0 for "none" or an absurd value. */
static uint64_t oracle_size(const char *p)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; digit(p[i]); i++) {
		if (i >= 20 || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return (p[i] == '\0' || p[i] == ' ') ? v : 0;
}

static void check_ext(struct smtpc_ext *x, const char *t)
{
	static const char *const known[] = {"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN",
					    "STARTTLS", "CHUNKING", "ENHANCEDSTATUSCODES",
					    "SIZE", "AUTH"};
	struct smtpc_ext before = *x;
	char kw[64];
	size_t n = strcspn(t, " =");
	const char *p = t + n;
	bool is_known = false;

	smtpc_ext_line(x, t);
	if (n >= sizeof(kw)) {
		if (memcmp(&before, x, sizeof(before)) != 0)
			abort();
		return;
	}
	memcpy(kw, t, n);
	kw[n] = '\0';
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		is_known = is_known || str_casecmp(kw, known[i]) == 0;
	if (!is_known) {
		if (memcmp(&before, x, sizeof(before)) != 0)
			abort();
		return;
	}
	while (*p == ' ' || *p == '=')
		p++;
	if (str_casecmp(kw, "PIPELINING") == 0 && !x->pipelining)
		abort();
	if (str_casecmp(kw, "STARTTLS") == 0 && !x->starttls)
		abort();
	if (str_casecmp(kw, "SIZE") == 0 && (!x->has_size || x->size != oracle_size(p)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *end = in + size;
	char line[SMTPC_LINE_MAX + 1];
	struct smtpc_ext ext;
	unsigned lines_in_reply = 0;

	memset(&ext, 0, sizeof(ext));
	while (in < end) {
		const char *nl = memchr(in, '\n', (size_t)(end - in));
		size_t n;
		int code = 0;
		bool last = false, expect;
		const char *text = NULL;

		if (!nl)
			break; /* the reader waits for the rest */
		n = (size_t)(nl - in);
		if (n > 0 && in[n - 1] == '\r')
			n--;
		if (n > SMTPC_LINE_MAX) {
			in = nl + 1;
			continue;
		}
		memcpy(line, in, n);
		line[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				line[i] = '?';
		in = nl + 1;

		expect = n >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
			 line[1] <= '5' && digit(line[2]) && (n == 3 || line[3] == ' ' || line[3] == '-');
		if (smtpc_parse_line(line, n, &code, &last, &text) != expect)
			abort();
		if (!expect) {
			lines_in_reply = 0;
			continue;
		}
		if (code != (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') ||
		    code < 200 || code > 559)
			abort();
		if (text != line + (n == 3 ? 3 : 4) || last != (n == 3 || line[3] == ' '))
			abort();
		if (smtpc_enh_len(text, code) != oracle_enh_len(text, code))
			abort();
		if (lines_in_reply++ > 0 && code / 100 == 2)
			check_ext(&ext, text);
		if (last)
			lines_in_reply = 0;
	}
	return 0;
}
