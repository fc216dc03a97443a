/*
 * recipient.c - the recipient decision (contract in recipient.h).
 *
 * The order of the rules matters and is the same for every caller:
 *   1. a bare <postmaster> goes to server.postmaster; any other bare
 *      local part is 501 5.1.3;
 *   2. user@[ip] with one of our addresses is local (first authoritative
 *      domain);
 *   3. routing characters in the local part (the relay tricks) are a
 *      relay attempt, 550 5.7.1, unless the client may relay: refused
 *      before any mailbox is looked up;
 *   4. a domain that is not accepted is 550 5.7.1 unless the client may
 *      relay;
 *   5. internal-relay and foreign domains need a send connector (else
 *      550 5.4.4) whose restrictions pass for what is known at RCPT time
 *      (route_check: sender, declared size; never a fallback);
 *   6. in an authoritative domain postmaster@ always goes to
 *      server.postmaster, abuse@ to its own mailbox or else there;
 *   7. a local recipient in the passwd-file is a mailbox; with users {
 *      ldap } the LDAP answer the session fetched instead (a mailbox, or
 *      an alias/group expanded to its members, or 451 4.4.3 when the
 *      directory could not be asked);
 *   8. else an alias of the aliases file (dir/aliases.h) is expanded here,
 *      when the message is queued (as Postfix's virtual_alias_maps at
 *      cleanup): a loop or nesting deeper than ALIAS_DEPTH_MAX is 550
 *      5.4.6, more than RECIPIENT_EXPAND_MAX addresses 550 5.5.3;
 *   9. any other local recipient is 550 5.1.1 (abuse@ and
 *      server.postmaster excepted, as in 6);
 *  and a mailbox (7) or alias (8) marked accept_from=authenticated refuses
 *  a client that has not authenticated with 550 5.7.1
 *  (policy/accept_from.h), before it is accepted or expanded.
 */
#include "policy/recipient.h"

#include <string.h>

#include "dir/aliases.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"
#include "policy/accept_from.h"
#include "route/mailbox.h"
#include "util/log.h"
#include "util/str.h"

static const char *default_domain(const struct config *c)
{
	size_t i;
	for (i = 0; i < c->ndomains; i++)
		if (c->domains[i].type == DOMAIN_AUTHORITATIVE)
			return c->domains[i].name;
	return c->server.fqdn;
}

void recipient_rewrite_literal(const struct config *c,
			       bool (*is_local_ip)(int family, const void *ip), struct mail_addr *to)
{
	int family;
	unsigned char ip[16];

	if ((to->flags & ADDR_F_LITERAL) && addr_literal_ip(to->domain, &family, ip) &&
	    is_local_ip && is_local_ip(family, ip))
		str_copy(to->domain, default_domain(c), sizeof(to->domain));
}

bool recipient_may_relay(const struct receive_connector *rc, bool authenticated)
{
	if (rc == NULL)
		return true;
	if (rc->permissions & PERM_RELAY)
		return true;
	return authenticated && (rc->permissions & PERM_AUTHENTICATED) != 0;
}

static void refuse(struct recipient_verdict *v, int code, const char *enh, const char *why,
		   const char *text)
{
	v->kind = RECIPIENT_REFUSED;
	v->code = code;
	v->enh = enh;
	v->why = why;
	str_copy(v->text, text, sizeof(v->text));
}

/* "local@domain" -> the domain part, or NULL. */
static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at && at[1] ? at + 1 : NULL;
}

bool recipient_is_local(const struct config *c, const char *addr)
{
	const char *d = domain_of(addr);
	const struct accepted_domain *ad = d ? conf_find_domain(c, d) : NULL;

	return ad != NULL && ad->type == DOMAIN_AUTHORITATIVE;
}

bool recipient_mailbox_known(const struct config *c, struct passwd_db *users, const char *addr)
{
	if (!recipient_is_local(c, addr))
		return false;
	if (str_casecmp(addr, c->server.postmaster) == 0)
		return true;
	return users != NULL && passwd_db_exists(users, addr);
}

bool recipient_mailbox_possible(const struct config *c, struct passwd_db *users, const char *addr)
{
	struct ldapdir *ld = passwd_db_ldap(users);

	if (ld && recipient_is_local(c, addr) && str_casecmp(addr, c->server.postmaster) != 0)
		return ldapdir_cached(ld, addr, NULL, 0, NULL) != LDAPDIR_NONE;
	return recipient_mailbox_known(c, users, addr);
}

int recipient_mailbox_lookup(const struct config *c, struct passwd_db *users, const char *addr)
{
	struct ldapdir *ld = passwd_db_ldap(users);
	char one[1][ALIAS_ADDR_MAX];
	size_t n;

	if (ld == NULL || !recipient_is_local(c, addr) ||
	    str_casecmp(addr, c->server.postmaster) == 0)
		return recipient_mailbox_known(c, users, addr) ? 1 : 0;
	switch (ldapdir_lookup(ld, addr, one, 1, &n)) {
	case LDAPDIR_MAILBOX:
		return 1;
	case LDAPDIR_TEMPFAIL:
	case LDAPDIR_MISS:
		return -1;
	default:
		return 0;
	}
}

