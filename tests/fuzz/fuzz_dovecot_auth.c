/*
 * fuzz_dovecot_auth.c - libFuzzer target for the reply-line parser of
 * dir/dovecot_auth.c (what Dovecot's auth socket sends: VERSION, MECH,
 * DONE, OK / FAIL / CONT with an id and TAB-separated parameters). The
 * input is split at LF like the client does and each line parsed. Checked
 * beyond "no crash": the parsed fields agree with the kind (an id only on
 * OK / FAIL / CONT and at most 9 digits, "temp" only on FAIL, "plain" only
 * on MECH, a major version only on VERSION).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dovecot_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dovecot_line *l, bool ok)
{
	bool idkind = l->kind == DOVECOT_LINE_OK || l->kind == DOVECOT_LINE_FAIL ||
		      l->kind == DOVECOT_LINE_CONT;

	if (!ok && !idkind && l->kind != DOVECOT_LINE_VERSION)
		abort(); /* only those kinds can be malformed */
	if (l->id > 999999999UL || l->major > 999999999UL)
		abort();
	if (!idkind && l->id != 0)
		abort();
	if (l->temp && l->kind != DOVECOT_LINE_FAIL)
		abort();
	if (l->plain && l->kind != DOVECOT_LINE_MECH)
		abort();
	if (l->major != 0 && l->kind != DOVECOT_LINE_VERSION)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	if (size > DOVECOT_LINE_MAX * 2)
		return 0;
	while (p <= end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t len = lf ? (size_t)(lf - p) : (size_t)(end - p);
		struct dovecot_line l;
		/* a copy of exactly the line, so ASan sees any read past it */
		char *line = malloc(len ? len : 1);

		if (line == NULL)
			return 0;
		memcpy(line, p, len);
		check(&l, dovecot_auth_parse_line(line, len, &l));
		free(line);
		if (lf == NULL)
			break;
		p = lf + 1;
	}
	return 0;
}
