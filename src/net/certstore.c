/*
 * certstore.c - the certificate store on disk (see certstore.h for the
 * layout and the ownership rules). PEM in and out through OpenSSL; the
 * bindings file is plain text written whole and renamed into place.
 */
#include "net/certstore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/certmake.h"
#include "net/tls.h"
#include "util/fileio.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define CS_PATH_MAX 4096
#define CS_MAX_CERTS 1000     /* bound what a directory listing makes us hold */
#define CS_MAX_BINDINGS 1000
#define CS_MAX_CHAIN 16
#define CS_LINE_MAX 512
#define CS_CONNECTOR_MAX 128

static int cs_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void cs_err_ssl(char *err, size_t errsz, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char reason[256] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errsz, "%s %s: %s", what, path, reason);
}

int certstore_dir(const char *spool, char *out, size_t outsz)
{
	return snprintf(out, outsz, "%s/certs", spool) < (int)outsz ? 0 : -1;
}

void certstore_thumbprint(X509 *x, char out[CERTSTORE_THUMB_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n * 2 != CERTSTORE_THUMB_LEN) {
		ERR_clear_error();
		return;
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* ---- ownership ------------------------------------------------------------ */

/* As root, give path to the owner of the store directory. */
static void cs_give_to_dir_owner(const char *dir, const char *path)
{
	struct stat st;

	if (geteuid() != 0 || stat(dir, &st) < 0)
		return;
	if (chown(path, st.st_uid, st.st_gid) < 0)
		(void)0; /* the daemon then cannot read it: it says so when it loads */
}

int certstore_prepare(const char *dir, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char path[CS_PATH_MAX];

	bool made = mkdir(dir, 0700) == 0;

	if (!made && errno != EEXIST) {
		snprintf(err, errsz, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s is not a directory", dir);
		return -1;
	}
	if (made && uid == (uid_t)-1 && geteuid() == 0) {
		/* transitctl as root: the store belongs to the spool's owner */
		char parent[CS_PATH_MAX];
		struct stat pst;
		char *slash;
		str_copy(parent, dir, sizeof(parent));
		if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
			*slash = '\0';
			if (stat(parent, &pst) == 0 && chown(dir, pst.st_uid, pst.st_gid) < 0)
				(void)0; /* transitd hands it over at its next start */
		}
	}
	if (geteuid() != 0 || uid == (uid_t)-1)
		return 0;
	if (chown(dir, uid, gid) < 0) {
		snprintf(err, errsz, "chown %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
			(void)lchown(path, uid, gid);
	}
	closedir(d);
	return 0;
}

/* Open a key file only when it is ours and private (certstore.h). */
static EVP_PKEY *cs_read_key(const char *path, char *err, size_t errsz)
{
	struct stat st;
	EVP_PKEY *pkey = NULL;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errsz, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (geteuid() != 0 && st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errsz, "%s belongs to uid %ld, not to us (uid %ld) or root", path,
			 (long)st.st_uid, (long)geteuid());
		close(fd);
		return NULL;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errsz, "%s has mode %03o: a key must not be readable by group or "
				     "others (chmod 600)",
			 path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		snprintf(err, errsz, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PrivateKey(f, NULL, cs_no_passphrase, NULL);
	fclose(f);
	if (pkey == NULL)
		cs_err_ssl(err, errsz, "read key", path);
	return pkey;
}

/* Every certificate in a PEM file (at most CS_MAX_CHAIN). */
static STACK_OF(X509) *cs_read_certs(const char *path, char *err, size_t errsz)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	if (sk == NULL || b == NULL) {
		cs_err_ssl(err, errsz, "open", path);
		BIO_free(b);
		sk_X509_free(sk);
		return NULL;
	}
	while (sk_X509_num(sk) < CS_MAX_CHAIN &&
	       (x = PEM_read_bio_X509(b, NULL, cs_no_passphrase, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			break;
		}
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the file */
	if (sk_X509_num(sk) == 0) {
		snprintf(err, errsz, "%s holds no PEM certificate", path);
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

static time_t cs_not_after(X509 *x)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return timegm(&tm);
}

static void cs_entry_free(struct cert_entry *e)
{
	X509_free(e->leaf);
	sk_X509_pop_free(e->chain, X509_free);
	EVP_PKEY_free(e->key);
}

/* <dir>/<thumb>.crt (+ .key) into e. */
static int cs_load_entry(const char *dir, const char *thumb, bool with_key, struct cert_entry *e,
			 char *err, size_t errsz)
{
	char path[CS_PATH_MAX];
	STACK_OF(X509) *sk;

	memset(e, 0, sizeof(*e));
	snprintf(path, sizeof(path), "%s/%s.crt", dir, thumb);
	if ((sk = cs_read_certs(path, err, errsz)) == NULL)
		return -1;
	e->leaf = sk_X509_shift(sk);
	e->chain = sk;
	certstore_thumbprint(e->leaf, e->thumb);
	if (strcmp(e->thumb, thumb) != 0) {
		snprintf(err, errsz, "%s: its certificate's thumbprint is %s", path, e->thumb);
		cs_entry_free(e);
		return -1;
	}
	e->self_signed = X509_self_signed(e->leaf, 1) == 1;
	ERR_clear_error();
	e->not_after = cs_not_after(e->leaf);
	if (!with_key)
		return 0;
	snprintf(path, sizeof(path), "%s/%s.key", dir, thumb);
	if ((e->key = cs_read_key(path, err, errsz)) == NULL) {
		cs_entry_free(e);
		return -1;
	}
	if (X509_check_private_key(e->leaf, e->key) != 1) {
		ERR_clear_error();
		snprintf(err, errsz, "%s does not match its certificate", path);
		cs_entry_free(e);
		return -1;
	}
	return 0;
}

static bool cs_is_thumb(const char *s, size_t n)
{
	size_t i;

	if (n != CERTSTORE_THUMB_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- bindings --------------------------------------------------------------- */

static int cs_read_bindings(struct certstore *st, char *err, size_t errsz)
{
	char path[CS_PATH_MAX], line[CS_LINE_MAX], conn[CS_CONNECTOR_MAX + 1], thumb[CS_LINE_MAX];
	FILE *f;
	unsigned lineno = 0;

	snprintf(path, sizeof(path), "%s/bindings", st->dir);
	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsz, "open %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		if (sscanf(line, "%128s %511s", conn, thumb) != 2 ||
		    !cs_is_thumb(thumb, strlen(thumb)) || st->nbinds >= CS_MAX_BINDINGS) {
			snprintf(err, errsz, "%s:%u: expected CONNECTOR THUMBPRINT", path, lineno);
			fclose(f);
			return -1;
		}
		st->binds = xrealloc(st->binds, (st->nbinds + 1) * sizeof(*st->binds));
		st->binds[st->nbinds].connector = xstrdup(conn);
		memcpy(st->binds[st->nbinds].thumb, thumb, CERTSTORE_THUMB_LEN + 1);
		st->nbinds++;
	}
	fclose(f);
	return 0;
}

static int cs_write_bindings(const struct certstore *st, char *err, size_t errsz)
{
	char path[CS_PATH_MAX];
	BIO *mem = BIO_new(BIO_s_mem());
	size_t i;
	int rc;

	if (mem == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	BIO_printf(mem, "# transit certificate bindings: CONNECTOR THUMBPRINT (first = default)\n"
			"# written by transitctl cert use; see transitctl(8)\n");
	for (i = 0; i < st->nbinds; i++)
		BIO_printf(mem, "%s %s\n", st->binds[i].connector, st->binds[i].thumb);
	snprintf(path, sizeof(path), "%s/bindings", st->dir);
	rc = tls_write_file(path, 0644, mem, err, errsz);
	BIO_free(mem);
	if (rc == 0) {
		cs_give_to_dir_owner(st->dir, path);
		(void)fsync_dir(st->dir);
	}
	return rc;
}

/* ---- open ----------------------------------------------------------------------- */

static int cs_cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct cert_entry *)a)->thumb, ((const struct cert_entry *)b)->thumb);
}

struct certstore *certstore_open(const char *dir, bool with_keys, char *err, size_t errsz)
{
	struct certstore *st = xcalloc(1, sizeof(*st));
	DIR *d;
	struct dirent *de;

	st->dir = xstrdup(dir);
	if (cs_read_bindings(st, err, errsz) < 0) {
		certstore_free(st);
		return NULL;
	}
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return st;
		snprintf(err, errsz, "open %s: %s", dir, strerror(errno));
		certstore_free(st);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char thumb[CERTSTORE_THUMB_LEN + 1];
		struct cert_entry e;

		if (n != CERTSTORE_THUMB_LEN + 4 || strcmp(de->d_name + CERTSTORE_THUMB_LEN, ".crt") != 0 ||
		    !cs_is_thumb(de->d_name, CERTSTORE_THUMB_LEN))
			continue;
		if (st->ncerts >= CS_MAX_CERTS) {
			snprintf(err, errsz, "%s: more than %d certificates", dir, CS_MAX_CERTS);
			closedir(d);
			certstore_free(st);
			return NULL;
		}
		memcpy(thumb, de->d_name, CERTSTORE_THUMB_LEN);
		thumb[CERTSTORE_THUMB_LEN] = '\0';
		if (cs_load_entry(dir, thumb, with_keys, &e, err, errsz) < 0) {
			closedir(d);
			certstore_free(st);
			return NULL;
		}
		st->certs = xrealloc(st->certs, (st->ncerts + 1) * sizeof(*st->certs));
		st->certs[st->ncerts++] = e;
	}
	closedir(d);
	if (st->ncerts > 1)
		qsort(st->certs, st->ncerts, sizeof(*st->certs), cs_cmp_entry);
	return st;
}

void certstore_free(struct certstore *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < st->ncerts; i++)
		cs_entry_free(&st->certs[i]);
	free(st->certs);
	for (i = 0; i < st->nbinds; i++)
		free(st->binds[i].connector);
	free(st->binds);
	free(st->dir);
	free(st);
}

const struct cert_entry *certstore_find(const struct certstore *st, const char *thumb, char *err,
					size_t errsz)
{
	char want[CERTSTORE_THUMB_LEN + 1];
	const struct cert_entry *hit = NULL;
	size_t i, n = 0;

	for (i = 0; thumb[i] != '\0'; i++) {
		if (thumb[i] == ':')
			continue;
		if (!isxdigit((unsigned char)thumb[i]) || n >= CERTSTORE_THUMB_LEN) {
			snprintf(err, errsz, "\"%s\" is not a SHA-256 thumbprint", thumb);
			return NULL;
		}
		want[n++] = (char)tolower((unsigned char)thumb[i]);
	}
	want[n] = '\0';
	if (n < 8) {
		snprintf(err, errsz, "thumbprint \"%s\": give at least 8 hex digits", thumb);
		return NULL;
	}
	for (i = 0; i < st->ncerts; i++) {
		if (strncmp(st->certs[i].thumb, want, n) != 0)
			continue;
		if (hit != NULL) {
			snprintf(err, errsz, "thumbprint \"%s\" is not unique: give more digits", thumb);
			return NULL;
		}
		hit = &st->certs[i];
	}
	if (hit == NULL)
		snprintf(err, errsz, "no certificate %s in %s", thumb, st->dir);
	return hit;
}

/* ---- add ------------------------------------------------------------------------- */

int certstore_add(const char *dir, X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
		  char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz)
{
	char crt[CS_PATH_MAX], keyp[CS_PATH_MAX];
	BIO *kmem = NULL, *cmem = NULL;
	int i, rc = -1;

	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		snprintf(err, errsz, "the key does not match the certificate");
		return -1;
	}
	if (certstore_prepare(dir, (uid_t)-1, (gid_t)-1, err, errsz) < 0)
		return -1;
	certstore_thumbprint(leaf, thumb_out);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, thumb_out);
	snprintf(keyp, sizeof(keyp), "%s/%s.key", dir, thumb_out);
	kmem = BIO_new(BIO_s_secmem());
	cmem = BIO_new(BIO_s_mem());
	if (kmem == NULL || cmem == NULL ||
	    !PEM_write_bio_PrivateKey(kmem, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cmem, leaf)) {
		cs_err_ssl(err, errsz, "encode", crt);
		goto out;
	}
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		if (!PEM_write_bio_X509(cmem, sk_X509_value(chain, i))) {
			cs_err_ssl(err, errsz, "encode", crt);
			goto out;
		}
	}
	/* the key first: a certificate without its key is not listed as
	 * usable, a key without its certificate is never looked at */
	if (tls_write_file(keyp, 0600, kmem, err, errsz) < 0)
		goto out;
	cs_give_to_dir_owner(dir, keyp);
	if (tls_write_file(crt, 0644, cmem, err, errsz) < 0)
		goto out;
	cs_give_to_dir_owner(dir, crt);
	(void)fsync_dir(dir);
	rc = 0;
