/*
 * certmake.c - keys, self-signed certificates and CSRs (see certmake.h).
 * Everything goes through OpenSSL's X.509 API; the subjectAltName is
 * built from parts (GENERAL_NAME), so no character of a name is ever read
 * as OpenSSL configuration syntax.
 */
#include "net/certmake.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CERTMAKE_RSA_BITS 2048
#define CERTMAKE_CN_MAX 64 /* ub-common-name, RFC 5280 appendix A */
#define CERTMAKE_NAME_MAX 253

bool certmake_name_ok(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return false;
	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	n = strlen(name);
	if (n == 0 || n > CERTMAKE_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

EVP_PKEY *certmake_key(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)CERTMAKE_RSA_BITS); }

static X509_EXTENSION *certmake_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	return X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
}

static int certmake_add_ext(X509 *x, int nid, const char *value)
{
	X509_EXTENSION *ext = certmake_ext(x, nid, value);
	int ok;

	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* GENERAL_NAMES with DNS:names[i] each; NULL on error. */
static GENERAL_NAMES *certmake_sans(const char *const *names, size_t n)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	size_t i;

	if (gens == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		if (gn == NULL || ia5 == NULL ||
		    !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))) {
			ASN1_IA5STRING_free(ia5);
			GENERAL_NAME_free(gn);
			GENERAL_NAMES_free(gens);
			return NULL;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
			GENERAL_NAME_free(gn);
			GENERAL_NAMES_free(gens);
			return NULL;
		}
	}
	return gens;
}

static int certmake_set_random_serial(X509 *x)
{
	unsigned char raw[16];
	BIGNUM *bn;
	ASN1_INTEGER *serial;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return 0;
	raw[0] &= 0x7f; /* positive (RFC 5280 4.1.2.2) */
	raw[0] |= 0x01; /* and never zero */
	if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) == NULL)
		return 0;
	serial = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (serial == NULL)
		return 0;
	ok = X509_set_serialNumber(x, serial);
	ASN1_INTEGER_free(serial);
	return ok;
}

/* Subject CN=names[0] when it fits; false on error. */
static bool certmake_subject(X509_NAME *name, const char *const *names, bool *has_cn)
{
	*has_cn = strlen(names[0]) <= CERTMAKE_CN_MAX;
	return !*has_cn || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						      (const unsigned char *)names[0], -1, -1, 0);
}

X509 *certmake_selfsigned(EVP_PKEY *pkey, const char *const *names, size_t n, int days)
{
	X509 *x = X509_new();
	GENERAL_NAMES *sans = NULL;
	bool has_cn;
	const char *usage = EVP_PKEY_is_a(pkey, "RSA") ? "critical,digitalSignature,keyEncipherment"
						       : "critical,digitalSignature";

	if (n == 0 || x == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !certmake_set_random_serial(x) || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, pkey) || !certmake_subject(X509_get_subject_name(x), names, &has_cn) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    (sans = certmake_sans(names, n)) == NULL ||
	    X509_add1_ext_i2d(x, NID_subject_alt_name, sans, !has_cn, X509V3_ADD_DEFAULT) != 1 ||
	    !certmake_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !certmake_add_ext(x, NID_key_usage, usage) ||
	    !certmake_add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    !certmake_add_ext(x, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		GENERAL_NAMES_free(sans);
		X509_free(x);
		return NULL;
	}
	GENERAL_NAMES_free(sans);
	return x;
}

X509_REQ *certmake_request(EVP_PKEY *pkey, const char *const *names, size_t n)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *sans = NULL;
	X509_EXTENSION *ext = NULL;
	bool has_cn;
	int ok = 0;

	if (n > 0 && req != NULL && exts != NULL && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
	    certmake_subject(X509_REQ_get_subject_name(req), names, &has_cn) &&
	    X509_REQ_set_pubkey(req, pkey) && (sans = certmake_sans(names, n)) != NULL &&
	    (ext = X509V3_EXT_i2d(NID_subject_alt_name, !has_cn, sans)) != NULL &&
	    sk_X509_EXTENSION_push(exts, ext) > 0) {
		ext = NULL; /* owned by exts */
		ok = X509_REQ_add_extensions(req, exts) && X509_REQ_sign(req, pkey, EVP_sha256()) > 0;
	}
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(sans);
	if (!ok) {
		X509_REQ_free(req);
		return NULL;
	}
	return req;
}
