/*
 * accept_from.c - see accept_from.h. recipient_decide() (recipient.c)
 * calls both for a local mailbox or an alias named at RCPT, so the SMTP
 * server and "transitctl route explain" agree. The mark protects the
 * address named: a group's members are reached through the group as the
 * group allows (an administrator who puts a protected mailbox into an
 * open group has opened that path), as Exchange's per-recipient
 * "require sender authentication" does.
 */
#include "policy/accept_from.h"

#include <string.h>

#include "dir/aliases.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"

bool accept_from_allows(const struct dir_attrs *a, bool authenticated)
{
	return authenticated || !a->accept_from_authenticated;
}

void accept_from_lookup(struct passwd_db *users, const char *addr, struct dir_attrs *out)
{
	memset(out, 0, sizeof(*out));
	if (users == NULL)
		return;
	if (passwd_db_ldap(users) && ldapdir_cached_attrs(passwd_db_ldap(users), addr, out))
		return; /* put in the cache by the RCPT's policy step (smtp/dir_wait.c) */
	if (passwd_db_attrs(users, addr, out))
		return;
	(void)alias_db_attrs(passwd_db_aliases(users), addr, out);
}
