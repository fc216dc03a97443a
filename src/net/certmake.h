/*
 * certmake.h - make keys, self-signed certificates and certificate
 * signing requests with OpenSSL (RFC 5280 profile, PKCS #10 RFC 2986).
 * Used by net/tls.c (the built-in self-signed certificate) and by the
 * certificate store (net/certstore.h: cert new / request / renew).
 */
#ifndef TRANSIT_NET_CERTMAKE_H
#define TRANSIT_NET_CERTMAKE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A name we put into a certificate: a host name (letters, digits, '-',
 * '_', dots; at most 253) or "*." followed by one. */
bool certmake_name_ok(const char *name);

/* A new RSA 2048 key (still the key type every MTA can use). */
EVP_PKEY *certmake_key(void);

/* X.509 v3, random positive 127-bit serial (RFC 5280 4.1.2.2), valid
 * from now for days, subject CN=names[0] (left out when longer than 64,
 * and then subjectAltName is critical, RFC 5280 4.2.1.6), subjectAltName
 * DNS:names[0..n-1], basicConstraints CA:FALSE, keyUsage, extendedKeyUsage
 * serverAuth, subjectKeyIdentifier; signed with SHA-256. NULL on error
 * (OpenSSL's error queue says why). */
X509 *certmake_selfsigned(EVP_PKEY *pkey, const char *const *names, size_t n, int days);

/* PKCS #10 request with the same subject and subjectAltName, signed with
 * the key (a CA checks that signature: `openssl req -verify`). */
X509_REQ *certmake_request(EVP_PKEY *pkey, const char *const *names, size_t n);

#endif
