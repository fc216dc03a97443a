/*
 * tls_runtime.c - per-connector server contexts that change while
 * transitd runs: SNI, reload without restart, expiry warnings and
 * self-signed renewal (see tls_runtime.h). Everything here runs on the
 * event loop's thread.
 */
#include "net/tls_runtime.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/certstore.h"
#include "net/tls.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define TR_WARN_DAYS 30	      /* warn and renew this close to notAfter */
#define TR_RENEW_DAYS 365     /* a renewed self-signed certificate */
#define TR_EXPIRY_EVERY_MS (3600 * 1000)  /* look at expiry hourly */
#define TR_WARN_EVERY_MS (86400 * 1000)	  /* warn at most once a day */
#define TR_PATH_MAX 4096

/* A certificate in use, for expiry. */
struct tr_cert {
	X509 *x;		 /* a reference */
	const char *connector;	 /* conf's name */
	bool builtin;		 /* the self-signed one in <spool>/tls */
	bool store_self_signed;	 /* a self-signed one from the store */
	char thumb[CERTSTORE_THUMB_LEN + 1];
};

struct tls_runtime {
	const struct config *c;
	char store[TR_PATH_MAX];
	SSL_CTX **ctx; /* [c->nrcs] */
	struct tr_cert *certs;
	size_t ncerts;
	struct stat bind_st; /* of the bindings file at the last build */
	bool bind_exists;
	struct event *tick;
	uint64_t next_expiry_ms, next_warn_ms;
};

static struct tls_runtime *tr_current; /* for tls_cert_status() */

/* ---- SNI -------------------------------------------------------------------- */

/* The certificates of one connector; hangs off its default SSL_CTX. */
struct tr_sni {
	size_t n;
	SSL_CTX **ctx; /* a reference each; [0] is the default itself (no reference) */
	X509 **leaf;
};

static int tr_sni_index = -1;

static void tr_sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct tr_sni *sni = ptr;
	size_t i;
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;

	if (sni == NULL)
		return;
	for (i = 1; i < sni->n; i++)
		SSL_CTX_free(sni->ctx[i]);
	free(sni->ctx);
	free(sni->leaf);
	free(sni);
}

/* The context whose certificate names servername: exact names first,
 * then wildcards (RFC 6125 6.4.3: "*" only as the whole left label). */
static int tr_sni_pick(const struct tr_sni *sni, const char *name)
{
	static const unsigned flags[2] = {X509_CHECK_FLAG_NO_WILDCARDS,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS};
	size_t pass, i;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < sni->n; i++)
			if (X509_check_host(sni->leaf[i], name, 0, flags[pass], NULL) == 1)
				return (int)i;
	ERR_clear_error();
	return -1;
}

static int tr_servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tr_sni *sni = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	int i;
	(void)alert;

	if (name == NULL || sni == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	i = tr_sni_pick(sni, name);
	if (i > 0 && SSL_set_SSL_CTX(ssl, sni->ctx[i]) == NULL)
		ERR_clear_error(); /* stay on the default */
	return SSL_TLSEXT_ERR_OK;
}

/* ---- building -------------------------------------------------------------------- */

