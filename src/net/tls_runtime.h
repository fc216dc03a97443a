/*
 * tls_runtime.h - transitd's server TLS contexts while it runs: one per
 * receive connector, built from the certificate store's bindings
 * (net/certstore.h), else the connector's tls-cert, else server.tls-cert,
 * else the built-in self-signed certificate (net/tls.h); with the
 * connector's tls-protocols / tls-ciphers.
 *
 * - SNI (RFC 6066 3): a connector bound to several certificates serves
 *   the one whose subjectAltName matches the client's server_name, exact
 *   names before wildcards (RFC 6125 6.4.3), the default (first binding)
 *   otherwise.
 * - No restart to switch certificates: the bindings file is looked at
 *   once a second (and a reload, SIGHUP, builds a new runtime for its new
 *   configuration generation); when it changed,
 *   new SSL_CTXs are built and put in the array for NEW handshakes.
 *   Sessions in progress keep theirs: every SSL holds a reference to its
 *   SSL_CTX (SSL_new, SSL_set_SSL_CTX), and the SNI table hangs off its
 *   default context (ex_data) so it lives exactly as long. A store that
 *   does not load (a bad key, a wrong mode) is logged and the contexts in
 *   use stay.
 * - Expiry: a warning per certificate in use within 30 days of its
 *   notAfter, at load and then at most once a day; a self-signed
 *   certificate within 30 days is renewed while running (the built-in
 *   one in <spool>/tls, and a self-signed one from the store, whose
 *   bindings then move to the new one).
 */
#ifndef TRANSIT_NET_TLS_RUNTIME_H
#define TRANSIT_NET_TLS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "conf/conf.h"

struct event_base;
struct tls_runtime;

/* Build every context for c: one tls_runtime per configuration
 * generation (conf/gen.h, made by daemon/gen_build.c). At start (prev
 * NULL) this runs as root, before the privilege drop: the store directory
 * and the built-in certificate's directory are then given to server.user
 * so the daemon can renew and reload after the drop. At a reload (prev:
 * the current generation's), a connector whose configured key cannot be
 * read now keeps prev's context for the same files. NULL with err. */
struct tls_runtime *tls_runtime_new(const struct config *c, const struct tls_runtime *prev,
				    char *err, size_t errlen);
/* The per-connector array (index as conf->rcs, NULL: tls = none) for
 * smtp_server_params.tls_ctx. The pointer is stable; its entries are
 * replaced on reload, so take a context with SSL_new() at handshake time
 * and never keep one. */
SSL_CTX **tls_runtime_contexts(struct tls_runtime *rt);

/* Start the once-a-second check and the expiry checks on base (the
 * current generation's runtime only), and make rt the one
 * tls_cert_status() reports; stop: no more checks (a generation that is
 * no longer current, still held by sessions). */
void tls_runtime_start(struct tls_runtime *rt, struct event_base *base);
void tls_runtime_stop(struct tls_runtime *rt);


void tls_runtime_free(struct tls_runtime *rt);

/* For `transitctl status` and the status page: the certificate in use
 * that expires first. Returns false when transitd serves no TLS. */
struct tls_cert_status {
	time_t not_after;	/* the soonest notAfter of all certificates in use */
	long days_left;		/* whole days from now (negative: expired) */
	char thumbprint[65];	/* its SHA-256, lower-case hex */
	char subject[256];	/* its subject, RFC 2253 */
	char connector[128];	/* a receive connector that serves it */
	size_t ncerts;		/* certificates in use */
	size_t expiring;	/* of which within 30 days of expiry */
};
bool tls_cert_status(struct tls_cert_status *out);

#endif
