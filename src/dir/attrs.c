/*
 * attrs.c - per-address attributes in text form (see attrs.h).
 */
#include "dir/attrs.h"

#include <stdio.h>
#include <string.h>

/* Does word[0..len) name key (with '_' or '-' between its words)? */
static bool key_is(const char *word, size_t len, const char *key)
{
	size_t i;

	if (len != strlen(key))
		return false;
	for (i = 0; i < len; i++) {
		char w = word[i] == '-' ? '_' : word[i];
		if (w != key[i])
			return false;
	}
	return true;
}

bool dir_attrs_parse(const char *text, size_t len, bool only_ours, struct dir_attrs *a, char *why,
		     size_t whysz)
{
	size_t i = 0;
	bool ok = true;

	while (i < len) {
		size_t start, klen, vlen;
		const char *eq, *val;

		while (i < len && (text[i] == ' ' || text[i] == '\t'))
			i++;
		start = i;
		while (i < len && text[i] != ' ' && text[i] != '\t')
			i++;
		if (i == start)
			break;
		eq = memchr(text + start, '=', i - start);
		klen = eq ? (size_t)(eq - (text + start)) : i - start;
		if (!key_is(text + start, klen, "accept_from")) {
			if (only_ours) {
				snprintf(why, whysz, "unknown option \"%.*s\"",
					 (int)(i - start > 64 ? 64 : i - start), text + start);
				ok = false;
			}
			continue;
		}
		val = eq ? eq + 1 : text + i;
		vlen = (size_t)(text + i - val);
		if (vlen == 13 && memcmp(val, "authenticated", 13) == 0) {
			a->accept_from_authenticated = true;
		} else if (vlen == 6 && memcmp(val, "anyone", 6) == 0) {
			a->accept_from_authenticated = false;
		} else {
			snprintf(why, whysz,
				 "accept_from=%.*s is not \"authenticated\" or \"anyone\"",
				 (int)(vlen > 64 ? 64 : vlen), val);
			a->accept_from_authenticated = true;
			ok = false;
		}
	}
	return ok;
}

const char *dir_attrs_text(const struct dir_attrs *a)
{
	return a->accept_from_authenticated ? "accept_from=authenticated" : "";
}
