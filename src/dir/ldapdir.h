/*
 * ldapdir.h - the LDAP directory back end (users { ldap { } }), over the
 * OpenLDAP client library: mailbox, alias and group lookup by the mail
 * and alias attributes (RFC 4511 search, RFC 4515 filters with the
 * address escaped by ldap_bv2escaped_filter_value), and password checks
 * by a simple bind as the user's DN (RFC 4513 5.1.3) or by reading a
 * {CRYPT} hash attribute and checking it here (libxcrypt).
 *
 * Every call that talks to the server blocks (with the configured
 * network and operation timeout) and runs on a worker thread: the AUTH
 * workers (policy/auth.c), the Maildir agent's threads, or this module's
 * own workers for the event loop (ldapdir_fetch). Each operation opens
 * its own connection (StartTLS and the service bind when configured) and
 * closes it: nothing is shared between threads but the cache.
 *
 * The cache: address -> answer (mailbox, alias/group with its final
 * addresses, none, loop, too many), positive and negative answers alike,
 * for cache-ttl seconds from a monotonic clock, at most cache-size
 * entries (then the expired ones go, and if that is not enough, all).
 * The event loop only ever reads it (ldapdir_cached). A failure to reach
 * or query the server is never cached: it is a temporary answer
 * (LDAPDIR_TEMPFAIL), logged once when the server goes down and once when
 * it answers again, not per query.
 */
#ifndef TRANSIT_DIR_LDAPDIR_H
#define TRANSIT_DIR_LDAPDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/ldap_conf.h"
#include "dir/aliases.h"

struct event_base;
struct ldapdir;
struct ldapdir_fetch;

enum ldapdir_kind {
	LDAPDIR_MISS = 0, /* not in the cache (ldapdir_cached only) */
	LDAPDIR_NONE,	  /* the directory does not know the address */
	LDAPDIR_MAILBOX,  /* a user whose mail attribute is the address */
	LDAPDIR_ALIAS,	  /* a user's alias or a group: the final addresses */
	LDAPDIR_LOOP,	  /* a group that contains itself, or nests too deep */
	LDAPDIR_TOO_MANY, /* more than the caller's max final addresses */
	LDAPDIR_TEMPFAIL, /* the server could not be asked (down, timeout) */
};

/* lc must outlive the directory. */
struct ldapdir *ldapdir_new(const struct ldap_conf *lc);
/* Workers for ldapdir_fetch (the daemon; transitctl needs none). */
void ldapdir_start(struct ldapdir *d, struct event_base *base);
/* Joins the workers; fetches in flight are dropped without callback. */
void ldapdir_free(struct ldapdir *d);

/* From the cache only; never blocks. out gets the final addresses of an
 * alias (at most max). */
/* The attributes (dir/attrs.h: accept-from) of a mailbox, alias or group
 * in the cache; false, with *out cleared, when the cache does not hold
 * it as one. Event loop. */
struct dir_attrs;
bool ldapdir_cached_attrs(struct ldapdir *d, const char *addr, struct dir_attrs *out);

enum ldapdir_kind ldapdir_cached(struct ldapdir *d, const char *addr,
				 char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n);
/* The cache, else the server (blocking; worker threads only). Never
 * LDAPDIR_MISS. */
enum ldapdir_kind ldapdir_lookup(struct ldapdir *d, const char *addr,
				 char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n);
/* Ask the server for addr on a worker, put the answer in the cache and
 * call done(arg) on the loop (unless cancelled first). */
struct ldapdir_fetch *ldapdir_fetch(struct ldapdir *d, const char *addr, void (*done)(void *arg),
				    void *arg);
/* No callback will come; the fetch is freed when its worker is done. */
void ldapdir_fetch_cancel(struct ldapdir_fetch *f);

/* The password of login (its mail address): 1 good, 0 bad or unknown
 * login, -1 the server could not be asked. Blocking (worker threads). */
int ldapdir_verify(struct ldapdir *d, const char *login, const char *password);

/* tmpl with each "%s" replaced by value escaped per RFC 4515 3 (by
 * libldap) and "%%" by "%". false when it does not fit. */
bool ldapdir_filter(const char *tmpl, const char *value, char *out, size_t outsz);

#endif
