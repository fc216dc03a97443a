/*
 * fuzz_mime7bit.c - libFuzzer target for mail/mime7bit.c: the input is a
 * message content. It is scanned and, when the verdict is MIME7_CONVERT,
 * converted twice, fed whole and in pieces whose size comes from the
 * first octet. Checks: a converted message has no 8-bit octet and no bare
 * LF; the output does not depend on how the input was cut; a second scan
 * gives the same verdict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime7bit.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum mime7_verdict pass(struct mime7 *m, const char *p, size_t n, size_t step,
			       struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i += step)
		mime7_feed(m, p + i, n - i < step ? n - i : step, out);
	return mime7_end(m, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mime7 m;
	struct buf a = BUF_INIT, b = BUF_INIT;
	const char *p = (const char *)data + 1;
	size_t n, step, i;
	enum mime7_verdict v;

	if (size < 1)
		return 0;
	n = size - 1;
	step = (size_t)data[0] % 17 + 1;
	mime7_init(&m);
	v = pass(&m, p, n, n > 0 ? n : 1, NULL);
	mime7_init(&m);
	if (pass(&m, p, n, step, NULL) != v)
		abort();
	if (v != MIME7_CONVERT)
		return 0;
	mime7_start_convert(&m);
	pass(&m, p, n, step, &a);
	mime7_init(&m);
	pass(&m, p, n, n > 0 ? n : 1, NULL);
	mime7_start_convert(&m);
	pass(&m, p, n, n > 0 ? n : 1, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	for (i = 0; i < a.len; i++) {
		if ((unsigned char)a.data[i] >= 0x80)
			abort();
		if (a.data[i] == '\n' && (i == 0 || a.data[i - 1] != '\r'))
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
