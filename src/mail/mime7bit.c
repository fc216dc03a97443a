/*
 * mime7bit.c - 8-bit to 7-bit MIME conversion, contract in mime7bit.h.
 *
 * Standards:
 *   RFC 6152 3      no 8-bit data to a server without 8BITMIME
 *   RFC 2045 6.1-6.4 Content-Transfer-Encoding (7bit, 8bit, binary, base64,
 *                   quoted-printable); composite types only 7bit/8bit/binary
 *   RFC 2045 6.7    quoted-printable: "=XX" for '=' and 8-bit octets, white
 *                   space before a line break encoded, lines of at most 76
 *                   characters with "=" soft line breaks
 *   RFC 2046 5.1    multipart boundaries ("--b", "--b--", transport padding),
 *                   an enclosing boundary ends the inner multiparts; an
 *                   encoded line never starts with "-" (written "=2D")
 *   RFC 2046 5.1.5, 5.2.1  multipart/digest defaults, message/rfc822
 *   RFC 3463 5.6.3  conversion required but not supported (the caller's)
 *
 * The content is cut into lines; a line longer than MIME7_LINE_MAX is
 * handled in pieces (the first piece decides what the line is), so memory
 * stays bounded whatever the input. The same state machine runs twice:
 * the scan learns, per entity (the message, every part, every enclosed
 * message, numbered in order of appearance), whether its body needs
 * encoding; the conversion then knows it when it reaches the entity's
 * Content-Transfer-Encoding field and can replace that field in place.
 */
#include "mail/mime7bit.h"

#include <string.h>

#include "util/str.h"

#define PLAN_ENCODE 1 /* leaf with 8-bit body: quoted-printable */
#define PLAN_SEVEN 2  /* declared 8bit/binary, 7-bit once converted: say "7bit" */

#define CTE_QP_FIELD "Content-Transfer-Encoding: quoted-printable\r\n"
#define CTE_7BIT_FIELD "Content-Transfer-Encoding: 7bit\r\n"

static void piece(struct mime7 *m, const char *p, size_t n, bool first, bool eol,
		  struct buf *out);

static void emit(const struct mime7 *m, struct buf *out, const void *p, size_t n)
{
	if (m->converting && out != NULL && n > 0)
		buf_append(out, p, n);
}

static void emit_line(const struct mime7 *m, struct buf *out, const char *p, size_t n, bool eol)
{
	emit(m, out, p, n);
	if (eol)
		emit(m, out, "\r\n", 2);
}

static bool has_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

static uint8_t plan_of(const struct mime7 *m)
{
	return m->part < MIME7_PARTS_MAX ? m->plan[m->part] : 0;
}

static void new_entity(struct mime7 *m, bool top, bool default_message)
{
	m->where = M7_HEADER;
	m->top = top;
	m->default_message = default_message;
	m->field = F_OTHER;
	m->suppress = false;
	m->ctype_len = m->cte_len = 0;
	m->seen_cte = m->seen_mimever = false;
	m->has8 = m->encode = false;
	m->col = 0;
	m->part = m->nparts;
	if (m->nparts < MIME7_PARTS_MAX)
		m->nparts++;
	else
		m->part = MIME7_PARTS_MAX; /* beyond the plan */
}

static void reset_pass(struct mime7 *m)
{
	m->len = 0;
	m->cont = false;
	m->depth = 0;
	m->nparts = 0;
	new_entity(m, true, false);
}

void mime7_init(struct mime7 *m)
{
	memset(m, 0, sizeof(*m));
	reset_pass(m);
}

void mime7_start_convert(struct mime7 *m)
{
	m->converting = true;
	reset_pass(m);
}

/* ---- field values -------------------------------------------------------- */

static size_t skip_wsp(const char *v, size_t n, size_t i)
{
	while (i < n && is_wsp(v[i]))
		i++;
	return i;
}

static bool token_is(const char *v, size_t n, const char *want)
{
	return n == strlen(want) && str_ncasecmp(v, want, n) == 0;
}

enum mime7_cte mime7_parse_cte(const char *v, size_t n)
{
	size_t i = skip_wsp(v, n, 0), j;

