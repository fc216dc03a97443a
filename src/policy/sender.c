/*
 * sender.c - sender binding (see sender.h).
 */
#include "policy/sender.h"

#include <strings.h>

bool sender_owned_by(struct alias_db *aliases, const char *login, const char *sender)
{
	if (strcasecmp(login, sender) == 0)
		return true;
	/* a personal alias of the login, never a group (sender.h) */
	return alias_db_is_personal_alias_of(aliases, sender, login);
}
