/*
 * gen.c - configuration generations: the reference count, and the list of
 * what a reload cannot change (see gen.h and docs/operations.md, "Reload").
 */
#include "conf/gen.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xmalloc.h"

static atomic_uint gens_alive;

struct conf_gen *conf_gen_new(struct config *c, uint64_t number)
{
	struct conf_gen *g = xcalloc(1, sizeof(*g));

	atomic_init(&g->refs, 1);
	g->number = number;
	g->conf = c;
	atomic_fetch_add(&gens_alive, 1);
	return g;
}

struct conf_gen *conf_gen_ref(struct conf_gen *g)
{
	if (g)
		atomic_fetch_add(&g->refs, 1);
	return g;
}

void conf_gen_unref(struct conf_gen *g)
{
	if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	if (g->release)
		g->release(g);
	conf_free(g->conf);
	free(g);
	atomic_fetch_sub(&gens_alive, 1);
}

unsigned conf_gen_alive(void) { return atomic_load(&gens_alive); }

static bool same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool same_dns(const struct config *a, const struct config *b)
{
	if (a->ndns_servers != b->ndns_servers)
		return false;
	for (size_t i = 0; i < a->ndns_servers; i++)
		if (!same_str(a->dns_servers[i], b->dns_servers[i]))
			return false;
	return true;
}

static bool same_auth_failures(const struct config *a, const struct config *b)
{
	return a->auth_failures.delay == b->auth_failures.delay &&
	       a->auth_failures.delay_max == b->auth_failures.delay_max &&
	       a->auth_failures.window == b->auth_failures.window &&
	       a->auth_failures.max_per_source == b->auth_failures.max_per_source &&
	       a->auth_failures.max_per_login == b->auth_failures.max_per_login &&
	       a->auth_failures.lockout == b->auth_failures.lockout &&
	       a->auth_failures.table_size == b->auth_failures.table_size;
}

/* The LDAP directory (dir/ldapdir.c) is made once, from every one of
 * these. */
static bool same_ldap(const struct ldap_conf *a, const struct ldap_conf *b)
{
	return same_str(a->uri, b->uri) && same_str(a->base, b->base) &&
	       same_str(a->bind_dn, b->bind_dn) && same_str(a->bind_password, b->bind_password) &&
	       a->start_tls == b->start_tls && same_str(a->tls_ca_file, b->tls_ca_file) &&
	       same_str(a->user_filter, b->user_filter) &&
	       same_str(a->group_filter, b->group_filter) && same_str(a->mail_attr, b->mail_attr) &&
	       same_str(a->alias_attr, b->alias_attr) && same_str(a->member_attr, b->member_attr) &&
	       same_str(a->password_attr, b->password_attr) &&
	       same_str(a->accept_from_attr, b->accept_from_attr) &&
	       a->password_check == b->password_check && a->cache_ttl == b->cache_ttl &&
	       a->timeout == b->timeout && a->cache_size == b->cache_size;
}

static bool same_limits(const struct logdir_limits *a, const struct logdir_limits *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

unsigned conf_gen_restart_only_changes(const struct config *old, const struct config *new)
{
	/* Each row: a setting that the daemon reads once, at start (the
	 * spool and its lock, the privilege drop, queue ids, the objects made
	 * once: directory, resolver, worker threads, AUTH limiter). */
	const struct {
		const char *what;
		bool same;
	} rows[] = {
		{"server.spool", same_str(old->server.spool, new->server.spool)},
		{"server.user", same_str(old->server.user, new->server.user)},
		{"server.node", same_str(old->server.node, new->server.node)},
		{"users.passwd-file", same_str(old->passwd_file, new->passwd_file)},
		{"users.aliases", same_str(old->aliases_file, new->aliases_file)},
		{"logs.path", same_str(old->logs.path, new->logs.path)},
		{"logs.tracking", old->logs.tracking == new->logs.tracking &&
				      same_limits(&old->logs.tracking_limits,
						  &new->logs.tracking_limits)},
		{"logs.protocol", same_limits(&old->logs.protocol_limits, &new->logs.protocol_limits)},
		{"control.socket", same_str(old->control.socket, new->control.socket)},
		{"control.http", old->control.http_enabled == new->control.http_enabled &&
					 (!old->control.http_enabled ||
					  strcmp(old->control.http.text, new->control.http.text) == 0)},
		{"users.ldap", same_ldap(&old->ldap, &new->ldap)},
		{"users.dovecot-auth", same_str(old->dovecot_auth, new->dovecot_auth) &&
					       old->dovecot_auth_timeout == new->dovecot_auth_timeout},
		{"dns.servers", same_dns(old, new)},
		{"queue.sync", old->queue.sync_mode == new->queue.sync_mode},
		{"queue.delivery-threads", old->queue.delivery_threads == new->queue.delivery_threads},
		{"auth-failures", same_auth_failures(old, new)},
		{"back-pressure.enabled", old->back_pressure.enabled == new->back_pressure.enabled},
	};
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].same)
			continue;
		log_warn("reload: %s changed: needs a restart (the running value stays)",
			 rows[i].what);
		n++;
	}
	return n;
}
