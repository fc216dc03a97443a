/*
 * tls.h - server TLS contexts (RFC 3207 STARTTLS, RFC 8314 implicit TLS)
 * and the self-signed certificate made on first start.
 *
 * TLS 1.2 and 1.3 unless a connector's tls-protocols says otherwise
 * (tls_ctx_apply_proto). With no certificate configured, the first start
 * creates <spool>/tls/selfsigned.key and .crt (RSA 2048 or P-256, CN and
 * subjectAltName = the server FQDN, valid one year) and later starts keep
 * using them; either way the SHA-256 fingerprint is logged.
 */
#ifndef TRANSIT_NET_TLS_H
#define TRANSIT_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "conf/tls_opts.h"

/* cert/key: PEM files (cert may hold the chain), or both NULL for the
 * self-signed one under spool. NULL + err on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *spool, const char *fqdn,
			char *err, size_t errsz);

/* Client context for outbound SMTP: TLS 1.2+, trust anchors from the
 * system store (/etc/ssl/certs) plus ca_file when given. Verification is
 * switched on per connection by the caller (SSL_set_verify +
 * SSL_set1_host) for the "require" policy; opportunistic TLS encrypts
 * without insisting on a valid certificate (RFC 7435). */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errsz);

/* "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256" for logs and
 * the Received field comment (RFC 3848 style). */
void tls_describe(const SSL *ssl, char *out, size_t outsz);

/* SHA-256 fingerprint of a certificate, "AB:CD:..." */
void tls_fingerprint(X509 *cert, char *out, size_t outsz);

/* A server context with transit's defaults and no certificate yet. */
SSL_CTX *tls_server_ctx_empty(char *err, size_t errsz);

/* A connector's tls-protocols / tls-ciphers / tls-ciphersuites onto ctx
 * (p NULL or zero: the defaults). TLS 1.0/1.1 lower OpenSSL's security
 * level to 0 on this context only. 0, or -1 with err. */
int tls_ctx_apply_proto(SSL_CTX *ctx, const struct tls_proto *p, bool server, char *err,
			size_t errsz);

/* RFC 2253 text of a name; "2027-01-31T12:00:00Z" of a time. */
void tls_name_text(const X509_NAME *nm, char *out, size_t outsz);
void tls_time_text(const ASN1_TIME *t, char *out, size_t outsz);

/* Write the PEM in mem to path atomically (tmp, fsync, rename) with
 * exactly the given mode. */
int tls_write_file(const char *path, mode_t mode, BIO *mem, char *err, size_t errsz);
/* The subject (RFC 2253 text) and notAfter (epoch seconds) of the
 * certificate a server context presents; false when it has none. */
bool tls_ctx_cert_info(SSL_CTX *ctx, char *subject, size_t subjsz, time_t *not_after);

#endif
