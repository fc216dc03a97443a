/*
 * dnsbl_wait.c - the session's side of the DNSBL check (policy/dnsbl.c,
 * RFC 5782): started when the session begins, consulted at RCPT.
 *
 * An RCPT that arrives before every list answered is not read yet: the
 * session waits in the policy step (SS_POLICY) and reads the same line
 * again once the check is finished (answers in, or dnsbl-timeout). A
 * listed client gets "554 5.7.1 Service unavailable; client [IP] blocked
 * using ZONE" for every recipient except postmaster and abuse (RFC 5321
 * 4.5.1, RFC 2142), which stay reachable for the listed to ask why. An
 * authenticated session is not checked (a user's own dynamic address is
 * often on a list of dial-up ranges).
 */
#include <stdio.h>
#include <strings.h>

#include "conf/conf.h"
#include "mail/addr.h"
#include "policy/dnsbl.h"
#include "smtp/cmd.h"
#include "smtp/server.h"
#include "smtp/session.h"
#include "util/log.h"

static void dnsbl_wait_cancel(struct smtp_session *s)
{
	(void)s; /* the check is the session's until session_free */
}

static void dnsbl_wait_timeout(struct smtp_session *s)
{
	(void)s; /* the line is read again; the check counts as not listed */
}

static const struct session_wait_ops dnsbl_wait = {
	.what = "dnsbl",
	.cancel = dnsbl_wait_cancel,
	.timeout = dnsbl_wait_timeout,
};

static void dnsbl_answered(void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SS_POLICY && s->wait == &dnsbl_wait)
		session_policy_done(s, session_command_state(s));
}

void session_dnsbl_start(struct smtp_session *s)
{
	s->dnsbl = dnsbl_start(s->srv->p.dns, s->srv->p.base, s->rc, (const struct sockaddr *)&s->ss,
			       s->addr, s->id, dnsbl_answered, s);
}

bool session_dnsbl_hold(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;

	if (dnsbl_finished(s->dnsbl) || s->tx == NULL || s->auth_user != NULL)
		return false;
	smtp_cmd_split(line, len, &cmd);
	if (cmd.verb != SMTP_RCPT)
		return false;
	/* out of memory for the wait's timer: go on without the answers */
	return session_policy_wait(s, &dnsbl_wait);
}

static bool dnsbl_exempt(const struct mail_addr *to)
{
	return strcasecmp(to->local, "postmaster") == 0 || strcasecmp(to->local, "abuse") == 0;
}

bool session_dnsbl_refused(struct smtp_session *s, const struct mail_addr *to, const char *shown)
{
	const struct dnsbl_zone *z;

	if (s->auth_user != NULL || dnsbl_exempt(to) || (z = dnsbl_listed(s->dnsbl)) == NULL)
		return false;
	log_info("%s smtp reject cmd=RCPT to=<%s> reply=\"554 5.7.1\" reason=dnsbl zone=%s", s->id,
		 shown, z->zone);
	session_reply(s, 554, "5.7.1", "Service unavailable; client [%s] blocked using %s%s%s",
		      s->addr, z->zone, z->text ? "; " : "", z->text ? z->text : "");
	session_rcpt_refused(s);
	return true;
}
