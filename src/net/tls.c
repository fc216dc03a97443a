/*
 * tls.c - server SSL_CTX for STARTTLS (RFC 3207) and implicit TLS
 * (RFC 8314), and the self-signed certificate used when none is
 * configured (see tls.h).
 *
 * Protocol choice follows RFC 9325 (BCP 195): TLS 1.2 minimum, 1.3
 * allowed; for 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
 * ChaCha20-Poly1305), the server's order wins; no compression (CRIME),
 * no renegotiation. Session tickets stay on (resumption is cheap and
 * harmless for SMTP). A peer that closes without close_notify is read as
 * a plain EOF (SSL_OP_IGNORE_UNEXPECTED_EOF): SMTP frames its data itself
 * ("." line, BDAT LAST), so a TLS truncation can never complete a message.
 * Encrypted keys are refused instead of prompting on a terminal.
 * A connector's tls-protocols / tls-ciphers / tls-ciphersuites replace
 * these defaults (tls_ctx_apply_proto); letting TLS 1.0/1.1 in lowers
 * OpenSSL's security level to 0 on that connector's context only (its
 * handshakes sign with SHA-1), for legacy senders on an MX that would
 * otherwise send in clear (RFC 7435).
 *
 * Self-signed certificate (RFC 5280 profile): <spool>/tls/selfsigned.key
 * and .crt. A pair that loads, matches, names the FQDN and is not within
 * 30 days of expiry is reused; otherwise a new one is made: RSA 2048
 * (still the key type every MTA on the internet can use), X.509 v3, a
 * random positive serial of 127 bits (RFC 5280 4.1.2.2), valid from now
 * for 365 days, subject CN=fqdn (left out when the name is longer than
 * the 64 characters X.520 allows, and then subjectAltName is critical,
 * RFC 5280 4.2.1.6), subjectAltName DNS:fqdn, basicConstraints CA:FALSE,
 * keyUsage digitalSignature+keyEncipherment, extendedKeyUsage
 * serverAuth. Each file is written to a temporary name, fsync'd and
 * renamed (key 0600, certificate 0644), then the directory is fsync'd.
 * The key is written first: a crash in between leaves a pair that does
 * not match, which the next start replaces.
 *
 * Client context (outbound SMTP, used by deliver/smtp_client.c): TLS 1.2
 * minimum, no compression or renegotiation, trust anchors from the system
 * store plus an optional CA file. The cipher suites are the library's
 * defaults, not the server's ECDHE+AEAD list: an opportunistic session
 * that fails its handshake is a message that waits (RFC 7435: anything
 * beats clear text), and the peers on the internet are what they are.
 * It does not switch verification on: the connection does (SSL_VERIFY_PEER
 * and SSL_set1_host for the "require" policy), so one context serves both
 * opportunistic and verified sessions.
 */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/certmake.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/str.h"

#define TLS_SELFSIGNED_DAYS 365
#define TLS_RENEW_DAYS 30   /* a self-signed one this close to expiry is replaced */
#define TLS_FQDN_MAX 253
#define TLS_PATH_MAX 4096

/* TLS 1.2 suites: ECDHE + AEAD only, strongest first (TLS 1.3 uses the
 * library's default TLS 1.3 suites, which are all AEAD). */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
				    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

/* A connector that lets TLS 1.0/1.1 in (tls-protocols) without naming its
 * own tls-ciphers: the AEAD suites first, then the CBC-SHA1 ones those
 * old stacks have (ECDHE first; plain RSA key exchange last, for the
 * oldest). Opportunistic TLS with these still beats the clear text such a
 * sender falls back to. */
static const char legacy_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
				     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				     "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
				     "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
				     "AES128-SHA:AES256-SHA";

/* ---- errors --------------------------------------------------------- */

/* "what: <first OpenSSL error>", then clear the thread's error queue. */
static void tls_err_ssl(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[256];

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		str_copy(reason, "unknown error", sizeof(reason));
	ERR_clear_error();
	if (errsz > 0)
		snprintf(err, errsz, "%s: %s", what, reason);
}

static void tls_err_sys(char *err, size_t errsz, const char *what, const char *path, int errnum)
{
	if (errsz > 0)
		snprintf(err, errsz, "%s %s: %s", what, path, strerror(errnum));
}

