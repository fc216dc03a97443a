/*
 * ldapdir.c - the LDAP directory back end (contract in ldapdir.h).
 *
 * While the server is down, requests within LDAPDIR_RETRY_MS of the last
 * failure fail at once instead of each waiting out a timeout (a server
 * that black-holes packets would otherwise hold every worker); the next
 * one after that tries again.
 *
 * A lookup of an address runs the user filter (size limit 2: one entry
 * is an answer, two are an ambiguity the administrator must fix, logged
 * and answered as temporary so no mail is lost or misdelivered). The
 * entry's mail attribute equal to the address makes a mailbox; else the
 * address is one of its aliases (alias attribute) and expands to the
 * mail value. Without a user, the group filter: the group's member DNs
 * are read (base-scope searches) and each member's mail is a final
 * address; a member that has members itself is a nested group, followed
 * up to ALIAS_DEPTH_MAX with the DNs already seen as loop detection.
 */
#include "dir/ldapdir.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lber.h>
#include <ldap.h>

#include "dir/attrs.h"
#include "dir/passwd.h"
#include "util/clock.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define LDAPDIR_WORKERS 2
#define LDAPDIR_FILTER_MAX 2048
#define LDAPDIR_GROUPS_MAX 64 /* groups visited in one expansion */
#define LDAPDIR_PASSWORD_MAX 1024
#define LDAPDIR_RETRY_MS 1000 /* while down, one new attempt a second at most */

struct cached {
	enum ldapdir_kind kind;
	struct dir_attrs attrs;
	uint64_t expires_ms; /* clock_mono_ms() */
	size_t n;
	char (*addrs)[ALIAS_ADDR_MAX];
};

struct ldapdir {
	const struct ldap_conf *lc; /* &own */
	struct ldap_conf own; /* a copy: the directory is made once and outlives
			       * the configuration generation it came from */
	pthread_mutex_t lock; /* cache, down, fetches */
	struct htable *cache;
	bool down;
	uint64_t retry_ms; /* while down: no new connection before this (monotonic) */
	struct workq *wq;
	struct ldapdir_fetch *fetches;
};

struct ldapdir_fetch {
	struct ldapdir_fetch *next, *prev;
	struct ldapdir *d;
	char addr[ALIAS_ADDR_MAX];
	void (*done)(void *arg); /* NULL once cancelled */
	void *arg;
};

/* The answer being built by one lookup. */
struct result {
	enum ldapdir_kind kind;
	struct dir_attrs attrs; /* of the entry found (user or group) */
	size_t n, max;
	char (*addrs)[ALIAS_ADDR_MAX];
	char *seen[LDAPDIR_GROUPS_MAX]; /* group DNs visited */
	size_t nseen;
};

static void cached_free(void *p)
{
	struct cached *c = p;
	free(c->addrs);
	free(c);
}

struct ldapdir *ldapdir_new(const struct ldap_conf *lc)
{
	struct ldapdir *d = xcalloc(1, sizeof(*d));

	conf_ldap_copy(&d->own, lc);
	d->lc = &d->own;
	pthread_mutex_init(&d->lock, NULL);
	d->cache = htable_new();
	return d;
}

void ldapdir_start(struct ldapdir *d, struct event_base *base)
{
	if (d->wq == NULL)
		d->wq = workq_new(base, LDAPDIR_WORKERS);
}

void ldapdir_free(struct ldapdir *d)
{
	if (d == NULL)
		return;
	if (d->wq)
		workq_free(d->wq); /* joined: no worker holds a fetch any more */
	while (d->fetches) {
		struct ldapdir_fetch *f = d->fetches;
		d->fetches = f->next;
		free(f);
	}
	htable_free(d->cache, cached_free);
	pthread_mutex_destroy(&d->lock);
	conf_ldap_free(&d->own);
	free(d);
}

/* ---- filters ------------------------------------------------------------- */

