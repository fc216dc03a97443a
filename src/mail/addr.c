/*
 * addr.c - parse, check and render mail addresses as they appear in SMTP
 * paths. Contract in addr.h.
 *
 * Standards:
 *   RFC 5321 4.1.2  Path, Mailbox, Local-part (Dot-string / Quoted-string),
 *                   Domain, address-literal; 4.1.3 IPv4/IPv6 literals;
 *                   4.5.3.1.1 / 4.5.3.1.2 length limits; Appendix C source
 *                   routes (accepted, dropped, flagged).
 *   RFC 6531 3.3    UTF-8 in local parts and domains (well-formed UTF-8
 *                   per RFC 3629 only: no overlongs, surrogates, > U+10FFFF).
 *   RFC 3461 4      xtext encoding (ORCPT, ENVID, AUTH=).
 *
 * Choices worth knowing:
 * - The domain separator is the LAST '@' outside a quoted string, so
 *   "user@other@local" is local "user@other" at "local" with
 *   ADDR_F_ROUTING: policy answers "relay denied" instead of a syntax
 *   error. '%' and '!' (legal atext) also raise ADDR_F_ROUTING, in a
 *   dot-string or inside quotes. In a dot-string, '@' works like '.': the
 *   pieces between separators must be non-empty ("a@@b" is an error).
 * - Limits apply to the local part as addr_format() renders it (quoted
 *   only when it is not a dot-string): 64 octets, or 255 when it holds
 *   UTF-8. So every accepted address can be written to the queue or to the
 *   next hop and parsed again (the fuzzer checks this round trip). An
 *   unquoted "63 octets with '@'" is too long (it renders with quotes); a
 *   needlessly quoted "\"x\"" counts as x. The domain may have 255
 *   octets, each label 1..63.
 * - An empty quoted local part ""@d is refused: an empty local part is
 *   how the null path is stored and nothing legitimate needs it.
 * - Address literals are stored canonically ("[192.0.2.1]",
 *   "[IPv6:2001:db8::1]" from inet_ntop) so equal addresses compare equal;
 *   general (tagged) literals other than IPv6 are refused.
 * - Domains are lower-cased (ASCII only; U-labels are kept as sent).
 */
#include "mail/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

#define LOCAL_MAX_ASCII 64
#define LOCAL_MAX_UTF8 (ADDR_LOCAL_MAX - 1)
#define DOMAIN_MAX (ADDR_DOMAIN_MAX - 1)
#define LABEL_MAX 63

/* --- character classes ------------------------------------------------ */

static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* RFC 5322 3.2.3 atext (ASCII part). */
static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_routing_char(unsigned char c) { return c == '@' || c == '%' || c == '!'; }

/* --- domains ------------------------------------------------------------ */

/* One label: letters, digits, hyphen (not first or last), or well-formed
 * UTF-8 (U-label); 1..63 octets. Sets *utf8 when non-ASCII was seen. */
static bool label_valid(const unsigned char *p, size_t n, bool *utf8)
{
	size_t i = 0, k;

	if (n == 0 || n > LABEL_MAX || p[0] == '-' || p[n - 1] == '-')
		return false;
	while (i < n) {
		if (p[i] >= 0x80) {
			if ((k = utf8_seq_len(p + i, n - i)) == 0)
				return false;
			*utf8 = true;
			i += k;
		} else if (is_alpha(p[i]) || is_digit(p[i]) || p[i] == '-') {
			i++;
		} else {
			return false;
		}
	}
	return true;
}

static bool hostname_valid(const char *s, size_t n, bool *utf8)
{
	size_t start = 0, i;

	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!label_valid((const unsigned char *)s + start, i - start, utf8))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* Parse the inside of "[...]" (n octets at s) into family/ip. */
static bool literal_parse(const char *s, size_t n, int *family, void *ip16)
{
	char tmp[INET6_ADDRSTRLEN + 8];

	if (n >= 5 && str_ncasecmp(s, "IPv6:", 5) == 0) {
		if (n - 5 >= sizeof(tmp) || memchr(s, '\0', n))
			return false;
		memcpy(tmp, s + 5, n - 5);
		tmp[n - 5] = '\0';
		*family = AF_INET6;
		return inet_pton(AF_INET6, tmp, ip16) == 1;
	}
	if (n >= sizeof(tmp) || memchr(s, '\0', n))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*family = AF_INET;
	return inet_pton(AF_INET, tmp, ip16) == 1;
}

