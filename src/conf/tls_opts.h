/*
 * tls_opts.h - the per-connector TLS protocol options of transit.conf(5):
 * tls-protocols (a list of protocol names) and tls-ciphers /
 * tls-ciphersuites (OpenSSL cipher strings for TLS <= 1.2 and for TLS 1.3).
 *
 * This file only parses and checks them (so `transitd -n` reports a bad
 * value with file:line); net/tls.c applies them to an SSL_CTX.
 */
#ifndef TRANSIT_CONF_TLS_OPTS_H
#define TRANSIT_CONF_TLS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/* What a connector asks of TLS; zero/NULL fields mean transit's default
 * (TLS 1.2 and 1.3, ECDHE + AEAD suites on receive connectors). */
struct tls_proto {
	int min_version, max_version; /* TLS1_VERSION .. TLS1_3_VERSION; 0 = default */
	char *ciphers;		      /* OpenSSL cipher list for TLS <= 1.2, or NULL */
	char *ciphersuites;	      /* OpenSSL TLS 1.3 ciphersuites, or NULL */
};

/* names: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" (an unbroken range:
 * OpenSSL only has a minimum and a maximum). 0, or -1 with err. */
int tls_opts_parse_protocols(const char *const *names, size_t n, int *min_version,
			     int *max_version, char *err, size_t errsz);

/* Does OpenSSL accept this cipher list (tls13: ciphersuites)? */
int tls_opts_check_ciphers(const char *s, bool tls13, char *err, size_t errsz);

/* "TLSv1.2" for TLS1_2_VERSION. */
const char *tls_opts_version_name(int version);

/* libConfuse glue for conf.c: validators for the three options (errors
 * at the option's line), the section's values into p, and free. */
typedef struct cfg_t cfg_t;
typedef struct cfg_opt_t cfg_opt_t;
int tls_opts_v_protocols(cfg_t *cfg, cfg_opt_t *opt);
int tls_opts_v_ciphers(cfg_t *cfg, cfg_opt_t *opt);
int tls_opts_v_ciphersuites(cfg_t *cfg, cfg_opt_t *opt);
void tls_opts_from_section(cfg_t *sec, struct tls_proto *p);
void tls_proto_free(struct tls_proto *p);

#endif
