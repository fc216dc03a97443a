/*
 * fromhdr.c - see fromhdr.h. A one-pass scanner over the field value:
 * outside quotes, comments and angle brackets, ',' ends a mailbox, ':'
 * opens a group (what came before it was the group's name), ';' closes
 * it; an angle-addr replaces whatever display name came before it; text
 * that is not in angle brackets is the addr-spec itself (blanks and
 * comments dropped, quoted strings kept as they are). The scanner
 * decides nothing about the display name: an "alice@example.test"
 * display name before <mallory@evil.test> is just a name, and the
 * address is mallory's, as any reader's mail client shows it.
 */
#include "mail/fromhdr.h"

#include <string.h>
#include <strings.h>

#include "util/str.h"

static bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void append(struct fromhdr *f, const char *p, size_t n)
{
	if (f->overflow || n > sizeof(f->value) - 1 - f->len) {
		f->overflow = true;
		return;
	}
	memcpy(f->value + f->len, p, n);
	f->len += n;
	f->value[f->len] = '\0';
}

void fromhdr_line(struct fromhdr *f, const char *line, size_t len)
{
	size_t name = 0;

	if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
		if (f->in_from)
			append(f, line, len); /* unfolding: RFC 5322 2.2.3 */
		return;
	}
	while (name < len && line[name] != ':' && !is_wsp(line[name]))
		name++;
	f->in_from = name == 4 && strncasecmp(line, "From", 4) == 0;
	if (!f->in_from)
		return;
	while (name < len && line[name] != ':') /* obs-optional: "From :" */
		name++;
	if (name == len) {
		f->in_from = false;
		return;
	}
	if (f->fields++ > 0)
		append(f, ",", 1); /* a second From: field: its addresses count too */
	append(f, line + name + 1, len - name - 1);
}

struct scan {
	char spec[ADDR_TEXT_MAX];  /* the addr-spec being read (outside <>) */
	size_t spec_len;
	char angle[ADDR_TEXT_MAX]; /* the last angle-addr's content */
	size_t angle_len;
	bool have_angle, too_long;
	bool gap;	  /* blanks or a comment since the last spec character */
	bool two_words;	  /* words apart with no '.' or '@' between: a display
			     name, fine only before an angle-addr */
};

/* A character of the text outside <>, after any gap. */
static void spec_char(struct scan *sc, char c)
{
	char last = sc->spec_len ? sc->spec[sc->spec_len - 1] : '\0';

	if (sc->gap && sc->spec_len > 0 && c != '.' && c != '@' && last != '.' && last != '@')
		sc->two_words = true;
	sc->gap = false;
	if (sc->spec_len + 1 >= ADDR_TEXT_MAX) {
		sc->too_long = true;
		return;
	}
	sc->spec[sc->spec_len++] = c;
}

static void put(char *buf, size_t *len, bool *too_long, char c)
{
	if (*len + 1 >= ADDR_TEXT_MAX) {
		*too_long = true;
		return;
	}
	buf[(*len)++] = c;
}