/* Never prompt for a passphrase: an encrypted key is an error. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* ---- context -------------------------------------------------------- */

SSL_CTX *tls_server_ctx_empty(char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid_ctx[] = "transit";

	if (ctx == NULL) {
		tls_err_ssl(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, 0) || /* highest the library has */
	    !SSL_CTX_set_cipher_list(ctx, tls12_ciphers) ||
	    !SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1)) {
		tls_err_ssl(err, errsz, "configure TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	return ctx;
}

static int tls_load_configured(SSL_CTX *ctx, const char *cert, const char *key, char *err,
			       size_t errsz)
{
	char what[TLS_PATH_MAX + 64];

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(what, sizeof(what), "load certificate %s", cert);
		tls_err_ssl(err, errsz, what);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(what, sizeof(what), "load key %s", key);
		tls_err_ssl(err, errsz, what);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "key %s does not match certificate %s", key, cert);
		tls_err_ssl(err, errsz, what);
		return -1;
	}
	return 0;
}

/* ---- per-connector protocols and ciphers ------------------------------- */

int tls_ctx_apply_proto(SSL_CTX *ctx, const struct tls_proto *p, bool server, char *err,
			size_t errsz)
{
	int min = p != NULL && p->min_version ? p->min_version : TLS1_2_VERSION;
	int max = p != NULL ? p->max_version : 0;
	bool legacy = min < TLS1_2_VERSION;
	const char *ciphers = p != NULL ? p->ciphers : NULL;

	if (legacy) {
		/* OpenSSL 3's default security level (1; Debian sets 2)
		 * refuses TLS < 1.2 outright (SHA-1 / MD5+SHA-1 handshake
		 * signatures): level 0, for this connector's context only. */
		SSL_CTX_set_security_level(ctx, 0);
		if (ciphers == NULL)
			ciphers = server ? legacy_ciphers : "DEFAULT:@SECLEVEL=0";
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max) ||
	    (ciphers != NULL && !SSL_CTX_set_cipher_list(ctx, ciphers)) ||
	    (p != NULL && p->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, p->ciphersuites))) {
		tls_err_ssl(err, errsz, "apply tls-protocols / tls-ciphers");
		return -1;
	}
	if (legacy) /* after the cipher list, which may carry its own @SECLEVEL */
		SSL_CTX_set_security_level(ctx, 0);
	return 0;
}

/* ---- self-signed certificate ------------------------------------------ */