out:
	BIO_free(kmem);
	BIO_free(cmem);
	return rc;
}

int certstore_import(const char *dir, const char *file, const char *key_file,
		     char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz)
{
	STACK_OF(X509) *sk = cs_read_certs(file, err, errsz);
	const char *kpath = key_file != NULL ? key_file : file;
	EVP_PKEY *key = NULL;
	BIO *b;
	X509 *leaf = NULL;
	int i, rc = -1;

	if (sk == NULL)
		return -1;
	if ((b = BIO_new_file(kpath, "r")) != NULL) {
		key = PEM_read_bio_PrivateKey(b, NULL, cs_no_passphrase, NULL);
		BIO_free(b);
	}
	if (key == NULL) {
		ERR_clear_error();
		snprintf(err, errsz, "%s holds no unencrypted PEM private key%s", kpath,
			 key_file ? "" : " (or give it with --key FILE)");
		goto out;
	}
	for (i = 0; i < sk_X509_num(sk); i++) {
		if (X509_check_private_key(sk_X509_value(sk, i), key) == 1) {
			leaf = sk_X509_delete(sk, i);
			break;
		}
	}
	ERR_clear_error();
	if (leaf == NULL) {
		snprintf(err, errsz, "the key in %s matches none of the certificates in %s", kpath,
			 file);
		goto out;
	}
	rc = certstore_add(dir, leaf, sk, key, thumb_out, err, errsz);
out:
	X509_free(leaf);
	EVP_PKEY_free(key);
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

int certstore_new_selfsigned(const char *dir, const char *const *names, size_t n, int days,
			     char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz)
{
	EVP_PKEY *key;
	X509 *x = NULL;
	size_t i;
	int rc = -1;

	for (i = 0; i < n; i++) {
		if (!certmake_name_ok(names[i])) {
			snprintf(err, errsz, "\"%s\" is not a host name", names[i]);
			return -1;
		}
	}
	if (n == 0) {
		snprintf(err, errsz, "a certificate needs a name");
		return -1;
	}
	if ((key = certmake_key()) == NULL || (x = certmake_selfsigned(key, names, n, days)) == NULL)
		cs_err_ssl(err, errsz, "make self-signed certificate for", names[0]);
	else
		rc = certstore_add(dir, x, NULL, key, thumb_out, err, errsz);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- bindings changes ---------------------------------------------------------------- */

int certstore_bind(const char *dir, const char *connector, const char *thumb, bool add, char *err,
		   size_t errsz)
{
	struct certstore *st = certstore_open(dir, false, err, errsz);
	const struct cert_entry *e;
	size_t i, j;
	int rc;

	if (st == NULL)
		return -1;
	if ((e = certstore_find(st, thumb, err, errsz)) == NULL) {
		certstore_free(st);
		return -1;
	}
	if (strlen(connector) > CS_CONNECTOR_MAX || connector[strcspn(connector, " \t\r\n#")]) {
		snprintf(err, errsz, "\"%s\" is not a connector name", connector);
		certstore_free(st);
		return -1;
	}
	for (i = j = 0; i < st->nbinds; i++) {
		bool same = strcmp(st->binds[i].connector, connector) == 0;
		if (same && (!add || strcmp(st->binds[i].thumb, e->thumb) == 0)) {
			free(st->binds[i].connector);
			continue;
		}
		st->binds[j++] = st->binds[i];
	}
	st->nbinds = j;
	st->binds = xrealloc(st->binds, (st->nbinds + 1) * sizeof(*st->binds));
	st->binds[st->nbinds].connector = xstrdup(connector);
	memcpy(st->binds[st->nbinds].thumb, e->thumb, CERTSTORE_THUMB_LEN + 1);
	st->nbinds++;
	rc = cs_write_bindings(st, err, errsz);
	certstore_free(st);
	return rc;
}

size_t certstore_names(X509 *x, char *buf, size_t bufsz, const char **names, size_t max)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t n = 0, used = 0;
	int i;

	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int len;
		if (gn->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(gn->d.dNSName);
		len = ASN1_STRING_length(gn->d.dNSName);
		if (len <= 0 || used + (size_t)len + 1 > bufsz || memchr(d, '\0', (size_t)len))
			continue;
		memcpy(buf + used, d, (size_t)len);
		buf[used + (size_t)len] = '\0';
		names[n++] = buf + used;
		used += (size_t)len + 1;
	}
	GENERAL_NAMES_free(gens);
	if (n == 0 && max > 0) {
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
						    buf, (int)bufsz);
		if (len > 0)
			names[n++] = buf;
	}
	ERR_clear_error();
	return n;
}

int certstore_renew(const char *dir, const struct cert_entry *old, int days,
		    char thumb_out[CERTSTORE_THUMB_LEN + 1], char *err, size_t errsz)
{
	char buf[4096];
	const char *names[32];
	size_t n = certstore_names(old->leaf, buf, sizeof(buf), names, 32);
	struct certstore *st;
	size_t i;
	int rc;

	if (!old->self_signed) {
		snprintf(err, errsz, "%s is not self-signed: renew it with its CA (cert request)",
			 old->thumb);
		return -1;
	}
	if (certstore_new_selfsigned(dir, names, n, days, thumb_out, err, errsz) < 0)
		return -1;
	if ((st = certstore_open(dir, false, err, errsz)) == NULL)
		return -1;
	for (i = 0; i < st->nbinds; i++)
		if (strcmp(st->binds[i].thumb, old->thumb) == 0)
			memcpy(st->binds[i].thumb, thumb_out, CERTSTORE_THUMB_LEN + 1);
	rc = cs_write_bindings(st, err, errsz);
	certstore_free(st);
	return rc;
}
