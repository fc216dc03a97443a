/*
 * sender.h - sender binding: which envelope senders (MAIL FROM, RFC 5321
 * 4.1.1.2) an authenticated login may use. A login (a passwd-file
 * user name, which is an address) owns its own address and its personal
 * aliases (dir/aliases.h); the rule is this one function, so the SMTP
 * server and any later check (From:, route explain) agree.
 */
#ifndef TRANSIT_POLICY_SENDER_H
#define TRANSIT_POLICY_SENDER_H

#include <stdbool.h>

#include "conf/conf.h"
#include "dir/aliases.h"

/* true when login may send as sender ("local@domain", not "<>"): its own
 * address, or a personal alias of it, i.e. an alias of the aliases file
 * whose whole expansion is exactly the login (info@ -> alice@). A group
 * (several members) is never a sender for any of its members: "send as" a
 * group needs an explicit permission, as in Exchange, not membership.
 * Compared case-insensitively, as the directory compares user names.
 * aliases may be NULL (no aliases file). */
bool sender_owned_by(struct alias_db *aliases, const char *login, const char *sender);

/* The same rule over the LDAP directory (users { ldap }): 1 when sender,
 * in an authoritative domain, is an alias (alias attribute) of the
 * entry whose mail is login, from the LDAP cache the session's policy
 * step filled (smtp/dir_wait.c); 0 when not; -1 when the directory could
 * not be asked (a temporary refusal, never a permanent one). */
struct ldapdir;
int sender_owned_in_ldap(const struct config *c, struct ldapdir *ld, const char *login,
			 const char *sender);

/* reject-spoofed-local-senders (issue 7, "anonymous is never
 * authenticated"): true when a session that has not authenticated, on a
 * connector rc with the option on and without the relay permission,
 * gives a sender ("local@domain"; "" for <>, which is always allowed) in
 * one of our authoritative domains. */
bool sender_spoofs_local_domain(const struct config *c, const struct receive_connector *rc,
				bool authenticated, const char *sender);

#endif