/* The maildir path of a local address (split at the last '@'). */
static bool mailbox_of(const struct config *c, const char *addr, char *out, size_t outsz)
{
	const char *at = strrchr(addr, '@');
	char local[ADDR_TEXT_MAX], domain[ADDR_DOMAIN_MAX];
	size_t n;

	if (at == NULL || (n = (size_t)(at - addr)) >= sizeof(local) ||
	    !str_copy(domain, at + 1, sizeof(domain)))
		return false;
	memcpy(local, addr, n);
	local[n] = '\0';
	str_lower(domain);
	return maildir_expand(c->maildir, local, domain, out, outsz) == 0;
}

/* Accept final: its local mailbox, or its route when server.postmaster
 * lives in a domain that is not authoritative. */
static void accept_mailbox(const struct config *c, struct recipient_verdict *v, const char *final,
			   const char *why)
{
	v->kind = RECIPIENT_MAILBOX;
	v->why = why;
	str_copy(v->final, final, sizeof(v->final));
	if (!recipient_is_local(c, final)) {
		/* server.postmaster may live elsewhere: route it like any address */
		const char *d = domain_of(final);
		str_copy(v->routed_domain, d ? d : "", sizeof(v->routed_domain));
		str_lower(v->routed_domain);
		v->kind = RECIPIENT_ROUTED;
		route_domain(c, v->routed_domain, &v->route);
		v->routed = true;
		return;
	}
	if (!mailbox_of(c, final, v->mailbox, sizeof(v->mailbox)))
		v->mailbox[0] = '\0';
}

/* accept_from (policy/accept_from.h) for a local mailbox or alias: true
 * when refused (v is filled). */
static bool refused_by_accept_from(struct passwd_db *users, const struct recipient_client *client,
				   const char *addr, struct recipient_verdict *v)
{
	struct dir_attrs a;

	accept_from_lookup(users, addr, &a);
	if (accept_from_allows(&a, client->authenticated))
		return false;
	refuse(v, 550, "5.7.1", "marked accept_from=authenticated and the client has not "
	       "authenticated", ACCEPT_FROM_REFUSAL);
	return true;
}

/* Rule 7-8 with users { ldap }: the answer the session's policy step put
 * in the LDAP cache (smtp/dir_wait.c). true when it decided; false when
 * the directory does not know user (the aliases file and rule 9 follow). */
static bool ldap_decide(const struct config *c, struct ldapdir *ld, const char *user,
			struct recipient_verdict *v)
{
	switch (ldapdir_cached(ld, user, v->expanded, RECIPIENT_EXPAND_MAX, &v->nexpanded)) {
	case LDAPDIR_MAILBOX:
		accept_mailbox(c, v, user, "a mailbox of the LDAP directory");
		return true;
	case LDAPDIR_ALIAS:
		v->kind = RECIPIENT_ALIAS;
		v->why = "an alias or group of the LDAP directory: queued as its members";
		str_copy(v->final, user, sizeof(v->final));
		return true;
	case LDAPDIR_LOOP:
		log_warn("ldap: group of <%s> loops or nests too deep: refusing it", user);
		refuse(v, 550, "5.4.6", "an LDAP group that loops or nests too deep",
		       "Alias expansion failed: loop or nesting too deep");
		return true;
	case LDAPDIR_TOO_MANY:
		refuse(v, 550, "5.5.3", "an LDAP group that expands to too many addresses",
		       "Alias expands to too many recipients");
		return true;
	case LDAPDIR_NONE:
		return false;
	case LDAPDIR_MISS:
	case LDAPDIR_TEMPFAIL:
		break;
	}
	refuse(v, 451, "4.4.3", "the LDAP directory could not be asked (down or timed out)",
	       "Directory temporarily unavailable, try again later");
	return true;
}

void recipient_decide(const struct config *c, struct passwd_db *users,
		      const struct recipient_client *client, const char *sender, uint64_t size,
		      struct mail_addr *to, struct recipient_verdict *v)
{
	char user[ADDR_TEXT_MAX];

	memset(v, 0, sizeof(*v));
	v->code = 250;
	v->enh = "2.1.5";
	str_copy(v->text, "Ok", sizeof(v->text));
	v->route.kind = ROUTE_NONE;
	v->may_relay = recipient_may_relay(client->rc, client->authenticated);

