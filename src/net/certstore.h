/*
 * certstore.h - the certificate store that transitd and transitctl share
 * (transitctl cert ..., docs/operations.md "Certificates").
 *
 * Layout: <spool>/certs/
 *     <thumbprint>.crt   the certificate, then its chain (PEM), mode 0644
 *     <thumbprint>.key   its private key (PEM, unencrypted), mode 0600
 *     bindings           "CONNECTOR THUMBPRINT" lines: which receive
 *                        connector serves which certificates; the first
 *                        line of a connector is its default, the others
 *                        are picked by SNI (tls_runtime.h)
 * The thumbprint is the SHA-256 of the certificate's DER encoding, 64
 * lower-case hex digits (shown upper-case). Every file is written to a
 * temporary name, fsync'd, renamed, and the directory fsync'd. The
 * directory and its files belong to the owner of the spool (server.user
 * once transitd has started): transitctl run as root hands them over.
 * A key is only read when it is a regular file with no group or other
 * access, owned by the reader or root (root, reading before the privilege
 * drop, takes any owner: the store is server.user's).
 */
#ifndef TRANSIT_NET_CERTSTORE_H
#define TRANSIT_NET_CERTSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CERTSTORE_THUMB_LEN 64

struct cert_entry {
	char thumb[CERTSTORE_THUMB_LEN + 1]; /* lower-case hex */
	X509 *leaf;
	STACK_OF(X509) *chain; /* intermediates (may be empty) */
	EVP_PKEY *key;	       /* NULL unless opened with keys */
	bool self_signed;
	time_t not_after;
};

struct cert_binding {
	char *connector;
	char thumb[CERTSTORE_THUMB_LEN + 1];
};

struct certstore {
	char *dir;
	struct cert_entry *certs;
	size_t ncerts;
	struct cert_binding *binds;
	size_t nbinds;
};

/* <spool>/certs into out. */
int certstore_dir(const char *spool, char *out, size_t outsz);

/* Make the directory (0700) when missing; as root, hand it (and its
 * files) to uid/gid when uid != (uid_t)-1. */
int certstore_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errsz);

/* Read every certificate (and with_keys: every key, checked as above)
 * and the bindings. A missing directory is an empty store. */
struct certstore *certstore_open(const char *dir, bool with_keys, char *err, size_t errsz);
void certstore_free(struct certstore *st);

/* A certificate by thumbprint: the whole of it or a unique prefix of at
 * least 8 digits, any case, colons allowed. NULL with err. */
const struct cert_entry *certstore_find(const struct certstore *st, const char *thumb, char *err,
					size_t errsz);

/* thumbprint of a certificate (lower-case hex) */
void certstore_thumbprint(X509 *x, char out[CERTSTORE_THUMB_LEN + 1]);

/* Store a certificate, its chain (may be NULL) and key; the key must
 * match. thumb_out receives the thumbprint. */
int certstore_add(const char *dir, X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
		  char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz);

/* PEM file(s): certificates (leaf and chain, any order) and the key in
 * file, or the key in key_file when given. */
int certstore_import(const char *dir, const char *file, const char *key_file,
		     char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz);

/* New key and self-signed certificate for names (names[0] the subject). */
int certstore_new_selfsigned(const char *dir, const char *const *names, size_t n, int days,
			     char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz);

/* connector serves thumb: alone (add false: the connector's other
 * bindings go), or as one more certificate for SNI (add true). */
int certstore_bind(const char *dir, const char *connector, const char *thumb, bool add, char *err,
		   size_t errsz);

/* A self-signed certificate again, new key, same names, a new validity;
 * every binding of the old one moves to the new one. */
int certstore_renew(const char *dir, const struct cert_entry *old, int days,
		    char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz);

/* DNS subjectAltNames of x (or the CN when it has none), for display:
 * names[] point into buf. Returns how many. */
size_t certstore_names(X509 *x, char *buf, size_t bufsz, const char **names, size_t max);

#endif
