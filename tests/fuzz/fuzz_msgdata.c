/*
 * fuzz_msgdata.c - libFuzzer target for mail/msgdata.c: the input is a
 * message as it arrives after DATA; it is split at LF, each line is
 * classified and its content fed to the header scanner. Checks: END only
 * for the exact octets ". CR LF"; content stays inside the line; a TEXT
 * line survives dot-stuffing and re-classification unchanged; once the
 * scanner is in the body it stays there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/msgdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *line, size_t len, struct hdrscan *h)
{
	const char *out, *back;
	size_t outlen, backlen, n;
	enum dataline_kind k = dataline_classify(line, len, &out, &outlen);
	bool was_body = h->in_body;
	char *wire;

	if (out < line || outlen > len || out + outlen > line + len)
		abort();
	if ((k == DATALINE_END) != (len == 3 && memcmp(line, ".\r\n", 3) == 0))
		abort();
	if (k == DATALINE_TEXT) {
		if (memchr(out, '\r', outlen))
			abort();
		wire = malloc(outlen + 3);
		if (!wire)
			return;
		n = dataline_stuff(out, outlen, wire, outlen + 3);
		if (n < outlen + 2 ||
		    dataline_classify(wire, n, &back, &backlen) != DATALINE_TEXT ||
		    backlen != outlen || memcmp(back, out, outlen) != 0)
			abort();
		free(wire);
	}
	if (hdrscan_line(h, out, outlen) == HDRLINE_BODY && !was_body)
		abort();
	if (was_body && !h->in_body)
		abort();
	if (h->received > h->lines)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct hdrscan h;

	hdrscan_init(&h);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		/* the last fragment has no LF: a contract breach it must survive */
		check_line(p, len, &h);
		p += len;
	}
	return 0;
}
