/*
 * cert.c - transitctl cert list|new|request|import|use|renew (see cert.h
 * and transitctl(8)). Keys, certificates and requests are made by
 * OpenSSL (net/certmake.h); the store's rules (files, modes, owners) are
 * net/certstore.h's.
 *
 * A request's key waits in the store as request-<NAME>.key (mode 0600)
 * until the CA's certificate comes back: `cert import` of a file without
 * a key looks for the matching request key there.
 */
#include "ctl/cert.h"
#include "ctl/complain.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "conf/conf.h"
#include "net/certmake.h"
#include "net/certstore.h"
#include "net/tls.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define CERT_PATH_MAX 4096
#define CERT_MAX_NAMES 32
#define CERT_DEFAULT_DAYS 365
#define EXIT_USAGE CTL_EXIT_USAGE

static int cert_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cert_fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	status = ctl_vcomplain(status, "cert", fmt, ap);
	va_end(ap);
	return status;
}

/* Options shared by the verbs. */
struct cert_args {
	const char *names[CERT_MAX_NAMES]; /* --name, then every --san */
	size_t nnames;
	const char *connector, *key, *out, *thumb, *file;
	bool json, self_signed, add, has_name;
	long days;
};

static int cert_parse(int argc, char **argv, struct cert_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->days = CERT_DEFAULT_DAYS;
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(o, "--json") == 0) {
			a->json = true;
		} else if (strcmp(o, "--self-signed") == 0) {
			a->self_signed = true;
		} else if (strcmp(o, "--add") == 0) {
			a->add = true;
		} else if ((strcmp(o, "--name") == 0 || strcmp(o, "--san") == 0) && has_val) {
			if (a->nnames >= CERT_MAX_NAMES)
				return cert_fail(EXIT_USAGE, "at most %d names", CERT_MAX_NAMES);
			if (strcmp(o, "--name") == 0) {
				if (a->has_name)
					return cert_fail(EXIT_USAGE, "--name once (more names: --san)");
				a->has_name = true;
				memmove(a->names + 1, a->names, a->nnames * sizeof(*a->names));
				a->names[0] = argv[++i];
			} else {
				a->names[a->nnames] = argv[++i];
			}
			a->nnames++;
		} else if (strcmp(o, "--connector") == 0 && has_val) {
			a->connector = argv[++i];
		} else if (strcmp(o, "--key") == 0 && has_val) {
			a->key = argv[++i];
		} else if (strcmp(o, "--out") == 0 && has_val) {
			a->out = argv[++i];
		} else if (strcmp(o, "--days") == 0 && has_val) {
			char *end;
			a->days = strtol(argv[++i], &end, 10);
			if (*end != '\0' || a->days < 1 || a->days > 3650)
				return cert_fail(EXIT_USAGE, "--days: 1..3650");
		} else if (o[0] == '-') {
			return cert_fail(EXIT_USAGE, "%s: unknown option or missing value '%s'", argv[1], o);
		} else if (a->file == NULL) {
			a->file = o; /* THUMBPRINT or FILE */
		} else {
			return cert_fail(EXIT_USAGE, "%s: unexpected argument '%s'", argv[1], o);
		}
	}
	return 0;
}

static int cert_check_names(const struct cert_args *a, const char *verb)
{
	size_t i;

	if (!a->has_name)
		return cert_fail(EXIT_USAGE, "%s: needs --name FQDN", verb);
	for (i = 0; i < a->nnames; i++)
		if (!certmake_name_ok(a->names[i]))
			return cert_fail(1, "%s: \"%s\" is not a host name", verb, a->names[i]);
	return 0;
}

/* ---- list ---------------------------------------------------------------- */

static void cert_upper(const char *thumb, char *out)
{
	size_t i;

	for (i = 0; thumb[i]; i++)
		out[i] = (char)(thumb[i] >= 'a' && thumb[i] <= 'f' ? thumb[i] - 32 : thumb[i]);
	out[i] = '\0';
}

/* Connectors serving thumb: from the bindings, or (builtin) those that
 * fall back to the built-in self-signed certificate. */
