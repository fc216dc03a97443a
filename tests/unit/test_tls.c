/* test_tls.c - net/tls.c: the self-signed certificate (made once, reused, its profile), real
 * handshakes against the server context over a socketpair (TLS 1.3, TLS 1.2 suites, server
 * preference, old protocols and non-ECDHE suites refused), configured certificates and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

#define FQDN "mx.example.test"

static char spool[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup_spool(void **state)
{
	(void)state;
	snprintf(spool, sizeof(spool), "/tmp/transit-test-tls-XXXXXX");
	return mkdtemp(spool) == NULL ? -1 : 0;
}

static int teardown_spool(void **state)
{
	(void)state;
	return nftw(spool, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void spool_file(const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/tls/%s", spool, name);
}

static SSL_CTX *server_ctx_ok(void)
{
	char err[512] = "";
	SSL_CTX *ctx = tls_server_ctx(NULL, NULL, spool, FQDN, err, sizeof(err));

	if (ctx == NULL)
		fail_msg("tls_server_ctx: %s", err);
	return ctx;
}

static void ctx_fingerprint(SSL_CTX *ctx, char *out, size_t outsz)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	assert_non_null(x);
	tls_fingerprint(x, out, outsz);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ---- handshake over a socketpair ------------------------------------------ */

struct hs {
	SSL *client;
	SSL *server;
	int fds[2];
	unsigned long client_error; /* first OpenSSL error on each side */
	unsigned long server_error;
};

static void hs_open(struct hs *h, SSL_CTX *cctx, SSL_CTX *sctx)
{
	memset(h, 0, sizeof(*h));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, h->fds), 0);
	assert_int_equal(fcntl(h->fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(h->fds[1], F_SETFL, O_NONBLOCK), 0);
	h->client = SSL_new(cctx);
	h->server = SSL_new(sctx);
	assert_non_null(h->client);
	assert_non_null(h->server);
	SSL_set_fd(h->client, h->fds[0]);
	SSL_set_fd(h->server, h->fds[1]);
	SSL_set_connect_state(h->client);
	SSL_set_accept_state(h->server);
}

static void hs_close(struct hs *h)
{
	SSL_free(h->client);
	SSL_free(h->server);
	close(h->fds[0]);
	close(h->fds[1]);
	ERR_clear_error();
}

/* One step of one side: 1 finished, 0 wants more, -1 failed. */
static int hs_step(SSL *ssl, unsigned long *error)
{
	int r = SSL_do_handshake(ssl);
	int e;

	if (r == 1)
		return 1;
	e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	*error = ERR_peek_error();
	if (*error == 0)
		*error = (unsigned long)-1;
	ERR_clear_error();
	return -1;
}

/* 0 when both sides finished the handshake. */
static int hs_run(struct hs *h)
{
	int c = 0, s = 0, i;

	for (i = 0; i < 1000 && (c != 1 || s != 1); i++) {
		if (c == 0)
			c = hs_step(h->client, &h->client_error);
		if (s == 0)
			s = hs_step(h->server, &h->server_error);
		if (c < 0 || s < 0)
			return -1;
	}
	return (c == 1 && s == 1) ? 0 : -1;
}

/* A client that trusts exactly the server's certificate and checks the name. */
static SSL_CTX *client_ctx(SSL_CTX *sctx, int max_version)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(cctx);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx),
					     SSL_CTX_get0_certificate(sctx)),
			 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(cctx), FQDN, 0), 1);
	if (max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(cctx, max_version), 1);
	return cctx;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_selfsigned_made_once_and_reused(void **state)
{
	char fp1[128], fp2[128], crt[256], key[256], dir[256];
	SSL_CTX *a, *b;

	(void)state;
	a = server_ctx_ok();
	ctx_fingerprint(a, fp1, sizeof(fp1));
	assert_int_equal(strlen(fp1), 32 * 3 - 1); /* "AB:CD:..." */

	spool_file("selfsigned.crt", crt, sizeof(crt));
	spool_file("selfsigned.key", key, sizeof(key));
	snprintf(dir, sizeof(dir), "%s/tls", spool);
	assert_int_equal(file_mode(dir), 0700);
	assert_int_equal(file_mode(key), 0600);
	assert_int_equal(file_mode(crt), 0644);
	assert_int_equal(access(key, F_OK) == 0 && access(crt, F_OK) == 0, 1);

	b = server_ctx_ok();
	ctx_fingerprint(b, fp2, sizeof(fp2));
	assert_string_equal(fp1, fp2);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
}

