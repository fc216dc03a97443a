/*
 * dovecot_auth.h - a password back end that asks Dovecot's auth socket
 * (the "auth-client" listener Postfix uses with smtpd_sasl_type = dovecot),
 * so IMAP and SMTP share one password store.
 *
 * Protocol: Dovecot authentication protocol 1.x (doc.dovecot.org,
 * "Dovecot Authentication Protocol"): one request per connection,
 *     C: VERSION 1 2 / CPID pid
 *     S: VERSION 1 x / MECH ... / SPID / CUID / COOKIE / DONE
 *     C: AUTH 1 PLAIN service=smtp nologin no-penalty secured rip=IP resp=BASE64
 *     S: OK 1 ... | FAIL 1 ... [temp | code=temp_fail] | CONT 1 ...
 * (fields TAB-separated, lines end in LF). The login and password travel
 * only inside the base64 SASL PLAIN response (RFC 4616), never logged.
 *
 * dovecot_auth_verify() is blocking and meant for a worker thread
 * (policy/auth.c): every wait is bounded by one deadline, every line by
 * DOVECOT_LINE_MAX and the number of lines read by DOVECOT_LINES_MAX, so
 * a Dovecot that hangs or babbles costs at most the timeout.
 */
#ifndef TRANSIT_DIR_DOVECOT_AUTH_H
#define TRANSIT_DIR_DOVECOT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define DOVECOT_LINE_MAX 16384 /* Dovecot's own AUTH_CLIENT_MAX_LINE_LENGTH */
#define DOVECOT_LINES_MAX 64   /* handshake and reply lines read per check */

enum dovecot_line_kind {
	DOVECOT_LINE_OTHER, /* SPID, CUID, COOKIE, anything unknown: ignored */
	DOVECOT_LINE_VERSION,
	DOVECOT_LINE_MECH,
	DOVECOT_LINE_DONE,
	DOVECOT_LINE_OK,
	DOVECOT_LINE_FAIL,
	DOVECOT_LINE_CONT,
};

/* One server line, parsed. */
struct dovecot_line {
	enum dovecot_line_kind kind;
	unsigned long major; /* VERSION */
	bool plain;	     /* MECH PLAIN */
	unsigned long id;    /* OK / FAIL / CONT: the request id */
	bool temp;	     /* FAIL: "temp" or "code=temp_fail" */
};

/* Parse one line (without its LF; may contain anything). Returns false
 * for a malformed line of a known kind (VERSION without a number, OK /
 * FAIL / CONT without a decimal id), which ends the exchange. */
bool dovecot_auth_parse_line(const char *line, size_t len, struct dovecot_line *out);

enum dovecot_result {
	DOVECOT_AUTH_OK,   /* Dovecot said OK */
	DOVECOT_AUTH_BAD,  /* FAIL: wrong password or unknown user */
	DOVECOT_AUTH_TEMP, /* unreachable, timed out, temp_fail, protocol error */
};

struct dovecot_auth_request {
	const char *socket_path;
	unsigned timeout_ms; /* for the whole exchange */
	const char *remote_ip; /* the client (the real one behind a proxy) */
	const char *login, *password;
};

/* Blocking; *why is set to a short static reason for the log when the
 * result is not DOVECOT_AUTH_OK. */
enum dovecot_result dovecot_auth_verify(const struct dovecot_auth_request *rq, const char **why);

#endif