	for (j = i; j < n && !is_wsp(v[j]) && v[j] != '(' && v[j] != ';'; j++)
		;
	v += i;
	n = j - i;
	if (n == 0)
		return CTE_NONE;
	if (token_is(v, n, "7bit"))
		return CTE_7BIT;
	if (token_is(v, n, "8bit"))
		return CTE_8BIT;
	if (token_is(v, n, "binary"))
		return CTE_BINARY;
	if (token_is(v, n, "base64"))
		return CTE_BASE64;
	if (token_is(v, n, "quoted-printable"))
		return CTE_QP;
	return CTE_OTHER;
}

/* The type/subtype token at the start of a Content-Type value. */
static void media_type(const char *v, size_t n, const char **t, size_t *tlen)
{
	size_t i = skip_wsp(v, n, 0), j;

	for (j = i; j < n && !is_wsp(v[j]) && v[j] != ';' && v[j] != '('; j++)
		;
	*t = v + i;
	*tlen = j - i;
}

bool mime7_boundary(const char *v, size_t n, char *b, size_t *blen)
{
	size_t i = 0;

	while (i < n) {
		size_t name, namelen, o = 0;
		bool ok = true, want;

		while (i < n && v[i] != ';')
			i++;
		if (i >= n)
			return false;
		i = skip_wsp(v, n, i + 1);
		for (name = i; i < n && v[i] != '=' && v[i] != ';' && !is_wsp(v[i]); i++)
			;
		namelen = i - name;
		i = skip_wsp(v, n, i);
		if (i >= n || v[i] != '=')
			continue;
		i = skip_wsp(v, n, i + 1);
		want = token_is(v + name, namelen, "boundary");
		if (i < n && v[i] == '"') {
			for (i++; i < n && v[i] != '"'; i++) {
				if (v[i] == '\\' && i + 1 < n)
					i++;
				if (o < MIME7_BOUNDARY_MAX)
					b[o++] = v[i];
				else
					ok = false;
			}
			if (i < n)
				i++;
		} else {
			for (; i < n && v[i] != ';' && !is_wsp(v[i]); i++) {
				if (o < MIME7_BOUNDARY_MAX)
					b[o++] = v[i];
				else
					ok = false;
			}
		}
		if (want) {
			*blen = o;
			return ok && o > 0;
		}
	}
	return false;
}

static void keep_value(char *dst, size_t *len, const char *p, size_t n)
{
	size_t room = MIME7_VALUE_MAX - *len;

	if (n > room)
		n = room;
	memcpy(dst + *len, p, n);
	*len += n;
	dst[*len] = '\0';
}

static void field_value(struct mime7 *m, const char *p, size_t n)
{
	if (m->field == F_CTYPE)
		keep_value(m->ctype, &m->ctype_len, p, n);
	else if (m->field == F_CTE)
		keep_value(m->cte_val, &m->cte_len, p, n);
}

/* ---- entities ------------------------------------------------------------- */

static bool plain_cte(enum mime7_cte c)
{
	return c == CTE_NONE || c == CTE_7BIT || c == CTE_8BIT || c == CTE_BINARY;
}

/* The current entity ends (a boundary or the end of the content). */
static void finish_entity(struct mime7 *m)
{
	enum mime7_cte cte = mime7_parse_cte(m->cte_val, m->cte_len);
	bool has8 = m->has8;

	m->has8 = false;
	if (m->converting || !has8)
		return;
	if (m->where == M7_LEAF && plain_cte(cte) && m->part < MIME7_PARTS_MAX)
		m->plan[m->part] |= PLAN_ENCODE;
	else
		m->unsupported = true;
}