static json_t *cert_users(const struct config *c, const struct certstore *st, const char *thumb,
			  bool builtin)
{
	json_t *arr = json_array();
	size_t i, b;

	for (i = 0; i < c->nrcs; i++) {
		const struct receive_connector *rc = &c->rcs[i];
		bool bound = false, uses = false;
		if (rc->tls == RC_TLS_NONE)
			continue;
		for (b = 0; b < st->nbinds; b++) {
			if (strcmp(st->binds[b].connector, rc->name) != 0)
				continue;
			bound = true;
			if (thumb != NULL && strcmp(st->binds[b].thumb, thumb) == 0)
				uses = true;
		}
		if (builtin)
			uses = !bound && rc->tls_cert == NULL && c->server.tls_cert == NULL;
		if (uses)
			json_array_append_new(arr, json_string(rc->name));
	}
	return arr;
}

static json_t *cert_describe(X509 *x, const char *thumb, json_t *users, bool self_signed,
			     const char *source)
{
	char up[CERTSTORE_THUMB_LEN + 1], text[1024], buf[4096];
	const char *names[CERT_MAX_NAMES];
	size_t n = certstore_names(x, buf, sizeof(buf), names, CERT_MAX_NAMES), i;
	json_t *o = json_object(), *sans = json_array();

	cert_upper(thumb, up);
	json_object_set_new(o, "thumbprint", json_string(up));
	tls_name_text(X509_get_subject_name(x), text, sizeof(text));
	json_object_set_new(o, "subject", json_string(text));
	for (i = 0; i < n; i++)
		json_array_append_new(sans, json_string(names[i]));
	json_object_set_new(o, "sans", sans);
	tls_name_text(X509_get_issuer_name(x), text, sizeof(text));
	json_object_set_new(o, "issuer", json_string(text));
	tls_time_text(X509_get0_notAfter(x), text, sizeof(text));
	json_object_set_new(o, "not_after", json_string(text));
	json_object_set_new(o, "self_signed", json_boolean(self_signed));
	json_object_set_new(o, "source", json_string(source));
	json_object_set_new(o, "connectors", users);
	return o;
}

static void cert_print_row(json_t *o)
{
	json_t *v;
	size_t i;

	printf("%s\n", json_string_value(json_object_get(o, "thumbprint")));
	printf("  subject:    %s\n", json_string_value(json_object_get(o, "subject")));
	printf("  names:     ");
	json_array_foreach(json_object_get(o, "sans"), i, v)
		printf(" %s", json_string_value(v));
	printf("\n  issuer:     %s%s\n", json_string_value(json_object_get(o, "issuer")),
	       json_is_true(json_object_get(o, "self_signed")) ? " (self-signed)" : "");
	printf("  not after:  %s\n", json_string_value(json_object_get(o, "not_after")));
	printf("  source:     %s\n", json_string_value(json_object_get(o, "source")));
	printf("  connectors:");
	if (json_array_size(json_object_get(o, "connectors")) == 0)
		printf(" (none)");
	json_array_foreach(json_object_get(o, "connectors"), i, v)
		printf(" %s", json_string_value(v));
	printf("\n");
}

