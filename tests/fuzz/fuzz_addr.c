/*
 * fuzz_addr.c - libFuzzer target for mail/addr.c: addr_parse() on the raw
 * input (with and without the null path allowed), and for every accepted
 * address the round trip addr_format() -> addr_parse() must give the same
 * mailbox; xtext_encode() -> xtext_decode() must give the input back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Invariants of an accepted address; abort() makes libFuzzer report. */
static void check_accepted(const struct mail_addr *a)
{
	struct mail_addr again;
	char text[ADDR_TEXT_MAX];
	unsigned char ip[16];
	const char *why;
	int family;
	unsigned keep = ADDR_F_UTF8 | ADDR_F_LITERAL | ADDR_F_ROUTING | ADDR_F_NO_DOMAIN;

	if (memchr(a->local, '\0', sizeof(a->local)) == NULL ||
	    memchr(a->domain, '\0', sizeof(a->domain)) == NULL)
		abort();
	if (!(a->flags & ADDR_F_NULL) && a->local[0] == '\0')
		abort();
	if ((a->flags & ADDR_F_LITERAL) && !addr_literal_ip(a->domain, &family, ip))
		abort();
	if (!addr_format(a, text, sizeof(text)))
		abort(); /* ADDR_TEXT_MAX must hold any valid address */
	if (addr_parse(text, strlen(text), true, &again, &why) != ADDR_OK)
		abort();
	if (strcmp(again.local, a->local) != 0 || strcmp(again.domain, a->domain) != 0 ||
	    (again.flags & keep) != (a->flags & keep))
		abort();
}

static void check_xtext(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *enc;
	size_t encsz = 3 * size + 1;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	enc = malloc(encsz);
	if (enc) {
		if (!xtext_encode(s, enc, encsz))
			abort();
		if (!xtext_decode(enc) || strcmp(enc, s) != 0)
			abort();
		free(enc);
	}
	xtext_decode(s); /* arbitrary input: must only say yes or no */
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_addr a;
	const char *why = NULL;

	if (size > 4096)
		return 0;
	if (addr_parse((const char *)data, size, true, &a, &why) == ADDR_OK)
		check_accepted(&a);
	if (!why)
		abort();
	if (addr_parse((const char *)data, size, false, &a, &why) == ADDR_OK) {
		if (a.flags & ADDR_F_NULL)
			abort();
		check_accepted(&a);
	}
	check_xtext(data, size);
	return 0;
}
