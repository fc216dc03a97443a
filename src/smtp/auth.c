/*
 * auth.c - the SMTP server's AUTH command (RFC 4954) and what
 * authentication changes at MAIL: SASL PLAIN (RFC 4616) and LOGIN, with
 * or without an initial response, the 334 continuation lines (read as
 * raw lines by server.c, bounded by max-line-length), the check of the
 * credentials through the policy step (policy/auth.c: a worker thread,
 * the brute-force delay and lockout), sender binding (policy/sender.c)
 * and the AUTH= parameter of MAIL (RFC 4954 5).
 *
 * Replies (RFC 4954 4, 6): 235 2.7.0 success; 535 5.7.8 bad credentials;
 * 501 5.5.2 bad base64 or "*" (cancel); 501 5.5.4 syntax; 504 5.5.4
 * unknown mechanism; 503 5.5.1 already authenticated or inside a
 * transaction; 538 5.7.11 encryption required first; 454 4.7.0 locked out
 * after too many failures (or the check timed out); 530 5.7.0 at MAIL on
 * a connector whose only permission is "authenticated"; 553 5.7.1 a
 * sender the login does not own.
 *
 * AUTH is offered and accepted only under TLS, or in clear text from a
 * loopback client on a connector with auth-cleartext = loopback.
 * Credentials are never logged: the debug protocol log masks the AUTH
 * argument and every SASL response line (auth_log_command), decoded
 * passwords live in stack buffers wiped after use, and the worker's copy
 * is wiped by policy/auth.c.
 */
#include "smtp/session.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dir/passwd.h"
#include "policy/auth.h"
#include "policy/sender.h"
#include "smtp/reply.h"
#include "smtp/sasl.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"
#include "util/metrics.h"

/* a command line as logged: the longest command line, and the note */
#define SMTP_LINE_SHOWN_MAX 8200

enum auth_step {
	AUTH_STEP_NONE = 0,
	AUTH_STEP_PLAIN,      /* 334 sent, waiting for the PLAIN response */
	AUTH_STEP_LOGIN_USER, /* 334 VXNlcm5hbWU6 ("Username:") sent */
	AUTH_STEP_LOGIN_PASS, /* 334 UGFzc3dvcmQ6 ("Password:") sent */
};

static const char *mech_name(int step)
{
	return step == AUTH_STEP_PLAIN ? "PLAIN" : "LOGIN";
}

/* ---- where AUTH may run ------------------------------------------------------ */