bool addr_literal_ip(const char *domain, int *family, void *ip16)
{
	size_t n = strlen(domain);

	if (n < 2 || domain[0] != '[' || domain[n - 1] != ']')
		return false;
	return literal_parse(domain + 1, n - 2, family, ip16);
}

/* Canonical text of a literal into out (ADDR_DOMAIN_MAX). */
static bool literal_canonical(const char *s, size_t n, char *out)
{
	unsigned char ip[16];
	char text[INET6_ADDRSTRLEN];
	int family;

	if (!literal_parse(s, n, &family, ip) || !inet_ntop(family, ip, text, sizeof(text)))
		return false;
	snprintf(out, ADDR_DOMAIN_MAX, "[%s%s]", family == AF_INET6 ? "IPv6:" : "", text);
	return true;
}

/* Validate and store a domain (hostname or literal). */
static enum addr_status domain_parse(const char *s, size_t n, struct mail_addr *out,
				     const char **why)
{
	bool utf8 = false;

	if (n == 0) {
		*why = "empty domain";
		return ADDR_ESYNTAX;
	}
	if (s[0] == '[') {
		if (n < 2 || s[n - 1] != ']' || !literal_canonical(s + 1, n - 2, out->domain)) {
			*why = "invalid address literal";
			return ADDR_ESYNTAX;
		}
		out->flags |= ADDR_F_LITERAL;
		return ADDR_OK;
	}
	if (n > DOMAIN_MAX) {
		*why = "domain too long";
		return ADDR_ETOOLONG;
	}
	if (!hostname_valid(s, n, &utf8)) {
		*why = "invalid domain name";
		return ADDR_ESYNTAX;
	}
	memcpy(out->domain, s, n);
	out->domain[n] = '\0';
	str_lower(out->domain);
	if (utf8)
		out->flags |= ADDR_F_UTF8;
	return ADDR_OK;
}

/* --- source route "@a,@b:" ---------------------------------------------- */

/* End of one source-route hop domain starting at s[i]: the offset of the
 * ',' or ':' after it (a literal may itself contain ':'), or n. */
static size_t hop_end(const char *s, size_t n, size_t i)
{
	if (i < n && s[i] == '[') {
		while (i < n && s[i] != ']')
			i++;
		if (i < n)
			i++;
		return i;
	}
	while (i < n && s[i] != ',' && s[i] != ':')
		i++;
	return i;
}

/* s[0] == '@'. Validates each hop domain; returns the offset just after
 * ':' or 0 on error. */
static size_t source_route_skip(const char *s, size_t n)
{
	struct mail_addr scratch;
	const char *why;
	size_t i = 0, start;

	for (;;) {
		if (i >= n || s[i] != '@')
			return 0;
		start = ++i;
		i = hop_end(s, n, i);
		if (i >= n || (s[i] != ',' && s[i] != ':'))
			return 0;
		scratch.flags = 0;
		if (domain_parse(s + start, i - start, &scratch, &why) != ADDR_OK)
			return 0;
		if (s[i++] == ':')
			return i;
	}
}

/* --- local part ------------------------------------------------------------ */

/* true when local can be written without quotes (RFC 5321 Dot-string,
 * UTF-8 allowed). */
static bool local_is_dotstring(const char *local)
{
	const unsigned char *p = (const unsigned char *)local;
	bool prev_dot = true;

	if (*p == '\0')
		return false;
	for (; *p; p++) {
		if (*p == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
			continue;
		}
		if (*p < 0x80 && !is_atext(*p))
			return false;
		prev_dot = false;
	}
	return !prev_dot;
}

/* Octets addr_format() writes for a local part: the canonical form,
 * quoted (with '"' and '\\' escaped) only when it is not a dot-string. */
static size_t local_rendered_len(const char *local)
{
	size_t n = strlen(local), i, extra = 2;

	if (local_is_dotstring(local))
		return n;
	for (i = 0; i < n; i++)
		if (local[i] == '"' || local[i] == '\\')
			extra++;
	return n + extra;
}

