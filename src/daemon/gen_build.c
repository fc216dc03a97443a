/*
 * gen_build.c - see gen_build.h.
 */
#include "daemon/gen_build.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "net/tls.h"
#include "net/tls_runtime.h"
#include "util/log.h"
#include "queue/sched.h"
#include "util/xmalloc.h"

static void gen_release(struct conf_gen *g)
{
	const struct config *c = g->conf;
	size_t i;

	tls_runtime_free(g->tls); /* its contexts: sessions hold their own references */
	if (g->sc) {
		for (i = 0; i < c->nscs; i++) {
			if (g->sc[i].tls)
				SSL_CTX_free(g->sc[i].tls);
			free(g->sc[i].auth_user);
			if (g->sc[i].auth_pass) {
				explicit_bzero(g->sc[i].auth_pass, strlen(g->sc[i].auth_pass));
				free(g->sc[i].auth_pass);
			}
		}
		free(g->sc);
	}
}

static bool same_path(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The receive connectors' contexts (net/tls_runtime.h: the certificate
 * store's bindings, SNI, expiry), one runtime per generation. */
static int make_rc_tls(struct conf_gen *g, const struct conf_gen *prev, char *err, size_t errlen)
{
	g->tls = tls_runtime_new(g->conf, prev ? prev->tls : NULL, err, errlen);
	if (g->tls == NULL)
		return -1;
	g->rc_tls = tls_runtime_contexts(g->tls);
	return 0;
}

/* The previous generation's send connector of that name, or NULL. */
static size_t prev_sc(const struct conf_gen *prev, const char *name)
{
	if (prev == NULL)
		return SIZE_MAX;
	for (size_t i = 0; i < prev->conf->nscs; i++)
		if (strcmp(prev->conf->scs[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/* "user:password" (first line) from a send connector's auth-secret file. */
static int read_secret(const struct send_connector *sc, struct sc_runtime *rt, char *err,
		       size_t errlen)
{
	char line[1024];
	FILE *f;
	char *colon;

	if (sc->auth_secret == NULL)
		return 0;
	if ((f = fopen(sc->auth_secret, "r")) == NULL) {
		snprintf(err, errlen, "send-connector %s: auth-secret %s: %s", sc->name,
			 sc->auth_secret, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if ((colon = strchr(line, ':')) == NULL || colon == line) {
		explicit_bzero(line, sizeof(line));
		snprintf(err, errlen, "send-connector %s: auth-secret %s: expected one line "
				      "USER:PASSWORD", sc->name, sc->auth_secret);
		return -1;
	}
	*colon = '\0';
	rt->auth_user = xstrdup(line);
	rt->auth_pass = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* Outbound TLS contexts and AUTH secrets. What cannot be read again now
 * (a file only root reads) is kept from the previous generation when the
 * connector names the same file; anything new must be readable. */
static int make_send_runtime(struct conf_gen *g, const struct conf_gen *prev, char *err,
			     size_t errlen)
{
	const struct config *c = g->conf;
	char why[512];
	size_t i;

	g->sc = xcalloc(c->nscs ? c->nscs : 1, sizeof(*g->sc));
	for (i = 0; i < c->nscs; i++) {
		const struct send_connector *sc = &c->scs[i];
		size_t k = prev_sc(prev, sc->name);
		const struct send_connector *psc = k == SIZE_MAX ? NULL : &prev->conf->scs[k];
		const struct sc_runtime *prt = k == SIZE_MAX ? NULL : &prev->sc[k];

		if (sc->tls != SC_TLS_NONE) {
			g->sc[i].tls = tls_client_ctx(sc->tls_ca_file, why, sizeof(why));
			if (g->sc[i].tls != NULL &&
			    tls_ctx_apply_proto(g->sc[i].tls, &sc->tls_proto, false, why,
						sizeof(why)) < 0) {
				/* the protocols and ciphers were checked at -n: not
				 * a file that cannot be read, so never kept from before */
				SSL_CTX_free(g->sc[i].tls);
				snprintf(err, errlen, "send-connector %s: tls: %s", sc->name, why);
				return -1;
			}
			if (g->sc[i].tls == NULL && prt && prt->tls &&
			    same_path(psc->tls_ca_file, sc->tls_ca_file)) {
				log_warn("reload: send-connector %s: tls: %s: keeping the one loaded "
					 "before", sc->name, why);
				SSL_CTX_up_ref(prt->tls);
				g->sc[i].tls = prt->tls;
			}
			if (g->sc[i].tls == NULL) {
				snprintf(err, errlen, "send-connector %s: tls: %s", sc->name, why);
				return -1;
			}
		}
		if (read_secret(sc, &g->sc[i], err, errlen) == 0)
			continue;
		if (prt == NULL || prt->auth_user == NULL ||
		    !same_path(psc->auth_secret, sc->auth_secret))
			return -1;
		log_warn("reload: %s: keeping the secret read before (a restart reads it as root)",
			 err);
		err[0] = '\0';
		g->sc[i].auth_user = xstrdup(prt->auth_user);
		g->sc[i].auth_pass = xstrdup(prt->auth_pass);
	}
	return 0;
}

struct conf_gen *gen_build(struct config *c, const struct conf_gen *prev, char *err,
			   size_t errlen)
{
	struct conf_gen *g = conf_gen_new(c, prev ? prev->number + 1 : 1);

	g->release = gen_release;
	if (make_rc_tls(g, prev, err, errlen) != 0 || make_send_runtime(g, prev, err, errlen) != 0) {
		conf_gen_unref(g);
		return NULL;
	}
	return g;
}