bool ldapdir_filter(const char *tmpl, const char *value, char *out, size_t outsz)
{
	struct berval in = {strlen(value), (char *)value}, esc = {0, NULL};
	size_t len = 0;
	const char *p;
	bool ok = true;

	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return false;
	for (p = tmpl; *p && ok; p++) {
		const char *piece = p;
		size_t n = 1;

		if (p[0] == '%' && p[1] == 's') {
			piece = esc.bv_val;
			n = esc.bv_len;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			p++;
		}
		if (len + n >= outsz)
			ok = false;
		else {
			memcpy(out + len, piece, n);
			len += n;
		}
	}
	if (outsz > 0)
		out[ok ? len : 0] = '\0';
	ber_memfree(esc.bv_val);
	return ok;
}

/* ---- the server's state, logged on change -------------------------------- */

static void note_state(struct ldapdir *d, bool up, const char *why)
{
	bool changed;

	pthread_mutex_lock(&d->lock);
	changed = d->down == up;
	d->down = !up;
	if (!up)
		d->retry_ms = clock_mono_ms() + LDAPDIR_RETRY_MS;
	pthread_mutex_unlock(&d->lock);
	if (!changed)
		return;
	if (up)
		log_info("ldap uri=%s state=up", d->lc->uri);
	else
		log_warn("ldap uri=%s state=down reason=\"%s\" (recipients and AUTH get temporary "
			 "errors until it answers)",
			 d->lc->uri, why);
}

/* A result code that means "ask again later" rather than an answer. */
static bool rc_temporary(int rc)
{
	return rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT && rc != LDAP_INVALID_CREDENTIALS &&
	       rc != LDAP_SIZELIMIT_EXCEEDED;
}

/* ---- connections --------------------------------------------------------- */

