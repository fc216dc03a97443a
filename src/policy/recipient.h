/*
 * recipient.h - the one decision on a recipient: accepted or refused (with
 * the SMTP reply), and where it goes (a local mailbox or a send
 * connector). The SMTP server's RCPT and "transitctl route explain" both
 * call recipient_decide(), so they cannot disagree (DESIGN.md: one
 * function for one decision). RFC 5321 4.5.1 (postmaster), RFC 2142
 * (abuse), RFC 3463 (enhanced status codes).
 *
 * Also the one answer to "is this a local mailbox the directory knows",
 * for the scheduler, the Maildir agent and the addressing of DSNs:
 * nothing is ever delivered to (or creates) a mailbox that is not in the
 * passwd-file, except server.postmaster, which the configuration names.
 */
#ifndef TRANSIT_POLICY_RECIPIENT_H
#define TRANSIT_POLICY_RECIPIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "dir/aliases.h"
#include "mail/addr.h"
#include "route/route.h"
#include "util/buf.h"

struct passwd_db;

/* What is known about the client when it names a recipient. */
struct recipient_client {
	/* the receive connector, or NULL when not known ("route explain"
	 * without --receive-connector: relaying is then assumed allowed) */
	const struct receive_connector *rc;
	bool authenticated; /* the session has passed AUTH */
	/* true when ip is one of our addresses (user@[ip] is then local); may be NULL */
	bool (*is_local_ip)(int family, const void *ip);
};

enum recipient_kind {
	RECIPIENT_REFUSED,
	RECIPIENT_MAILBOX, /* local delivery into .mailbox */
	RECIPIENT_ROUTED,  /* through .route.sc */
	RECIPIENT_ALIAS,   /* an alias or group: queue .expanded[] instead, each
			    * with ORCPT = the alias (RFC 3461); each member is
			    * then delivered or routed as any recipient */
};

#define RECIPIENT_EXPAND_MAX ALIAS_EXPAND_MAX

struct recipient_verdict {
	enum recipient_kind kind;
	int code;		    /* SMTP reply: 250 when accepted */
	const char *enh;	    /* "2.1.5", "5.1.1", ... */
	char text[256];		    /* reply text after "<address>: " */
	const char *why;	    /* one line for route explain: the rule that decided */
	bool may_relay;		    /* the client may relay (recipient_may_relay) */
	const struct accepted_domain *domain; /* NULL: not an accepted domain */
	bool routed;		    /* route_domain() was asked: route is meaningful */
	char routed_domain[ADDR_DOMAIN_MAX]; /* the domain it was asked for */
	struct route route;	    /* RECIPIENT_ROUTED, and the choice when refused by it */
	char final[ADDR_TEXT_MAX];  /* the address to queue when accepted */
	char mailbox[512];	    /* RECIPIENT_MAILBOX: the expanded maildir path */
	size_t nexpanded;	    /* RECIPIENT_ALIAS: final addresses, deduplicated */
	char expanded[RECIPIENT_EXPAND_MAX][ALIAS_ADDR_MAX];
};

/* Relay permission: the connector's "relay" permission, or "authenticated"
 * for a client that has authenticated. rc NULL: true (not known). */
bool recipient_may_relay(const struct receive_connector *rc, bool authenticated);

/* Decide on one recipient of a transaction from sender (RFC 5321 path
 * body, "" for <>) with a declared size (0: not declared). to may be
 * rewritten (user@[our ip] becomes user@<first authoritative domain>).
 * users may be NULL only in tests (then no mailbox exists). */
void recipient_decide(const struct config *c, struct passwd_db *users,
		      const struct recipient_client *client, const char *sender, uint64_t size,
		      struct mail_addr *to, struct recipient_verdict *v);

/* true when addr ("local@domain") is in an authoritative domain (a local
 * mailbox) and the directory knows it: a passwd-file user, or
 * server.postmaster. Thread safe (the passwd table has its own lock). */
bool recipient_mailbox_known(const struct config *c, struct passwd_db *users, const char *addr);

/* For the event loop (the scheduler, DSN addressing): false only when
 * the directory is known not to have addr; with LDAP an address not in
 * the cache counts as possible (the Maildir agent then asks, below). */
bool recipient_mailbox_possible(const struct config *c, struct passwd_db *users, const char *addr);

/* recipient_mailbox_known that may ask the LDAP server (blocking: worker
 * threads only): 1 known, 0 unknown, -1 the directory could not be asked
 * (the delivery is retried, never failed). */
int recipient_mailbox_lookup(const struct config *c, struct passwd_db *users, const char *addr);

/* Rule 2: user@[one of our addresses] becomes user@<first authoritative
 * domain> (to->domain rewritten; the literal flag stays). */
void recipient_rewrite_literal(const struct config *c,
			       bool (*is_local_ip)(int family, const void *ip), struct mail_addr *to);

/* true when addr is in an authoritative accepted domain. */
bool recipient_is_local(const struct config *c, const char *addr);

/* Warn (log_warn) when server.postmaster cannot be delivered: its domain
 * has no send connector, or it is a local mailbox no passwd-file user can
 * read. Every authoritative domain's postmaster@ (and abuse@ without a
 * mailbox of its own) goes there. Returns the number of warnings. */
int recipient_check_postmaster(const struct config *c, struct passwd_db *users);

/* "transitctl route explain": the decision above for rcpt (an address as
 * in RCPT TO:<...>, brackets optional) from sender (NULL: <>) with size
 * (0: not declared), arriving on receive connector rc_name (NULL: not
 * given, relaying assumed allowed), authenticated or not, with the
 * daemon's idea of its own addresses (is_local_ip, may be NULL). Writes the
 * rules that applied, the send connectors considered, the expanded
 * mailbox path and a last line "result: accepted, ..." or "result:
 * refused CODE ENH TEXT", TEXT being what the RCPT reply would say.
 * With users { ldap } it asks the LDAP server (blocking: transitctl only).
 * Returns 0 when the recipient would be accepted, 1 when not. */
int recipient_explain(const struct config *c, struct passwd_db *users, const char *rcpt,
		      const char *sender, uint64_t size, const char *rc_name, bool authenticated,
		      bool (*is_local_ip)(int family, const void *ip), struct buf *out);

#endif