/* A comment from p (at '('), nested; returns past its ')' or NULL. */
static const char *skip_comment(const char *p, const char *end)
{
	int depth = 0;

	for (; p < end; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/* A quoted string from p (at '"'), copied with its quotes into buf when
 * buf is not NULL; returns past the closing quote or NULL. */
static const char *take_quoted(const char *p, const char *end, char *buf, size_t *len,
			       bool *too_long)
{
	for (const char *q = p; q < end; q++) {
		if (buf)
			put(buf, len, too_long, *q);
		if (*q == '\\' && q + 1 < end) {
			if (buf)
				put(buf, len, too_long, q[1]);
			q++;
		} else if (*q == '"' && q > p) {
			return q + 1;
		}
	}
	return NULL;
}

/* The mailbox that ends here, if any, into out. */
static enum fromhdr_status finish(struct scan *sc, char (*out)[ADDR_TEXT_MAX], size_t max,
				  size_t *n, const char **why)
{
	const char *a = sc->have_angle ? sc->angle : sc->spec;
	size_t alen = sc->have_angle ? sc->angle_len : sc->spec_len;
	struct mail_addr ma;
	const char *awhy;

	if (sc->too_long) {
		*why = "an address is too long";
		return FROMHDR_SYNTAX;
	}
	if (alen > 0 || sc->have_angle) {
		if (!sc->have_angle && sc->two_words) {
			*why = "words apart without an angle-addr";
			return FROMHDR_SYNTAX;
		}
		if (addr_parse(a, alen, false, &ma, &awhy) != ADDR_OK ||
		    (ma.flags & (ADDR_F_NO_DOMAIN | ADDR_F_NULL))) {
			*why = "a mailbox is not an address local@domain";
			return FROMHDR_SYNTAX;
		}
		if (*n >= max) {
			*why = "too many addresses";
			return FROMHDR_TOO_MANY;
		}
		addr_format(&ma, out[(*n)++], ADDR_TEXT_MAX);
	}
	memset(sc, 0, sizeof(*sc));
	return FROMHDR_OK;
}

enum fromhdr_status fromhdr_addresses(const char *value, size_t len, char (*out)[ADDR_TEXT_MAX],
				      size_t max, size_t *n, const char **why)
{
	const char *p = value, *end = value + len;
	struct scan sc;
	bool in_group = false;
	enum fromhdr_status st;

	*n = 0;
	*why = NULL;
	memset(&sc, 0, sizeof(sc));
	while (p < end) {
		char c = *p;

		if (is_wsp(c)) {
			sc.gap = true;
			p++;
		} else if (c == '(') {
			sc.gap = true;
			if ((p = skip_comment(p, end)) == NULL) {
				*why = "a comment is not closed";
				return FROMHDR_SYNTAX;
			}
		} else if (c == '"') {
			/* a display name's, or a quoted local part's: kept in spec,
			 * which an angle-addr after it replaces */
			const char *q = take_quoted(p, end, NULL, NULL, NULL);
			if (q == NULL) {
				*why = "a quoted string is not closed";
				return FROMHDR_SYNTAX;
			}
			for (; p < q; p++)
				spec_char(&sc, *p);
		} else if (c == '<') {
			if (sc.have_angle) {
				*why = "two angle-addrs in one mailbox";
				return FROMHDR_SYNTAX;
			}
			sc.have_angle = true;
			for (p++; p < end && *p != '>'; p++) {
				if (*p == '(') {
					const char *q = skip_comment(p, end);
					if (q == NULL)
						break;
					p = q - 1;
				} else if (*p == '"') {
					const char *q = take_quoted(p, end, sc.angle, &sc.angle_len,
								    &sc.too_long);
					if (q == NULL)
						break;
					p = q - 1;
				} else if (!is_wsp(*p)) {
					put(sc.angle, &sc.angle_len, &sc.too_long, *p);
				}
			}
			if (p >= end) {
				*why = "an angle-addr is not closed";
				return FROMHDR_SYNTAX;
			}
			p++;
		} else if (c == '[' && !sc.have_angle) {
			/* a domain literal ("[IPv6:2001:db8::1]"): its ':' are not a group */
			const char *q = memchr(p, ']', (size_t)(end - p));
			if (q == NULL) {
				*why = "a domain literal is not closed";
				return FROMHDR_SYNTAX;
			}
			for (; p <= q; p++)
				spec_char(&sc, *p);
		} else if (c == ':' && !in_group && !sc.have_angle) {
			in_group = true; /* what came before was the group's name */
			memset(&sc, 0, sizeof(sc));
			p++;
		} else if (c == ';' && in_group) {
			if ((st = finish(&sc, out, max, n, why)) != FROMHDR_OK)
				return st;
			in_group = false;
			p++;
		} else if (c == ',') {
			if ((st = finish(&sc, out, max, n, why)) != FROMHDR_OK)
				return st;
			p++;
		} else if (c == '>' || c == ')' || (c == ';' && !in_group)) {
			*why = "a stray '>', ')' or ';'";
			return FROMHDR_SYNTAX;
		} else {
			if (sc.have_angle) {
				*why = "text after an angle-addr";
				return FROMHDR_SYNTAX;
			}
			spec_char(&sc, c);
			p++;
		}
	}
	if (in_group) {
		*why = "a group is not closed with ';'";
		return FROMHDR_SYNTAX;
	}
	return finish(&sc, out, max, n, why);
}
