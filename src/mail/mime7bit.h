/*
 * mime7bit.h - turn an 8-bit message into a 7-bit one for a peer that does
 * not offer 8BITMIME (RFC 6152 3: the client must not send 8-bit data to
 * it). What Postfix calls MIME output conversion:
 *
 *  - every leaf part (and a message that is not MIME at all) whose body
 *    holds 8-bit octets is re-encoded as quoted-printable (RFC 2045 6.7),
 *    its Content-Transfer-Encoding field replaced or added, and
 *    MIME-Version: 1.0 added to the top-level header when it is missing;
 *  - multipart bodies are walked by boundary (RFC 2046 5.1), message/rfc822
 *    (and message/global) parts recursively; a composite part that said
 *    "8bit" or "binary" now says "7bit" (RFC 2045 6.4);
 *  - parts that are 7-bit already, and base64 / quoted-printable parts,
 *    are passed through octet for octet.
 *
 * What cannot be converted (the caller fails the message with 5.6.3,
 * "conversion required but not supported", RFC 3463):
 *  - 8-bit octets in any header field, of the message or of a part (only
 *    SMTPUTF8 or RFC 2047 encoded words carry those, and rewriting
 *    addresses and encoded words is not a transport's job);
 *  - 8-bit octets where no encoding can be declared: in a multipart's
 *    preamble or epilogue, in a part that says base64 or quoted-printable
 *    (invalid already), or in a part that declares an encoding we do not
 *    know; more than MIME7_DEPTH_MAX nested multiparts or more than
 *    MIME7_PARTS_MAX parts.
 *
 * Two passes over the same content, with bounded memory and no buffering
 * of the message: mime7_init() starts a scan, mime7_feed() takes the
 * content in any pieces, mime7_end() gives the verdict (and records, per
 * part, what the conversion will do). When the verdict is MIME7_CONVERT,
 * mime7_start_convert() and the same content fed again produce the 7-bit
 * form. Memory: one struct mime7 (about 15 KiB); output per feed is at
 * most about 3.2 times its input. Input lines end in LF or CRLF; output
 * lines end in CRLF; output is not dot-stuffed (the SMTP client does that).
 * No I/O, no allocation except growing the caller's output buffer.
 */
#ifndef TRANSIT_MAIL_MIME7BIT_H
#define TRANSIT_MAIL_MIME7BIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MIME7_LINE_MAX 1000	/* longer lines are handled in pieces of this size */
#define MIME7_VALUE_MAX 1000	/* kept of a Content-Type / -Transfer-Encoding value */
#define MIME7_BOUNDARY_MAX 200	/* RFC 2046 says 70; be lenient */
#define MIME7_DEPTH_MAX 20	/* nested multiparts */
#define MIME7_PARTS_MAX 4096	/* entities (message, parts, enclosed messages) */
#define MIME7_QP_LINE 76	/* RFC 2045 6.7 (5): encoded lines, soft break included */

enum mime7_verdict {
	MIME7_CLEAN = 0,	/* no 8-bit octet anywhere: send as it is */
	MIME7_CONVERT,		/* 8-bit bodies only: convert (second pass) */
	MIME7_HEADER_8BIT,	/* 8-bit octets in a header field: cannot convert */
	MIME7_UNSUPPORTED,	/* 8-bit octets where no encoding can be declared */
};

enum mime7_cte { CTE_NONE = 0, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_BASE64, CTE_QP, CTE_OTHER };

struct mime7_level {
	char boundary[MIME7_BOUNDARY_MAX];
	size_t blen;
	bool digest; /* multipart/digest: parts default to message/rfc822 */
};

struct mime7 {
	bool converting;	 /* second pass: produce output */
	/* the line being assembled */
	char line[MIME7_LINE_MAX + 1];
	size_t len;
	bool cont;		 /* the next piece continues a line already started */
	/* where we are */
	enum { M7_HEADER, M7_LEAF, M7_OPAQUE, M7_PREAMBLE } where;
	struct mime7_level level[MIME7_DEPTH_MAX];
	size_t depth;
	/* the entity whose header or body this is */
	size_t part;		 /* index, in order of appearance; 0 is the message */
	bool top;		 /* the message's own header */
	bool default_message;	 /* no Content-Type means message/rfc822 (in a digest) */
	enum { F_OTHER, F_CTYPE, F_CTE, F_MIMEVER } field;
	bool suppress;		 /* convert: the original CTE field is being replaced */
	char ctype[MIME7_VALUE_MAX + 1];
	size_t ctype_len;
	char cte_val[MIME7_VALUE_MAX + 1];
	size_t cte_len;
	bool seen_cte, seen_mimever;
	bool has8;		 /* scan: the current leaf body has an 8-bit octet */
	bool encode;		 /* convert: the current leaf is quoted-printable encoded */
	unsigned col;		 /* convert: column in the current encoded line */
	/* results of the scan */
	size_t nparts;
	uint8_t plan[MIME7_PARTS_MAX]; /* MIME7_PLAN_* per entity */
	bool any8, hdr8, unsupported;
};

void mime7_init(struct mime7 *m);
/* Feed content; out receives converted octets (may be NULL while scanning). */
void mime7_feed(struct mime7 *m, const char *p, size_t n, struct buf *out);
/* End of the content. Scan: the verdict. Convert: flushes the last line into out. */
enum mime7_verdict mime7_end(struct mime7 *m, struct buf *out);
/* Start the second pass after a scan whose verdict was MIME7_CONVERT. */
void mime7_start_convert(struct mime7 *m);
/* The parsed value of a Content-Transfer-Encoding field (RFC 2045 6.1). */
enum mime7_cte mime7_parse_cte(const char *v, size_t n);
/* The boundary parameter of a Content-Type value, unquoted; false when
 * there is none (or it is empty or too long). b has MIME7_BOUNDARY_MAX. */
bool mime7_boundary(const char *v, size_t n, char *b, size_t *blen);

#endif
