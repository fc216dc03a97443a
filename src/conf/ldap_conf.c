/*
 * ldap_conf.c - the "users { ldap { } }" options and their checks (see
 * ldap_conf.h). Filters are templates in the RFC 4515 string form; the
 * value put in place of "%s" is escaped by dir/ldap.c, never here.
 */
#include "conf/ldap_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/values.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define LDAP_DEFAULT_USER_FILTER "(&(objectClass=inetOrgPerson)(|(mail=%s)(mailLocalAddress=%s)))"
#define LDAP_DEFAULT_GROUP_FILTER "(&(objectClass=groupOfNames)(|(mail=%s)(mailLocalAddress=%s)))"
#define LDAP_PASSWORD_MAX 1024

cfg_opt_t conf_ldap_opts[] = {
	CFG_STR("uri", NULL, CFGF_NONE),
	CFG_STR("base", NULL, CFGF_NONE),
	CFG_STR("bind-dn", NULL, CFGF_NONE),
	CFG_STR("bind-password-file", NULL, CFGF_NONE),
	CFG_BOOL("start-tls", cfg_false, CFGF_NONE),
	CFG_STR("tls-ca-file", NULL, CFGF_NONE),
	CFG_STR("user-filter", LDAP_DEFAULT_USER_FILTER, CFGF_NONE),
	CFG_STR("group-filter", LDAP_DEFAULT_GROUP_FILTER, CFGF_NONE),
	CFG_STR("mail-attribute", "mail", CFGF_NONE),
	CFG_STR("alias-attribute", "mailLocalAddress", CFGF_NONE),
	CFG_STR("member-attribute", "member", CFGF_NONE),
	CFG_STR("password-attribute", "userPassword", CFGF_NONE),
	CFG_STR("accept-from-attribute", NULL, CFGF_NONE), /* policy/accept_from.h */
	CFG_STR("password-check", "bind", CFGF_NONE),
	CFG_STR("cache-ttl", "60s", CFGF_NONE),
	CFG_STR("timeout", "5s", CFGF_NONE),
	CFG_INT("cache-size", 10000, CFGF_NONE),
	CFG_END()};

bool conf_ldap_filter_ok(const char *t, char *why, size_t whysz)
{
	int depth = 0;
	bool has_value = false;
	const char *p;

	if (t == NULL || t[0] != '(') {
		str_copy(why, "must start with '(' (RFC 4515)", whysz);
		return false;
	}
	for (p = t; *p; p++) {
		if (depth == 0 && p != t) {
			str_copy(why, "text after the closing ')' (one filter, RFC 4515)", whysz);
			return false;
		}
		if (*p == '(')
			depth++;
		else if (*p == ')') {
			if (--depth < 0)
				break;
		} else if (*p == '%') {
			if (p[1] == 's')
				has_value = true;
			else if (p[1] != '%') {
				str_copy(why, "only %s (the address) and %% may follow '%'", whysz);
				return false;
			}
			p++;
		}
	}
	if (depth != 0) {
		str_copy(why, "unbalanced parentheses", whysz);
		return false;
	}
	if (!has_value) {
		str_copy(why, "needs %s where the address goes", whysz);
		return false;
	}
	return true;
}

static int v_filter(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);
	char why[128];

	if (s && s[0] == '\0' && strcmp(opt->name, "group-filter") == 0)
		return 0; /* no groups */
	if (!conf_ldap_filter_ok(s, why, sizeof(why))) {
		cfg_error(cfg, "%s: \"%s\": %s", opt->name, s ? s : "", why);
		return -1;
	}
	return 0;
}

static int v_uri(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s == NULL || (strncmp(s, "ldap://", 7) != 0 && strncmp(s, "ldaps://", 8) != 0 &&
			  strncmp(s, "ldapi://", 8) != 0)) {
		cfg_error(cfg, "%s: \"%s\" is not an LDAP URI (ldap://host:port, ldaps://, ldapi://)",
			  opt->name, s ? s : "");
		return -1;
	}
	return 0;
}

