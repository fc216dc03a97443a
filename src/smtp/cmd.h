/*
 * cmd.h - SMTP command line parsing for the server (RFC 5321 4.1.1,
 * 4.1.2; parameters from RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531
 * SMTPUTF8, RFC 3461 DSN, RFC 3030 BDAT, RFC 4954 AUTH=).
 *
 * The caller has already split the input at CRLF and refused bare CR/LF;
 * these functions see one command line without its CRLF. They never
 * allocate and never touch session state: they say what was asked and,
 * on error, which reply to give (code + enhanced code + text).
 */
#ifndef TRANSIT_SMTP_CMD_H
#define TRANSIT_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/addr.h"

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_HELP,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_STARTTLS,
	SMTP_AUTH,
	SMTP_VERB_COUNT
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* points into the line, after the verb and one space; "" if none */
	size_t arg_len;
};

/* Split a line into verb and argument. Verbs are case-insensitive.
 * "MAIL FROM:" and "RCPT TO:" keep "FROM:..." / "TO:..." in arg. */
void smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *out);
const char *smtp_verb_name(enum smtp_verb v);

/* A reply for a failed parse: e.g. 501 "5.5.4" "Syntax: MAIL FROM:<address>" */
struct smtp_err {
	int code;	   /* 501, 504, 553, 555, 552 ... */
	const char *enh;   /* "5.5.4" */
	const char *text;  /* static string */
};

enum { BODY_7BIT = 0, BODY_8BITMIME = 1 };
enum { DSN_RET_UNSPEC = 0, DSN_RET_FULL = 1, DSN_RET_HDRS = 2 };
enum {
	DSN_NOTIFY_UNSPEC = 0, /* no NOTIFY given: FAILURE,DELAY by default (RFC 3461 4.1) */
	DSN_NOTIFY_NEVER = 1 << 0,
	DSN_NOTIFY_SUCCESS = 1 << 1,
	DSN_NOTIFY_FAILURE = 1 << 2,
	DSN_NOTIFY_DELAY = 1 << 3,
};

#define SMTP_ENVID_MAX 101  /* RFC 3461 4.4: 100 characters */
#define SMTP_ORCPT_MAX 600

struct mail_params {
	bool has_size;
	uint64_t size;
	int body;		      /* BODY_* */
	bool smtputf8;
	int ret;		      /* DSN_RET_* */
	char envid[SMTP_ENVID_MAX];   /* decoded from xtext; "" if absent */
	char auth[ADDR_TEXT_MAX];     /* AUTH=<mailbox> as given (xtext decoded), "" if absent */
};

struct rcpt_params {
	unsigned notify;	      /* DSN_NOTIFY_* bits */
	char orcpt[SMTP_ORCPT_MAX];   /* "rfc822;alice@example.test" decoded, "" if absent */
};

/* arg is the MAIL argument ("FROM:<a@b> SIZE=10 BODY=8BITMIME").
 * Tolerant: "FROM: <a@b>" (space after colon) and "FROM:a@b" (no
 * brackets) are accepted, as Postfix does. An unknown parameter is
 * 555 5.5.4, a duplicate or malformed one 501 5.5.4.
 * Returns true on success; on failure fills *err. */
bool smtp_parse_mail(const char *arg, size_t len, struct mail_addr *from, struct mail_params *p,
		     struct smtp_err *err);
bool smtp_parse_rcpt(const char *arg, size_t len, struct mail_addr *to, struct rcpt_params *p,
		     struct smtp_err *err);

/* "BDAT <size> [LAST]" argument. Size must be digits and fit in uint64. */
bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, struct smtp_err *err);

/* HELO policy of a receive connector (its `helo` option). */
enum smtp_helo_mode {
	/* RFC 5321 4.1.1.1 / 4.1.2 syntax, with what real clients send:
	 * trailing spaces, one trailing dot, '_' in labels */
	SMTP_HELO_LENIENT = 0,
	/* exactly RFC 5321: Domain (LDH labels of 1..63) or an address
	 * literal [IPv4] / [IPv6:...]; nothing after it */
	SMTP_HELO_STRICT,
};

/* EHLO/HELO argument, checked per mode. Returns false with 501 5.5.4:
 * "Syntax: EHLO hostname" when empty, "Invalid domain name" when not a
 * domain or address literal, "Hostname too long" when over outsz. */
bool smtp_parse_helo(const char *arg, size_t len, enum smtp_helo_mode mode, char *out, size_t outsz,
		     struct smtp_err *err);

#endif
