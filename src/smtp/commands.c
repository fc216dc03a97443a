/*
 * commands.c - the SMTP server's command table and handlers (RFC 5321
 * 4.1.1, 4.1.4 order of commands, 3.3 mail transactions; RFC 1869/5321
 * EHLO; RFC 2920 PIPELINING; RFC 3030 BDAT; RFC 3207 STARTTLS; RFC 3461
 * DSN parameters; RFC 6531 SMTPUTF8).
 *
 * Each handler first checks state and syntax (5xx/4xx, nothing changes),
 * then proceeds. The table says which commands may come before EHLO and
 * before STARTTLS on a tls = require connector; dispatch enforces that so
 * handlers need not; between BDAT chunks (SS_CHUNKING) only the commands
 * flagged CF_CHUNKING run, so MAIL, RCPT and DATA get 503 5.5.1 and no
 * recipient is ever answered 250 after the envelope went to the queue
 * file. AUTH and its effects at MAIL are in auth.c. Recipient policy
 * (accepted domains, mailbox exists, relay permission, the relay tricks;
 * "authenticated" comes from auth.c's login) is recipient_decide() in
 * policy/recipient.c, called by rcpt_policy() below.
 */
#include "smtp/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/backpressure.h"
#include "policy/recipient.h"
#include "policy/sender.h"
#include "queue/queue.h"
#include "smtp/reply.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

enum {
	CF_BEFORE_HELO = 1 << 0, /* allowed before EHLO/HELO */
	CF_BEFORE_TLS = 1 << 1,	 /* allowed before STARTTLS when TLS is required */
	CF_CHUNKING = 1 << 2,	 /* allowed between BDAT chunks (SS_CHUNKING) */
};

struct command {
	enum smtp_verb verb;
	void (*handler)(struct smtp_session *s, const struct smtp_cmd *cmd);
	unsigned flags;
};

/* ---- transaction ---------------------------------------------------------- */

void tx_free(struct smtp_tx *tx)
{
	if (tx == NULL)
		return;
	if (tx->writer)
		queue_writer_abort(tx->writer);
	envelope_free(&tx->env);
	buf_free(&tx->partial);
	free(tx->from);
	free(tx);
}

void session_reset_tx(struct smtp_session *s)
{
	tx_free(s->tx);
	s->tx = NULL;
	if (s->state == SS_MAIL || s->state == SS_RCPT || s->state == SS_CHUNKING)
		session_set_state(s, SS_READY);
}

enum session_state session_command_state(const struct smtp_session *s)
{
	if (s->helo[0] == '\0')
		return SS_CONNECTED;
	if (s->tx == NULL)
		return SS_READY;
	if (s->tx->bdat)
		return SS_CHUNKING;
	return s->tx->env.nrcpt ? SS_RCPT : SS_MAIL;
}

/* ---- HELO / EHLO ------------------------------------------------------------ */

static bool take_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_err err;
	char name[sizeof(s->helo)];

	if (!smtp_parse_helo(cmd->arg, cmd->arg_len,
			     s->rc->helo_strict ? SMTP_HELO_STRICT : SMTP_HELO_LENIENT, name,
			     sizeof(name), &err)) {
		session_reply(s, err.code, err.enh, "%s", err.text);
		session_error(s);
		return false;
	}
	session_reset_tx(s);
	str_copy(s->helo, name, sizeof(s->helo));
	session_set_state(s, SS_READY);
	return true;
}

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (!take_helo(s, cmd))
		return;
	s->esmtp = false;
	smtp_reply_format(&s->out, 250, NULL, "%s", s->rc->fqdn);
}

