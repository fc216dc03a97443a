/*
 * addr.h - mail addresses as they appear in SMTP paths (RFC 5321 4.1.2,
 * 4.1.3; RFC 6531 3.3 for UTF-8; RFC 3461 4.2 for xtext used by ORCPT).
 *
 * addr_parse() takes what stood between the angle brackets of a path
 * (or the bare token for tolerant "MAIL FROM:alice@example.test") and
 * fills a struct mail_addr with the *semantic* local part (quotes
 * removed, quoted-pairs resolved) and the domain (lower-cased ASCII,
 * or an address literal like "[192.0.2.1]" / "[IPv6:2001:db8::1]").
 *
 * It is strict about syntax and honest about tricks: instead of failing
 * on routing characters in the local part it parses them and raises
 * ADDR_F_ROUTING so policy can answer 550 5.7.1 (relay attempt) rather
 * than 501 (syntax). Source routes "@a,@b:user@d" are accepted and
 * dropped (RFC 5321 4.1.2 / C), flagged ADDR_F_SOURCE_ROUTE.
 */
#ifndef TRANSIT_MAIL_ADDR_H
#define TRANSIT_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 256  /* bytes incl. NUL; RFC 5321 4.5.3.1.1 says 64 octets, UTF-8 needs more */
#define ADDR_DOMAIN_MAX 256 /* bytes incl. NUL; RFC 5321 4.5.3.1.2: 255 octets */
#define ADDR_TEXT_MAX 600   /* room for addr_format() output of any valid address */

enum {
	ADDR_F_NULL = 1 << 0,	      /* the null path <> (only valid for MAIL FROM) */
	ADDR_F_QUOTED = 1 << 1,	      /* local part was a quoted-string */
	ADDR_F_UTF8 = 1 << 2,	      /* contains non-ASCII (needs SMTPUTF8) */
	ADDR_F_LITERAL = 1 << 3,      /* domain is an address literal [..] */
	ADDR_F_ROUTING = 1 << 4,      /* local part contains '@', '%' or '!' */
	ADDR_F_SOURCE_ROUTE = 1 << 5, /* an "@a,@b:" source route was dropped */
	ADDR_F_NO_DOMAIN = 1 << 6,    /* bare local part, e.g. <postmaster> */
};

struct mail_addr {
	char local[ADDR_LOCAL_MAX];   /* semantic local part, unquoted */
	char domain[ADDR_DOMAIN_MAX]; /* lower-case; "" for NULL / NO_DOMAIN */
	unsigned flags;
};

enum addr_status {
	ADDR_OK = 0,
	ADDR_ESYNTAX,	/* not an address: 501 5.1.3 (5.1.7 for a sender) */
	ADDR_ETOOLONG,	/* local part or domain over the limits: 501 5.1.3 */
};

/* Parse s[0..len) (no angle brackets). allow_null: accept "" as the
 * null path (MAIL FROM:<>). On error *why is a static, human-readable
 * reason suitable for the text of an SMTP reply. */
enum addr_status addr_parse(const char *s, size_t len, bool allow_null, struct mail_addr *out,
			    const char **why);

/* Render as an RFC 5321 path body (no brackets), quoting the local part
 * when it is not a valid dot-string. "" for the null path. Returns false
 * if out was too small (the result is then truncated). */
bool addr_format(const struct mail_addr *a, char *out, size_t outsz);

/* true when the domain is a syntactically valid address literal; fills
 * the binary address (struct in_addr / in6_addr) and family. */
bool addr_literal_ip(const char *domain, int *family, void *ip16);

/* xtext (RFC 3461 4) decode in place; false on malformed "+XX". */
bool xtext_decode(char *s);
/* xtext encode s into out; false if it did not fit. */
bool xtext_encode(const char *s, char *out, size_t outsz);

#endif