static int v_password_check(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s == NULL || (strcmp(s, "bind") != 0 && strcmp(s, "compare") != 0)) {
		cfg_error(cfg, "%s: \"%s\" must be \"bind\" or \"compare\"", opt->name, s ? s : "");
		return -1;
	}
	return 0;
}

static int v_seconds(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);
	uint64_t v;

	if (!parse_duration(s, &v) || v == 0 || v > 86400) {
		cfg_error(cfg, "%s: \"%s\" is not a duration from 1s to 1d (like 5s, 2m)", opt->name,
			  s ? s : "");
		return -1;
	}
	return 0;
}

static int v_attr(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (i > 0 && s[i] == '-')))
			break;
	if (s == NULL || i == 0 || s[i] != '\0') {
		cfg_error(cfg, "%s: \"%s\" is not an attribute name (RFC 4512 descr)", opt->name,
			  s ? s : "");
		return -1;
	}
	return 0;
}

static int v_cache_size(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < 1 || v > 10000000) {
		cfg_error(cfg, "%s: %ld is out of range (1 to 10000000)", opt->name, v);
		return -1;
	}
	return 0;
}

/* The section as a whole: uri and base are needed, bind-dn and
 * bind-password-file go together. */
static int v_ldap_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);

	if (sec == NULL)
		return 0;
	if (cfg_getstr(sec, "uri") == NULL) {
		cfg_error(cfg, "ldap: uri is required (like \"ldap://ldap.example.com\")");
		return -1;
	}
	if (cfg_getstr(sec, "base") == NULL || cfg_getstr(sec, "base")[0] == '\0') {
		cfg_error(cfg, "ldap: base is required (like \"ou=people,dc=example,dc=com\")");
		return -1;
	}
	if ((cfg_getstr(sec, "bind-dn") == NULL) != (cfg_getstr(sec, "bind-password-file") == NULL)) {
		cfg_error(cfg, "ldap: bind-dn and bind-password-file go together");
		return -1;
	}
	if (strncmp(cfg_getstr(sec, "uri"), "ldaps://", 8) == 0 &&
	    cfg_getbool(sec, "start-tls") == cfg_true) {
		cfg_error(cfg, "ldap: start-tls on an ldaps:// URI (TLS is already there)");
		return -1;
	}
	return 0;
}

/* users: ldap replaces the passwd-file, so both set is a mistake. */
static int v_users_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	cfg_opt_t *pf = sec ? cfg_getopt(sec, "passwd-file") : NULL;

	if (sec && cfg_size(sec, "ldap") > 0 && pf && (pf->flags & CFGF_MODIFIED)) {
		cfg_error(cfg, "users: passwd-file and ldap are exclusive (the LDAP directory "
			       "replaces the passwd-file; aliases may stay)");
		return -1;
	}
	return 0;
}

void conf_ldap_validators(cfg_t *root)
{
	cfg_set_validate_func(root, "users", v_users_section);
	cfg_set_validate_func(root, "users|ldap", v_ldap_section);
	cfg_set_validate_func(root, "users|ldap|uri", v_uri);
	cfg_set_validate_func(root, "users|ldap|user-filter", v_filter);
	cfg_set_validate_func(root, "users|ldap|group-filter", v_filter);
	cfg_set_validate_func(root, "users|ldap|mail-attribute", v_attr);
	cfg_set_validate_func(root, "users|ldap|alias-attribute", v_attr);
	cfg_set_validate_func(root, "users|ldap|member-attribute", v_attr);
	cfg_set_validate_func(root, "users|ldap|password-attribute", v_attr);
	cfg_set_validate_func(root, "users|ldap|accept-from-attribute", v_attr);
	cfg_set_validate_func(root, "users|ldap|password-check", v_password_check);
	cfg_set_validate_func(root, "users|ldap|cache-ttl", v_seconds);
	cfg_set_validate_func(root, "users|ldap|timeout", v_seconds);
	cfg_set_validate_func(root, "users|ldap|cache-size", v_cache_size);
}

