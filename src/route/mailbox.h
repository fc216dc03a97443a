/*
 * mailbox.h - the path of a local mailbox from the mailboxes.maildir
 * template (transit.conf(5)): one place that turns an address into a
 * directory, for the scheduler, the recipient policy and route explain.
 *
 * The address parts are never trusted as path components: each is
 * lower-cased and '/', control characters and a leading '.' become '_',
 * so no address can name "..", "." or another directory. On top of that
 * only addresses the directory knows ever reach this (policy/recipient.h),
 * and the Maildir agent re-checks both (deliver/maildir.c).
 */
#ifndef TRANSIT_ROUTE_MAILBOX_H
#define TRANSIT_ROUTE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

/* Expand a template like "/var/mail/%d/%u": %d domain, %u local part,
 * %% a percent sign. Characters unsafe in a path component ('/', a
 * leading '.', control characters) are replaced by '_'; local part and
 * domain are lower-cased. Returns 0, or -1 if it did not fit / bad %x. */
int maildir_expand(const char *tmpl, const char *local, const char *domain, char *out,
		   size_t outsz);

/* true when path is absolute and none of its components is "." or ".."
 * (an expanded template can then only name what the template names). */
bool mailbox_path_contained(const char *path);

#endif
