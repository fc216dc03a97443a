/*
 * msgdata.h - the message content as it arrives, line by line.
 *
 * Two small pieces with no I/O of their own:
 *
 * 1. The DATA line classifier (RFC 5321 4.1.1.4, 4.5.2): given one line
 *    that ended in LF, say whether it was CRLF-terminated, whether it is
 *    the end-of-data marker ".", and strip one leading dot (transparency).
 *    Bare CR anywhere and bare LF as line end are reported so the session
 *    can refuse the message (SMTP smuggling, CVE-2023-51764 family): end
 *    of data is only CRLF "." CRLF.
 *
 * 2. The header scanner (RFC 5322 2.2, 3.6): fed each line of the
 *    message (without its CRLF), it knows whether it is still in the
 *    header section, counts Received: fields (hop count, RFC 5321 6.3),
 *    and notes Message-ID:, Date:, From:. It handles folded lines.
 *
 * And the reverse of 1 for the send path: dot-stuffing a line.
 */
#ifndef TRANSIT_MAIL_MSGDATA_H
#define TRANSIT_MAIL_MSGDATA_H

#include <stdbool.h>
#include <stddef.h>

enum dataline_kind {
	DATALINE_TEXT = 0,  /* an ordinary line: content is in out/outlen */
	DATALINE_END,	    /* "." CRLF: end of data */
	DATALINE_BARE_LF,   /* line ended with LF not preceded by CR */
	DATALINE_BARE_CR,   /* a CR not followed by LF inside the line */
};

/* line[0..len) is one line INCLUDING its terminating LF (len >= 1,
 * line[len-1] == LF). On DATALINE_TEXT, out and outlen give the line
 * content without CRLF and without the transparency dot. For the bare
 * kinds, out and outlen still give the content (so the caller can keep
 * scanning), with the line ending removed. */
enum dataline_kind dataline_classify(const char *line, size_t len, const char **out,
				     size_t *outlen);

/* Write the dot-stuffed form of line[0..len) (no CRLF) followed by CRLF
 * into out (size outsz, needs len + 3). Returns bytes written, or 0 if
 * outsz is too small. */
size_t dataline_stuff(const char *line, size_t len, char *out, size_t outsz);

struct hdrscan {
	bool in_body;		/* the empty line ending the header section was seen */
	unsigned received;	/* Received: fields seen */
	bool has_message_id;
	bool has_date;
	bool has_from;
	unsigned lines;		/* header lines (incl. continuations) seen */
	/* the first Message-ID field's value on its first line, blanks
	 * trimmed, cut to fit (for message tracking; "" when none) */
	char message_id[256];
};

void hdrscan_init(struct hdrscan *h);

enum hdrline_kind {
	HDRLINE_FIELD = 0,	/* a header field line or continuation */
	HDRLINE_END,		/* the empty line: the header section ends here */
	HDRLINE_BODY,		/* a body line (after HDRLINE_END) */
	HDRLINE_NOT_HEADER,	/* no colon-separated field name: the header section
				   ended without an empty line (RFC 5322 allows no
				   body); treat this line as the first body line */
};

/* Feed one line (content only, no CRLF). Updates h. */
enum hdrline_kind hdrscan_line(struct hdrscan *h, const char *line, size_t len);

#endif