/* A host name we are willing to put into a certificate. */
static bool tls_fqdn_ok(const char *fqdn)
{
	size_t i, n;

	if (fqdn == NULL)
		return false;
	n = strlen(fqdn);
	if (n == 0 || n > TLS_FQDN_MAX || fqdn[0] == '.' || fqdn[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = fqdn[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Read a PEM certificate + key pair; both or nothing. Errors are cleared:
 * a pair that does not load is simply replaced. */
static int tls_pair_read(const char *crt_path, const char *key_path, X509 **x, EVP_PKEY **pkey)
{
	BIO *b;

	*x = NULL;
	*pkey = NULL;
	if ((b = BIO_new_file(crt_path, "r")) != NULL) {
		*x = PEM_read_bio_X509(b, NULL, tls_no_passphrase, NULL);
		BIO_free(b);
	}
	if (*x != NULL && (b = BIO_new_file(key_path, "r")) != NULL) {
		*pkey = PEM_read_bio_PrivateKey(b, NULL, tls_no_passphrase, NULL);
		BIO_free(b);
	}
	ERR_clear_error();
	if (*x == NULL || *pkey == NULL) {
		X509_free(*x);
		EVP_PKEY_free(*pkey);
		*x = NULL;
		*pkey = NULL;
		return -1;
	}
	return 0;
}

/* Why an existing pair cannot be reused, or NULL when it can. */
static const char *tls_pair_unusable(X509 *x, EVP_PKEY *pkey, const char *fqdn)
{
	const char *why = NULL;
	time_t renew_after = time(NULL) + (time_t)TLS_RENEW_DAYS * 86400;

	if (X509_check_private_key(x, pkey) != 1)
		why = "key does not match certificate";
	else if (X509_cmp_time(X509_get0_notAfter(x), &renew_after) <= 0)
		why = "expires within 30 days";
	else if (X509_check_host(x, fqdn, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1)
		why = "does not name the fqdn";
	ERR_clear_error();
	return why;
}

/* Write the PEM in mem to path atomically with exactly the given mode. */
int tls_write_file(const char *path, mode_t mode, BIO *mem, char *err, size_t errsz)
{
	char tmp[TLS_PATH_MAX];
	char *data = NULL;
	long len = BIO_get_mem_data(mem, &data);
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		tls_err_sys(err, errsz, "create", path, ENAMETOOLONG);
		return -1;
	}
	(void)unlink(tmp); /* a leftover of ours from a crash */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		tls_err_sys(err, errsz, "create", tmp, errno);
		return -1;
	}
	if (fchmod(fd, mode) < 0 || len < 0 || write_full(fd, data, (size_t)len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		tls_err_sys(err, errsz, "write", tmp, saved);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		tls_err_sys(err, errsz, "write", path, saved);
		return -1;
	}
	return 0;
}

static void tls_fsync_dir(const char *dir)
{
	if (fsync_dir(dir) < 0)
		log_warn("tls fsync directory=%s error=\"%s\"", dir, strerror(errno));
}

static int tls_save_pair(const char *dir, const char *crt_path, const char *key_path, X509 *x,
			 EVP_PKEY *pkey, char *err, size_t errsz)
{
	BIO *kmem = BIO_new(BIO_s_secmem());
	BIO *cmem = BIO_new(BIO_s_mem());
	int rc = -1;

	if (kmem == NULL || cmem == NULL ||
	    !PEM_write_bio_PrivateKey(kmem, pkey, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cmem, x)) {
		tls_err_ssl(err, errsz, "encode self-signed certificate");
	} else if (tls_write_file(key_path, 0600, kmem, err, errsz) == 0 &&
		   tls_write_file(crt_path, 0644, cmem, err, errsz) == 0) {
		tls_fsync_dir(dir);
		rc = 0;
	}
	BIO_free(kmem);
	BIO_free(cmem);
	return rc;
}

/* Load or make <spool>/tls/selfsigned.{crt,key} into ctx. */
static int tls_load_selfsigned(SSL_CTX *ctx, const char *spool, const char *fqdn, char *crt_path,
			       size_t crt_pathsz, bool *generated, char *err, size_t errsz)
{
	char dir[TLS_PATH_MAX], key_path[TLS_PATH_MAX];
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;
	const char *why = "missing or unreadable";
	int rc = -1;

	*generated = false;
	if (spool == NULL || !tls_fqdn_ok(fqdn)) {
		snprintf(err, errsz, "self-signed certificate needs a spool and a valid fqdn");
		return -1;
	}
	if (snprintf(dir, sizeof(dir), "%s/tls", spool) >= (int)sizeof(dir) ||
	    snprintf(key_path, sizeof(key_path), "%s/selfsigned.key", dir) >=
		(int)sizeof(key_path) ||
	    snprintf(crt_path, crt_pathsz, "%s/selfsigned.crt", dir) >= (int)crt_pathsz) {
		tls_err_sys(err, errsz, "tls directory", spool, ENAMETOOLONG);
		return -1;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		tls_err_sys(err, errsz, "mkdir", dir, errno);
		return -1;
	}
	if (tls_pair_read(crt_path, key_path, &x, &pkey) == 0 &&
	    (why = tls_pair_unusable(x, pkey, fqdn)) != NULL) {
		X509_free(x);
		EVP_PKEY_free(pkey);
		x = NULL;
		pkey = NULL;
	}
	if (x == NULL) {
		log_info("tls certificate=%s generating=yes reason=\"%s\"", crt_path, why);
		pkey = certmake_key();
		if (pkey == NULL ||
		    (x = certmake_selfsigned(pkey, &fqdn, 1, TLS_SELFSIGNED_DAYS)) == NULL) {
			tls_err_ssl(err, errsz, "make self-signed certificate");
			goto out;
		}
		if (tls_save_pair(dir, crt_path, key_path, x, pkey, err, errsz) < 0)
			goto out;
		*generated = true;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_err_ssl(err, errsz, "use self-signed certificate");
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- logging ------------------------------------------------------------ */

void tls_name_text(const X509_NAME *nm, char *out, size_t outsz)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	out[0] = '\0';
	if (mem == NULL)
		return;
	if (X509_NAME_print_ex(mem, nm, 0, XN_FLAG_RFC2253) >= 0) {
		len = BIO_get_mem_data(mem, &data);
		if (len > 0) {
			size_t n = (size_t)len < outsz - 1 ? (size_t)len : outsz - 1;
			memcpy(out, data, n);
			out[n] = '\0';
		}
	}
	BIO_free(mem);
}

void tls_time_text(const ASN1_TIME *t, char *out, size_t outsz)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		str_copy(out, "unknown", outsz);
}

static void tls_log_cert(SSL_CTX *ctx, const char *path, bool generated)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char fp[128], subject[512], quoted[1024], qpath[1024], notafter[64];

	if (x == NULL)
		return;
	tls_fingerprint(x, fp, sizeof(fp));
	tls_name_text(X509_get_subject_name(x), subject, sizeof(subject));
	tls_time_text(X509_get0_notAfter(x), notafter, sizeof(notafter));
	log_info("tls certificate=%s sha256=%s generated=%s subject=%s notafter=%s",
		 log_quote(path, qpath, sizeof(qpath)), fp, generated ? "yes" : "no",
		 log_quote(subject, quoted, sizeof(quoted)), notafter);
}

/* ---- public ------------------------------------------------------------- */

SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *spool, const char *fqdn,
			char *err, size_t errsz)
{
	char selfsigned[TLS_PATH_MAX];
	bool generated = false;
	SSL_CTX *ctx;
	int rc;

	if (errsz > 0)
		err[0] = '\0';
	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errsz, "tls certificate and key must be set together");
		return NULL;
	}
	ERR_clear_error();
	if ((ctx = tls_server_ctx_empty(err, errsz)) == NULL)
		return NULL;
	if (cert != NULL)
		rc = tls_load_configured(ctx, cert, key, err, errsz);
	else
		rc = tls_load_selfsigned(ctx, spool, fqdn, selfsigned, sizeof(selfsigned),
					 &generated, err, errsz);
	if (rc < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	tls_log_cert(ctx, cert != NULL ? cert : selfsigned, generated);
	return ctx;
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX *ctx;
	char what[TLS_PATH_MAX + 64];

	if (errsz > 0)
		err[0] = '\0';
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_err_ssl(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, 0)) {
		tls_err_ssl(err, errsz, "configure TLS client context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* A missing system store is not fatal: ca_file may be all there is. */
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		ERR_clear_error();
	if (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		snprintf(what, sizeof(what), "load CA file %s", ca_file);
		tls_err_ssl(err, errsz, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tls_describe(const SSL *ssl, char *out, size_t outsz)
{
	const SSL_CIPHER *c = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;

	if (outsz == 0)
		return;
	if (c == NULL) {
		snprintf(out, outsz, "version=none");
		return;
	}
	snprintf(out, outsz, "version=%s cipher=%s bits=%d", SSL_get_version(ssl),
		 SSL_CIPHER_get_name(c), SSL_CIPHER_get_bits(c, NULL));
}

void tls_fingerprint(X509 *cert, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	size_t pos = 0;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1) {
		ERR_clear_error();
		return;
	}
	for (i = 0; i < n; i++) {
		size_t need = (i > 0 ? 1 : 0) + 2;
		if (pos + need + 1 > outsz)
			break;
		if (i > 0)
			out[pos++] = ':';
		out[pos++] = hex[md[i] >> 4];
		out[pos++] = hex[md[i] & 0x0f];
	}
	out[pos] = '\0';
}

bool tls_ctx_cert_info(SSL_CTX *ctx, char *subject, size_t subjsz, time_t *not_after)
{
	X509 *cert = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;
	struct tm tm;
	BIO *mem;
	char *p = NULL;
	long n;

	if (cert == NULL || subjsz == 0)
		return false;
	subject[0] = '\0';
	if ((mem = BIO_new(BIO_s_mem())) != NULL) {
		X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
		n = BIO_get_mem_data(mem, &p);
		if (n > 0) {
			size_t k = (size_t)n < subjsz - 1 ? (size_t)n : subjsz - 1;
			memcpy(subject, p, k);
			subject[k] = '\0';
		}
		BIO_free(mem);
	}
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
		ERR_clear_error();
		return false;
	}
	*not_after = timegm(&tm);
	return true;
}