static void test_selfsigned_profile(void **state)
{
	SSL_CTX *ctx;
	X509 *x;
	char cn[256];
	GENERAL_NAMES *gens;
	const GENERAL_NAME *gn;
	int crit = -1, days = 0, secs = 0;
	ASN1_TIME *now;
	BIGNUM *serial;

	(void)state;
	ctx = server_ctx_ok();
	x = SSL_CTX_get0_certificate(ctx);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);

	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, FQDN);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	gn = sk_GENERAL_NAME_value(gens, 0);
	assert_int_equal(gn->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), FQDN);
	GENERAL_NAMES_free(gens);

	/* valid from about now for 365 days */
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
					X509_get0_notAfter(x)),
			 1);
	assert_int_equal(days, 365);
	assert_int_equal(secs, 0);
	now = ASN1_TIME_set(NULL, time(NULL));
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), now), 1);
	assert_int_equal(days, 0);
	assert_true(secs >= 0 && secs < 600);
	ASN1_TIME_free(now);

	/* a leaf for TLS servers, not a CA */
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	assert_true(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT); /* RSA */
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);

	/* positive random serial of about 128 bits */
	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(serial);
	assert_false(BN_is_negative(serial));
	assert_true(BN_num_bits(serial) > 96 && BN_num_bits(serial) <= 127);
	BN_free(serial);
	SSL_CTX_free(ctx);
}

static void test_context_settings(void **state)
{
	SSL_CTX *ctx;
	uint64_t opts;

	(void)state;
	ctx = server_ctx_ok();
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	opts = SSL_CTX_get_options(ctx);
	assert_true(opts & SSL_OP_NO_COMPRESSION);
	assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_true(opts & SSL_OP_NO_RENEGOTIATION);
	assert_false(opts & SSL_OP_NO_TICKET);
	SSL_CTX_free(ctx);
}

