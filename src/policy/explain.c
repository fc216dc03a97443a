/*
 * explain.c - "transitctl route explain" (contract in recipient.h): the
 * decision of recipient_decide(), the same the SMTP server takes at RCPT,
 * written out for an administrator with the rule that decided, every send
 * connector considered, and the reply the client would get.
 */
#include "policy/recipient.h"

#include <string.h>

#include "util/str.h"

static void explain_connector(const struct receive_connector *rc, bool authenticated, bool relay,
			      struct buf *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} perms[] = {{PERM_ANONYMOUS, "anonymous"},
		     {PERM_AUTHENTICATED, "authenticated"},
		     {PERM_RELAY, "relay"}};
	const char *sep = "";
	size_t i;

	if (rc == NULL) {
		buf_printf(out, "receive connector: not given (relaying assumed allowed; name one "
				"with --receive-connector)\n");
		return;
	}
	buf_printf(out, "receive connector %s: permissions=", rc->name);
	for (i = 0; i < sizeof(perms) / sizeof(perms[0]); i++)
		if (rc->permissions & perms[i].bit) {
			buf_printf(out, "%s%s", sep, perms[i].name);
			sep = ",";
		}
	buf_printf(out, "%s; client %s; relaying %s\n", *sep ? "" : "none",
		   authenticated ? "authenticated" : "not authenticated",
		   relay ? "allowed" : "not allowed");
}

/* An alias: its final addresses, and what becomes of each. */
static void explain_expansion(const struct config *c, struct passwd_db *users,
			      const struct recipient_verdict *v, struct buf *out)
{
	size_t i;

	buf_printf(out, "expand: <%s> ->", v->final);
	for (i = 0; i < v->nexpanded; i++)
		buf_printf(out, "%s <%s>", i ? "," : "", v->expanded[i]);
	buf_printf(out, "\n");
	for (i = 0; i < v->nexpanded; i++) {
		const char *a = v->expanded[i], *at = strrchr(a, '@');
		struct route r;
		char dom[ADDR_DOMAIN_MAX];

		if (recipient_is_local(c, a)) {
			int known = recipient_mailbox_lookup(c, users, a);
			buf_printf(out, "member: <%s> %s\n", a,
				   known > 0    ? "local mailbox"
				   : known == 0 ? "unknown local address: its delivery fails 5.1.1"
						: "directory unavailable: its delivery waits (4.4.3)");
			continue;
		}
		str_copy(dom, at ? at + 1 : "", sizeof(dom));
		str_lower(dom);
		route_domain(c, dom, &r);
		if (r.kind == ROUTE_CONNECTOR)
			buf_printf(out, "member: <%s> relayed through send connector %s\n", a,
				   r.sc->name);
		else
			buf_printf(out, "member: <%s> no send connector: fails 5.4.4\n", a);
	}
	buf_printf(out, "result: accepted, alias expanded to %zu recipient%s\n", v->nexpanded,
		   v->nexpanded == 1 ? "" : "s");
}

int recipient_explain(const struct config *c, struct passwd_db *users, const char *rcpt,
		      const char *sender, uint64_t size, const char *rc_name, bool authenticated,
		      bool (*is_local_ip)(int family, const void *ip), struct buf *out)
{
	struct recipient_client client = {
		.rc = NULL, .authenticated = authenticated, .is_local_ip = is_local_ip};
	struct recipient_verdict v;
	struct mail_addr to;
	char shown[ADDR_TEXT_MAX];
	const char *why = NULL;
	size_t i, len = strlen(rcpt);

	if (len >= 2 && rcpt[0] == '<' && rcpt[len - 1] == '>') {
		rcpt++;
		len -= 2;
	}
	if (addr_parse(rcpt, len, false, &to, &why) != ADDR_OK) {
		buf_printf(out, "recipient <%.*s>: %s\nresult: refused 501 5.1.3 %s\n", (int)len, rcpt,
			   why ? why : "not an address", why ? why : "not an address");
		return 1;
	}
	if (rc_name) {
		for (i = 0; i < c->nrcs; i++)
			if (strcmp(c->rcs[i].name, rc_name) == 0)
				client.rc = &c->rcs[i];
		if (client.rc == NULL) {
			buf_printf(out, "receive connector %s: not configured\n", rc_name);
			return 1;
		}
	}
	addr_format(&to, shown, sizeof(shown));
	buf_printf(out, "recipient: <%s>\n", shown);
	if (!(to.flags & ADDR_F_NO_DOMAIN))
		buf_printf(out, "domain: %s\n", to.domain);
	if (sender)
		buf_printf(out, "sender: <%s>\n", sender);
	if (size)
		buf_printf(out, "size: %llu\n", (unsigned long long)size);

	/* with LDAP, ask the server now (blocking is fine in transitctl): the
	 * decision below reads the cache, as the daemon's RCPT does */
	if (!(to.flags & ADDR_F_NO_DOMAIN))
		(void)recipient_mailbox_lookup(c, users, shown);
	recipient_decide(c, users, &client, sender ? sender : "", size, &to, &v);

	explain_connector(client.rc, authenticated, v.may_relay, out);
	if (v.domain)
		buf_printf(out, "accepted domain %s: %s\n", v.domain->name,
			   v.domain->type == DOMAIN_AUTHORITATIVE
				   ? "authoritative (mailboxes live here)"
				   : "internal-relay (accepted, routed out)");
	else if (!(to.flags & ADDR_F_NO_DOMAIN))
		buf_printf(out, "accepted domain: none (relaying)\n");
	if (v.routed)
		route_explain_connectors(c, v.routed_domain, &v.route, out);
	buf_printf(out, "rule: %s\n", v.why ? v.why : "-");
	switch (v.kind) {
	case RECIPIENT_REFUSED:
		buf_printf(out, "result: refused %d %s <%s>: %s\n", v.code, v.enh, shown, v.text);
		return 1;
	case RECIPIENT_MAILBOX:
		buf_printf(out, "mailbox: <%s> %s\n", v.final,
			   v.mailbox[0] ? v.mailbox : "(the maildir path does not fit)");
		buf_printf(out, "result: accepted, local delivery to mailbox %s\n", v.mailbox);
		return 0;
	case RECIPIENT_ROUTED:
		if (v.route.kind != ROUTE_CONNECTOR) {
			/* only server.postmaster in a domain nothing routes */
			buf_printf(out, "result: accepted as <%s>, but no send connector matches: "
					"delivery will fail 5.4.4\n", v.final);
			return 0;
		}
		if (strcmp(v.final, shown) != 0)
			buf_printf(out, "rewritten: <%s>\n", v.final);
		buf_printf(out, "result: accepted, relayed through send connector %s\n",
			   v.route.sc->name);
		return 0;
	case RECIPIENT_ALIAS:
		explain_expansion(c, users, &v, out);
		return 0;
	}
	return 1;
}
