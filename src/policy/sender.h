/*
 * sender.h - sender binding: which envelope senders (MAIL FROM, RFC 5321
 * 4.1.1.2) an authenticated login may use. Today a login (a passwd-file
 * user name, which is an address) owns exactly its own address; aliases
 * and groups (issue 7) add their addresses here, in this one function, so
 * the SMTP server and any later check (From:, route explain) agree.
 */
#ifndef TRANSIT_POLICY_SENDER_H
#define TRANSIT_POLICY_SENDER_H

#include <stdbool.h>

#include "conf/conf.h"

/* true when login may send as sender ("local@domain", not "<>"). Compared
 * case-insensitively, as the directory compares user names. */
bool sender_owned_by(const char *login, const char *sender);

/* reject-spoofed-local-senders (issue 7, "anonymous is never
 * authenticated"): true when a session that has not authenticated, on a
 * connector rc with the option on and without the relay permission,
 * gives a sender ("local@domain"; "" for <>, which is always allowed) in
 * one of our authoritative domains. */
bool sender_spoofs_local_domain(const struct config *c, const struct receive_connector *rc,
				bool authenticated, const char *sender);

#endif