static bool client_is_loopback(const struct smtp_session *s)
{
	if (s->ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&s->ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (s->ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)&s->ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

/* The connector offers AUTH at all (and the server can check it). */
static bool auth_enabled(const struct smtp_session *s)
{
	return s->rc->auth_mechs != 0 && s->srv->auth != NULL;
}

/* AUTH may be used on this connection now: under TLS, or in clear text
 * from loopback when the connector says so. */
static bool auth_channel_ok(const struct smtp_session *s)
{
	return s->tls ||
	       (s->rc->auth_cleartext == RC_AUTH_CLEARTEXT_LOOPBACK && client_is_loopback(s));
}

void auth_ehlo_line(struct smtp_session *s)
{
	char line[32] = "AUTH";

	if (!auth_enabled(s) || !auth_channel_ok(s) || s->auth_user)
		return;
	if (s->rc->auth_mechs & RC_AUTH_PLAIN)
		strcat(line, " PLAIN");
	if (s->rc->auth_mechs & RC_AUTH_LOGIN)
		strcat(line, " LOGIN");
	smtp_reply_line(&s->out, 250, 0, line);
}

/* ---- the exchange ---------------------------------------------------------- */

static void wipe_login(struct smtp_session *s)
{
	sasl_wipe(s->auth_login, sizeof(s->auth_login));
	s->auth_step = AUTH_STEP_NONE;
}

void auth_abort(struct smtp_session *s)
{
	wipe_login(s);
	session_set_state(s, session_command_state(s));
}

void auth_reset(struct smtp_session *s)
{
	if (s->auth_ck) {
		policy_auth_cancel(s->auth_ck);
		s->auth_ck = NULL;
	}
	wipe_login(s);
	free(s->auth_user);
	s->auth_user = NULL;
}

static void wait_cancel(struct smtp_session *s)
{
	policy_auth_cancel(s->auth_ck);
	s->auth_ck = NULL;
}

static void wait_timeout(struct smtp_session *s)
{
	wipe_login(s);
	session_reply(s, 454, "4.7.0", "Temporary authentication failure (check timed out)");
}

static const struct session_wait_ops auth_wait = {"auth", wait_cancel, wait_timeout};

/* The policy's answer (on the loop; never after wait_cancel). */
static void auth_answered(void *arg, enum auth_outcome o)
{
	struct smtp_session *s = arg;
	char q[300];

	s->auth_ck = NULL;
	switch (o) {
	case AUTH_OUTCOME_OK:
		s->auth_user = xstrdup(s->auth_login);
		log_info("%s smtp auth ok login=%s mechanism=%s", s->id,
			 log_quote(s->auth_user, q, sizeof(q)), mech_name(s->auth_step));
		session_reply(s, 235, "2.7.0", "Authentication successful");
		break;
	case AUTH_OUTCOME_BAD:
		metrics_add(&metric_auth_failures, s->rc->name, NULL, 1);
		session_reply(s, 535, "5.7.8", "Authentication credentials invalid");
		break;
	case AUTH_OUTCOME_LOCKED:
		metrics_add(&metric_auth_lockouts, s->rc->name, NULL, 1);
		session_reply(s, 454, "4.7.0",
			      "Temporary authentication failure: too many failures, try again later");
		break;
	case AUTH_OUTCOME_TEMPFAIL:
		session_reply(s, 454, "4.7.0", "Temporary authentication failure, try again later");
		break;
	}
	wipe_login(s);
	if (o != AUTH_OUTCOME_OK && session_error(s))
		return; /* closed: the wait was ended by the close */
	session_policy_done(s, session_command_state(s));
}

static struct auth_request request_for(const struct smtp_session *s, const char *login)
{
	const char *bar = strchr(s->source_key, '|'); /* "rc_index|prefix": the prefix */
	struct auth_request rq = {
		.session_id = s->id,
		.address = s->addr,
		.source_key = bar ? bar + 1 : s->source_key,
		.mechanism = mech_name(s->auth_step),
		.login = login,
	};
	return rq;
}

static void refuse_locked(struct smtp_session *s)
{
	wipe_login(s);
	session_reply(s, 454, "4.7.0",
		      "Temporary authentication failure: too many failures, try again later");
	session_set_state(s, session_command_state(s));
}

/* Credentials complete: check them through the policy step. */
static void auth_check(struct smtp_session *s, const char *password, bool authzid_bad)
{
	struct auth_request rq = request_for(s, s->auth_login);

	if (policy_auth_locked(s->srv->auth, &rq)) {
		refuse_locked(s);
		return;
	}
	if (!session_policy_wait(s, &auth_wait)) {
		wipe_login(s);
		session_set_state(s, session_command_state(s));
		session_reply(s, 454, "4.7.0", "Temporary authentication failure");
		return;
	}
	if (authzid_bad)
		s->auth_ck = policy_auth_fail(s->srv->auth, &rq, "authzid-not-login", auth_answered, s);
	else
		s->auth_ck = policy_auth_verify(s->srv->auth, &rq, password, auth_answered, s);
}

static void sasl_refused(struct smtp_session *s, enum sasl_result r)
{
	wipe_login(s);
	session_set_state(s, session_command_state(s));
	if (r == SASL_BAD_BASE64)
		session_reply(s, 501, "5.5.2", "Invalid base64 data");
	else
		session_reply(s, 501, "5.5.2", "Invalid SASL response");
	session_error(s);
}

static void plain_response(struct smtp_session *s, const char *b64, size_t len)
{
	char pass[SASL_FIELD_MAX];
	enum sasl_result r = sasl_plain_decode(b64, len, s->auth_login, pass);

	if (r == SASL_BAD_BASE64 || r == SASL_BAD_MESSAGE) {
		sasl_refused(s, r);
		return;
	}
	auth_check(s, pass, r == SASL_BAD_AUTHZID);
	sasl_wipe(pass, sizeof(pass));
}

static void login_user(struct smtp_session *s, const char *b64, size_t len)
{
	enum sasl_result r = sasl_login_decode(b64, len, s->auth_login);
	struct auth_request rq;

	if (r != SASL_OK) {
		sasl_refused(s, r);
		return;
	}
	rq = request_for(s, s->auth_login);
	if (policy_auth_locked(s->srv->auth, &rq)) {
		refuse_locked(s);
		return;
	}
	s->auth_step = AUTH_STEP_LOGIN_PASS;
	session_set_state(s, SS_AUTH);
	smtp_reply_line(&s->out, 334, 1, "UGFzc3dvcmQ6");
}

static void login_pass(struct smtp_session *s, const char *b64, size_t len)
{
	char pass[SASL_FIELD_MAX];
	enum sasl_result r = sasl_login_decode(b64, len, pass);

	if (r != SASL_OK) {
		sasl_refused(s, r);
		return;
	}
	auth_check(s, pass, false);
	sasl_wipe(pass, sizeof(pass));
}

void auth_response_line(struct smtp_session *s, const char *line, size_t len)
{
	if (sasl_is_cancel(line, len)) {
		auth_abort(s);
		session_reply(s, 501, "5.5.2", "Authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		plain_response(s, line, len);
		return;
	case AUTH_STEP_LOGIN_USER:
		login_user(s, line, len);
		return;
	case AUTH_STEP_LOGIN_PASS:
		login_pass(s, line, len);
		return;
	default:
		auth_abort(s); /* cannot happen: SS_AUTH always has a step */
		return;
	}
}

void cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *arg = cmd->arg, *sp;
	size_t mlen, irlen = 0;
	const char *ir = NULL;
	int step;

	if (!auth_enabled(s)) {
		session_reply(s, 503, "5.5.1", "Error: authentication not enabled on this connector");
		session_error(s);
		return;
	}
	if (s->auth_user) {
		session_reply(s, 503, "5.5.1", "Error: already authenticated");
		session_error(s);
		return;
	}
	if (s->tx) {
		session_reply(s, 503, "5.5.1", "Error: AUTH not permitted during a mail transaction");
		session_error(s);
		return;
	}
	sp = memchr(arg, ' ', cmd->arg_len);
	mlen = sp ? (size_t)(sp - arg) : cmd->arg_len;
	if (sp) {
		ir = sp + 1;
		irlen = cmd->arg_len - mlen - 1;
	}
	if (mlen == 0 || (sp && (irlen == 0 || memchr(ir, ' ', irlen)))) {
		session_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		session_error(s);
		return;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0 && (s->rc->auth_mechs & RC_AUTH_PLAIN))
		step = AUTH_STEP_PLAIN;
	else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0 &&
		 (s->rc->auth_mechs & RC_AUTH_LOGIN))
		step = AUTH_STEP_LOGIN_USER;
	else {
		session_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		session_error(s);
		return;
	}
	if (!auth_channel_ok(s)) {
		log_info("%s smtp reject cmd=AUTH reason=no-tls", s->id);
		session_reply(s, 538, "5.7.11",
			      "Encryption required for requested authentication mechanism");
		session_error(s);
		return;
	}
	s->auth_step = step;
	{
		struct auth_request rq = request_for(s, NULL);
		if (policy_auth_locked(s->srv->auth, &rq)) {
			refuse_locked(s);
			return;
		}
	}
	if (ir) {
		if (step == AUTH_STEP_PLAIN)
			plain_response(s, ir, irlen);
		else if (irlen == 1 && ir[0] == '=')
			sasl_refused(s, SASL_BAD_MESSAGE); /* an empty user name */
		else
			login_user(s, ir, irlen); /* LOGIN with the user name at once */
		return;
	}
	session_set_state(s, SS_AUTH);
	if (step == AUTH_STEP_PLAIN)
		smtp_reply_line(&s->out, 334, 1, "");
	else
		smtp_reply_line(&s->out, 334, 1, "VXNlcm5hbWU6");
}

/* ---- the debug protocol log ------------------------------------------------- */

void auth_log_command(const struct smtp_session *s, const char *line, size_t len)
{
	char shown[SMTP_LINE_SHOWN_MAX];
	const char *sp;
	int n;

	if (s->state == SS_AUTH) {
		n = snprintf(shown, sizeof(shown), "<SASL response, %zu octets>", len);
	} else if (len >= 5 && strncasecmp(line, "AUTH ", 5) == 0 &&
		   (sp = memchr(line + 5, ' ', len - 5)) != NULL) {
		n = snprintf(shown, sizeof(shown), "%.*s <initial response, %zu octets>",
			     (int)(sp - line), line, len - (size_t)(sp - line) - 1);
	} else {
		n = snprintf(shown, sizeof(shown), "%.*s", (int)len, line);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(shown))
		n = (int)sizeof(shown) - 1;
	log_debug("%s smtp in %s", s->id, shown);
	plog_in(s, shown, (size_t)n);
}

/* ---- MAIL ----------------------------------------------------------------- */

/* A connector whose only permission is "authenticated" is a submission
 * port: nothing is accepted there without AUTH (as Postfix submission's
 * smtpd_recipient_restrictions = permit_sasl_authenticated, reject, but
 * refused at MAIL, as Exchange's client connector does). */
static bool auth_required(const struct smtp_session *s)
{
	return (s->rc->permissions & PERM_AUTHENTICATED) &&
	       !(s->rc->permissions & (PERM_ANONYMOUS | PERM_RELAY));
}

/* Sender binding (policy/sender.h): 1 the login owns sender (or the
 * connector does not bind), 0 it does not, -1 the LDAP directory could not
 * be asked. */
static int sender_binding(const struct smtp_session *s, const char *sender)
{
	if (s->rc->sender_binding != RC_SENDER_BINDING_ENVELOPE || sender[0] == '\0' ||
	    sender_owned_by(passwd_db_aliases(s->srv->p.users), s->auth_user, sender))
		return 1;
	return sender_owned_in_ldap(s->gen->conf, passwd_db_ldap(s->srv->p.users), s->auth_user,
				    sender);
}

bool auth_mail_check(struct smtp_session *s, const char *sender, struct mail_params *mp)
{
	char q[300], q2[300];
	int owned;

	if (s->auth_user == NULL) {
		if (auth_required(s)) {
			log_info("%s smtp reject cmd=MAIL reply=\"530 5.7.0\" reason=auth-required",
				 s->id);
			session_reply(s, 530, "5.7.0", "Authentication required");
			session_error(s);
			return false;
		}
		/* RFC 4954 5: an AUTH= value from a client we do not trust is <> */
		if (mp->auth[0])
			str_copy(mp->auth, "<>", sizeof(mp->auth));
		return true;
	}
	owned = sender_binding(s, sender);
	if (owned < 0) {
		log_info("%s smtp reject cmd=MAIL reply=\"451 4.4.3\" reason=directory-unavailable "
			 "from=%s", s->id, log_quote(sender, q2, sizeof(q2)));
		session_reply(s, 451, "4.4.3", "Directory temporarily unavailable, try again later");
		return false;
	}
	if (owned == 0) {
		log_info("%s smtp reject cmd=MAIL reply=\"553 5.7.1\" reason=sender-not-owned "
			 "login=%s from=%s",
			 s->id, log_quote(s->auth_user, q, sizeof(q)), log_quote(sender, q2, sizeof(q2)));
		session_reply(s, 553, "5.7.1", "Sender address not owned by user %s", s->auth_user);
		session_error(s);
		return false;
	}
	/* RFC 4954 5: the submitter is the authenticated login unless the
	 * (trusted, authenticated) client names another */
	if (mp->auth[0] == '\0')
		str_copy(mp->auth, s->auth_user, sizeof(mp->auth));
	return true;
}

void auth_mail_proceed(struct smtp_session *s)
{
	char q[300];

	envelope_set_str(&s->tx->env.auth_user, s->auth_user);
	if (s->tx->mail.auth[0])
		log_info("%s smtp mail auth=%s", s->id, log_quote(s->tx->mail.auth, q, sizeof(q)));
}