static void cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	char line[64];

	if (!take_helo(s, cmd))
		return;
	s->esmtp = true;
	smtp_reply_line(&s->out, 250, 0, s->rc->fqdn);
	smtp_reply_line(&s->out, 250, 0, "PIPELINING");
	snprintf(line, sizeof(line), "SIZE %" PRIu64, s->rc->max_message_size);
	smtp_reply_line(&s->out, 250, 0, line);
	smtp_reply_line(&s->out, 250, 0, "8BITMIME");
	smtp_reply_line(&s->out, 250, 0, "SMTPUTF8");
	smtp_reply_line(&s->out, 250, 0, "DSN");
	smtp_reply_line(&s->out, 250, 0, "CHUNKING");
	if (!s->tls && (s->rc->tls == RC_TLS_OFFER || s->rc->tls == RC_TLS_REQUIRE))
		smtp_reply_line(&s->out, 250, 0, "STARTTLS");
	auth_ehlo_line(s);
	smtp_reply_line(&s->out, 250, 1, "ENHANCEDSTATUSCODES");
}

/* ---- MAIL --------------------------------------------------------------------- */

/* Whether the client authenticated (AUTH, RFC 4954). A relay-permission
 * connector is not authentication. */
static bool session_is_authenticated(const struct smtp_session *s)
{
	return s->auth_user != NULL;
}

/* Back pressure (policy/backpressure.h): at Medium only authenticated
 * clients may start a transaction, at High nobody. A transaction that
 * started before the level rose is let finish. */
static bool mail_refused_by_backpressure(struct smtp_session *s)
{
	if (backpressure_admits_mail(session_is_authenticated(s)))
		return false;
	log_info("%s smtp reject cmd=MAIL reply=\"452 4.3.1\" reason=back-pressure level=%s",
		 s->id, bp_level_name(backpressure_level()));
	session_reply(s, 452, "4.3.1", "Insufficient system resources");
	return true;
}

