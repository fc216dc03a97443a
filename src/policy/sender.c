/*
 * sender.c - sender binding and spoofed local senders (see sender.h).
 */
#include "policy/sender.h"

#include <strings.h>

#include "policy/recipient.h"

bool sender_owned_by(struct alias_db *aliases, const char *login, const char *sender)
{
	if (strcasecmp(login, sender) == 0)
		return true;
	/* a personal alias of the login, never a group (sender.h) */
	return alias_db_is_personal_alias_of(aliases, sender, login);
}

bool sender_spoofs_local_domain(const struct config *c, const struct receive_connector *rc,
				bool authenticated, const char *sender)
{
	if (!rc->reject_spoofed_local_senders || authenticated || (rc->permissions & PERM_RELAY))
		return false;
	return sender[0] != '\0' && recipient_is_local(c, sender);
}
