/*
 * client_checks.c - the session's side of the checks on the client's
 * address: DNS block lists (policy/dnsbl.c, RFC 5782) and, with
 * require-ptr, forward-confirmed reverse DNS (policy/fcrdns.c). Both
 * start when the session begins and are consulted at RCPT.
 *
 * An RCPT that arrives before the checks finished is not read yet: the
 * session waits in the policy step (SS_POLICY) and reads the same line
 * again once they are (answers in, or dnsbl-timeout; the PTR check at
 * ptr-timeout). A listed client gets "554 5.7.1 Service
 * unavailable; client [IP] blocked using ZONE"; a client without a
 * confirmed name "450 4.7.25 Client host rejected: cannot find your
 * hostname" (RFC 7372; 4xx as Postfix's reject_unknown_client_hostname,
 * since a DNS failure looks the same). Neither applies to postmaster and
 * abuse (RFC 5321 4.5.1, RFC 2142), which stay reachable for the refused
 * to ask why, nor to an authenticated session (a user's own dynamic
 * address is often listed and has no name).
 */
#include <stdio.h>
#include <strings.h>

#include "conf/conf.h"
#include "mail/addr.h"
#include "policy/dnsbl.h"
#include "policy/fcrdns.h"
#include "smtp/cmd.h"
#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"

static void checks_wait_cancel(struct smtp_session *s)
{
	(void)s; /* the check is the session's until session_free */
}

static void checks_wait_timeout(struct smtp_session *s)
{
	(void)s; /* the line is read again; the check counts as not listed */
}

static const struct session_wait_ops checks_wait = {
	.what = "client-checks",
	.cancel = checks_wait_cancel,
	.timeout = checks_wait_timeout,
};

static void checks_answered(void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SS_POLICY && s->wait == &checks_wait)
		session_policy_done(s, session_command_state(s));
}

static void fcrdns_answered(void *arg)
{
	struct smtp_session *s = arg;

	if (dnsbl_finished(s->dnsbl))
		checks_answered(s);
}

static void dnsbl_done(void *arg)
{
	struct smtp_session *s = arg;

	if (fcrdns_finished(s->fcrdns))
		checks_answered(s);
}

void session_checks_start(struct smtp_session *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->ss;

	if (s->rc->require_ptr)
		s->fcrdns = fcrdns_start(s->srv->p.dns, s->srv->p.base, s->rc->ptr_timeout, sa,
					 s->addr, s->id, fcrdns_answered, s);
	s->dnsbl = dnsbl_start(s->srv->p.dns, s->srv->p.base, s->rc, sa, s->addr, s->id, dnsbl_done,
			       s);
}

void session_checks_free(struct smtp_session *s)
{
	dnsbl_free(s->dnsbl);
	s->dnsbl = NULL;
	fcrdns_free(s->fcrdns);
	s->fcrdns = NULL;
}

bool session_checks_hold(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;

	if ((dnsbl_finished(s->dnsbl) && fcrdns_finished(s->fcrdns)) || s->tx == NULL ||
	    s->auth_user != NULL)
		return false;
	smtp_cmd_split(line, len, &cmd);
	if (cmd.verb != SMTP_RCPT)
		return false;
	/* out of memory for the wait's timer: go on without the answers */
	return session_policy_wait(s, &checks_wait);
}

static bool checks_exempt(const struct mail_addr *to)
{
	return strcasecmp(to->local, "postmaster") == 0 || strcasecmp(to->local, "abuse") == 0;
}

bool session_checks_refused(struct smtp_session *s, const struct mail_addr *to, const char *shown)
{
	const struct dnsbl_zone *z;
	char q[ADDR_TEXT_MAX + 16];

	if (s->auth_user != NULL || checks_exempt(to))
		return false;
	if (s->rc->require_ptr && fcrdns_name(s->fcrdns) == NULL) {
		log_info("%s smtp reject cmd=RCPT to=%s reply=\"450 4.7.25\" reason=no-fcrdns",
			 s->id, log_quote(shown, q, sizeof(q)));
		session_reply(s, 450, "4.7.25", "Client host rejected: cannot find your hostname");
		session_rcpt_refused(s);
		return true;
	}
	if ((z = dnsbl_listed(s->dnsbl)) == NULL)
		return false;
	log_info("%s smtp reject cmd=RCPT to=%s reply=\"554 5.7.1\" reason=dnsbl zone=%s", s->id,
		 log_quote(shown, q, sizeof(q)), z->zone);
	session_reply(s, 554, "5.7.1", "Service unavailable; client [%s] blocked using %s%s%s",
		      s->addr, z->zone, z->text ? "; " : "", z->text ? z->text : "");
	session_rcpt_refused(s);
	return true;
}