/* The empty line after a header: what the body is. */
static void end_header(struct mime7 *m, struct buf *out)
{
	enum mime7_cte cte = mime7_parse_cte(m->cte_val, m->cte_len);
	const char *t;
	size_t tlen, blen = 0;
	char boundary[MIME7_BOUNDARY_MAX];
	bool multipart, message;

	media_type(m->ctype, m->ctype_len, &t, &tlen);
	multipart = tlen > 10 && str_ncasecmp(t, "multipart/", 10) == 0 &&
		    mime7_boundary(m->ctype, m->ctype_len, boundary, &blen);
	message = (tlen == 0 && m->default_message) || token_is(t, tlen, "message/rfc822") ||
		  token_is(t, tlen, "message/global");
	if (!m->converting && (multipart || message) && (cte == CTE_8BIT || cte == CTE_BINARY) &&
	    m->part < MIME7_PARTS_MAX)
		m->plan[m->part] |= PLAN_SEVEN;
	if (m->converting) {
		if (m->top && !m->seen_mimever)
			emit(m, out, "MIME-Version: 1.0\r\n", 19);
		if ((plan_of(m) & PLAN_ENCODE) && !m->seen_cte)
			emit(m, out, CTE_QP_FIELD, strlen(CTE_QP_FIELD));
		emit(m, out, "\r\n", 2);
	}
	m->field = F_OTHER;
	m->suppress = false;
	if (multipart && m->depth < MIME7_DEPTH_MAX) {
		struct mime7_level *l = &m->level[m->depth++];
		memcpy(l->boundary, boundary, blen);
		l->blen = blen;
		l->digest = token_is(t, tlen, "multipart/digest");
		m->where = M7_PREAMBLE;
	} else if (multipart) {
		m->where = M7_OPAQUE; /* too deep: a body we cannot look into */
	} else if (message) {
		new_entity(m, false, false);
	} else {
		m->where = M7_LEAF;
		m->encode = m->converting && (plan_of(m) & PLAN_ENCODE);
		m->col = 0;
	}
}

/* "--boundary" or "--boundary--" of this or an enclosing multipart,
 * followed only by white space (RFC 2046 5.1.1). */
static bool boundary_line(const struct mime7 *m, const char *p, size_t n, size_t *lvl,
			  bool *close)
{
	size_t k, i;

	if (n < 3 || p[0] != '-' || p[1] != '-')
		return false;
	for (k = m->depth; k-- > 0;) {
		const struct mime7_level *l = &m->level[k];
		if (n < 2 + l->blen || memcmp(p + 2, l->boundary, l->blen) != 0)
			continue;
		i = 2 + l->blen;
		*close = n >= i + 2 && p[i] == '-' && p[i + 1] == '-';
		if (*close)
			i += 2;
		while (i < n && is_wsp(p[i]))
			i++;
		if (i == n) {
			*lvl = k;
			return true;
		}
	}
	return false;
}

/* ---- lines ------------------------------------------------------------------ */

/* Length of the field name when p starts "name *WSP :", else 0 (RFC 5322 2.2). */
static size_t field_name(const char *p, size_t n, size_t *colon)
{
	size_t i = 0, name;

	while (i < n && (unsigned char)p[i] >= 33 && (unsigned char)p[i] <= 126 && p[i] != ':')
		i++;
	name = i;
	while (i < n && is_wsp(p[i]))
		i++;
	if (name == 0 || i >= n || p[i] != ':')
		return 0;
	*colon = i;
	return name;
}

static void start_field(struct mime7 *m, const char *p, size_t name, struct buf *out)
{
	m->suppress = false;
	m->field = F_OTHER;
	if (token_is(p, name, "Content-Type")) {
		m->field = F_CTYPE;
		m->ctype_len = 0;
	} else if (token_is(p, name, "Content-Transfer-Encoding")) {
		m->field = F_CTE;
		m->cte_len = 0;
		m->seen_cte = true;
		if (m->converting && (plan_of(m) & PLAN_ENCODE)) {
			emit(m, out, CTE_QP_FIELD, strlen(CTE_QP_FIELD));
			m->suppress = true;
		} else if (m->converting && (plan_of(m) & PLAN_SEVEN)) {
			emit(m, out, CTE_7BIT_FIELD, strlen(CTE_7BIT_FIELD));
			m->suppress = true;
		}
	} else if (token_is(p, name, "MIME-Version")) {
		m->field = F_MIMEVER;
		m->seen_mimever = true;
	}
}

static void header_piece(struct mime7 *m, const char *p, size_t n, bool first, bool eol,
			 struct buf *out)
{
	size_t name, colon = 0;
	bool eight = has_8bit(p, n);

	if (!first || (n > 0 && is_wsp(p[0]) && m->field != F_OTHER)) {
		field_value(m, p, n); /* a long line or a folded continuation */
	} else if (n == 0 && eol) {
		end_header(m, out);
		return;
	} else if (n > 0 && is_wsp(p[0])) {
		/* continuation of a field we do not parse (or of nothing) */
	} else if ((name = field_name(p, n, &colon)) > 0) {
		start_field(m, p, name, out);
		field_value(m, p + colon + 1, n - colon - 1);
	} else {
		/* not a header field: the header ended without an empty line,
		 * and this is the first line of the body */
		end_header(m, out);
		piece(m, p, n, first, eol, out);
		return;
	}
	if (eight)
		m->hdr8 = m->any8 = true;
	if (!m->suppress)
		emit_line(m, out, p, n, eol);
}

