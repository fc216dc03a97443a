/*
 * msgdata.c - message content line by line: the DATA line classifier with
 * the anti-smuggling rules, dot-stuffing for the send path, and the header
 * scanner. Contract in msgdata.h; no I/O, no allocation.
 *
 * Standards:
 *   RFC 5321 2.3.8  lines end in CRLF; bare CR and bare LF are not line ends
 *   RFC 5321 4.1.1.4, 4.5.2  end of data "CRLF . CRLF", transparency dot
 *   RFC 5322 2.2, 2.2.3, 3.6  header fields, folding, the empty line
 *   RFC 5322 4.5   obsolete "Name :" (white space before the colon) accepted
 *   RFC 5321 6.3   Received: counting for loop detection
 *
 * The classifier looks at one line at a time and has no memory, so the
 * caller owns one rule: an END line that directly follows a BARE_LF line
 * is not an end of data (the line ending before "." was not CRLF), so
 * "text LF . CRLF" must not end the message where a lenient relay
 * upstream thought it continued: that is the smuggling split. (Simplest:
 * after any BARE_LF or BARE_CR refuse the message, as Postfix's "521
 * 5.5.2 bare <LF> received".) Priority when a line has several faults:
 * END (only the exact octets ". CR LF") is checked first, then a bare LF
 * ending, then a CR inside the content. The
 * transparency dot is removed from the content in every kind.
 */
#include "mail/msgdata.h"

#include <string.h>

#include "util/str.h"

enum dataline_kind dataline_classify(const char *line, size_t len, const char **out,
				     size_t *outlen)
{
	size_t n = len;
	bool crlf = false;

	if (n > 0 && line[n - 1] == '\n') {
		n--;
		if (n > 0 && line[n - 1] == '\r') {
			n--;
			crlf = true;
		}
	}
	if (crlf && n == 1 && line[0] == '.') {
		*out = line + 1;
		*outlen = 0;
		return DATALINE_END;
	}
	if (n > 0 && line[0] == '.') {
		line++;
		n--;
	}
	*out = line;
	*outlen = n;
	if (!crlf)
		return DATALINE_BARE_LF; /* also a line without LF: a contract breach */
	if (memchr(line, '\r', n))
		return DATALINE_BARE_CR;
	return DATALINE_TEXT;
}

size_t dataline_stuff(const char *line, size_t len, char *out, size_t outsz)
{
	size_t dot = (len > 0 && line[0] == '.') ? 1 : 0;
	size_t need = dot + len + 2;

	if (need < len || outsz < need)
		return 0;
	if (dot)
		out[0] = '.';
	memcpy(out + dot, line, len);
	out[dot + len] = '\r';
	out[dot + len + 1] = '\n';
	return need;
}

void hdrscan_init(struct hdrscan *h) { memset(h, 0, sizeof(*h)); }

static void count(unsigned *c)
{
	if (*c < ~0u)
		(*c)++;
}

/* Length of the field name when line starts "name *WSP :", else 0.
 * Field name: printable ASCII 33..126 except ':' (RFC 5322 2.2). */
static size_t field_name_len(const char *line, size_t len)
{
	size_t i = 0, name;

	while (i < len && line[i] >= 33 && line[i] <= 126 && line[i] != ':')
		i++;
	name = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (name == 0 || i >= len || line[i] != ':')
		return 0;
	return name;
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && str_ncasecmp(name, want, n) == 0;
}

/* The value of "Message-ID:" on line[0..len) (name n octets long). */
static void note_message_id(struct hdrscan *h, const char *line, size_t len, size_t n)
{
	const char *v = memchr(line + n, ':', len - n), *end = line + len;
	size_t k;

	if (h->has_message_id || v == NULL)
		return;
	for (v++; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	k = (size_t)(end - v) < sizeof(h->message_id) - 1 ? (size_t)(end - v)
							    : sizeof(h->message_id) - 1;
	memcpy(h->message_id, v, k);
	h->message_id[k] = '\0';
}

static void note_field(struct hdrscan *h, const char *line, size_t len, size_t n)
{
	const char *name = line;

	if (name_is(name, n, "Received"))
		count(&h->received);
	else if (name_is(name, n, "Message-ID")) {
		note_message_id(h, line, len, n);
		h->has_message_id = true;
	} else if (name_is(name, n, "Date"))
		h->has_date = true;
	else if (name_is(name, n, "From"))
		h->has_from = true;
}

enum hdrline_kind hdrscan_line(struct hdrscan *h, const char *line, size_t len)
{
	size_t name;

	if (h->in_body)
		return HDRLINE_BODY;
	if (len == 0) {
		h->in_body = true;
		return HDRLINE_END;
	}
	if (line[0] == ' ' || line[0] == '\t') {
		if (h->lines == 0) { /* a continuation of nothing */
			h->in_body = true;
			return HDRLINE_NOT_HEADER;
		}
		count(&h->lines);
		return HDRLINE_FIELD;
	}
	if ((name = field_name_len(line, len)) == 0) {
		h->in_body = true;
		return HDRLINE_NOT_HEADER;
	}
	note_field(h, line, len, name);
	count(&h->lines);
	return HDRLINE_FIELD;
}
