/*
 * str.h - small string helpers with no mail knowledge: bounded copy
 * (strlcpy semantics, glibc 2.36 has none), ASCII case folding (never
 * locale dependent), and the parsers for sizes ("25M") and durations
 * ("5m") used by the configuration.
 */
#ifndef TRANSIT_UTIL_STR_H
#define TRANSIT_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst (size dstsz, always terminated). Returns true when
 * the whole of src fitted, false when it was truncated. */
bool str_copy(char *dst, const char *src, size_t dstsz);

char ascii_lower(char c);
void str_lower(char *s);				 /* ASCII only, in place */
int str_casecmp(const char *a, const char *b);		 /* ASCII only */
int str_ncasecmp(const char *a, const char *b, size_t n); /* ASCII only */
bool str_has_prefix_ci(const char *s, const char *prefix);
/* true when s ends with suffix, ASCII case-insensitively */
bool str_has_suffix_ci(const char *s, const char *suffix);

/* printf into an error buffer err[errsz] (nothing when err is NULL or
 * errsz is 0): the "char *err, size_t errsz" convention of transit's APIs. */
void str_errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Length of the well-formed UTF-8 sequence at p[0..n): 1 for an ASCII
 * byte, 2..4 for a multi-byte one, 0 when it is not well-formed (RFC 3629
 * 4: no overlongs, no surrogates, nothing past U+10FFFF, none cut off). */
size_t utf8_seq_len(const unsigned char *p, size_t n);

/* "25M", "100K", "1G", "123" (bytes; K/M/G are powers of 1024).
 * Returns false on syntax error or overflow. */
bool parse_size(const char *s, uint64_t *out);
/* "30s", "5m", "4h", "2d", "1w", "90" (seconds). false on error. */
bool parse_duration(const char *s, uint64_t *seconds);

#endif
