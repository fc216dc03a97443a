/*
 * gen_build.c - see gen_build.h.
 */
#include "daemon/gen_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "net/tls.h"
#include "queue/sched.h"
#include "util/xmalloc.h"

static void gen_release(struct conf_gen *g)
{
	const struct config *c = g->conf;
	size_t i;

	if (g->rc_tls) {
		for (i = 0; i < c->nrcs; i++)
			if (g->rc_tls[i])
				SSL_CTX_free(g->rc_tls[i]);
		free(g->rc_tls);
	}
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

/* One context per connector that speaks TLS; connectors without their
 * own certificate share the server's. */
static int make_rc_tls(struct conf_gen *g, char *err, size_t errlen)
{
	const struct config *c = g->conf;
	SSL_CTX *shared = NULL;
	char why[512];
	size_t i;

	g->rc_tls = xcalloc(c->nrcs ? c->nrcs : 1, sizeof(*g->rc_tls));
	for (i = 0; i < c->nrcs; i++) {
		const struct receive_connector *rc = &c->rcs[i];
		if (rc->tls == RC_TLS_NONE)
			continue;
		if (rc->tls_cert) {
			g->rc_tls[i] = tls_server_ctx(rc->tls_cert, rc->tls_key, c->server.spool,
						      rc->fqdn, why, sizeof(why));
			if (g->rc_tls[i] == NULL) {
				snprintf(err, errlen, "receive-connector %s: tls: %s", rc->name, why);
				return -1;
			}
			continue;
		}
		if (shared == NULL) {
			shared = tls_server_ctx(c->server.tls_cert, c->server.tls_key, c->server.spool,
						c->server.fqdn, why, sizeof(why));
			if (shared == NULL) {
				snprintf(err, errlen, "tls: %s", why);
				return -1;
			}
		} else {
			SSL_CTX_up_ref(shared);
		}
		g->rc_tls[i] = shared;
	}
	return 0;
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

/* Outbound TLS contexts and AUTH secrets. */
static int make_send_runtime(struct conf_gen *g, char *err, size_t errlen)
{
	const struct config *c = g->conf;
	char why[512];
	size_t i;

	g->sc = xcalloc(c->nscs ? c->nscs : 1, sizeof(*g->sc));
	for (i = 0; i < c->nscs; i++) {
		const struct send_connector *sc = &c->scs[i];
		if (sc->tls != SC_TLS_NONE) {
			g->sc[i].tls = tls_client_ctx(sc->tls_ca_file, why, sizeof(why));
			if (g->sc[i].tls == NULL) {
				snprintf(err, errlen, "send-connector %s: tls: %s", sc->name, why);
				return -1;
			}
		}
		if (read_secret(sc, &g->sc[i], err, errlen) != 0)
			return -1;
	}
	return 0;
}

struct conf_gen *gen_build(struct config *c, uint64_t number, char *err, size_t errlen)
{
	struct conf_gen *g = conf_gen_new(c, number);

	g->release = gen_release;
	if (make_rc_tls(g, err, errlen) != 0 || make_send_runtime(g, err, errlen) != 0) {
		conf_gen_unref(g);
		return NULL;
	}
	return g;
}