static char *dup_opt(cfg_t *sec, const char *name)
{
	const char *s = cfg_getstr(sec, name);
	return s ? xstrdup(s) : NULL;
}

/* The first line of the file, without its line end. */
static int read_password(const char *path, const char *cpath, char **out)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (f == NULL) {
		fprintf(stderr, "%s: users: ldap: bind-password-file %s: %s\n", cpath, path,
			strerror(errno));
		return -1;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0 || n > LDAP_PASSWORD_MAX) {
		fprintf(stderr, "%s: users: ldap: bind-password-file %s: %s\n", cpath, path,
			n <= 0 ? "empty" : "first line too long");
		if (line)
			explicit_bzero(line, cap);
		free(line);
		return -1;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	*out = line;
	return 0;
}

int conf_ldap_convert(cfg_t *users, const char *path, struct ldap_conf *out)
{
	cfg_t *sec;
	uint64_t v = 0;

	memset(out, 0, sizeof(*out));
	if (cfg_size(users, "ldap") == 0)
		return 0;
	sec = cfg_getsec(users, "ldap");
	out->uri = dup_opt(sec, "uri");
	out->base = dup_opt(sec, "base");
	out->bind_dn = dup_opt(sec, "bind-dn");
	out->start_tls = cfg_getbool(sec, "start-tls") == cfg_true;
	out->tls_ca_file = dup_opt(sec, "tls-ca-file");
	out->user_filter = dup_opt(sec, "user-filter");
	out->group_filter = dup_opt(sec, "group-filter");
	out->mail_attr = dup_opt(sec, "mail-attribute");
	out->alias_attr = dup_opt(sec, "alias-attribute");
	out->member_attr = dup_opt(sec, "member-attribute");
	out->password_attr = dup_opt(sec, "password-attribute");
	out->accept_from_attr = dup_opt(sec, "accept-from-attribute");
	out->password_check = strcmp(cfg_getstr(sec, "password-check"), "compare") == 0
				      ? LDAP_CHECK_COMPARE
				      : LDAP_CHECK_BIND;
	(void)parse_duration(cfg_getstr(sec, "cache-ttl"), &v);
	out->cache_ttl = v;
	(void)parse_duration(cfg_getstr(sec, "timeout"), &v);
	out->timeout = v;
	out->cache_size = (unsigned)cfg_getint(sec, "cache-size");
	if (cfg_getstr(sec, "bind-password-file") &&
	    read_password(cfg_getstr(sec, "bind-password-file"), path, &out->bind_password) != 0)
		return -1;
	return 0;
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void conf_ldap_copy(struct ldap_conf *dst, const struct ldap_conf *src)
{
	*dst = *src; /* the flags and numbers; every string is copied below */
	dst->uri = dup_or_null(src->uri);
	dst->base = dup_or_null(src->base);
	dst->bind_dn = dup_or_null(src->bind_dn);
	dst->bind_password = dup_or_null(src->bind_password);
	dst->tls_ca_file = dup_or_null(src->tls_ca_file);
	dst->user_filter = dup_or_null(src->user_filter);
	dst->group_filter = dup_or_null(src->group_filter);
	dst->mail_attr = dup_or_null(src->mail_attr);
	dst->alias_attr = dup_or_null(src->alias_attr);
	dst->member_attr = dup_or_null(src->member_attr);
	dst->password_attr = dup_or_null(src->password_attr);
	dst->accept_from_attr = dup_or_null(src->accept_from_attr);
}

void conf_ldap_free(struct ldap_conf *lc)
{
	free(lc->uri);
	free(lc->base);
	free(lc->bind_dn);
	if (lc->bind_password) {
		explicit_bzero(lc->bind_password, strlen(lc->bind_password));
		free(lc->bind_password);
	}
	free(lc->tls_ca_file);
	free(lc->user_filter);
	free(lc->group_filter);
	free(lc->mail_attr);
	free(lc->alias_attr);
	free(lc->member_attr);
	free(lc->password_attr);
	free(lc->accept_from_attr);
	memset(lc, 0, sizeof(*lc));
}