/* reject-spoofed-local-senders: anonymous mail may not claim to be ours. */
static bool mail_refused_as_spoofed(struct smtp_session *s, const char *sender)
{
	char q[ADDR_TEXT_MAX * 4 + 8];

	if (!sender_spoofs_local_domain(s->gen->conf, s->rc, s->auth_user != NULL, sender))
		return false;
	log_info("%s smtp reject cmd=MAIL reply=\"550 5.7.1\" reason=spoofed-local-sender from=%s",
		 s->id, log_quote(sender, q, sizeof(q)));
	session_reply(s, 550, "5.7.1", "Sender address spoofs a local domain; authenticate first");
	return true;
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct mail_addr from;
	struct mail_params mp;
	struct smtp_err err;
	char text[ADDR_TEXT_MAX];

	if (s->tx) {
		session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		session_error(s);
		return;
	}
	if (!smtp_parse_mail(cmd->arg, cmd->arg_len, &from, &mp, &err)) {
		session_reply(s, err.code, err.enh, "%s", err.text);
		session_error(s);
		return;
	}
	if ((from.flags & ADDR_F_UTF8) && !mp.smtputf8) {
		log_info("%s smtp reject cmd=MAIL reply=\"553 5.6.7\" reason=utf8-without-smtputf8",
			 s->id);
		session_reply(s, 553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter");
		session_error(s);
		return;
	}
	if (!(from.flags & ADDR_F_NULL) && (from.flags & ADDR_F_NO_DOMAIN)) {
		session_reply(s, 553, "5.1.7", "Sender address must have a domain (user@domain)");
		session_error(s);
		return;
	}
	if (mp.has_size && mp.size > s->rc->max_message_size) {
		log_info("%s smtp reject cmd=MAIL reason=size size=%" PRIu64 " limit=%" PRIu64, s->id,
			 mp.size, s->rc->max_message_size);
		session_reply(s, 552, "5.3.4", "Message size exceeds fixed limit of %" PRIu64 " octets",
			      s->rc->max_message_size);
		return;
	}
	if (mail_refused_by_backpressure(s))
		return;
	addr_format(&from, text, sizeof(text));
	if (!auth_mail_check(s, text, &mp)) /* auth.c: 530 / 553 sender binding, AUTH= */
		return;
	if (mail_refused_as_spoofed(s, text))
		return;
	if (session_rate_refuses_mail(s)) /* rates.c: 450 4.7.0 */
		return;
	s->tx = xcalloc(1, sizeof(*s->tx));
	envelope_init(&s->tx->env);
	buf_init(&s->tx->partial);
	s->tx->mail = mp;
	envelope_set_str(&s->tx->env.sender, text);
	s->tx->env.body = mp.body;
	s->tx->env.smtputf8 = mp.smtputf8;
	s->tx->env.ret = mp.ret;
	envelope_set_str(&s->tx->env.envid, mp.envid[0] ? mp.envid : NULL);
	auth_mail_proceed(s);
	session_set_state(s, SS_MAIL);
	session_reply(s, 250, "2.1.0", "Ok");
}

/* ---- RCPT --------------------------------------------------------------------- */

/* The recipient decision is policy/recipient.c's, shared with "transitctl
 * route explain"; this only says what the session knows about the client. */
static void rcpt_policy(struct smtp_session *s, struct mail_addr *to, struct recipient_verdict *v)
{
	struct recipient_client client = {
		.rc = s->rc,
		.authenticated = s->tx->env.auth_user != NULL,
		.is_local_ip = s->srv->p.is_local_ip,
	};

	recipient_decide(s->gen->conf, s->srv->p.users, &client, s->tx->env.sender,
			 s->tx->mail.has_size ? s->tx->mail.size : 0, to, v);
}

static bool rcpt_is_duplicate(const struct envelope *env, const char *addr)
{
	size_t i;
	for (i = 0; i < env->nrcpt; i++)
		if (str_casecmp(env->rcpt[i].addr, addr) == 0)
			return true;
	return false;
}

/* An alias (recipient.h RECIPIENT_ALIAS): queue its members, each once,
 * with ORCPT = the alias unless the client gave one (RFC 3461 4.2), so a
 * DSN names the address the sender used. Logs the EXPAND line. false
 * (after replying 452 4.5.3) when the members overflow the recipient
 * limit: nothing of the alias is queued then. */
static bool rcpt_queue_alias(struct smtp_session *s, const struct recipient_verdict *v,
			     const struct rcpt_params *rp)
{
	char orcpt[ADDR_TEXT_MAX + 8], list[1024], q[sizeof(list) + 64];
	size_t i, len = 0, fresh = 0;

	for (i = 0; i < v->nexpanded; i++)
		if (!rcpt_is_duplicate(&s->tx->env, v->expanded[i]))
			fresh++;
	if (s->tx->env.nrcpt + fresh > s->rc->max_recipients) {
		session_reply(s, 452, "4.5.3", "Too many recipients (limit is %u)",
			      s->rc->max_recipients);
		return false;
	}
	if (rp->orcpt[0])
		str_copy(orcpt, rp->orcpt, sizeof(orcpt));
	else
		snprintf(orcpt, sizeof(orcpt), "rfc822;%s", v->final);
	list[0] = '\0';
	for (i = 0; i < v->nexpanded; i++) {
		/* the log line stays bounded: "..." once the list is full */
		size_t room = sizeof(list) - len;
		int w = room > 4 ? snprintf(list + len, room - 4, "%s<%s>", i ? "," : "",
					    v->expanded[i])
				 : -1;
		if (w < 0 || (size_t)w >= room - 4) {
			if (room > 4) {
				memcpy(list + len, "...", 4);
				len = sizeof(list);
			}
		} else {
			len += (size_t)w;
		}
		if (!rcpt_is_duplicate(&s->tx->env, v->expanded[i]))
			envelope_add_rcpt(&s->tx->env, v->expanded[i], orcpt, rp->notify);
	}
	log_info("%s expand from=<%s> to=%s", s->id, v->final, log_quote(list, q, sizeof(q)));
	return true;
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct mail_addr to;
	struct rcpt_params rp;
	struct smtp_err err;
	struct recipient_verdict v;
	char shown[ADDR_TEXT_MAX], q[ADDR_TEXT_MAX + 16];

	if (s->tx == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		session_error(s);
		return;
	}
	if (!smtp_parse_rcpt(cmd->arg, cmd->arg_len, &to, &rp, &err)) {
		session_reply(s, err.code, err.enh, "%s", err.text);
		session_error(s);
		return;
	}
	if ((to.flags & ADDR_F_UTF8) && !s->tx->mail.smtputf8) {
		log_info("%s smtp reject cmd=RCPT reply=\"553 5.6.7\" reason=utf8-without-smtputf8",
			 s->id);
		session_reply(s, 553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8 in MAIL");
		session_error(s);
		return;
	}
	if (s->tx->env.nrcpt >= s->rc->max_recipients) {
		session_reply(s, 452, "4.5.3", "Too many recipients (limit is %u)",
			      s->rc->max_recipients);
		return;
	}
	addr_format(&to, shown, sizeof(shown));
	if (session_rate_refuses_rcpt(s)) /* rates.c: 450 4.7.0 */
		return;
	if (session_checks_refused(s, &to, shown))
		return;
	rcpt_policy(s, &to, &v);
	if (v.code != 250) {
		char from[ADDR_TEXT_MAX * 4 + 8], tmp[ADDR_TEXT_MAX + 8];
		snprintf(tmp, sizeof(tmp), "<%s>", s->tx->env.sender);
		log_info("%s smtp reject cmd=RCPT to=%s reply=\"%d %s\" from=%s", s->id,
			 log_quote(shown, q, sizeof(q)), v.code, v.enh, log_quote(tmp, from, sizeof(from)));
		session_reply(s, v.code, v.enh, "<%s>: %s", shown, v.text);
		if (v.code >= 500) /* a 4xx (the directory down) is ours, not a harvest */
			session_rcpt_refused(s);
		return;
	}
	if (v.kind == RECIPIENT_ALIAS) {
		if (!rcpt_queue_alias(s, &v, &rp))
			return;
	} else if (!rcpt_is_duplicate(&s->tx->env, v.final))
		envelope_add_rcpt(&s->tx->env, v.final, rp.orcpt, rp.notify);
	session_set_state(s, SS_RCPT);
	session_reply(s, 250, "2.1.5", "Ok");
}

/* ---- DATA / BDAT ---------------------------------------------------------------- */

static bool content_allowed(struct smtp_session *s, bool bdat)
{
	if (s->tx == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return false;
	}
	if (s->tx->env.nrcpt == 0) {
		session_reply(s, 554, "5.5.1", "Error: no valid recipients");
		return false;
	}
	if (!bdat && s->tx->bdat) {
		session_reply(s, 503, "5.5.1", "Error: DATA not allowed after BDAT");
		return false;
	}
	return true;
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arg_len != 0) {
		session_reply(s, 501, "5.5.4", "Syntax: DATA (no argument)");
		session_error(s);
		return;
	}
	if (!content_allowed(s, false)) {
		session_error(s);
		return;
	}
	if (!content_begin(s))
		return;
	/* "DATA<LF>.<CRLF>" (normalize mode) is no <CRLF>.<CRLF> either */
	s->tx->after_bare_lf = s->cmd_bare_lf;
	session_set_state(s, SS_DATA);
	session_data_timeouts(s, true);
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	uint64_t size;
	bool last;
	struct smtp_err err;

	if (!smtp_parse_bdat(cmd->arg, cmd->arg_len, &size, &last, &err)) {
		/* the chunk size is unknown, so its bytes will read as junk commands */
		session_reply(s, err.code, err.enh, "%s", err.text);
		session_error(s);
		return;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_discard = false;
	if (!content_allowed(s, true) || (!s->tx->bdat && !content_begin(s))) {
		/* RFC 3030 3: the chunk is still read, then dropped */
		s->bdat_discard = true;
		session_error(s);
		if (s->state == SS_CLOSING)
			return;
	} else {
		s->tx->bdat = true;
	}
	session_set_state(s, SS_BDAT);
	session_data_timeouts(s, true);
	if (size == 0) {
		/* nothing to read: finish the chunk now */
		s->state = SS_BDAT;
		if (s->bdat_discard) {
			s->bdat_discard = false;
			session_set_state(s, session_command_state(s));
		} else if (last) {
			content_end(s);
		} else {
			session_data_timeouts(s, false);
			session_reply(s, 250, "2.0.0", "%" PRIu64 " octets received", s->tx->size);
			session_set_state(s, SS_CHUNKING);
		}
	}
}

/* ---- the rest ------------------------------------------------------------------- */

static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reset_tx(s);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reply(s, 221, "2.0.0", "Bye");
	session_close(s, "quit");
}

static void cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reply(s, 214, "2.0.0",
		      "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS");
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	/* RFC 5321 3.5.3: 252 without revealing whether the mailbox exists */
	session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reply(s, 502, "5.5.1", "EXPN not available");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->arg_len != 0) {
		session_reply(s, 501, "5.5.4", "Syntax: STARTTLS (no argument)");
		session_error(s);
		return;
	}
	if (s->tls) {
		session_reply(s, 503, "5.5.1", "Error: TLS already active");
		session_error(s);
		return;
	}
	if (s->rc->tls != RC_TLS_OFFER && s->rc->tls != RC_TLS_REQUIRE) {
		session_reply(s, 502, "5.5.1", "Error: STARTTLS not available");
		session_error(s);
		return;
	}
	if (s->tx) {
		/* RFC 3207 4: a transaction in progress is dropped */
		session_reset_tx(s);
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	session_start_tls(s);
}

