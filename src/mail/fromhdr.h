/*
 * fromhdr.h - the addresses of a message's From: field (RFC 5322 3.6.2
 * originator fields, 3.4 address syntax, 4.4 obsolete forms), for
 * sender binding on the header (issue 7; smtp/from_binding.c).
 *
 * Two parts. fromhdr_line() collects the From: field(s) from the header
 * lines of the content as they go by (unfolded, every From: field of the
 * message, bounded at FROMHDR_VALUE_MAX octets: more is "overflow").
 * fromhdr_addresses() splits a field value into its mailboxes: display
 * names (atoms, quoted strings, RFC 2047 encoded words: all skipped),
 * comments (nested, with quoted-pairs), angle-addrs, groups
 * ("Team: a@x, b@y;"), several addresses; each addr-spec is then parsed
 * with addr_parse() (mail/addr.h), so the addresses compare as MAIL FROM
 * ones do. At most FROMHDR_ADDRS_MAX addresses.
 */
#ifndef TRANSIT_MAIL_FROMHDR_H
#define TRANSIT_MAIL_FROMHDR_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/addr.h"

#define FROMHDR_VALUE_MAX 4096
#define FROMHDR_ADDRS_MAX 32

struct fromhdr {
	char value[FROMHDR_VALUE_MAX]; /* the From: values, joined by ',' */
	size_t len;
	unsigned fields;   /* From: fields seen */
	bool in_from;	   /* the field being read is a From: (continuations) */
	bool overflow;	   /* more than FROMHDR_VALUE_MAX octets */
};

/* One header line (a field or a continuation, no CRLF), in order. */
void fromhdr_line(struct fromhdr *f, const char *line, size_t len);

enum fromhdr_status {
	FROMHDR_OK = 0,
	FROMHDR_SYNTAX,	   /* not an address list (why says where) */
	FROMHDR_TOO_MANY,  /* more than max addresses */
};

/* The addresses of value[0..len) into out[0..max), *n of them (formatted
 * by addr_format). An empty list (or an empty group) gives *n = 0. */
enum fromhdr_status fromhdr_addresses(const char *value, size_t len, char (*out)[ADDR_TEXT_MAX],
				      size_t max, size_t *n, const char **why);

#endif
