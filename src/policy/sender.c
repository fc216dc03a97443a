/*
 * sender.c - sender binding (see sender.h).
 */
#include "policy/sender.h"

#include <strings.h>

bool sender_owned_by(const char *login, const char *sender)
{
	/* Hook for aliases: also true when sender is an alias or a group
	 * the login may send as (users { aliases = ... }, LDAP). */
	return strcasecmp(login, sender) == 0;
}
