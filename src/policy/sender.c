/*
 * sender.c - sender binding and spoofed local senders (see sender.h).
 */
#include "policy/sender.h"

#include <strings.h>

#include "policy/recipient.h"

bool sender_owned_by(const char *login, const char *sender)
{
	/* Hook for aliases: also true when sender is an alias or a group
	 * the login may send as (users { aliases = ... }, LDAP). */
	return strcasecmp(login, sender) == 0;
}

bool sender_spoofs_local_domain(const struct config *c, const struct receive_connector *rc,
				bool authenticated, const char *sender)
{
	if (!rc->reject_spoofed_local_senders || authenticated || (rc->permissions & PERM_RELAY))
		return false;
	return sender[0] != '\0' && recipient_is_local(c, sender);
}