static void cmd_unknown(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	session_reply(s, 500, "5.5.2", "Error: command not recognized");
	session_error(s);
}

static const struct command command_table[] = {
	{SMTP_EHLO, cmd_ehlo, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_HELO, cmd_helo, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_STARTTLS, cmd_starttls, CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_MAIL, cmd_mail, 0},
	{SMTP_RCPT, cmd_rcpt, 0},
	{SMTP_DATA, cmd_data, 0},
	{SMTP_BDAT, cmd_bdat, CF_CHUNKING},
	{SMTP_RSET, cmd_rset, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_NOOP, cmd_noop, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_QUIT, cmd_quit, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_HELP, cmd_help, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
	{SMTP_VRFY, cmd_vrfy, CF_BEFORE_HELO},
	{SMTP_EXPN, cmd_expn, CF_BEFORE_HELO},
	{SMTP_AUTH, cmd_auth, CF_BEFORE_TLS}, /* auth.c answers 538 5.7.11 before TLS */
	{SMTP_UNKNOWN, cmd_unknown, CF_BEFORE_HELO | CF_BEFORE_TLS | CF_CHUNKING},
};

void commands_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd cmd;
	const struct command *c;

	smtp_cmd_split(line, len, &cmd);
	for (c = command_table; c->verb != SMTP_UNKNOWN && c->verb != cmd.verb; c++)
		;
	if (!(c->flags & CF_BEFORE_HELO) && s->helo[0] == '\0') {
		if (cmd.verb == SMTP_BDAT)
			goto refuse_bdat;
		session_reply(s, 503, "5.5.1", "Error: send EHLO/HELO first");
		session_error(s);
		return;
	}
	if (!(c->flags & CF_BEFORE_TLS) && s->rc->tls == RC_TLS_REQUIRE && !s->tls) {
		if (cmd.verb == SMTP_BDAT)
			goto refuse_bdat;
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		session_error(s);
		return;
	}
	if (!(c->flags & CF_CHUNKING) && s->state == SS_CHUNKING) {
		/* The queue file already holds the envelope: a recipient
		 * answered 250 now would be silently dropped (RFC 3030 gives
		 * no way to extend it; Postfix answers the same). */
		session_reply(s, 503, "5.5.1", "Error: %s not allowed after BDAT; send BDAT LAST or RSET",
			      smtp_verb_name(cmd.verb));
		session_error(s);
		return;
	}
	c->handler(s, &cmd);
	return;

refuse_bdat: {
	/* read and drop the chunk so its bytes are not taken for commands */
	uint64_t size;
	bool last;
	struct smtp_err err;
	if (smtp_parse_bdat(cmd.arg, cmd.arg_len, &size, &last, &err) && size > 0) {
		s->bdat_left = size;
		s->bdat_discard = true;
		session_set_state(s, SS_BDAT);
	}
	if (s->helo[0] == '\0')
		session_reply(s, 503, "5.5.1", "Error: send EHLO/HELO first");
	else
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
	session_error(s);
}
}
