/*
 * from_binding.c - sender binding on the From: header (issue 7;
 * sender-binding-header = true on a receive connector): in a session
 * that authenticated, every address of the message's From: field(s)
 * must be the login's own address or one of its personal aliases, the
 * same rule as for MAIL FROM (policy/sender.h sender_owned_by). Checked
 * at the end of the content, before the commit; otherwise "550 5.7.1".
 * The field is collected as the header lines go by (mail/fromhdr.h,
 * bounded); a From: that cannot be parsed, has too many addresses or is
 * longer than FROMHDR_VALUE_MAX cannot be shown to be the login's and is
 * refused the same way. A message without From: claims nobody (RFC
 * 5322 requires one, but that is not this check's business).
 * Anonymous sessions are not bound (reject-spoofed-local-senders and
 * accept_from are the rules for them).
 */
#include <stdio.h>
#include <stdlib.h>

#include "dir/passwd.h"
#include "mail/fromhdr.h"
#include "policy/sender.h"
#include "smtp/session.h"
#include "util/log.h"
#include "util/xmalloc.h"

static bool binding_applies(const struct smtp_session *s)
{
	return s->rc->sender_binding_header && s->auth_user != NULL;
}

void from_binding_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_tx *tx = s->tx;

	if (!binding_applies(s))
		return;
	if (tx->from == NULL)
		tx->from = xcalloc(1, sizeof(*tx->from));
	fromhdr_line(tx->from, line, len);
}

static void refuse(struct smtp_session *s, const char *what)
{
	struct smtp_tx *tx = s->tx;

	/* a reply line is bounded: the address shown, and the login, are cut
	 * rather than the reply */
	snprintf(tx->fail_buf, sizeof(tx->fail_buf), "From: header %.160s by user %.64s", what,
		 s->auth_user);
	content_fail(tx, "from-not-owned", 550, "5.7.1", tx->fail_buf);
}

void from_binding_check(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char (*addrs)[ADDR_TEXT_MAX], q[600], q2[ADDR_TEXT_MAX * 4 + 8];
	const char *why = NULL;
	size_t n = 0, i;
	enum fromhdr_status st;

	if (!binding_applies(s) || tx->from == NULL || tx->from->fields == 0)
		return;
	log_quote(s->auth_user, q, sizeof(q));
	if (tx->from->overflow) {
		log_info("%s smtp from-header login=%s reason=too-long limit=%d", s->id, q,
			 FROMHDR_VALUE_MAX);
		refuse(s, "too long to be verified as owned");
		return;
	}
	addrs = xcalloc(FROMHDR_ADDRS_MAX, sizeof(*addrs));
	st = fromhdr_addresses(tx->from->value, tx->from->len, addrs, FROMHDR_ADDRS_MAX, &n, &why);
	if (st != FROMHDR_OK) {
		log_info("%s smtp from-header login=%s reason=\"%s\"", s->id, q, why);
		refuse(s, "not understood, so not verified as owned");
		free(addrs);
		return;
	}
	for (i = 0; i < n; i++)
		if (!sender_owned_by(passwd_db_aliases(s->srv->p.users), s->auth_user, addrs[i]))
			break;
	if (i < n) {
		char what[ADDR_TEXT_MAX + 32];
		log_info("%s smtp from-header login=%s from=%s reason=not-owned", s->id, q,
			 log_quote(addrs[i], q2, sizeof(q2)));
		snprintf(what, sizeof(what), "address <%.*s> not owned", 200, addrs[i]);
		refuse(s, what);
	}
	free(addrs);
}