static SSL_CTX *tr_ctx_for_entry(const struct receive_connector *rc, const struct cert_entry *e,
				 char *err, size_t errsz)
{
	SSL_CTX *ctx = tls_server_ctx_empty(err, errsz);

	if (ctx == NULL)
		return NULL;
	if (tls_ctx_apply_proto(ctx, &rc->tls_proto, true, err, errsz) < 0 ||
	    SSL_CTX_use_cert_and_key(ctx, e->leaf, e->key, e->chain, 1) != 1) {
		if (err[0] == '\0')
			snprintf(err, errsz, "certificate %s does not load: %s", e->thumb,
				 ERR_reason_error_string(ERR_get_error()));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void tr_note_cert(struct tr_cert **v, size_t *n, SSL_CTX *ctx, const char *connector,
			 bool builtin, bool store_ss)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	if (x == NULL)
		return;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	X509_up_ref(x);
	(*v)[*n].x = x;
	(*v)[*n].connector = connector;
	(*v)[*n].builtin = builtin;
	(*v)[*n].store_self_signed = store_ss;
	certstore_thumbprint(x, (*v)[*n].thumb);
	(*n)++;
}

/* The connector's contexts from its store bindings; NULL with err[0]
 * == '\0' when it has none. */
static SSL_CTX *tr_build_bound(const struct receive_connector *rc, const struct certstore *st,
			       struct tr_cert **certs, size_t *ncerts, char *err, size_t errsz)
{
	struct tr_sni *sni = xcalloc(1, sizeof(*sni));
	size_t i;

	err[0] = '\0';
	for (i = 0; i < st->nbinds; i++) {
		const struct cert_entry *e;
		SSL_CTX *ctx;
		if (strcmp(st->binds[i].connector, rc->name) != 0)
			continue;
		if ((e = certstore_find(st, st->binds[i].thumb, err, errsz)) == NULL ||
		    (ctx = tr_ctx_for_entry(rc, e, err, errsz)) == NULL)
			goto fail;
		sni->ctx = xrealloc(sni->ctx, (sni->n + 1) * sizeof(*sni->ctx));
		sni->leaf = xrealloc(sni->leaf, (sni->n + 1) * sizeof(*sni->leaf));
		sni->ctx[sni->n] = ctx;
		sni->leaf[sni->n] = SSL_CTX_get0_certificate(ctx);
		sni->n++;
		tr_note_cert(certs, ncerts, ctx, rc->name, false, e->self_signed);
	}
	if (sni->n == 0) {
		tr_sni_free(NULL, sni, NULL, 0, 0, NULL);
		return NULL;
	}
	SSL_CTX_set_tlsext_servername_callback(sni->ctx[0], tr_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(sni->ctx[0], sni);
	if (SSL_CTX_set_ex_data(sni->ctx[0], tr_sni_index, sni) != 1) {
		snprintf(err, errsz, "out of memory");
		SSL_CTX_set_tlsext_servername_arg(sni->ctx[0], NULL);
		goto fail;
	}
	return sni->ctx[0];
fail:
	if (sni->n > 0)
		SSL_CTX_free(sni->ctx[0]);
	tr_sni_free(NULL, sni, NULL, 0, 0, NULL);
	return NULL;
}

static void tr_certs_free(struct tr_cert *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		X509_free(v[i].x);
	free(v);
}

static bool same_path(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* A reload runs as server.user: a configured key only root can read
 * cannot be read again. The previous generation's context for a
 * connector of the same name with the same files (a new reference), or
 * NULL. */
static SSL_CTX *tr_prev_ctx(const struct tls_runtime *prev, const struct config *c,
			    const struct receive_connector *rc)
{
	if (prev == NULL)
		return NULL;
	for (size_t i = 0; i < prev->c->nrcs; i++) {
		const struct receive_connector *p = &prev->c->rcs[i];

		if (strcmp(p->name, rc->name) != 0 || prev->ctx[i] == NULL)
			continue;
		if (!same_path(p->tls_cert ? p->tls_cert : prev->c->server.tls_cert,
			       rc->tls_cert ? rc->tls_cert : c->server.tls_cert) ||
		    !same_path(p->tls_key ? p->tls_key : prev->c->server.tls_key,
			       rc->tls_key ? rc->tls_key : c->server.tls_key))
			return NULL;
		SSL_CTX_up_ref(prev->ctx[i]);
		return prev->ctx[i];
	}
	return NULL;
}

/* Every connector's context into v (nrcs entries); 0, or -1 with err and
 * nothing built. prev: the runtime of the previous configuration
 * generation (NULL at start). */
static int tr_build(struct tls_runtime *rt, const struct tls_runtime *prev, SSL_CTX **v,
		    struct tr_cert **certs, size_t *ncerts, char *err, size_t errsz)
{
	const struct config *c = rt->c;
	struct certstore *st = certstore_open(rt->store, true, err, errsz);
	size_t i, b;
	char why[512];

	*certs = NULL;
	*ncerts = 0;
	if (st == NULL)
		return -1;
	for (b = 0; b < st->nbinds; b++) {
		for (i = 0; i < c->nrcs; i++)
			if (strcmp(c->rcs[i].name, st->binds[b].connector) == 0)
				break;
		if (i == c->nrcs)
			log_warn("tls bindings: no receive-connector \"%s\" (binding of %.16s ignored)",
				 st->binds[b].connector, st->binds[b].thumb);
	}
	for (i = 0; i < c->nrcs; i++) {
		const struct receive_connector *rc = &c->rcs[i];
		bool builtin = false;

		v[i] = NULL;
		if (rc->tls == RC_TLS_NONE)
			continue;
		v[i] = tr_build_bound(rc, st, certs, ncerts, why, sizeof(why));
		if (v[i] == NULL && why[0] != '\0') {
			snprintf(err, errsz, "receive-connector %s: %s", rc->name, why);
			goto fail;
		}
		if (v[i] != NULL)
			continue;
		if (rc->tls_cert != NULL) {
			v[i] = tls_server_ctx(rc->tls_cert, rc->tls_key, c->server.spool, rc->fqdn, why,
					      sizeof(why));
		} else {
			builtin = c->server.tls_cert == NULL;
			v[i] = tls_server_ctx(c->server.tls_cert, c->server.tls_key, c->server.spool,
					      c->server.fqdn, why, sizeof(why));
		}
		if (v[i] == NULL || tls_ctx_apply_proto(v[i], &rc->tls_proto, true, why,
							 sizeof(why)) < 0) {
			SSL_CTX_free(v[i]);
			if ((v[i] = tr_prev_ctx(prev, c, rc)) != NULL) {
				log_warn("reload: receive-connector %s: tls: %s: keeping the "
					 "certificate loaded before (a restart reads it as root)",
					 rc->name, why);
				continue;
			}
			snprintf(err, errsz, "receive-connector %s: tls: %s", rc->name, why);
			goto fail;
		}
		tr_note_cert(certs, ncerts, v[i], rc->name, builtin, false);
	}
	certstore_free(st);
	return 0;
fail:
	for (b = 0; b <= i && b < c->nrcs; b++) {
		SSL_CTX_free(v[b]);
		v[b] = NULL;
	}
	tr_certs_free(*certs, *ncerts);
	*certs = NULL;
	*ncerts = 0;
	certstore_free(st);
	return -1;
}

static void tr_stat_bindings(struct tls_runtime *rt, struct stat *out, bool *exists)
{
	char path[TR_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/bindings", rt->store);
	*exists = stat(path, out) == 0;
	if (!*exists)
		memset(out, 0, sizeof(*out));
}

static bool tr_bindings_changed(struct tls_runtime *rt)
{
	struct stat now;
	bool exists;

	tr_stat_bindings(rt, &now, &exists);
	return exists != rt->bind_exists || now.st_ino != rt->bind_st.st_ino ||
	       now.st_size != rt->bind_st.st_size ||
	       now.st_mtim.tv_sec != rt->bind_st.st_mtim.tv_sec ||
	       now.st_mtim.tv_nsec != rt->bind_st.st_mtim.tv_nsec;
}

static void tr_check_expiry(struct tls_runtime *rt);

/* Build new contexts and put them in place; the old ones go when the
 * last session using them ends. */
static int tr_rebuild(struct tls_runtime *rt, const char *why)
{
	SSL_CTX **v = xcalloc(rt->c->nrcs ? rt->c->nrcs : 1, sizeof(*v));
	struct tr_cert *certs;
	size_t ncerts, i;
	char err[1024];

	tr_stat_bindings(rt, &rt->bind_st, &rt->bind_exists); /* a bad file is not retried each second */
	if (tr_build(rt, NULL, v, &certs, &ncerts, err, sizeof(err)) < 0) {
		log_warn("tls reload reason=%s failed error=\"%s\": the certificates in use stay", why,
			 err);
		free(v);
		return -1;
	}
	for (i = 0; i < rt->c->nrcs; i++) {
		SSL_CTX_free(rt->ctx[i]); /* a reference: sessions hold theirs */
		rt->ctx[i] = v[i];
	}
	free(v);
	tr_certs_free(rt->certs, rt->ncerts);
	rt->certs = certs;
	rt->ncerts = ncerts;
	for (i = 0; i < ncerts; i++)
		log_info("tls connector=%s certificate=%s", certs[i].connector, certs[i].thumb);
	rt->next_warn_ms = 0; /* warn about what is now in use */
	return 0;
}

/* ---- expiry ----------------------------------------------------------------------------- */

/* Whole days from now (the wall clock) to notAfter, signed: negative
 * once expired. */
static long tr_days_left(X509 *x)
{
	int days = 0, secs = 0;

	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1) {
		ERR_clear_error();
		return 0;
	}
	return days;
}

static void tr_check_expiry(struct tls_runtime *rt)
{
	uint64_t now_ms = clock_mono_ms();
	bool warn = rt->next_warn_ms == 0 || now_ms >= rt->next_warn_ms;
	bool renew_builtin = false, rebind = false;
	size_t i;
	char subject[512], qs[1024], na[64], err[1024], thumb[CERTSTORE_THUMB_LEN + 1];

	for (i = 0; i < rt->ncerts; i++) {
		struct tr_cert *tc = &rt->certs[i];
		long days = tr_days_left(tc->x);
		if (days >= TR_WARN_DAYS)
			continue;
		if (tc->builtin) {
			renew_builtin = true;
			continue;
		}
		if (tc->store_self_signed) {
			struct certstore *st = certstore_open(rt->store, false, err, sizeof(err));
			const struct cert_entry *e = st ? certstore_find(st, tc->thumb, err, sizeof(err)) : NULL;
			if (e != NULL && certstore_renew(rt->store, e, TR_RENEW_DAYS, thumb, err,
							 sizeof(err)) == 0) {
				log_info("tls certificate=%s renewed=%s reason=\"self-signed, expires "
					 "in %ld days\"",
					 tc->thumb, thumb, days);
				rebind = true;
			} else {
				log_warn("tls certificate=%s renew failed error=\"%s\"", tc->thumb, err);
			}
			certstore_free(st);
			continue;
		}
		if (!warn)
			continue;
		tls_name_text(X509_get_subject_name(tc->x), subject, sizeof(subject));
		tls_time_text(X509_get0_notAfter(tc->x), na, sizeof(na));
		log_warn("tls certificate=%s connector=%s subject=%s notafter=%s expires in %ld days: "
			 "renew it (transitctl cert request / import / use)",
			 tc->thumb, tc->connector, log_quote(subject, qs, sizeof(qs)), na, days);
	}
	if (warn)
		rt->next_warn_ms = now_ms + TR_WARN_EVERY_MS;
	rt->next_expiry_ms = now_ms + TR_EXPIRY_EVERY_MS;
	if (renew_builtin)
		(void)tr_rebuild(rt, "renew-self-signed"); /* tls.c makes a new one */
	else if (rebind)
		(void)tr_rebuild(rt, "renewed");
}

static void tr_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tls_runtime *rt = arg;
	(void)fd;
	(void)what;

	if (tr_bindings_changed(rt)) {
		if (tr_rebuild(rt, "bindings-changed") == 0)
			tr_check_expiry(rt);
		return;
	}
	if (clock_mono_ms() >= rt->next_expiry_ms)
		tr_check_expiry(rt);
}

/* ---- public ------------------------------------------------------------------------------ */

static void tr_prepare_dirs(const struct config *c, const char *store)
{
	struct passwd *pw = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	char err[TR_PATH_MAX + 128], builtin[TR_PATH_MAX];

	if (geteuid() == 0 && c->server.user != NULL && (pw = getpwnam(c->server.user)) != NULL) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (certstore_prepare(store, uid, gid, err, sizeof(err)) < 0)
		log_fatal("tls certificate store: %s", err);
	/* the built-in self-signed certificate is renewed after the drop */
	snprintf(builtin, sizeof(builtin), "%s/tls", c->server.spool);
	if (certstore_prepare(builtin, uid, gid, err, sizeof(err)) < 0)
		log_fatal("tls: %s", err);
}

struct tls_runtime *tls_runtime_new(const struct config *c, const struct tls_runtime *prev,
				    char *err, size_t errlen)
{
	struct tls_runtime *rt = xcalloc(1, sizeof(*rt));

	rt->c = c;
	if (tr_sni_index < 0 &&
	    (tr_sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tr_sni_free)) < 0)
		log_fatal("tls: no ex_data index");
	if (certstore_dir(c->server.spool, rt->store, sizeof(rt->store)) < 0) {
		snprintf(err, errlen, "tls: spool path too long");
		free(rt);
		return NULL;
	}
	rt->ctx = xcalloc(c->nrcs ? c->nrcs : 1, sizeof(*rt->ctx));
	tr_stat_bindings(rt, &rt->bind_st, &rt->bind_exists);
	if (tr_build(rt, prev, rt->ctx, &rt->certs, &rt->ncerts, err, errlen) < 0) {
		free(rt->ctx);
		free(rt);
		return NULL;
	}
	if (prev == NULL)
		tr_prepare_dirs(c, rt->store); /* after the build: the files it made too */
	return rt;
}

SSL_CTX **tls_runtime_contexts(struct tls_runtime *rt) { return rt->ctx; }

void tls_runtime_start(struct tls_runtime *rt, struct event_base *base)
{
	const struct timeval second = {1, 0};

	rt->tick = event_new(base, -1, EV_PERSIST, tr_tick, rt);
	if (rt->tick == NULL)
		log_fatal("tls: event_new failed");
	event_add(rt->tick, &second);
	tr_current = rt;
	tr_check_expiry(rt);
}

void tls_runtime_stop(struct tls_runtime *rt)
{
	if (rt == NULL)
		return;
	if (rt->tick)
		event_free(rt->tick);
	rt->tick = NULL;
	if (tr_current == rt)
		tr_current = NULL;
}

void tls_runtime_free(struct tls_runtime *rt)
{
	size_t i;

	if (rt == NULL)
		return;
	if (tr_current == rt)
		tr_current = NULL;
	if (rt->tick)
		event_free(rt->tick);
	for (i = 0; i < rt->c->nrcs; i++)
		SSL_CTX_free(rt->ctx[i]);
	free(rt->ctx);
	tr_certs_free(rt->certs, rt->ncerts);
	free(rt);
}

bool tls_cert_status(struct tls_cert_status *out)
{
	const struct tls_runtime *rt = tr_current;
	size_t i, best = 0;
	struct tm tm;

	memset(out, 0, sizeof(*out));
	if (rt == NULL || rt->ncerts == 0)
		return false;
	for (i = 0; i < rt->ncerts; i++) {
		if (X509_cmp_time(X509_get0_notAfter(rt->certs[i].x), NULL) == 0)
			continue;
		if (ASN1_TIME_compare(X509_get0_notAfter(rt->certs[i].x),
				      X509_get0_notAfter(rt->certs[best].x)) < 0)
			best = i;
		if (tr_days_left(rt->certs[i].x) < TR_WARN_DAYS)
			out->expiring++;
	}
	out->ncerts = rt->ncerts;
	out->days_left = tr_days_left(rt->certs[best].x);
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(rt->certs[best].x), &tm) == 1)
		out->not_after = timegm(&tm);
	str_copy(out->thumbprint, rt->certs[best].thumb, sizeof(out->thumbprint));
	tls_name_text(X509_get_subject_name(rt->certs[best].x), out->subject, sizeof(out->subject));
	str_copy(out->connector, rt->certs[best].connector, sizeof(out->connector));
	ERR_clear_error();
	return true;
}
