/*
 * tls_opts.c - parse and check tls-protocols, tls-ciphers and
 * tls-ciphersuites (see tls_opts.h). The cipher strings are handed to
 * OpenSSL on a throwaway context: whatever OpenSSL refuses (no cipher
 * matches) is refused here, at configuration time, with file:line, rather
 * than at the first handshake.
 */
#include "conf/tls_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confuse.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util/xmalloc.h"

static const struct {
	const char *name;
	int version;
} tls_versions[] = {
	{"TLSv1", TLS1_VERSION},
	{"TLSv1.1", TLS1_1_VERSION},
	{"TLSv1.2", TLS1_2_VERSION},
	{"TLSv1.3", TLS1_3_VERSION},
};

#define NVERSIONS (sizeof(tls_versions) / sizeof(tls_versions[0]))

const char *tls_opts_version_name(int version)
{
	size_t i;

	for (i = 0; i < NVERSIONS; i++)
		if (tls_versions[i].version == version)
			return tls_versions[i].name;
	return "default";
}

int tls_opts_parse_protocols(const char *const *names, size_t n, int *min_version,
			     int *max_version, char *err, size_t errsz)
{
	bool seen[NVERSIONS] = {false};
	size_t i, j, lo = NVERSIONS, hi = 0;

	*min_version = *max_version = 0;
	if (n == 0) {
		snprintf(err, errsz, "needs at least one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3");
		return -1;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < NVERSIONS; j++)
			if (strcmp(names[i], tls_versions[j].name) == 0)
				break;
		if (j == NVERSIONS) {
			snprintf(err, errsz,
				 "\"%s\" is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (SSLv3 and "
				 "older are never offered)",
				 names[i]);
			return -1;
		}
		seen[j] = true;
		if (j < lo)
			lo = j;
		if (j > hi)
			hi = j;
	}
	for (j = lo; j <= hi; j++) {
		if (!seen[j]) {
			snprintf(err, errsz, "leaves out %s between %s and %s (give an unbroken range)",
				 tls_versions[j].name, tls_versions[lo].name, tls_versions[hi].name);
			return -1;
		}
	}
	*min_version = tls_versions[lo].version;
	*max_version = tls_versions[hi].version;
	return 0;
}

int tls_opts_check_ciphers(const char *s, bool tls13, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	int ok;

	if (ctx == NULL) {
		ERR_clear_error();
		snprintf(err, errsz, "cannot check: OpenSSL context failed");
		return -1;
	}
	/* level 0: a legacy connector may name suites the default level hides */
	SSL_CTX_set_security_level(ctx, 0);
	ok = tls13 ? SSL_CTX_set_ciphersuites(ctx, s) : SSL_CTX_set_cipher_list(ctx, s);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	if (ok != 1 || *s == '\0') {
		snprintf(err, errsz, "\"%s\" names no cipher %s OpenSSL knows", s,
			 tls13 ? "suite (TLS 1.3, like TLS_AES_256_GCM_SHA384)"
			       : "(TLS <= 1.2, like ECDHE+AESGCM)");
		return -1;
	}
	return 0;
}

/* ---- libConfuse glue ----------------------------------------------------- */

int tls_opts_v_protocols(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *names[16];
	char err[256];
	size_t i, n = cfg_opt_size(opt);
	int lo, hi;

	if (n > sizeof(names) / sizeof(names[0])) {
		cfg_error(cfg, "%s: too many entries", opt->name);
		return -1;
	}
	for (i = 0; i < n; i++)
		names[i] = cfg_opt_getnstr(opt, (unsigned)i);
	if (tls_opts_parse_protocols(names, n, &lo, &hi, err, sizeof(err)) < 0) {
		cfg_error(cfg, "%s: %s", opt->name, err);
		return -1;
	}
	return 0;
}

static int tls_opts_v_cipher_str(cfg_t *cfg, cfg_opt_t *opt, bool tls13)
{
	const char *s = cfg_opt_getnstr(opt, 0);
	char err[512];

	if (s == NULL || tls_opts_check_ciphers(s, tls13, err, sizeof(err)) == 0)
		return 0;
	cfg_error(cfg, "%s: %s", opt->name, err);
	return -1;
}

int tls_opts_v_ciphers(cfg_t *cfg, cfg_opt_t *opt) { return tls_opts_v_cipher_str(cfg, opt, false); }

int tls_opts_v_ciphersuites(cfg_t *cfg, cfg_opt_t *opt)
{
	return tls_opts_v_cipher_str(cfg, opt, true);
}

void tls_opts_from_section(cfg_t *sec, struct tls_proto *p)
{
	const char *names[16];
	char err[256];
	size_t i, n = cfg_size(sec, "tls-protocols");

	memset(p, 0, sizeof(*p));
	if (n > 0 && n <= sizeof(names) / sizeof(names[0])) {
		for (i = 0; i < n; i++)
			names[i] = cfg_getnstr(sec, "tls-protocols", (unsigned)i);
		(void)tls_opts_parse_protocols(names, n, &p->min_version, &p->max_version, err,
					       sizeof(err)); /* validated while parsing */
	}
	if (cfg_getstr(sec, "tls-ciphers") != NULL)
		p->ciphers = xstrdup(cfg_getstr(sec, "tls-ciphers"));
	if (cfg_getstr(sec, "tls-ciphersuites") != NULL)
		p->ciphersuites = xstrdup(cfg_getstr(sec, "tls-ciphersuites"));
}

void tls_proto_free(struct tls_proto *p)
{
	free(p->ciphers);
	free(p->ciphersuites);
	p->ciphers = p->ciphersuites = NULL;
}
