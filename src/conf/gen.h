/*
 * gen.h - configuration generations (reload without restart).
 *
 * A generation is one loaded configuration plus what the daemon built
 * from it (the receive connectors' TLS contexts, the send connectors' TLS
 * contexts and AUTH secrets), numbered 1 at start and one more per
 * successful reload. It is reference-counted: the daemon holds the
 * current one; every SMTP session holds the one it started with, every
 * delivery batch and next-hop queue the one it was routed with, so a
 * reload never changes the rules under a session or a delivery in
 * progress. The last conf_gen_unref() frees the configuration and calls
 * release() for the rest (set by whoever built it: the conf layer knows
 * nothing about TLS).
 *
 * The count is atomic, so a reference may be dropped on any thread; in
 * transitd every ref and unref happens on the event loop.
 */
#ifndef TRANSIT_CONF_GEN_H
#define TRANSIT_CONF_GEN_H

#include <stdatomic.h>
#include <stdint.h>

#include "conf/conf.h"

struct ssl_ctx_st;
struct sc_runtime;
struct tls_runtime;

struct conf_gen {
	atomic_uint refs;
	uint64_t number;
	struct config *conf;
	/* the receive connectors' TLS (net/tls_runtime.h), and its array: per
	 * receive connector (same index as conf->rcs), NULL where tls = none.
	 * Entries are replaced when the certificate bindings change: take one
	 * at each handshake (SSL_new holds a reference), keep none. */
	struct tls_runtime *tls;
	struct ssl_ctx_st **rc_tls;
	/* per send connector (same index as conf->scs): TLS context, AUTH secret */
	struct sc_runtime *sc;
	/* frees tls and sc; NULL: nothing to free beyond conf */
	void (*release)(struct conf_gen *g);
};

/* A generation with one reference (the caller's); takes ownership of c. */
struct conf_gen *conf_gen_new(struct config *c, uint64_t number);
/* Another reference to g (g may be NULL); returns g. */
struct conf_gen *conf_gen_ref(struct conf_gen *g);
/* Drop a reference (g may be NULL); the last one frees g. */
void conf_gen_unref(struct conf_gen *g);
/* How many generations are alive now (made and not yet freed): for the
 * log after a reload and for tests. */
unsigned conf_gen_alive(void);

/* Compare what a reload cannot change in a running daemon: every such
 * difference is logged ("X changed: needs a restart") and counted. The
 * rest of new applies to new sessions and deliveries. */
unsigned conf_gen_restart_only_changes(const struct config *old, const struct config *new);

#endif
