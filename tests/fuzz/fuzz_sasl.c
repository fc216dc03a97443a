/*
 * fuzz_sasl.c - libFuzzer target for smtp/sasl.c: the input is one AUTH
 * response line (what a client sends after "AUTH PLAIN " or on a 334
 * line). It is given to the base64 decoder, the PLAIN decoder and the
 * LOGIN decoder. Checked beyond "no crash": base64 accepted only in its
 * strict form (re-encoding gives the input back), decoded fields are
 * NUL-terminated, non-empty, within SASL_FIELD_MAX and free of NULs; a
 * refused PLAIN leaves no password behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *f)
{
	size_t n = strnlen(f, SASL_FIELD_MAX);
	if (n == 0 || n >= SASL_FIELD_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	unsigned char out[4096];
	char again[8192], user[SASL_FIELD_MAX], pass[SASL_FIELD_MAX];
	size_t n;
	enum sasl_result r;

	if (size > 4096)
		return 0;
	if (sasl_b64_decode(in, size, out, sizeof(out), &n)) {
		if (n > size || !sasl_b64_encode(out, n, again, sizeof(again)))
			abort();
		if (strlen(again) != size || memcmp(again, in, size) != 0)
			abort(); /* only the canonical form is accepted */
	}
	r = sasl_plain_decode(in, size, user, pass);
	if (r == SASL_OK) {
		check_field(user);
		check_field(pass);
	} else if (pass[0] != '\0') {
		abort();
	}
	if (r == SASL_BAD_AUTHZID)
		check_field(user);
	if (sasl_login_decode(in, size, user) == SASL_OK)
		check_field(user);
	(void)sasl_is_cancel(in, size);
	return 0;
}
