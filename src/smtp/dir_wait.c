/*
 * dir_wait.c - the session's side of the LDAP directory (users { ldap },
 * dir/ldapdir.h): a directory question that the cache cannot answer is
 * asked through the policy step, so the event loop never waits on the
 * server.
 *
 * An RCPT to an address in an authoritative domain, or (authenticated,
 * sender binding on) a MAIL FROM in one, whose address is not in the
 * LDAP cache is not read yet: the session parks (SS_POLICY), a worker
 * asks the server and fills the cache, and the same line is read again;
 * recipient_decide() and sender_owned_in_ldap() then answer from the
 * cache. If the answer is still not there when the line comes back (the
 * server was down, the wait timed out after command-timeout, or the entry
 * expired at once), the line is not held a second time: the decision
 * sees "not cached" and answers 451 4.4.3, a temporary refusal.
 */
#include <strings.h>

#include "conf/conf.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"
#include "mail/addr.h"
#include "policy/recipient.h"
#include "smtp/cmd.h"
#include "smtp/server.h"
#include "smtp/session.h"
#include "util/str.h"

static void dir_wait_cancel(struct smtp_session *s)
{
	ldapdir_fetch_cancel(s->dir_fetch);
	s->dir_fetch = NULL;
}

static void dir_wait_timeout(struct smtp_session *s)
{
	(void)s; /* the line is read again and answered 451 4.4.3 (not cached) */
}

static const struct session_wait_ops dir_wait = {
	.what = "directory",
	.cancel = dir_wait_cancel,
	.timeout = dir_wait_timeout,
};

static void dir_answered(void *arg)
{
	struct smtp_session *s = arg;

	s->dir_fetch = NULL;
	if (s->state == SS_POLICY && s->wait == &dir_wait)
		session_policy_done(s, session_command_state(s));
}

/* The address the line asks the directory about, or false. */
static bool dir_question(struct smtp_session *s, const char *line, size_t len, char *addr,
			 size_t addrsz)
{
	struct smtp_cmd cmd;
	struct mail_addr a;
	struct smtp_err err;

	smtp_cmd_split(line, len, &cmd);
	if (cmd.verb == SMTP_RCPT && s->tx != NULL) {
		struct rcpt_params rp;
		if (!smtp_parse_rcpt(cmd.arg, cmd.arg_len, &a, &rp, &err))
			return false; /* the command answers the syntax error */
		recipient_rewrite_literal(s->gen->conf, s->srv->p.is_local_ip, &a); /* as RCPT */
	} else if (cmd.verb == SMTP_MAIL && s->tx == NULL && s->auth_user != NULL &&
		   s->rc->sender_binding == RC_SENDER_BINDING_ENVELOPE) {
		struct mail_params mp;
		if (!smtp_parse_mail(cmd.arg, cmd.arg_len, &a, &mp, &err) ||
		    (a.flags & ADDR_F_NULL))
			return false;
		addr_format(&a, addr, addrsz);
		if (str_casecmp(addr, s->auth_user) == 0)
			return false; /* the login's own address: nothing to ask */
	} else
		return false;
	if (a.flags & ADDR_F_NO_DOMAIN)
		return false;
	if (strcasecmp(a.local, "postmaster") == 0)
		return false; /* always server.postmaster (recipient.c rule 6) */
	addr_format(&a, addr, addrsz);
	return recipient_is_local(s->gen->conf, addr);
}

bool session_dir_hold(struct smtp_session *s, const char *line, size_t len)
{
	struct ldapdir *ld = passwd_db_ldap(s->srv->p.users);
	char addr[ADDR_TEXT_MAX];

	if (ld == NULL || !dir_question(s, line, len, addr, sizeof(addr)))
		return false;
	if (s->dir_asked[0] && str_casecmp(s->dir_asked, addr) == 0) {
		s->dir_asked[0] = '\0'; /* asked once: decide from what the cache has */
		return false;
	}
	if (ldapdir_cached(ld, addr, NULL, 0, NULL) != LDAPDIR_MISS)
		return false;
	if (!session_policy_wait(s, &dir_wait))
		return false; /* no memory for the timer: 451 4.4.3 from the decision */
	str_copy(s->dir_asked, addr, sizeof(s->dir_asked));
	s->dir_fetch = ldapdir_fetch(ld, addr, dir_answered, s);
	return true;
}

void session_dir_free(struct smtp_session *s)
{
	ldapdir_fetch_cancel(s->dir_fetch);
	s->dir_fetch = NULL;
}
