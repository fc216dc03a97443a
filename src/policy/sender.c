/*
 * sender.c - sender binding and spoofed local senders (see sender.h).
 */
#include "policy/sender.h"

#include <strings.h>

#include "dir/ldapdir.h"
#include "policy/recipient.h"

bool sender_owned_by(struct alias_db *aliases, const char *login, const char *sender)
{
	if (strcasecmp(login, sender) == 0)
		return true;
	/* a personal alias of the login, never a group (sender.h) */
	return alias_db_is_personal_alias_of(aliases, sender, login);
}

int sender_owned_in_ldap(const struct config *c, struct ldapdir *ld, const char *login,
			 const char *sender)
{
	char one[1][ALIAS_ADDR_MAX];
	size_t n = 0;

	if (ld == NULL || !recipient_is_local(c, sender))
		return 0;
	switch (ldapdir_cached(ld, sender, one, 1, &n)) {
	case LDAPDIR_ALIAS: /* one member only: a personal alias, never a group */
		return n == 1 && strcasecmp(one[0], login) == 0 ? 1 : 0;
	case LDAPDIR_MISS:
	case LDAPDIR_TEMPFAIL:
		return -1;
	default:
		return 0;
	}
}

bool sender_spoofs_local_domain(const struct config *c, const struct receive_connector *rc,
				bool authenticated, const char *sender)
{
	if (!rc->reject_spoofed_local_senders || authenticated || (rc->permissions & PERM_RELAY))
		return false;
	return sender[0] != '\0' && recipient_is_local(c, sender);
}