/* Quoted-printable (RFC 2045 6.7): a piece of a line, continuing the
 * current encoded line. White space at the end of a piece is encoded, so
 * it is safe at the end of the line whether or not the line ends here. */
static void qp_piece(struct mime7 *m, const char *p, size_t n, bool eol, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char o[512];
	size_t k = 0, i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char tok[3];
		size_t tl;

		bool bol = m->col == 0 || m->col + 1 > MIME7_QP_LINE - 1;

		/* '-' starting an encoded line is written =2D, so no line of
		 * the body can ever look like a boundary (RFC 2046 5.1.1) */
		if ((c >= 33 && c <= 126 && c != '=' && !(c == '-' && bol)) ||
		    ((c == ' ' || c == '\t') && i + 1 < n)) {
			tok[0] = (char)c;
			tl = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		}
		if (m->col + tl > MIME7_QP_LINE - 1) { /* room for the "=" of a soft break */
			memcpy(o + k, "=\r\n", 3);
			k += 3;
			m->col = 0;
		}
		memcpy(o + k, tok, tl);
		k += tl;
		m->col += (unsigned)tl;
		if (k > sizeof(o) - 8) {
			emit(m, out, o, k);
			k = 0;
		}
	}
	if (eol) {
		memcpy(o + k, "\r\n", 2);
		k += 2;
		m->col = 0;
	}
	emit(m, out, o, k);
}

static void piece(struct mime7 *m, const char *p, size_t n, bool first, bool eol,
		  struct buf *out)
{
	size_t lvl;
	bool close, eight;

	if (first && eol && m->depth > 0 && boundary_line(m, p, n, &lvl, &close)) {
		finish_entity(m);
		emit_line(m, out, p, n, true);
		m->depth = lvl + 1;
		if (close)
			m->where = M7_PREAMBLE; /* the epilogue of that multipart */
		else
			new_entity(m, false, m->level[lvl].digest);
		return;
	}
	if (m->where == M7_HEADER) {
		header_piece(m, p, n, first, eol, out);
		return;
	}
	eight = has_8bit(p, n);
	if (eight)
		m->any8 = true;
	if (m->where == M7_LEAF) {
		m->has8 = m->has8 || eight;
		if (m->encode) {
			qp_piece(m, p, n, eol, out);
			return;
		}
	} else if (m->where == M7_OPAQUE) {
		m->has8 = m->has8 || eight;
	} else if (eight) { /* preamble or epilogue */
		m->unsupported = true;
	}
	emit_line(m, out, p, n, eol);
}

/* A full line buffer: hand it on as a piece (keeping a CR that may be the
 * first half of a CRLF). */
static void flush_piece(struct mime7 *m, struct buf *out)
{
	size_t keep = m->line[m->len - 1] == '\r' ? 1 : 0;

	piece(m, m->line, m->len - keep, !m->cont, false, out);
	m->cont = true;
	m->line[0] = '\r';
	m->len = keep;
}

void mime7_feed(struct mime7 *m, const char *p, size_t n, struct buf *out)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - p) : n;

		while (take > 0) {
			size_t room = MIME7_LINE_MAX - m->len, k;
			if (room == 0) {
				flush_piece(m, out);
				continue;
			}
			k = take < room ? take : room;
			memcpy(m->line + m->len, p, k);
			m->len += k;
			p += k;
			n -= k;
			take -= k;
		}
		if (lf != NULL) {
			size_t l = m->len;
			if (l > 0 && m->line[l - 1] == '\r')
				l--;
			piece(m, m->line, l, !m->cont, true, out);
			m->len = 0;
			m->cont = false;
			p++;
			n--;
		}
	}
}

enum mime7_verdict mime7_end(struct mime7 *m, struct buf *out)
{
	if (m->len > 0 || m->cont) {
		size_t l = m->len;
		if (l > 0 && m->line[l - 1] == '\r')
			l--;
		piece(m, m->line, l, !m->cont, true, out);
		m->len = 0;
		m->cont = false;
	}
	finish_entity(m);
	if (m->hdr8)
		return MIME7_HEADER_8BIT;
	if (!m->any8)
		return MIME7_CLEAN;
	return m->unsupported ? MIME7_UNSUPPORTED : MIME7_CONVERT;
}