static void test_handshake_tls13(void **state)
{
	SSL_CTX *sctx, *cctx;
	struct hs h;
	char desc[256];
	char buf[16];

	(void)state;
	sctx = server_ctx_ok();
	cctx = client_ctx(sctx, 0);
	hs_open(&h, cctx, sctx);
	assert_int_equal(hs_run(&h), 0);
	assert_int_equal(SSL_version(h.client), TLS1_3_VERSION);
	assert_int_equal(SSL_get_verify_result(h.client), X509_V_OK); /* name + trust checked */

	tls_describe(h.server, desc, sizeof(desc));
	assert_non_null(strstr(desc, "version=TLSv1.3 cipher=TLS_"));
	assert_non_null(strstr(desc, " bits="));

	/* application data flows */
	assert_int_equal(SSL_write(h.client, "EHLO x\r\n", 8), 8);
	assert_int_equal(SSL_read(h.server, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "EHLO x\r\n", 8);
	hs_close(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_handshake_tls12_server_preference(void **state)
{
	SSL_CTX *sctx, *cctx;
	struct hs h;
	char desc[256];

	(void)state;
	sctx = server_ctx_ok();
	cctx = client_ctx(sctx, TLS1_2_VERSION);
	/* The client prefers AES128; the server's order puts AES256 first. */
	assert_int_equal(SSL_CTX_set_cipher_list(
			     cctx, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
			 1);
	hs_open(&h, cctx, sctx);
	assert_int_equal(hs_run(&h), 0);
	tls_describe(h.server, desc, sizeof(desc));
	assert_string_equal(desc, "version=TLSv1.2 cipher=ECDHE-RSA-AES256-GCM-SHA384 bits=256");
	hs_close(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_tls11_refused(void **state)
{
	SSL_CTX *sctx, *cctx;
	struct hs h;

	(void)state;
	sctx = server_ctx_ok();
	cctx = client_ctx(sctx, TLS1_1_VERSION);
	/* OpenSSL 3 only speaks TLS 1.1 at security level 0: make the client
	 * really send a TLS 1.1 hello, so it is the server that refuses. */
	SSL_CTX_set_security_level(cctx, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0"), 1);
	hs_open(&h, cctx, sctx);
	assert_int_equal(hs_run(&h), -1);
	assert_int_equal(ERR_GET_REASON(h.server_error), SSL_R_UNSUPPORTED_PROTOCOL);
	hs_close(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_non_ecdhe_suite_refused(void **state)
{
	SSL_CTX *sctx, *cctx;
	struct hs h;

	(void)state;
	sctx = server_ctx_ok();
	cctx = client_ctx(sctx, TLS1_2_VERSION);
	/* static RSA key exchange, and CBC: neither is acceptable */
	assert_int_equal(SSL_CTX_set_cipher_list(cctx, "AES256-GCM-SHA384:ECDHE-RSA-AES256-SHA"),
			 1);
	hs_open(&h, cctx, sctx);
	assert_int_equal(hs_run(&h), -1);
	assert_int_equal(ERR_GET_REASON(h.server_error), SSL_R_NO_SHARED_CIPHER);
	hs_close(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_configured_certificate(void **state)
{
	char crt[256], key[256], err[512] = "", fp1[128], fp2[128];
	SSL_CTX *a, *b;

	(void)state;
	a = server_ctx_ok();
	ctx_fingerprint(a, fp1, sizeof(fp1));
	spool_file("selfsigned.crt", crt, sizeof(crt));
	spool_file("selfsigned.key", key, sizeof(key));
	b = tls_server_ctx(crt, key, NULL, NULL, err, sizeof(err));
	assert_non_null(b);
	ctx_fingerprint(b, fp2, sizeof(fp2));
	assert_string_equal(fp1, fp2);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
}

static void write_other_key(const char *path)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *f = fopen(path, "w");

	assert_non_null(k);
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(k);
}

static void test_errors_are_strings(void **state)
{
	char err[512], crt[256], key[256], other[256], file[256];
	FILE *f;

	(void)state;
	SSL_CTX_free(server_ctx_ok()); /* make sure the pair exists */
	spool_file("selfsigned.crt", crt, sizeof(crt));
	spool_file("selfsigned.key", key, sizeof(key));

	err[0] = '\0';
	assert_null(tls_server_ctx("/nonexistent/cert.pem", key, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	assert_non_null(strstr(err, "error:"));

	err[0] = '\0';
	assert_null(tls_server_ctx(crt, "/nonexistent/key.pem", NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/key.pem"));

	/* a key that is not the certificate's */
	snprintf(other, sizeof(other), "%s/other.key", spool);
	write_other_key(other);
	err[0] = '\0';
	assert_null(tls_server_ctx(crt, other, NULL, NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);

	/* a file that is not PEM at all */
	snprintf(file, sizeof(file), "%s/garbage.pem", spool);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	err[0] = '\0';
	assert_null(tls_server_ctx(file, key, NULL, NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);

	err[0] = '\0';
	assert_null(tls_server_ctx(crt, NULL, NULL, NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);

	err[0] = '\0';
	assert_null(tls_server_ctx(NULL, NULL, spool, "bad name,DNS:evil.test", err, sizeof(err)));
	assert_true(strlen(err) > 0);

	/* the spool is a file: the tls directory cannot be made */
	err[0] = '\0';
	assert_null(tls_server_ctx(NULL, NULL, file, FQDN, err, sizeof(err)));
	assert_non_null(strstr(err, "mkdir"));
	assert_int_equal(ERR_peek_error(), 0); /* nothing left on the error queue */
}

static void test_broken_pair_is_replaced(void **state)
{
	char fp1[128], fp2[128], key[256];
	SSL_CTX *a, *b, *cctx;
	struct hs h;

	(void)state;
	a = server_ctx_ok();
	ctx_fingerprint(a, fp1, sizeof(fp1));
	spool_file("selfsigned.key", key, sizeof(key));
	write_other_key(key); /* as if a crash fell between the two renames */
	b = server_ctx_ok();
	ctx_fingerprint(b, fp2, sizeof(fp2));
	assert_string_not_equal(fp1, fp2);
	assert_int_equal(file_mode(key), 0600);
	/* and the new one works */
	cctx = client_ctx(b, 0);
	hs_open(&h, cctx, b);
	assert_int_equal(hs_run(&h), 0);
	hs_close(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
}

/* Replace the spool certificate with one for the same key that ends in
 * `days` days. */
static void write_cert_ending_in(int days)
{
	char crt[256], key[256];
	FILE *f;
	EVP_PKEY *k;
	X509 *x = X509_new();
	X509_NAME *name;

	spool_file("selfsigned.crt", crt, sizeof(crt));
	spool_file("selfsigned.key", key, sizeof(key));
	f = fopen(key, "r");
	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, k);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)FQDN, -1, -1,
				   0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	f = fopen(crt, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_renewed_before_expiry(void **state)
{
	char fp1[128], fp2[128];
	SSL_CTX *ctx;
	int days = 0, secs = 0;

	(void)state;
	SSL_CTX_free(server_ctx_ok());
	write_cert_ending_in(60); /* far enough: kept */
	ctx = server_ctx_ok();
	ctx_fingerprint(ctx, fp1, sizeof(fp1));
	assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(SSL_CTX_get0_certificate(ctx))),
			 7);
	SSL_CTX_free(ctx);

	write_cert_ending_in(10); /* close to expiry: replaced */
	ctx = server_ctx_ok();
	ctx_fingerprint(ctx, fp2, sizeof(fp2));
	assert_string_not_equal(fp1, fp2);
	assert_int_equal(ASN1_TIME_diff(&days, &secs,
					X509_get0_notBefore(SSL_CTX_get0_certificate(ctx)),
					X509_get0_notAfter(SSL_CTX_get0_certificate(ctx))),
			 1);
	assert_int_equal(days, 365);
	SSL_CTX_free(ctx);
}

static void test_long_fqdn_has_no_cn(void **state)
{
	char fqdn[128], err[512] = "", cn[256];
	SSL_CTX *ctx;
	X509 *x;
	int crit = -1;
	GENERAL_NAMES *gens;

	(void)state;
	memset(fqdn, 'a', 70);
	strcpy(fqdn + 70, ".example.test");
	ctx = tls_server_ctx(NULL, NULL, spool, fqdn, err, sizeof(err));
	if (ctx == NULL)
		fail_msg("%s", err);
	x = SSL_CTX_get0_certificate(ctx);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) < 0);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(crit, 1);
	GENERAL_NAMES_free(gens);
	assert_int_equal(X509_check_host(x, fqdn, 0, 0, NULL), 1);
	SSL_CTX_free(ctx);
}

static void test_fingerprint_and_describe_bounds(void **state)
{
	SSL_CTX *ctx;
	char small[8], full[128], desc[4];

	(void)state;
	ctx = server_ctx_ok();
	ctx_fingerprint(ctx, full, sizeof(full));
	ctx_fingerprint(ctx, small, sizeof(small));
	assert_int_equal(strlen(small), 5); /* "AB:CD" */
	assert_memory_equal(small, full, 5);
	tls_fingerprint(NULL, small, sizeof(small));
	assert_string_equal(small, "");
	tls_describe(NULL, desc, sizeof(desc));
	assert_string_equal(desc, "ver");
	SSL_CTX_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selfsigned_made_once_and_reused),
		cmocka_unit_test(test_selfsigned_profile),
		cmocka_unit_test(test_context_settings),
		cmocka_unit_test(test_handshake_tls13),
		cmocka_unit_test(test_handshake_tls12_server_preference),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_non_ecdhe_suite_refused),
		cmocka_unit_test(test_configured_certificate),
		cmocka_unit_test(test_errors_are_strings),
		cmocka_unit_test(test_broken_pair_is_replaced),
		cmocka_unit_test(test_renewed_before_expiry),
		cmocka_unit_test(test_long_fqdn_has_no_cn),
		cmocka_unit_test(test_fingerprint_and_describe_bounds),
	};

	return cmocka_run_group_tests(tests, setup_spool, teardown_spool);
}
