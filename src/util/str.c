/* str.c - see str.h. */
#include "util/str.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool str_copy(char *dst, const char *src, size_t dstsz)
{
	size_t n = strlen(src);

	if (dstsz == 0)
		return false;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

void str_lower(char *s)
{
	for (; *s; s++)
		*s = ascii_lower(*s);
}

int str_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = ascii_lower(*a), y = ascii_lower(*b);
		if (x != y || x == '\0')
			return (unsigned char)x - (unsigned char)y;
	}
}

int str_ncasecmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		char x = ascii_lower(*a), y = ascii_lower(*b);
		if (x != y || x == '\0')
			return (unsigned char)x - (unsigned char)y;
	}
	return 0;
}

bool str_has_prefix_ci(const char *s, const char *prefix)
{
	return str_ncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix_ci(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && str_casecmp(s + ls - lx, suffix) == 0;
}

static bool parse_scaled(const char *s, const char *units, const uint64_t *mult, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	const char *u;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '\0') {
		*out = v;
		return true;
	}
	if (p[1] != '\0' || (u = strchr(units, ascii_lower(*p))) == NULL)
		return false;
	if (v != 0 && mult[u - units] > UINT64_MAX / v)
		return false;
	*out = v * mult[u - units];
	return true;
}

bool parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = {1, 1024, 1024 * 1024, 1024ULL * 1024 * 1024};
	return parse_scaled(s, "bkmg", mult, out);
}

bool parse_duration(const char *s, uint64_t *seconds)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400, 604800};
	return parse_scaled(s, "smhdw", mult, seconds);
}

size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c, lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xE0)
		lo = 0xA0; /* overlong */
	else if (c == 0xED)
		hi = 0x9F; /* surrogates */
	else if (c == 0xF0)
		lo = 0x90; /* overlong */
	else if (c == 0xF4)
		hi = 0x8F; /* past U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

void str_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}
