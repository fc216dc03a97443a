/*
 * ldap_conf.h - the "users { ldap { ... } }" section: its options, their
 * checks at load time (errors as "file:line: ..."), and the values the
 * LDAP directory back end (dir/ldap.c) reads. Declared here, once, so
 * conf.c only hangs the section under "users" and calls the converter.
 *
 * With an ldap section, the directory replaces the passwd-file for users
 * (mailboxes, passwords); users.aliases still applies, after LDAP.
 */
#ifndef TRANSIT_CONF_LDAP_CONF_H
#define TRANSIT_CONF_LDAP_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include <confuse.h>

enum ldap_password_check {
	LDAP_CHECK_BIND,    /* bind as the user's DN with the password (RFC 4513 5.1.3) */
	LDAP_CHECK_COMPARE, /* read password-attribute ({CRYPT} hash) and check it here */
};

struct ldap_conf {
	char *uri;		 /* NULL: no LDAP section */
	char *base;		 /* search base */
	char *bind_dn;		 /* NULL: anonymous searches */
	char *bind_password;	 /* read from bind-password-file at load; wiped at free */
	bool start_tls;
	char *tls_ca_file;	 /* NULL: the system's */
	char *user_filter;	 /* "%s" = the address, RFC 4515 escaped */
	char *group_filter;	 /* "" : no groups */
	char *mail_attr;
	char *alias_attr;
	char *member_attr;
	char *password_attr;
	char *accept_from_attr;	 /* NULL: not read; its value "authenticated" (or
				  * "TRUE", as Exchange's flag) closes the entry
				  * to anonymous mail (policy/accept_from.h) */
	enum ldap_password_check password_check;
	uint64_t cache_ttl;	 /* seconds, >= 1 */
	uint64_t timeout;	 /* seconds, network and operation, >= 1 */
	unsigned cache_size;	 /* entries kept */
};

extern cfg_opt_t conf_ldap_opts[];

/* Register the validators of the section's options ("users|ldap|..."). */
void conf_ldap_validators(cfg_t *root);
/* users section -> out. 0, or -1 after printing "path: ..." on stderr. */
int conf_ldap_convert(cfg_t *users, const char *path, struct ldap_conf *out);
void conf_ldap_free(struct ldap_conf *lc);
/* A deep copy (free it with conf_ldap_free), for what outlives the
 * configuration generation it was made from (dir/ldapdir.c). */
void conf_ldap_copy(struct ldap_conf *dst, const struct ldap_conf *src);
/* A filter template: starts with '(', balanced parentheses, at least one
 * "%s", no other '%' than "%%". false with the reason in why. */
bool conf_ldap_filter_ok(const char *tmpl, char *why, size_t whysz);

#endif
