/* test_certstore.c - conf/tls_opts.c (tls-protocols ranges, cipher strings checked by OpenSSL)
 * and net/certstore.c (self-signed and CSR with their names, thumbprint lookup by prefix,
 * bindings replaced / added / moved by renew, private key modes, import refusing a key that does
 * not match). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf/tls_opts.h"
#include "net/certmake.h"
#include "net/certstore.h"

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/transit-test-certstore-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_protocols(void **state)
{
	static const struct {
		const char *names[4];
		size_t n;
		int min, max; /* 0, 0: refused */
	} cases[] = {
		{{"TLSv1.2", "TLSv1.3"}, 2, TLS1_2_VERSION, TLS1_3_VERSION},
		{{"TLSv1.3"}, 1, TLS1_3_VERSION, TLS1_3_VERSION},
		{{"TLSv1.3", "TLSv1", "TLSv1.1", "TLSv1.2"}, 4, TLS1_VERSION, TLS1_3_VERSION},
		{{"TLSv1", "TLSv1.2"}, 2, 0, 0},	 /* a gap */
		{{"SSLv3", "TLSv1.2"}, 2, 0, 0},	 /* never */
		{{"tlsv1.2"}, 1, 0, 0},			 /* spelled as OpenSSL does */
		{{NULL}, 0, 0, 0},
	};
	size_t i;
	char err[256];
	int lo, hi, rc;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = tls_opts_parse_protocols(cases[i].names, cases[i].n, &lo, &hi, err, sizeof(err));
		if (cases[i].min == 0) {
			assert_int_equal(rc, -1);
			assert_true(err[0] != '\0');
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(lo, cases[i].min);
			assert_int_equal(hi, cases[i].max);
		}
	}
	assert_string_equal(tls_opts_version_name(TLS1_1_VERSION), "TLSv1.1");
}

static void test_ciphers(void **state)
{
	char err[512];
	(void)state;

	assert_int_equal(tls_opts_check_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20", false, err, sizeof(err)), 0);
	assert_int_equal(tls_opts_check_ciphers("AES128-SHA", false, err, sizeof(err)), 0);
	assert_int_equal(tls_opts_check_ciphers("NOTHING-LIKE-THIS", false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "names no cipher"));
	assert_int_equal(tls_opts_check_ciphers("TLS_AES_128_GCM_SHA256", true, err, sizeof(err)), 0);
	assert_int_equal(tls_opts_check_ciphers("ECDHE+AESGCM", true, err, sizeof(err)), -1);
	assert_int_equal(tls_opts_check_ciphers("", false, err, sizeof(err)), -1);
}

static bool has_dns_name(X509 *x, const char *want)
{
	char buf[1024];
	const char *names[8];
	size_t n = certstore_names(x, buf, sizeof(buf), names, 8), i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], want) == 0)
			return true;
	return false;
}

static void test_request(void **state)
{
	const char *names[] = {"mx1.example.test", "mx2.example.test"};
	EVP_PKEY *key = certmake_key();
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens;
	(void)state;

	assert_non_null(key);
	req = certmake_request(key, names, 2);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, key), 1);
	exts = X509_REQ_get_extensions(req);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 2);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	assert_false(certmake_name_ok("bad name,DNS:evil.test"));
	assert_true(certmake_name_ok("*.example.test"));
	assert_false(certmake_name_ok("*"));
}

static void path_of(const char *thumb, const char *ext, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s.%s", dir, thumb, ext);
}

static void test_store(void **state)
{
	const char *a_names[] = {"a.example.test", "b.example.test"};
	const char *c_names[] = {"c.example.test"};
	char a[65], c[65], renewed[65], err[1024], path[256], upper[80];
	struct certstore *st;
	const struct cert_entry *e;
	struct stat sb;
	size_t i;
	(void)state;

	assert_int_equal(certstore_new_selfsigned(dir, a_names, 2, 30, a, err, sizeof(err)), 0);
	assert_int_equal(certstore_new_selfsigned(dir, c_names, 1, 30, c, err, sizeof(err)), 0);
	path_of(a, "key", path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	st = certstore_open(dir, true, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(st->ncerts, 2);
	/* by a prefix, upper case, with colons */
	for (i = 0; i < 12; i++)
		upper[i] = (char)(a[i] >= 'a' ? a[i] - 32 : a[i]);
	snprintf(upper + 12, sizeof(upper) - 12, ":%c%c", a[12] >= 'a' ? a[12] - 32 : a[12],
		 a[13] >= 'a' ? a[13] - 32 : a[13]);
	e = certstore_find(st, upper, err, sizeof(err));
	assert_non_null(e);
	assert_string_equal(e->thumb, a);
	assert_true(e->self_signed);
	assert_non_null(e->key);
	assert_true(has_dns_name(e->leaf, "b.example.test"));
	assert_null(certstore_find(st, "abc", err, sizeof(err))); /* too short */
	assert_null(certstore_find(st, "zzzzzzzz", err, sizeof(err)));
	certstore_free(st);

	/* use, use --add, use again (replaces) */
	assert_int_equal(certstore_bind(dir, "internet", a, false, err, sizeof(err)), 0);
	assert_int_equal(certstore_bind(dir, "internet", c, true, err, sizeof(err)), 0);
	assert_int_equal(certstore_bind(dir, "internet", c, true, err, sizeof(err)), 0); /* no dup */
	st = certstore_open(dir, false, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(st->nbinds, 2);
	assert_string_equal(st->binds[0].thumb, a); /* the default stays first */
	assert_string_equal(st->binds[1].thumb, c);
	e = certstore_find(st, a, err, sizeof(err));
	assert_non_null(e);
	/* renew moves the bindings */
	assert_int_equal(certstore_renew(dir, e, 365, renewed, err, sizeof(err)), 0);
	certstore_free(st);
	st = certstore_open(dir, false, err, sizeof(err));
	assert_non_null(st);
	assert_string_equal(st->binds[0].thumb, renewed);
	e = certstore_find(st, renewed, err, sizeof(err));
	assert_non_null(e);
	assert_true(has_dns_name(e->leaf, "a.example.test"));
	assert_true(has_dns_name(e->leaf, "b.example.test"));
	certstore_free(st);
	assert_int_equal(certstore_bind(dir, "internet", c, false, err, sizeof(err)), 0);
	st = certstore_open(dir, false, err, sizeof(err));
	assert_int_equal(st->nbinds, 1);
	certstore_free(st);

	/* a key others can read is refused when keys are loaded */
	path_of(c, "key", path, sizeof(path));
	assert_int_equal(chmod(path, 0640), 0);
	assert_null(certstore_open(dir, true, err, sizeof(err)));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);

	/* import: the certificate of c with the key of a is refused */
	{
		char crt[256], key[256], got[65];
		path_of(c, "crt", crt, sizeof(crt));
		path_of(renewed, "key", key, sizeof(key));
		assert_int_equal(certstore_import(dir, crt, key, got, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "matches none"));
		path_of(c, "key", key, sizeof(key));
		assert_int_equal(certstore_import(dir, crt, key, got, err, sizeof(err)), 0);
		assert_string_equal(got, c);
	}
}

static void test_bad_bindings(void **state)
{
	char err[512], path[256];
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/bindings", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# comment\n\ninternet not-a-thumbprint\n", f);
	fclose(f);
	assert_null(certstore_open(dir, false, err, sizeof(err)));
	assert_non_null(strstr(err, "bindings:3: expected CONNECTOR THUMBPRINT"));
	remove(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_ciphers),
		cmocka_unit_test(test_request),
		cmocka_unit_test_setup_teardown(test_store, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_bad_bindings, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