	if (to->flags & ADDR_F_NO_DOMAIN) {
		if (str_casecmp(to->local, "postmaster") != 0) {
			refuse(v, 501, "5.1.3", "a bare local part other than <postmaster>",
			       "Recipient address must have a domain");
			return;
		}
		accept_mailbox(c, v, c->server.postmaster, "bare <postmaster> goes to server.postmaster");
		return;
	}
	recipient_rewrite_literal(c, client->is_local_ip, to);
	if ((to->flags & ADDR_F_ROUTING) && !v->may_relay) {
		refuse(v, 550, "5.7.1", "routing characters in the local part (a relay attempt), "
		       "and the client may not relay", "Relay access denied");
		return;
	}
	v->domain = conf_find_domain(c, to->domain);
	if (v->domain == NULL && !v->may_relay) {
		refuse(v, 550, "5.7.1", "the domain is not accepted and the client may not relay",
		       "Relay access denied");
		return;
	}
	if (v->domain == NULL || v->domain->type == DOMAIN_INTERNAL_RELAY) {
		struct route_verdict rv;

		str_copy(v->routed_domain, to->domain, sizeof(v->routed_domain));
		route_domain(c, v->routed_domain, &v->route);
		v->routed = true;
		if (v->route.kind == ROUTE_NONE) {
			refuse(v, 550, "5.4.4", "no enabled send connector matches the domain",
			       "Unable to route: no send connector for this domain");
			return;
		}
		if (!route_check(v->route.sc, sender, size, &rv)) {
			refuse(v, rv.code, rv.enh,
			       "the chosen send connector's restriction (no fallback to a less "
			       "specific connector)", rv.text);
			return;
		}
		v->kind = RECIPIENT_ROUTED;
		v->why = v->domain ? "internal-relay domain: routed out through a send connector"
				   : "relaying through a send connector";
		addr_format(to, v->final, sizeof(v->final));
		return;
	}
	addr_format(to, user, sizeof(user));
	if (str_casecmp(to->local, "postmaster") == 0) {
		accept_mailbox(c, v, c->server.postmaster,
			       "postmaster@ of an authoritative domain goes to server.postmaster "
			       "(RFC 5321 4.5.1)");
		return;
	}
	if (refused_by_accept_from(users, client, user, v))
		return;
	if (passwd_db_ldap(users) && ldap_decide(c, passwd_db_ldap(users), user, v))
		return;
	if (users == NULL || !passwd_db_exists(users, user)) {
		char why[200];
		enum alias_result ar =
			alias_db_expand(passwd_db_aliases(users), user, v->expanded,
					RECIPIENT_EXPAND_MAX, &v->nexpanded, why, sizeof(why));

		if (ar == ALIAS_EXPANDED) {
			v->kind = RECIPIENT_ALIAS;
			v->why = "an alias of the aliases file: queued as its members";
			str_copy(v->final, user, sizeof(v->final));
			return;
		}
		if (ar == ALIAS_LOOP || ar == ALIAS_TOO_DEEP) {
			log_warn("aliases: %s: refusing <%s>", why, user);
			refuse(v, 550, "5.4.6", "an alias that loops or nests too deep",
			       "Alias expansion failed: loop or nesting too deep");
			return;
		}
		if (ar == ALIAS_TOO_MANY) {
			refuse(v, 550, "5.5.3", "an alias that expands to too many addresses",
			       "Alias expands to too many recipients");
			return;
		}
		if (str_casecmp(to->local, "abuse") == 0) {
			accept_mailbox(c, v, c->server.postmaster,
				       "abuse@ without a mailbox of its own goes to server.postmaster "
				       "(RFC 2142)");
			return;
		}
		if (str_casecmp(user, c->server.postmaster) == 0) {
			accept_mailbox(c, v, user, "server.postmaster");
			return;
		}
		refuse(v, 550, "5.1.1", "no such user in the directory",
		       "Recipient address rejected: mailbox unavailable");
		return;
	}
	accept_mailbox(c, v, user, "a user of the passwd-file");
}

int recipient_check_postmaster(const struct config *c, struct passwd_db *users)
{
	const char *pm = c->server.postmaster;
	const char *d = domain_of(pm);
	char dom[ADDR_DOMAIN_MAX], path[512];
	struct route r;

	str_copy(dom, d ? d : "", sizeof(dom));
	str_lower(dom);
	if (recipient_is_local(c, pm)) {
		if (users != NULL && passwd_db_exists(users, pm))
			return 0;
		if (passwd_db_ldap(users))
			return 0; /* in the LDAP directory or not: known only by asking it */
		if (!mailbox_of(c, pm, path, sizeof(path)))
			str_copy(path, "(the path does not fit)", sizeof(path));
		log_warn("postmaster=<%s> is not a user of the passwd-file %s: mail to postmaster@ of "
			 "every authoritative domain is delivered to %s, where no one can log in to "
			 "read it (add the user with \"transitctl user add %s\", or set "
			 "server.postmaster to a mailbox someone reads)",
			 pm, c->passwd_file, path, pm);
		return 1;
	}
	route_domain(c, dom, &r);
	if (r.kind == ROUTE_NONE) {
		log_warn("postmaster=<%s> is not deliverable: %s is not an authoritative domain and "
			 "no enabled send connector matches it; mail to postmaster@ of every "
			 "authoritative domain and DSNs that cannot be returned would fail",
			 pm, dom);
		return 1;
	}
	return 0;
}