/* Length of the quoted-string at s[0] == '"' including both quotes, or 0
 * when it is not closed. Only finds the end; quoted_parse() checks. */
static size_t quoted_len(const char *s, size_t n)
{
	size_t i = 1;

	while (i < n && s[i] != '"')
		i += (s[i] == '\\') ? 2 : 1;
	return i < n ? i + 1 : 0;
}

/* Quoted-string s[0..n) (both quotes included). Copies the semantic
 * content into out->local. RFC 5321 qtextSMTP / quoted-pairSMTP, plus
 * UTF-8. */
static enum addr_status quoted_parse(const char *s, size_t n, struct mail_addr *out)
{
	const unsigned char *p = (const unsigned char *)s, *c;
	size_t i = 1, o = 0, k, adv;

	n--; /* the closing quote */
	while (i < n) {
		if (p[i] == '\\') { /* quoted-pairSMTP: backslash, then %d32-126 */
			if (i + 1 >= n || p[i + 1] < 32 || p[i + 1] > 126)
				return ADDR_ESYNTAX;
			c = p + i + 1;
			k = 1;
			adv = 2;
		} else if (p[i] >= 0x80) {
			if ((k = utf8_seq_len(p + i, n - i)) == 0)
				return ADDR_ESYNTAX;
			out->flags |= ADDR_F_UTF8;
			c = p + i;
			adv = k;
		} else if (p[i] >= 32 && p[i] <= 126) {
			c = p + i;
			k = adv = 1;
		} else {
			return ADDR_ESYNTAX;
		}
		if (o + k > LOCAL_MAX_UTF8)
			return ADDR_ETOOLONG;
		memcpy(out->local + o, c, k);
		o += k;
		i += adv;
	}
	out->local[o] = '\0';
	for (k = 0; k < o; k++)
		if (is_routing_char((unsigned char)out->local[k]))
			out->flags |= ADDR_F_ROUTING;
	out->flags |= ADDR_F_QUOTED;
	return ADDR_OK;
}

/* Dot-string s[0..n) where '@' also separates pieces (routing). */
static bool dotstring_parse(const char *s, size_t n, struct mail_addr *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, piece = 0, k;

	if (n == 0 || n >= ADDR_LOCAL_MAX)
		return false;
	while (i < n) {
		if (p[i] == '.' || p[i] == '@') {
			if (piece == 0)
				return false;
			if (p[i] == '@')
				out->flags |= ADDR_F_ROUTING;
			piece = 0;
			i++;
			continue;
		}
		if (p[i] >= 0x80) {
			if ((k = utf8_seq_len(p + i, n - i)) == 0)
				return false;
			out->flags |= ADDR_F_UTF8;
		} else if (is_atext(p[i])) {
			k = 1;
			if (is_routing_char(p[i]))
				out->flags |= ADDR_F_ROUTING;
		} else {
			return false;
		}
		i += k;
		piece += k;
	}
	if (piece == 0)
		return false;
	memcpy(out->local, s, n);
	out->local[n] = '\0';
	return true;
}

/* The limit applies to the canonical rendering so that every accepted
 * address can be written out (queue, next hop) and parsed again. */
static bool local_too_long(const struct mail_addr *a)
{
	return local_rendered_len(a->local) >
	       ((a->flags & ADDR_F_UTF8) ? LOCAL_MAX_UTF8 : LOCAL_MAX_ASCII);
}

/* Offset of the '@' that separates local part and domain in an unquoted
 * mailbox (the last one), or n when there is none. */
static size_t last_at(const char *s, size_t n)
{
	size_t i = n;

	while (i > 0)
		if (s[--i] == '@')
			return i;
	return n;
}