static int cert_list(const struct config *c, const char *dir, const struct cert_args *a)
{
	char err[1024], path[CERT_PATH_MAX];
	struct certstore *st = certstore_open(dir, false, err, sizeof(err));
	json_t *all;
	json_t *v;
	size_t i;
	BIO *b;
	X509 *x = NULL;

	if (st == NULL)
		return cert_fail(1, "list: %s", err);
	all = json_array();
	for (i = 0; i < st->ncerts; i++)
		json_array_append_new(all, cert_describe(st->certs[i].leaf, st->certs[i].thumb,
							 cert_users(c, st, st->certs[i].thumb, false),
							 st->certs[i].self_signed, "store"));
	/* the built-in self-signed certificate transitd makes when nothing
	 * else is configured */
	snprintf(path, sizeof(path), "%s/tls/selfsigned.crt", c->server.spool);
	if ((b = BIO_new_file(path, "r")) != NULL) {
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	ERR_clear_error();
	if (x != NULL) {
		char thumb[CERTSTORE_THUMB_LEN + 1];
		certstore_thumbprint(x, thumb);
		json_array_append_new(all, cert_describe(x, thumb, cert_users(c, st, NULL, true), true,
							 "built-in"));
		X509_free(x);
	}
	if (a->json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (json_array_size(all) == 0) {
		printf("no certificates in %s\n", dir);
	} else {
		json_array_foreach(all, i, v)
			cert_print_row(v);
	}
	json_decref(all);
	certstore_free(st);
	return 0;
}

/* ---- new, request ----------------------------------------------------------- */

static int cert_new(const char *dir, const struct cert_args *a)
{
	char err[1024], thumb[CERTSTORE_THUMB_LEN + 1], up[CERTSTORE_THUMB_LEN + 1];
	int rc;

	if (!a->self_signed)
		return cert_fail(EXIT_USAGE, "new: only --self-signed (for a CA: cert request)");
	if ((rc = cert_check_names(a, "new")) != 0)
		return rc;
	if (certstore_new_selfsigned(dir, a->names, a->nnames, (int)a->days, thumb, err,
				     sizeof(err)) < 0)
		return cert_fail(1, "new: %s", err);
	cert_upper(thumb, up);
	printf("%s\n", up);
	return 0;
}

static int cert_request(const char *dir, const struct cert_args *a)
{
	char err[1024], keypath[CERT_PATH_MAX];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	BIO *kmem = NULL, *out = NULL;
	int rc;

	if ((rc = cert_check_names(a, "request")) != 0)
		return rc;
	if (certstore_prepare(dir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) < 0)
		return cert_fail(1, "request: %s", err);
	if (snprintf(keypath, sizeof(keypath), "%s/request-%s.key", dir, a->names[0]) >=
	    (int)sizeof(keypath))
		return cert_fail(1, "request: name too long");
	rc = 1;
	if ((key = certmake_key()) == NULL || (req = certmake_request(key, a->names, a->nnames)) == NULL ||
	    (kmem = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(kmem, key, NULL, NULL, 0, NULL, NULL)) {
		ERR_clear_error();
		cert_fail(1, "request: OpenSSL could not make the key or the request");
		goto out;
	}
	if (tls_write_file(keypath, 0600, kmem, err, sizeof(err)) < 0) {
		cert_fail(1, "request: %s", err);
		goto out;
	}
	out = a->out ? BIO_new_file(a->out, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
	if (out == NULL || !PEM_write_bio_X509_REQ(out, req) || BIO_flush(out) != 1) {
		ERR_clear_error();
		cert_fail(1, "request: cannot write the request to %s", a->out ? a->out : "stdout");
		goto out;
	}
	fprintf(stderr, "transitctl: cert: request: key in %s; give the request to the CA, then "
			"'transitctl cert import' its certificate\n",
		keypath);
	rc = 0;
out:
	BIO_free(out);
	BIO_free(kmem);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- import ---------------------------------------------------------------------- */

/* The pending request key that matches the certificate in file. */
static bool cert_find_request_key(const char *dir, const char *file, char *out, size_t outsz)
{
	BIO *b = BIO_new_file(file, "r");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	DIR *d = x ? opendir(dir) : NULL;
	struct dirent *de;
	bool found = false;

	BIO_free(b);
	while (d != NULL && !found && (de = readdir(d)) != NULL) {
		BIO *kb;
		EVP_PKEY *k;
		if (strncmp(de->d_name, "request-", 8) != 0 || strstr(de->d_name, ".key") == NULL)
			continue;
		if ((size_t)snprintf(out, outsz, "%s/%s", dir, de->d_name) >= outsz ||
		    (kb = BIO_new_file(out, "r")) == NULL)
			continue;
		k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
		BIO_free(kb);
		found = k != NULL && X509_check_private_key(x, k) == 1;
		EVP_PKEY_free(k);
	}
	if (d)
		closedir(d);
	X509_free(x);
	ERR_clear_error();
	return found;
}

static int cert_import(const char *dir, const struct cert_args *a)
{
	char err[1024], thumb[CERTSTORE_THUMB_LEN + 1], up[CERTSTORE_THUMB_LEN + 1];
	char reqkey[CERT_PATH_MAX];
	const char *key = a->key;
	bool from_request = false;

	if (a->file == NULL)
		return cert_fail(EXIT_USAGE, "import: needs a PEM FILE");
	if (key == NULL && cert_find_request_key(dir, a->file, reqkey, sizeof(reqkey))) {
		key = reqkey;
		from_request = true;
	}
	if (certstore_import(dir, a->file, key, thumb, err, sizeof(err)) < 0)
		return cert_fail(1, "import: %s", err);
	if (from_request)
		(void)remove(reqkey); /* it lives on as <thumbprint>.key */
	cert_upper(thumb, up);
	printf("%s\n", up);
	return 0;
}

/* ---- use, renew ---------------------------------------------------------------- */

static int cert_use(const struct config *c, const char *dir, const struct cert_args *a)
{
	char err[1024];
	size_t i;

	if (a->file == NULL || a->connector == NULL)
		return cert_fail(EXIT_USAGE, "use: needs THUMBPRINT --connector NAME");
	for (i = 0; i < c->nrcs; i++)
		if (strcmp(c->rcs[i].name, a->connector) == 0)
			break;
	if (i == c->nrcs)
		return cert_fail(1, "use: no receive-connector \"%s\" in %s", a->connector, c->path);
	if (c->rcs[i].tls == RC_TLS_NONE)
		return cert_fail(1, "use: receive-connector \"%s\" has tls = none", a->connector);
	if (certstore_bind(dir, a->connector, a->file, a->add, err, sizeof(err)) < 0)
		return cert_fail(1, "use: %s", err);
	printf("receive-connector %s: %s certificate %s (transitd takes it within a second)\n",
	       a->connector, a->add ? "also serves (by SNI)" : "now serves", a->file);
	return 0;
}

static int cert_renew(const char *dir, const struct cert_args *a)
{
	char err[1024], thumb[CERTSTORE_THUMB_LEN + 1], up[CERTSTORE_THUMB_LEN + 1];
	struct certstore *st = certstore_open(dir, false, err, sizeof(err));
	const struct cert_entry *e;
	char (*to_renew)[CERTSTORE_THUMB_LEN + 1] = NULL;
	size_t n = 0, i, b;
	int rc = 0;

	if (st == NULL)
		return cert_fail(1, "renew: %s", err);
	if (a->file != NULL) {
		if ((e = certstore_find(st, a->file, err, sizeof(err))) == NULL) {
			certstore_free(st);
			return cert_fail(1, "renew: %s", err);
		}
		to_renew = xcalloc(1, sizeof(*to_renew));
		memcpy(to_renew[n++], e->thumb, sizeof(*to_renew));
	} else {
		/* every self-signed certificate a connector uses */
		to_renew = xcalloc(st->ncerts + 1, sizeof(*to_renew));
		for (i = 0; i < st->ncerts; i++) {
			bool used = false;
			for (b = 0; b < st->nbinds; b++)
				used |= strcmp(st->binds[b].thumb, st->certs[i].thumb) == 0;
			if (used && st->certs[i].self_signed)
				memcpy(to_renew[n++], st->certs[i].thumb, sizeof(*to_renew));
		}
	}
	certstore_free(st);
	if (n == 0) {
		free(to_renew);
		return cert_fail(1, "renew: no self-signed certificate in use (give a THUMBPRINT)");
	}
	for (i = 0; i < n && rc == 0; i++) {
		/* reopen each time: renewing moves bindings */
		if ((st = certstore_open(dir, false, err, sizeof(err))) == NULL ||
		    (e = certstore_find(st, to_renew[i], err, sizeof(err))) == NULL ||
		    certstore_renew(dir, e, (int)a->days, thumb, err, sizeof(err)) < 0) {
			rc = cert_fail(1, "renew: %s", err);
		} else {
			cert_upper(thumb, up);
			printf("%s\n", up);
		}
		certstore_free(st);
	}
	free(to_renew);
	return rc;
}

/* ---- main ------------------------------------------------------------------------- */

int ctl_cert(const char *conf_path, int argc, char **argv)
{
	struct cert_args a;
	struct config *c;
	char dir[CERT_PATH_MAX];
	const char *verb;
	int rc;

	if (argc < 2)
		return cert_fail(EXIT_USAGE, "missing subcommand (list, new, request, import, use, renew)");
	verb = argv[1];
	if ((rc = cert_parse(argc, argv, &a)) != 0)
		return rc;
	if ((c = conf_load(conf_path)) == NULL)
		return cert_fail(1, "cannot load the configuration %s", conf_path);
	if (certstore_dir(c->server.spool, dir, sizeof(dir)) < 0) {
		conf_free(c);
		return cert_fail(1, "spool path too long");
	}
	if (strcmp(verb, "list") == 0)
		rc = cert_list(c, dir, &a);
	else if (strcmp(verb, "new") == 0)
		rc = cert_new(dir, &a);
	else if (strcmp(verb, "request") == 0)
		rc = cert_request(dir, &a);
	else if (strcmp(verb, "import") == 0)
		rc = cert_import(dir, &a);
	else if (strcmp(verb, "use") == 0)
		rc = cert_use(c, dir, &a);
	else if (strcmp(verb, "renew") == 0)
		rc = cert_renew(dir, &a);
	else
		rc = cert_fail(EXIT_USAGE, "unknown subcommand '%s'", verb);
	conf_free(c);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = cert_fail(1, "cannot write to standard output");
	return rc;
}