/* Connected (StartTLS, service bind) or NULL with the state noted. */
static LDAP *ld_open(struct ldapdir *d)
{
	const struct ldap_conf *lc = d->lc;
	struct timeval tv = {(time_t)lc->timeout, 0};
	int v3 = LDAP_VERSION3, rc;
	LDAP *l = NULL;
	bool wait;

	pthread_mutex_lock(&d->lock);
	wait = d->down && clock_mono_ms() < d->retry_ms;
	pthread_mutex_unlock(&d->lock);
	if (wait)
		return NULL; /* down a moment ago: answer at once, do not pile up */
	if ((rc = ldap_initialize(&l, lc->uri)) != LDAP_SUCCESS) {
		note_state(d, false, ldap_err2string(rc));
		return NULL;
	}
	ldap_set_option(l, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(l, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(l, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(l, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (lc->tls_ca_file) {
		int newctx = 0;
		ldap_set_option(l, LDAP_OPT_X_TLS_CACERTFILE, lc->tls_ca_file);
		ldap_set_option(l, LDAP_OPT_X_TLS_NEWCTX, &newctx);
	}
	if (lc->start_tls && (rc = ldap_start_tls_s(l, NULL, NULL)) != LDAP_SUCCESS) {
		note_state(d, false, ldap_err2string(rc));
		ldap_unbind_ext_s(l, NULL, NULL);
		return NULL;
	}
	if (lc->bind_dn) {
		struct berval cred = {strlen(lc->bind_password), lc->bind_password};
		rc = ldap_sasl_bind_s(l, lc->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			/* wrong service credentials are as bad as a server down:
			 * nothing can be answered */
			note_state(d, false, ldap_err2string(rc));
			ldap_unbind_ext_s(l, NULL, NULL);
			return NULL;
		}
	}
	return l;
}

static void ld_close(LDAP *l)
{
	if (l)
		ldap_unbind_ext_s(l, NULL, NULL);
}

/* Search with the configured time limit. res is set (maybe empty) on
 * success; on a temporary failure the state is noted. */
static int ld_search(struct ldapdir *d, LDAP *l, const char *base, int scope, const char *filter,
		     char **attrs, int sizelimit, LDAPMessage **res)
{
	struct timeval tv = {(time_t)d->lc->timeout, 0};
	int rc;

	*res = NULL;
	rc = ldap_search_ext_s(l, base, scope, filter, attrs, 0, NULL, NULL, &tv, sizelimit, res);
	if (rc_temporary(rc))
		note_state(d, false, ldap_err2string(rc));
	else
		note_state(d, true, NULL);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_msgfree(*res);
		*res = NULL;
	}
	return rc;
}

/* The first value of attr as a string (allocated), or NULL. */
static char *ld_first(LDAP *l, LDAPMessage *e, const char *attr)
{
	struct berval **v = ldap_get_values_len(l, e, attr);
	char *s = NULL;

	if (v && v[0] && v[0]->bv_len > 0 && v[0]->bv_len < ALIAS_ADDR_MAX &&
	    memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL) {
		s = xmalloc(v[0]->bv_len + 1);
		memcpy(s, v[0]->bv_val, v[0]->bv_len);
		s[v[0]->bv_len] = '\0';
	}
	ldap_value_free_len(v);
	return s;
}

/* ---- lookups ------------------------------------------------------------- */

static void result_add(struct result *r, const char *addr)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (str_casecmp(r->addrs[i], addr) == 0)
			return;
	if (r->n >= r->max) {
		r->kind = LDAPDIR_TOO_MANY;
		return;
	}
	str_copy(r->addrs[r->n++], addr, ALIAS_ADDR_MAX);
}

static bool result_seen(struct result *r, const char *dn)
{
	size_t i;

	for (i = 0; i < r->nseen; i++)
		if (strcasecmp(r->seen[i], dn) == 0)
			return true;
	return false;
}

/* The members of group entry e into r (recursive for nested groups). */
static void expand_group(struct ldapdir *d, LDAP *l, LDAPMessage *e, unsigned depth,
			 struct result *r)
{
	const struct ldap_conf *lc = d->lc;
	struct berval **members = ldap_get_values_len(l, e, lc->member_attr);
	char *attrs[] = {lc->mail_attr, lc->member_attr, NULL};
	size_t i;

	for (i = 0; members && members[i] && r->kind == LDAPDIR_ALIAS; i++) {
		char dn[1024];
		LDAPMessage *res = NULL, *m;
		int rc;

		if (members[i]->bv_len >= sizeof(dn))
			continue;
		memcpy(dn, members[i]->bv_val, members[i]->bv_len);
		dn[members[i]->bv_len] = '\0';
		if (result_seen(r, dn)) {
			r->kind = LDAPDIR_LOOP;
			break;
		}
		rc = ld_search(d, l, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 1, &res);
		if (rc == LDAP_NO_SUCH_OBJECT)
			continue; /* a stale member: nothing to deliver to */
		if (rc != LDAP_SUCCESS) {
			r->kind = LDAPDIR_TEMPFAIL;
			break;
		}
		m = ldap_first_entry(l, res);
		if (m) {
			struct berval **sub = ldap_get_values_len(l, m, lc->member_attr);
			bool group = sub && sub[0];

			ldap_value_free_len(sub);
			if (group) {
				if (depth + 1 >= ALIAS_DEPTH_MAX || r->nseen >= LDAPDIR_GROUPS_MAX)
					r->kind = LDAPDIR_LOOP;
				else {
					r->seen[r->nseen++] = xstrdup(dn);
					expand_group(d, l, m, depth + 1, r);
				}
			} else {
				char *mail = ld_first(l, m, lc->mail_attr);
				if (mail)
					result_add(r, mail);
				free(mail);
			}
		}
		ldap_msgfree(res);
	}
	ldap_value_free_len(members);
}

/* One entry at most for filter(tmpl, addr) under base: 1 found (*e, *res
 * to free), 0 none, -1 temporary (or ambiguous). */
static int find_one(struct ldapdir *d, LDAP *l, const char *tmpl, const char *addr, char **attrs,
		    LDAPMessage **res, LDAPMessage **e)
{
	char filter[LDAPDIR_FILTER_MAX];
	int rc;

	*e = NULL;
	if (!ldapdir_filter(tmpl, addr, filter, sizeof(filter)))
		return 0; /* an address that long is no one's */
	rc = ld_search(d, l, d->lc->base, LDAP_SCOPE_SUBTREE, filter, attrs, 2, res);
	if (rc == LDAP_NO_SUCH_OBJECT)
		return 0;
	if (rc == LDAP_SIZELIMIT_EXCEEDED || (rc == LDAP_SUCCESS && ldap_count_entries(l, *res) > 1)) {
		log_warn("ldap filter=%s matches more than one entry: ambiguous, answered as a "
			 "temporary failure until the directory is fixed",
			 filter);
		ldap_msgfree(*res);
		*res = NULL;
		return -1;
	}
	if (rc != LDAP_SUCCESS)
		return -1;
	*e = ldap_first_entry(l, *res);
	return *e ? 1 : 0;
}

/* The per-address attributes of entry e (dir/attrs.h): accept-from from
 * accept-from-attribute, when configured. A value other than
 * "authenticated"/"TRUE" (Exchange's msExchRequireAuthToSendTo) or
 * "anyone"/"FALSE" is taken as authenticated, as in the passwd-file: a
 * typo must not open a protected address. */
static void read_attrs(struct ldapdir *d, LDAP *l, LDAPMessage *e, struct dir_attrs *out)
{
	char *v;

	memset(out, 0, sizeof(*out));
	if (d->lc->accept_from_attr == NULL || (v = ld_first(l, e, d->lc->accept_from_attr)) == NULL)
		return;
	out->accept_from_authenticated =
		str_casecmp(v, "anyone") != 0 && str_casecmp(v, "FALSE") != 0;
	free(v);
}

static void lookup_server(struct ldapdir *d, const char *addr, struct result *r)
{
	const struct ldap_conf *lc = d->lc;
	char *uattrs[] = {lc->mail_attr, lc->accept_from_attr, NULL};
	char *gattrs[] = {lc->member_attr, lc->accept_from_attr, NULL};
	LDAPMessage *res = NULL, *e;
	LDAP *l = ld_open(d);
	int found;

	r->kind = LDAPDIR_TEMPFAIL;
	if (l == NULL)
		return;
	found = find_one(d, l, lc->user_filter, addr, uattrs, &res, &e);
	if (found == 1) {
		char *mail = ld_first(l, e, lc->mail_attr);

		read_attrs(d, l, e, &r->attrs);

		if (mail == NULL)
			r->kind = LDAPDIR_NONE; /* a person without a mail address */
		else if (str_casecmp(mail, addr) == 0)
			r->kind = LDAPDIR_MAILBOX;
		else {
			r->kind = LDAPDIR_ALIAS;
			result_add(r, mail);
		}
		free(mail);
	} else if (found == 0 && lc->group_filter && lc->group_filter[0]) {
		ldap_msgfree(res);
		res = NULL;
		found = find_one(d, l, lc->group_filter, addr, gattrs, &res, &e);
		if (found == 1) {
			char *dn = ldap_get_dn(l, e);

			r->kind = LDAPDIR_ALIAS;
			read_attrs(d, l, e, &r->attrs);
			if (dn)
				r->seen[r->nseen++] = xstrdup(dn);
			ldap_memfree(dn);
			expand_group(d, l, e, 0, r);
			if (r->kind == LDAPDIR_ALIAS && r->n == 0)
				r->kind = LDAPDIR_NONE; /* an empty group delivers nowhere */
		} else if (found == 0)
			r->kind = LDAPDIR_NONE;
	} else if (found == 0)
		r->kind = LDAPDIR_NONE;
	ldap_msgfree(res);
	ld_close(l);
}

/* ---- the cache ----------------------------------------------------------- */

static void cache_key(const char *addr, char *key, size_t keysz)
{
	str_copy(key, addr, keysz);
	str_lower(key);
}

static void cache_sweep(struct ldapdir *d, uint64_t now)
{
	/* htable has no iteration: when full, start again (bounded memory;
	 * the next lookups refill it) */
	(void)now;
	htable_free(d->cache, cached_free);
	d->cache = htable_new();
}

static void cache_put(struct ldapdir *d, const char *addr, const struct result *r)
{
	struct cached *c, *old;
	char key[ALIAS_ADDR_MAX];
	uint64_t now = clock_mono_ms();

	if (r->kind == LDAPDIR_TEMPFAIL || r->kind == LDAPDIR_MISS)
		return;
	c = xcalloc(1, sizeof(*c));
	c->kind = r->kind;
	c->attrs = r->attrs;
	c->expires_ms = now + d->lc->cache_ttl * 1000;
	c->n = r->n;
	if (r->n) {
		c->addrs = xcalloc(r->n, sizeof(*c->addrs));
		memcpy(c->addrs, r->addrs, r->n * sizeof(*c->addrs));
	}
	cache_key(addr, key, sizeof(key));
	pthread_mutex_lock(&d->lock);
	if (htable_count(d->cache) >= d->lc->cache_size && htable_get(d->cache, key) == NULL)
		cache_sweep(d, now);
	old = htable_put(d->cache, key, c);
	pthread_mutex_unlock(&d->lock);
	if (old)
		cached_free(old);
}

enum ldapdir_kind ldapdir_cached(struct ldapdir *d, const char *addr,
				 char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n)
{
	char key[ALIAS_ADDR_MAX];
	struct cached *c;
	enum ldapdir_kind kind = LDAPDIR_MISS;
	uint64_t now = clock_mono_ms();

	if (n)
		*n = 0;
	if (!str_copy(key, addr, sizeof(key)))
		return LDAPDIR_NONE;
	str_lower(key);
	pthread_mutex_lock(&d->lock);
	c = htable_get(d->cache, key);
	if (c && now >= c->expires_ms) {
		htable_del(d->cache, key);
		cached_free(c);
		c = NULL;
	}
	if (c) {
		kind = c->kind;
		if (kind == LDAPDIR_ALIAS) {
			if (c->n > max)
				kind = LDAPDIR_TOO_MANY;
			else if (out && n) {
				memcpy(out, c->addrs, c->n * sizeof(*c->addrs));
				*n = c->n;
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
	return kind;
}

bool ldapdir_cached_attrs(struct ldapdir *d, const char *addr, struct dir_attrs *out)
{
	char key[ALIAS_ADDR_MAX];
	struct cached *c;
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (!str_copy(key, addr, sizeof(key)))
		return false;
	str_lower(key);
	pthread_mutex_lock(&d->lock);
	c = htable_get(d->cache, key);
	if (c && clock_mono_ms() < c->expires_ms &&
	    (c->kind == LDAPDIR_MAILBOX || c->kind == LDAPDIR_ALIAS)) {
		*out = c->attrs;
		found = true;
	}
	pthread_mutex_unlock(&d->lock);
	return found;
}

/* Ask the server for addr and cache the answer (up to ALIAS_EXPAND_MAX
 * final addresses, the most any caller takes). */
static enum ldapdir_kind lookup_and_cache(struct ldapdir *d, const char *addr)
{
	struct result r;
	enum ldapdir_kind kind;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.max = ALIAS_EXPAND_MAX;
	r.addrs = xcalloc(r.max, sizeof(*r.addrs));
	if (strlen(addr) >= ALIAS_ADDR_MAX)
		r.kind = LDAPDIR_NONE;
	else
		lookup_server(d, addr, &r);
	cache_put(d, addr, &r);
	kind = r.kind;
	for (i = 0; i < r.nseen; i++)
		free(r.seen[i]);
	free(r.addrs);
	return kind;
}

enum ldapdir_kind ldapdir_lookup(struct ldapdir *d, const char *addr,
				 char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n)
{
	enum ldapdir_kind k = ldapdir_cached(d, addr, out, max, n);

	if (k != LDAPDIR_MISS)
		return k;
	k = lookup_and_cache(d, addr);
	if (k == LDAPDIR_TEMPFAIL)
		return k;
	k = ldapdir_cached(d, addr, out, max, n);
	return k == LDAPDIR_MISS ? LDAPDIR_TEMPFAIL : k;
}

/* ---- fetches for the event loop ------------------------------------------ */

static void fetch_work(void *arg)
{
	struct ldapdir_fetch *f = arg;
	(void)lookup_and_cache(f->d, f->addr);
}

static void fetch_done(void *arg)
{
	struct ldapdir_fetch *f = arg;
	struct ldapdir *d = f->d;
	void (*done)(void *) = f->done;
	void *darg = f->arg;

	if (f->prev)
		f->prev->next = f->next;
	else
		d->fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	free(f);
	if (done)
		done(darg);
}

struct ldapdir_fetch *ldapdir_fetch(struct ldapdir *d, const char *addr, void (*done)(void *arg),
				    void *arg)
{
	struct ldapdir_fetch *f = xcalloc(1, sizeof(*f));

	f->d = d;
	str_copy(f->addr, addr, sizeof(f->addr));
	f->done = done;
	f->arg = arg;
	f->next = d->fetches;
	if (d->fetches)
		d->fetches->prev = f;
	d->fetches = f;
	workq_submit(d->wq, fetch_work, fetch_done, f);
	return f;
}

void ldapdir_fetch_cancel(struct ldapdir_fetch *f)
{
	if (f)
		f->done = NULL;
}

/* ---- passwords ----------------------------------------------------------- */

/* A {CRYPT} value of the password attribute that password matches. */
static bool compare_hashes(LDAP *l, LDAPMessage *e, const char *attr, const char *password)
{
	struct berval **v = ldap_get_values_len(l, e, attr);
	bool ok = false;
	size_t i;

	for (i = 0; v && v[i] && !ok; i++) {
		char hash[512];

		if (v[i]->bv_len < 7 || v[i]->bv_len - 7 >= sizeof(hash) ||
		    strncasecmp(v[i]->bv_val, "{CRYPT}", 7) != 0)
			continue; /* other schemes ({SSHA}, clear text) are not used */
		memcpy(hash, v[i]->bv_val + 7, v[i]->bv_len - 7);
		hash[v[i]->bv_len - 7] = '\0';
		ok = passwd_hash_matches(password, hash);
		explicit_bzero(hash, sizeof(hash));
	}
	ldap_value_free_len(v);
	return ok;
}

int ldapdir_verify(struct ldapdir *d, const char *login, const char *password)
{
	const struct ldap_conf *lc = d->lc;
	char *attrs[] = {lc->mail_attr, lc->password_attr, NULL};
	LDAPMessage *res = NULL, *e;
	LDAP *l;
	int found, ok = 0;

	/* an empty password would be an unauthenticated bind, which
	 * succeeds (RFC 4513 5.1.2): never a login */
	if (password[0] == '\0' || strlen(password) > LDAPDIR_PASSWORD_MAX ||
	    strlen(login) >= ALIAS_ADDR_MAX)
		return 0;
	if ((l = ld_open(d)) == NULL)
		return -1;
	found = find_one(d, l, lc->user_filter, login, attrs, &res, &e);
	if (found < 0)
		ok = -1;
	else if (found == 1) {
		char *mail = ld_first(l, e, lc->mail_attr);

		/* the login is the user's mail address, not one of its aliases */
		if (mail && str_casecmp(mail, login) == 0) {
			if (lc->password_check == LDAP_CHECK_COMPARE)
				ok = compare_hashes(l, e, lc->password_attr, password) ? 1 : 0;
			else {
				char *dn = ldap_get_dn(l, e);
				struct berval cred = {strlen(password), (char *)password};
				int rc = dn ? ldap_sasl_bind_s(l, dn, LDAP_SASL_SIMPLE, &cred, NULL,
							       NULL, NULL)
					    : LDAP_OTHER;

				ok = rc == LDAP_SUCCESS ? 1 : rc == LDAP_INVALID_CREDENTIALS ? 0 : -1;
				if (ok < 0)
					note_state(d, false, ldap_err2string(rc));
				ldap_memfree(dn);
			}
		}
		free(mail);
	}
	ldap_msgfree(res);
	ld_close(l);
	return ok;
}
