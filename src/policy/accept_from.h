/*
 * accept_from.h - who may send to an address (issue 7, "Anonymous is
 * never authenticated"): a mailbox or group marked
 * accept_from=authenticated (dir/attrs.h) takes mail only from a session
 * that passed AUTH. Anonymous mail to it is refused at RCPT with 550
 * 5.7.1, whatever its MAIL FROM or From: claims: a claim is not proof.
 *
 * accept_from_allows() is the one decision, over the address's attributes
 * whichever directory holds them; accept_from_lookup() gathers them from
 * the directories transit has today (passwd-file, then aliases file).
 */
#ifndef TRANSIT_POLICY_ACCEPT_FROM_H
#define TRANSIT_POLICY_ACCEPT_FROM_H

#include <stdbool.h>

#include "dir/attrs.h"

struct passwd_db;

/* May a client (authenticated or not) send to an address with attrs a? */
bool accept_from_allows(const struct dir_attrs *a, bool authenticated);

/* The attributes of addr: its passwd-file entry's, or else its aliases
 * file line's; none known: all defaults. users may be NULL. */
void accept_from_lookup(struct passwd_db *users, const char *addr, struct dir_attrs *out);

#define ACCEPT_FROM_REFUSAL "only authenticated senders may send to this address"

#endif