/* Mailbox or bare local part at s[0..n), after any source route. */
static enum addr_status mailbox_parse(const char *s, size_t n, struct mail_addr *out,
				      const char **why)
{
	enum addr_status st;
	size_t local_len;

	*why = "invalid local part";
	if (n > 0 && s[0] == '"') {
		if ((local_len = quoted_len(s, n)) == 0)
			return ADDR_ESYNTAX;
		if ((st = quoted_parse(s, local_len, out)) != ADDR_OK) {
			if (st == ADDR_ETOOLONG)
				*why = "local part too long";
			return st;
		}
		if (out->local[0] == '\0') {
			*why = "empty local part";
			return ADDR_ESYNTAX;
		}
		if (local_len < n && s[local_len] != '@')
			return ADDR_ESYNTAX;
	} else {
		local_len = last_at(s, n);
		if (local_len == 0) {
			*why = "empty local part";
			return ADDR_ESYNTAX;
		}
		if (local_len > LOCAL_MAX_UTF8) {
			*why = "local part too long";
			return ADDR_ETOOLONG;
		}
		if (!dotstring_parse(s, local_len, out))
			return ADDR_ESYNTAX;
	}
	if (local_too_long(out)) {
		*why = "local part too long";
		return ADDR_ETOOLONG;
	}
	if (local_len == n) {
		out->flags |= ADDR_F_NO_DOMAIN;
		return ADDR_OK;
	}
	return domain_parse(s + local_len + 1, n - local_len - 1, out, why);
}

enum addr_status addr_parse(const char *s, size_t len, bool allow_null, struct mail_addr *out,
			    const char **why)
{
	enum addr_status st;
	size_t skip = 0;
	const char *reason = "ok";

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		if (allow_null) {
			out->flags = ADDR_F_NULL;
			*why = reason;
			return ADDR_OK;
		}
		*why = "null address not allowed here";
		return ADDR_ESYNTAX;
	}
	if (s[0] == '@') {
		if ((skip = source_route_skip(s, len)) == 0) {
			*why = "invalid source route";
			return ADDR_ESYNTAX;
		}
		out->flags |= ADDR_F_SOURCE_ROUTE;
	}
	st = mailbox_parse(s + skip, len - skip, out, &reason);
	*why = reason;
	if (st != ADDR_OK) {
		memset(out, 0, sizeof(*out));
		return st;
	}
	if (skip > 0 && (out->flags & ADDR_F_NO_DOMAIN)) {
		memset(out, 0, sizeof(*out));
		*why = "source route without a domain";
		return ADDR_ESYNTAX;
	}
	return ADDR_OK;
}

/* --- rendering ----------------------------------------------------------- */

struct sink {
	char *out;
	size_t size, len;
	bool ok;
};

static void sink_putc(struct sink *k, char c)
{
	if (k->len + 1 < k->size)
		k->out[k->len++] = c;
	else
		k->ok = false;
}

static void sink_puts(struct sink *k, const char *s)
{
	for (; *s; s++)
		sink_putc(k, *s);
}

bool addr_format(const struct mail_addr *a, char *out, size_t outsz)
{
	struct sink k = {out, outsz, 0, true};
	const char *p;

	if (outsz == 0)
		return false;
	if (!(a->flags & ADDR_F_NULL)) {
		if (local_is_dotstring(a->local)) {
			sink_puts(&k, a->local);
		} else {
			sink_putc(&k, '"');
			for (p = a->local; *p; p++) {
				if (*p == '"' || *p == '\\')
					sink_putc(&k, '\\');
				sink_putc(&k, *p);
			}
			sink_putc(&k, '"');
		}
		if (!(a->flags & ADDR_F_NO_DOMAIN)) {
			sink_putc(&k, '@');
			sink_puts(&k, a->domain);
		}
	}
	out[k.len] = '\0';
	return k.ok;
}

/* --- xtext (RFC 3461 4) ---------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') /* tolerated: RFC 3461 asks for upper case */
		return c - 'a' + 10;
	return -1;
}

bool xtext_decode(char *s)
{
	char *w = s;
	const char *r = s;
	int hi, lo;

	while (*r) {
		unsigned char c = (unsigned char)*r;
		if (c == '+') {
			if ((hi = hex_value(r[1])) < 0 || (lo = hex_value(r[2])) < 0)
				return false;
			if (hi == 0 && lo == 0)
				return false; /* an embedded NUL would truncate the value */
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return true;
}

bool xtext_encode(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	struct sink k = {out, outsz, 0, true};

	if (outsz == 0)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=') {
			/* never split an escape across the truncation point */
			if (k.len + 3 >= k.size) {
				k.ok = false;
				break;
			}
			sink_putc(&k, '+');
			sink_putc(&k, hex[c >> 4]);
			sink_putc(&k, hex[c & 15]);
		} else {
			sink_putc(&k, (char)c);
		}
	}
	out[k.len] = '\0';
	return k.ok;
}
