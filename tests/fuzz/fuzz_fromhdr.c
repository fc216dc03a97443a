/*
 * fuzz_fromhdr.c - libFuzzer target for mail/fromhdr.c, the From: field
 * collector and address-list scanner (sender-binding-header). The input
 * is header lines separated by LF. Beyond "no crash, no UB":
 *  - the collected value never exceeds FROMHDR_VALUE_MAX - 1 octets;
 *  - at most FROMHDR_ADDRS_MAX addresses come out, each a valid
 *    local@domain that addr_parse() takes back;
 *  - an error always comes with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/fromhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fromhdr f;
	static char out[FROMHDR_ADDRS_MAX][ADDR_TEXT_MAX];
	const char *p = (const char *)data, *end = p + size, *why;
	size_t n = 0;
	enum fromhdr_status st;

	memset(&f, 0, sizeof(f));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		fromhdr_line(&f, p, len);
		p += len + (nl ? 1 : 0);
	}
	if (f.len >= FROMHDR_VALUE_MAX || strlen(f.value) > f.len)
		abort();
	st = fromhdr_addresses(f.value, f.len, out, FROMHDR_ADDRS_MAX, &n, &why);
	if (n > FROMHDR_ADDRS_MAX || (st != FROMHDR_OK && why == NULL))
		abort();
	for (size_t i = 0; st == FROMHDR_OK && i < n; i++) {
		struct mail_addr a;
		size_t len = strnlen(out[i], ADDR_TEXT_MAX);
		if (len == ADDR_TEXT_MAX || addr_parse(out[i], len, false, &a, &why) != ADDR_OK ||
		    (a.flags & ADDR_F_NO_DOMAIN))
			abort();
	}
	return 0;
}
