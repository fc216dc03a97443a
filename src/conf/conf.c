/*
 * conf.c - transit.conf(5). Every parameter is declared once in the
 * option tables below (name, default), checked by a validator while the
 * file is parsed (conf/validate.c, so errors carry "file:line:"), and then
 * copied into the typed struct config of conf.h. Nothing else in transit
 * reads libConfuse.
 */
#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/values.h"
#include "conf/ldap_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <confuse.h>

#include "util/buf.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* ---- option tables ------------------------------------------------------ */

static cfg_opt_t server_opts[] = {
	CFG_STR("fqdn", NULL, CFGF_NONE),
	CFG_STR("spool", "/var/spool/transit", CFGF_NONE),
	CFG_STR("user", NULL, CFGF_NONE),
	CFG_STR("postmaster", NULL, CFGF_NONE),
	CFG_STR("node", NULL, CFGF_NONE),
	CFG_INT("max-hop-count", 30, CFGF_NONE),
	CFG_INT("max-connections", 1000, CFGF_NONE),
	CFG_STR("tls-cert", NULL, CFGF_NONE),
	CFG_STR("tls-key", NULL, CFGF_NONE),
	CFG_END()};

static cfg_opt_t domain_opts[] = {
	CFG_STR("type", "authoritative", CFGF_NONE),
	CFG_END()};

static cfg_opt_t mailbox_opts[] = {
	CFG_STR("maildir", "/var/mail/%d/%u", CFGF_NONE),
	CFG_END()};

static cfg_opt_t users_opts[] = {
	CFG_STR("passwd-file", "/etc/transit/users", CFGF_NONE),
	CFG_STR("aliases", "", CFGF_NONE),
	CFG_STR("dovecot-auth", "", CFGF_NONE),
	CFG_STR("dovecot-auth-timeout", "10s", CFGF_NONE),
	CFG_SEC("ldap", conf_ldap_opts, CFGF_NODEFAULT),
	CFG_END()};

static cfg_opt_t rc_opts[] = {
	CFG_STR_LIST("bindings", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("remote-ip-ranges", "{0.0.0.0/0, ::/0}", CFGF_NONE),
	CFG_STR_LIST("trusted-proxies", "{}", CFGF_NONE),
	CFG_STR_LIST("dnsbl", "{}", CFGF_NONE),
	CFG_STR_LIST("dnsbl-allow", "{}", CFGF_NONE),
	CFG_STR("dnsbl-timeout", "5s", CFGF_NONE),
	CFG_BOOL("require-ptr", cfg_false, CFGF_NONE),
	CFG_STR("banner", NULL, CFGF_NONE),
	CFG_STR("fqdn", NULL, CFGF_NONE),
	CFG_STR_LIST("permissions", "{anonymous}", CFGF_NONE),
	CFG_STR("tls", "offer", CFGF_NONE),
	CFG_STR("tls-cert", NULL, CFGF_NONE),
	CFG_STR("tls-key", NULL, CFGF_NONE),
	CFG_STR("max-message-size", "25M", CFGF_NONE),
	CFG_INT("max-recipients", 100, CFGF_NONE),
	CFG_INT("max-connections-per-source", 20, CFGF_NONE),
	CFG_INT("source-prefix-ipv4", 32, CFGF_NONE),
	CFG_INT("source-prefix-ipv6", 64, CFGF_NONE),
	CFG_INT("max-errors", 20, CFGF_NONE),
	CFG_INT("max-line-length", 2048, CFGF_NONE),
	CFG_STR("bare-lf", NULL, CFGF_NONE), /* default: rc_default_bare_lf() */
	CFG_INT("max-text-line-length", 65536, CFGF_NONE),
	CFG_STR("command-timeout", "5m", CFGF_NONE),
	CFG_STR("data-timeout", "10m", CFGF_NONE),
	CFG_STR("session-timeout", "1h", CFGF_NONE),
	CFG_STR_LIST("auth", NULL, CFGF_NONE),
	CFG_STR("auth-cleartext", "never", CFGF_NONE),
	CFG_STR("sender-binding", "envelope", CFGF_NONE),
	CFG_STR("tarpit", "5s", CFGF_NONE),
	CFG_STR("helo", "lenient", CFGF_NONE),
	CFG_BOOL("reject-spoofed-local-senders", cfg_false, CFGF_NONE),
	CFG_INT("max-refused-recipients", 20, CFGF_NONE),
	/* issue 7 rates, From: binding, PTR timeout, tarpit budget (policy/ratelimit.h) */
	CFG_INT("max-messages-per-minute-per-source", 0, CFGF_NONE),
	CFG_INT("max-messages-per-minute-per-login", 0, CFGF_NONE),
	CFG_INT("max-recipients-per-minute-per-source", 0, CFGF_NONE),
	CFG_INT("max-recipients-per-minute-per-login", 0, CFGF_NONE),
	CFG_BOOL("sender-binding-header", cfg_false, CFGF_NONE),
	CFG_STR("ptr-timeout", "10s", CFGF_NONE),
	CFG_STR("tarpit-max-per-session", "60s", CFGF_NONE),
	CFG_STR("protocol-log", "none", CFGF_NONE),
	CFG_STR_LIST("tls-protocols", "{TLSv1.2, TLSv1.3}", CFGF_NONE), /* conf/tls_opts.h */
	CFG_STR("tls-ciphers", NULL, CFGF_NONE),
	CFG_STR("tls-ciphersuites", NULL, CFGF_NONE),
	CFG_END()};

static cfg_opt_t sc_opts[] = {
	CFG_STR_LIST("address-spaces", NULL, CFGF_NODEFAULT),
	CFG_STR("routing", "dns", CFGF_NONE),
	CFG_STR_LIST("smart-hosts", NULL, CFGF_NONE),
	CFG_INT("port", 25, CFGF_NONE),
	CFG_STR_LIST("source-ip", NULL, CFGF_NONE),
	CFG_STR("fqdn", NULL, CFGF_NONE),
	CFG_STR("tls", "opportunistic", CFGF_NONE),
	CFG_STR("tls-ca-file", NULL, CFGF_NONE),
	CFG_STR("max-message-size", "0", CFGF_NONE),
	CFG_STR_LIST("allowed-senders", NULL, CFGF_NONE),
	CFG_STR("auth-secret", NULL, CFGF_NONE),
	CFG_BOOL("enabled", cfg_true, CFGF_NONE),
	CFG_INT("max-connections-per-destination", 20, CFGF_NONE),
	CFG_STR("connect-timeout", "30s", CFGF_NONE),
	CFG_STR("command-timeout", "5m", CFGF_NONE),
	CFG_STR("data-timeout", "10m", CFGF_NONE),
	CFG_STR("protocol-log", "none", CFGF_NONE),
	CFG_STR_LIST("tls-protocols", "{TLSv1.2, TLSv1.3}", CFGF_NONE), /* conf/tls_opts.h */
	CFG_STR("tls-ciphers", NULL, CFGF_NONE),
	CFG_STR("tls-ciphersuites", NULL, CFGF_NONE),
	CFG_END()};

static cfg_opt_t dns_opts[] = {
	CFG_STR_LIST("servers", NULL, CFGF_NONE),
	CFG_END()};

static cfg_opt_t dsn_opts[] = {
	CFG_STR("template", NULL, CFGF_NONE),
	CFG_END()};

static cfg_opt_t queue_opts[] = {
	CFG_STR_LIST("retry", "{1m, 5m, 15m, 1h}", CFGF_NONE),
	CFG_STR("expire", "5d", CFGF_NONE),
	CFG_STR("delay-notice", "4h", CFGF_NONE),
	CFG_STR("sync", "syncfs", CFGF_NONE),
	CFG_INT("delivery-threads", 2, CFGF_NONE),
	CFG_INT("max-connections", 100, CFGF_NONE),
	CFG_INT("max-batch", 64, CFGF_NONE),
	CFG_END()};

/* policy/backpressure.h; defaults in docs/configuration.md */
static cfg_opt_t bp_opts[] = {
	CFG_BOOL("enabled", cfg_true, CFGF_NONE),
	CFG_STR("disk-free-medium", "2G", CFGF_NONE),
	CFG_STR("disk-free-high", "500M", CFGF_NONE),
	CFG_STR("memory-high", "75%", CFGF_NONE),
	CFG_INT("queue-medium", 100000, CFGF_NONE),
	CFG_INT("queue-high", 500000, CFGF_NONE),
	CFG_END()};

static cfg_opt_t auth_failures_opts[] = {
	CFG_STR("delay", "1s", CFGF_NONE),
	CFG_STR("delay-max", "16s", CFGF_NONE),
	CFG_STR("window", "10m", CFGF_NONE),
	CFG_INT("max-per-source", 5, CFGF_NONE),
	CFG_INT("max-per-login", 10, CFGF_NONE),
	CFG_STR("lockout", "15m", CFGF_NONE),
	CFG_INT("table-size", 10000, CFGF_NONE),
	CFG_END()};

/* logs { }: message tracking and protocol logs (log/logdir.h limits) */
static cfg_opt_t logs_tracking_opts[] = {
	CFG_BOOL("enabled", cfg_true, CFGF_NONE),
	CFG_STR("max-file-size", "10M", CFGF_NONE),
	CFG_STR("max-dir-size", "1G", CFGF_NONE),
	CFG_STR("max-age", "30d", CFGF_NONE),
	CFG_END()};

static cfg_opt_t logs_protocol_opts[] = {
	CFG_STR("max-file-size", "10M", CFGF_NONE),
	CFG_STR("max-dir-size", "250M", CFGF_NONE),
	CFG_STR("max-age", "30d", CFGF_NONE),
	CFG_END()};

static cfg_opt_t logs_opts[] = {
	CFG_STR("path", "/var/log/transit", CFGF_NONE),
	CFG_SEC("tracking", logs_tracking_opts, CFGF_NONE),
	CFG_SEC("protocol", logs_protocol_opts, CFGF_NONE),
	CFG_END()};

/* control { }: the control socket transitctl talks to (ctl/control.h), and
 * the unauthenticated status page (ctl/http.c), loopback unless allowed */
static cfg_opt_t control_opts[] = {
	CFG_STR("socket", "/run/transit/control.sock", CFGF_NONE), /* ctl/control.h */
	CFG_STR("http", NULL, CFGF_NONE),
	CFG_BOOL("http-allow-remote", cfg_false, CFGF_NONE),
	CFG_END()};

static cfg_opt_t top_opts[] = {
	CFG_SEC("server", server_opts, CFGF_NONE),
	CFG_SEC("accepted-domain", domain_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("mailboxes", mailbox_opts, CFGF_NONE),
	CFG_SEC("users", users_opts, CFGF_NONE),
	CFG_SEC("receive-connector", rc_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("send-connector", sc_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("queue", queue_opts, CFGF_NONE),
	CFG_SEC("dns", dns_opts, CFGF_NONE),
	CFG_SEC("dsn", dsn_opts, CFGF_NONE),
	CFG_SEC("back-pressure", bp_opts, CFGF_NONE),
	CFG_SEC("auth-failures", auth_failures_opts, CFGF_NONE),
	CFG_SEC("logs", logs_opts, CFGF_NONE),
	CFG_SEC("control", control_opts, CFGF_NONE),
	CFG_END()};

/* ---- conversion into struct config -------------------------------------- */

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

/* Paths in the configuration may be relative to the directory transitd
 * (or transitctl) is started from: they are made absolute at load time,
 * so nothing later depends on the working directory. */
static char *absolute_path(const char *p)
{
	char cwd[4096];
	size_t n;
	char *out;

	if (p == NULL || p[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return dup_or_null(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	n = strlen(cwd) + 1 + strlen(p) + 1;
	out = xmalloc(n);
	snprintf(out, n, "%s/%s", cwd, p);
	return out;
}

static uint64_t get_duration(cfg_t *sec, const char *name)
{
	uint64_t v = 0;
	(void)parse_duration(cfg_getstr(sec, name), &v); /* validated */
	return v;
}

enum rc_bare_lf rc_default_bare_lf(unsigned permissions)
{
	/* Postfix 3.9 normalises for trusted clients by default: the
	 * applications and devices on relay and authenticated connectors
	 * (Python sendmail(bytes), curl --upload-file, printf | nc) send
	 * bare LF; anonymous internet clients get no such leniency. */
	return (permissions & (PERM_RELAY | PERM_AUTHENTICATED)) ? RC_BARE_LF_NORMALIZE
								 : RC_BARE_LF_REJECT;
}

static void convert_rc(cfg_t *sec, const struct config *c, struct receive_connector *rc)
{
	unsigned i;

	memset(rc, 0, sizeof(*rc));
	rc->name = xstrdup(cfg_title(sec));
	rc->nbindings = cfg_size(sec, "bindings");
	rc->bindings = xcalloc(rc->nbindings, sizeof(*rc->bindings));
	for (i = 0; i < rc->nbindings; i++)
		(void)parse_binding(cfg_getnstr(sec, "bindings", i), &rc->bindings[i]);
	rc->nranges = cfg_size(sec, "remote-ip-ranges");
	rc->ranges = xcalloc(rc->nranges, sizeof(*rc->ranges));
	for (i = 0; i < rc->nranges; i++)
		(void)parse_range(cfg_getnstr(sec, "remote-ip-ranges", i), &rc->ranges[i]);
	rc->ntrusted_proxies = cfg_size(sec, "trusted-proxies");
	rc->trusted_proxies = xcalloc(rc->ntrusted_proxies ? rc->ntrusted_proxies : 1,
				      sizeof(*rc->trusted_proxies));
	for (i = 0; i < rc->ntrusted_proxies; i++)
		(void)parse_range(cfg_getnstr(sec, "trusted-proxies", i), &rc->trusted_proxies[i]);
	rc->ndnsbl = cfg_size(sec, "dnsbl");
	rc->dnsbl = xcalloc(rc->ndnsbl ? rc->ndnsbl : 1, sizeof(*rc->dnsbl));
	for (i = 0; i < rc->ndnsbl; i++)
		conf_parse_dnsbl_zone(cfg_getnstr(sec, "dnsbl", i), &rc->dnsbl[i]);
	rc->ndnsbl_allow = cfg_size(sec, "dnsbl-allow");
	rc->dnsbl_allow = xcalloc(rc->ndnsbl_allow ? rc->ndnsbl_allow : 1, sizeof(*rc->dnsbl_allow));
	for (i = 0; i < rc->ndnsbl_allow; i++)
		(void)parse_range(cfg_getnstr(sec, "dnsbl-allow", i), &rc->dnsbl_allow[i]);
	rc->dnsbl_timeout = get_duration(sec, "dnsbl-timeout");
	rc->require_ptr = cfg_getbool(sec, "require-ptr");
	rc->fqdn = xstrdup(cfg_getstr(sec, "fqdn") ? cfg_getstr(sec, "fqdn") : c->server.fqdn);
	if (cfg_getstr(sec, "banner")) {
		rc->banner = xstrdup(cfg_getstr(sec, "banner"));
	} else {
		size_t n = strlen(rc->fqdn) + sizeof(" ESMTP");
		rc->banner = xmalloc(n);
		snprintf(rc->banner, n, "%s ESMTP", rc->fqdn);
	}
	for (i = 0; i < cfg_size(sec, "permissions"); i++) {
		const char *p = cfg_getnstr(sec, "permissions", i);
		rc->permissions |= strcmp(p, "anonymous") == 0	   ? PERM_ANONYMOUS
				   : strcmp(p, "authenticated") == 0 ? PERM_AUTHENTICATED
								     : PERM_RELAY;
	}
	{
		const char *t = cfg_getstr(sec, "tls");
		rc->tls = strcmp(t, "none") == 0      ? RC_TLS_NONE
			  : strcmp(t, "offer") == 0   ? RC_TLS_OFFER
			  : strcmp(t, "require") == 0 ? RC_TLS_REQUIRE
						      : RC_TLS_IMPLICIT;
	}
	rc->tls_cert = absolute_path(cfg_getstr(sec, "tls-cert"));
	rc->tls_key = absolute_path(cfg_getstr(sec, "tls-key"));
	(void)parse_size(cfg_getstr(sec, "max-message-size"), &rc->max_message_size);
	rc->max_recipients = (unsigned)cfg_getint(sec, "max-recipients");
	rc->max_connections_per_source = (unsigned)cfg_getint(sec, "max-connections-per-source");
	rc->source_prefix_ipv4 = (unsigned)cfg_getint(sec, "source-prefix-ipv4");
	rc->source_prefix_ipv6 = (unsigned)cfg_getint(sec, "source-prefix-ipv6");
	rc->max_errors = (unsigned)cfg_getint(sec, "max-errors");
	rc->max_line_length = (unsigned)cfg_getint(sec, "max-line-length");
	rc->max_text_line_length = (unsigned)cfg_getint(sec, "max-text-line-length");
	if (cfg_getstr(sec, "bare-lf") == NULL) /* show the effective value in transitd -n */
		cfg_setstr(sec, "bare-lf",
			   rc_default_bare_lf(rc->permissions) == RC_BARE_LF_NORMALIZE ? "normalize"
											: "reject");
	rc->bare_lf = strcmp(cfg_getstr(sec, "bare-lf"), "normalize") == 0 ? RC_BARE_LF_NORMALIZE
									 : RC_BARE_LF_REJECT;
	rc->command_timeout = get_duration(sec, "command-timeout");
	rc->data_timeout = get_duration(sec, "data-timeout");
	rc->session_timeout = get_duration(sec, "session-timeout");
	for (i = 0; i < cfg_size(sec, "auth"); i++)
		rc->auth_mechs |= strcmp(cfg_getnstr(sec, "auth", i), "plain") == 0 ? RC_AUTH_PLAIN
										    : RC_AUTH_LOGIN;
	rc->auth_cleartext = strcmp(cfg_getstr(sec, "auth-cleartext"), "loopback") == 0
				     ? RC_AUTH_CLEARTEXT_LOOPBACK
				     : RC_AUTH_CLEARTEXT_NEVER;
	rc->sender_binding = strcmp(cfg_getstr(sec, "sender-binding"), "none") == 0
				     ? RC_SENDER_BINDING_NONE
				     : RC_SENDER_BINDING_ENVELOPE;
	(void)parse_duration(cfg_getstr(sec, "tarpit"), &rc->tarpit);
	rc->max_refused_recipients = (unsigned)cfg_getint(sec, "max-refused-recipients");
	rc->helo_strict = strcmp(cfg_getstr(sec, "helo"), "strict") == 0;
	rc->reject_spoofed_local_senders = cfg_getbool(sec, "reject-spoofed-local-senders") == cfg_true;
	rc->messages_per_minute_per_source =
		(unsigned)cfg_getint(sec, "max-messages-per-minute-per-source");
	rc->messages_per_minute_per_login =
		(unsigned)cfg_getint(sec, "max-messages-per-minute-per-login");
	rc->recipients_per_minute_per_source =
		(unsigned)cfg_getint(sec, "max-recipients-per-minute-per-source");
	rc->recipients_per_minute_per_login =
		(unsigned)cfg_getint(sec, "max-recipients-per-minute-per-login");
	rc->sender_binding_header = cfg_getbool(sec, "sender-binding-header") == cfg_true;
	rc->ptr_timeout = get_duration(sec, "ptr-timeout");
	rc->tarpit_max_per_session = get_duration(sec, "tarpit-max-per-session");
	rc->protocol_log = strcmp(cfg_getstr(sec, "protocol-log"), "verbose") == 0;
	tls_opts_from_section(sec, &rc->tls_proto);
}

static void convert_sc(cfg_t *sec, const struct config *c, struct send_connector *sc)
{
	unsigned i;

	memset(sc, 0, sizeof(*sc));
	sc->name = xstrdup(cfg_title(sec));
	sc->enabled = cfg_getbool(sec, "enabled") == cfg_true;
	sc->nspaces = cfg_size(sec, "address-spaces");
	sc->spaces = xcalloc(sc->nspaces, sizeof(*sc->spaces));
	for (i = 0; i < sc->nspaces; i++)
		(void)parse_space(cfg_getnstr(sec, "address-spaces", i), &sc->spaces[i]);
	sc->nhosts = cfg_size(sec, "smart-hosts");
	sc->hosts = xcalloc(sc->nhosts, sizeof(*sc->hosts));
	for (i = 0; i < sc->nhosts; i++)
		(void)parse_smart_host(cfg_getnstr(sec, "smart-hosts", i), &sc->hosts[i]);
	sc->port = (uint16_t)cfg_getint(sec, "port");
	for (i = 0; i < cfg_size(sec, "source-ip"); i++) {
		const char *ip = cfg_getnstr(sec, "source-ip", i);
		if (inet_pton(AF_INET, ip, &sc->source4.sin_addr) == 1) {
			sc->source4.sin_family = AF_INET;
			sc->has_source4 = true;
		} else if (inet_pton(AF_INET6, ip, &sc->source6.sin6_addr) == 1) {
			sc->source6.sin6_family = AF_INET6;
			sc->has_source6 = true;
		}
	}
	sc->fqdn = xstrdup(cfg_getstr(sec, "fqdn") ? cfg_getstr(sec, "fqdn") : c->server.fqdn);
	{
		const char *t = cfg_getstr(sec, "tls");
		sc->tls = strcmp(t, "none") == 0	    ? SC_TLS_NONE
			  : strcmp(t, "require") == 0 ? SC_TLS_REQUIRE
						      : SC_TLS_OPPORTUNISTIC;
	}
	sc->tls_ca_file = absolute_path(cfg_getstr(sec, "tls-ca-file"));
	(void)parse_size(cfg_getstr(sec, "max-message-size"), &sc->max_message_size);
	sc->nallowed = cfg_size(sec, "allowed-senders");
	sc->allowed_senders = xcalloc(sc->nallowed, sizeof(char *));
	for (i = 0; i < sc->nallowed; i++)
		sc->allowed_senders[i] = xstrdup(cfg_getnstr(sec, "allowed-senders", i));
	sc->auth_secret = absolute_path(cfg_getstr(sec, "auth-secret"));
	sc->max_connections_per_destination =
		(unsigned)cfg_getint(sec, "max-connections-per-destination");
	sc->connect_timeout = get_duration(sec, "connect-timeout");
	sc->command_timeout = get_duration(sec, "command-timeout");
	sc->data_timeout = get_duration(sec, "data-timeout");
	sc->protocol_log = strcmp(cfg_getstr(sec, "protocol-log"), "verbose") == 0;
	tls_opts_from_section(sec, &sc->tls_proto);
}

static void free_sc(struct send_connector *sc)
{
	size_t i;

	for (i = 0; i < sc->nspaces; i++)
		free(sc->spaces[i].domain);
	free(sc->spaces);
	for (i = 0; i < sc->nhosts; i++)
		free(sc->hosts[i].host);
	free(sc->hosts);
	for (i = 0; i < sc->nallowed; i++)
		free(sc->allowed_senders[i]);
	free(sc->allowed_senders);
	free(sc->name);
	free(sc->fqdn);
	free(sc->tls_ca_file);
	free(sc->auth_secret);
	tls_proto_free(&sc->tls_proto);
}

/* The node name: the whole FQDN, lower-cased. Queue ids carry a hash of
 * it (queue/qfile.c), so nodes whose names differ anywhere get different
 * ids; a prefix of the name once made mx1.a.example and mx1.b.example
 * collide. */
static char *default_node(const char *fqdn)
{
	char *n = xstrdup(fqdn);

	for (char *p = n; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return n;
}

static void convert_log_limits(cfg_t *sec, struct logdir_limits *l)
{
	(void)parse_size(cfg_getstr(sec, "max-file-size"), &l->max_file_size);
	(void)parse_size(cfg_getstr(sec, "max-dir-size"), &l->max_dir_size);
	l->max_age = get_duration(sec, "max-age");
}

static void convert_logs(cfg_t *sec, struct config *c)
{
	c->logs.path = absolute_path(cfg_getstr(sec, "path"));
	c->logs.tracking = cfg_getbool(cfg_getsec(sec, "tracking"), "enabled") == cfg_true;
	convert_log_limits(cfg_getsec(sec, "tracking"), &c->logs.tracking_limits);
	convert_log_limits(cfg_getsec(sec, "protocol"), &c->logs.protocol_limits);
}

static int convert(cfg_t *cfg, struct config *c)
{
	cfg_t *srv = cfg_getsec(cfg, "server");
	cfg_t *q = cfg_getsec(cfg, "queue");
	unsigned i;

	if (cfg_getstr(srv, "fqdn")) {
		c->server.fqdn = xstrdup(cfg_getstr(srv, "fqdn"));
	} else {
		char host[256];
		if (gethostname(host, sizeof(host)) != 0 || !valid_hostname(host))
			str_copy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		c->server.fqdn = xstrdup(host);
	}
	str_lower(c->server.fqdn);
	c->server.spool = absolute_path(cfg_getstr(srv, "spool"));
	c->server.user = dup_or_null(cfg_getstr(srv, "user"));
	c->server.node = cfg_getstr(srv, "node") ? xstrdup(cfg_getstr(srv, "node"))
						 : default_node(c->server.fqdn);
	c->server.max_hop_count = (unsigned)cfg_getint(srv, "max-hop-count");
	c->server.max_connections = (unsigned)cfg_getint(srv, "max-connections");
	c->server.tls_cert = absolute_path(cfg_getstr(srv, "tls-cert"));
	c->server.tls_key = absolute_path(cfg_getstr(srv, "tls-key"));
	if ((c->server.tls_cert == NULL) != (c->server.tls_key == NULL)) {
		fprintf(stderr, "%s: server: tls-cert and tls-key go together\n", c->path);
		return -1;
	}

	c->ndomains = cfg_size(cfg, "accepted-domain");
	c->domains = xcalloc(c->ndomains, sizeof(*c->domains));
	for (i = 0; i < c->ndomains; i++) {
		cfg_t *d = cfg_getnsec(cfg, "accepted-domain", i);
		c->domains[i].name = xstrdup(cfg_title(d));
		str_lower(c->domains[i].name);
		if (!valid_hostname(c->domains[i].name)) {
			fprintf(stderr, "%s:%d: accepted-domain \"%s\" is not a domain name\n", c->path,
				d->line, cfg_title(d));
			return -1;
		}
		c->domains[i].type = strcmp(cfg_getstr(d, "type"), "authoritative") == 0
					     ? DOMAIN_AUTHORITATIVE
					     : DOMAIN_INTERNAL_RELAY;
	}
	if (cfg_getstr(srv, "postmaster")) {
		c->server.postmaster = xstrdup(cfg_getstr(srv, "postmaster"));
	} else {
		const char *dom = c->ndomains ? c->domains[0].name : c->server.fqdn;
		size_t n = strlen(dom) + sizeof("postmaster@");
		c->server.postmaster = xmalloc(n);
		snprintf(c->server.postmaster, n, "postmaster@%s", dom);
	}
	if (strchr(c->server.postmaster, '@') == NULL) {
		fprintf(stderr, "%s: server: postmaster \"%s\" must be user@domain\n", c->path,
			c->server.postmaster);
		return -1;
	}
	c->maildir = absolute_path(cfg_getstr(cfg_getsec(cfg, "mailboxes"), "maildir"));
	c->passwd_file = absolute_path(cfg_getstr(cfg_getsec(cfg, "users"), "passwd-file"));
	{
		const char *al = cfg_getstr(cfg_getsec(cfg, "users"), "aliases");
		c->aliases_file = al && *al ? absolute_path(al) : NULL;
	}
	{
		cfg_t *u = cfg_getsec(cfg, "users");
		const char *dv = cfg_getstr(u, "dovecot-auth");
		c->dovecot_auth = dv && *dv ? xstrdup(dv) : NULL;
		c->dovecot_auth_timeout = get_duration(u, "dovecot-auth-timeout");
	}
	if (conf_ldap_convert(cfg_getsec(cfg, "users"), c->path, &c->ldap) != 0)
		return -1;

	c->nrcs = cfg_size(cfg, "receive-connector");
	c->rcs = xcalloc(c->nrcs, sizeof(*c->rcs));
	for (i = 0; i < c->nrcs; i++) {
		cfg_t *sec = cfg_getnsec(cfg, "receive-connector", i);
		convert_rc(sec, c, &c->rcs[i]);
		if ((c->rcs[i].tls_cert == NULL) != (c->rcs[i].tls_key == NULL)) {
			fprintf(stderr, "%s:%d: receive-connector \"%s\": tls-cert and tls-key go together\n",
				c->path, sec->line, c->rcs[i].name);
			return -1;
		}
	}
	if (c->nrcs == 0) {
		fprintf(stderr, "%s: no receive-connector: transit would not listen anywhere\n",
			c->path);
		return -1;
	}

	c->nscs = cfg_size(cfg, "send-connector");
	c->scs = xcalloc(c->nscs, sizeof(*c->scs));
	for (i = 0; i < c->nscs; i++)
		convert_sc(cfg_getnsec(cfg, "send-connector", i), c, &c->scs[i]);
	{
		cfg_t *dns = cfg_getsec(cfg, "dns");
		c->ndns_servers = cfg_size(dns, "servers");
		c->dns_servers = xcalloc(c->ndns_servers, sizeof(char *));
		for (i = 0; i < c->ndns_servers; i++)
			c->dns_servers[i] = xstrdup(cfg_getnstr(dns, "servers", i));
	}
	c->dsn_template = absolute_path(cfg_getstr(cfg_getsec(cfg, "dsn"), "template"));
	{
		cfg_t *af = cfg_getsec(cfg, "auth-failures");
		c->auth_failures.delay = get_duration(af, "delay");
		c->auth_failures.delay_max = get_duration(af, "delay-max");
		c->auth_failures.window = get_duration(af, "window");
		c->auth_failures.max_per_source = (unsigned)cfg_getint(af, "max-per-source");
		c->auth_failures.max_per_login = (unsigned)cfg_getint(af, "max-per-login");
		c->auth_failures.lockout = get_duration(af, "lockout");
		c->auth_failures.table_size = (unsigned)cfg_getint(af, "table-size");
	}
	c->queue.max_connections = (unsigned)cfg_getint(q, "max-connections");
	c->queue.nretry = cfg_size(q, "retry");
	c->queue.retry = xcalloc(c->queue.nretry, sizeof(*c->queue.retry));
	for (i = 0; i < c->queue.nretry; i++)
		(void)parse_duration(cfg_getnstr(q, "retry", i), &c->queue.retry[i]);
	c->queue.expire = get_duration(q, "expire");
	c->queue.delay_notice = get_duration(q, "delay-notice");
	c->queue.sync_mode = strcmp(cfg_getstr(q, "sync"), "syncfs") == 0 ? 1 : 0;
	c->queue.delivery_threads = (unsigned)cfg_getint(q, "delivery-threads");
	c->queue.max_batch = (unsigned)cfg_getint(q, "max-batch");
	{
		cfg_t *bp = cfg_getsec(cfg, "back-pressure");
		c->back_pressure.enabled = cfg_getbool(bp, "enabled") == cfg_true;
		(void)parse_size(cfg_getstr(bp, "disk-free-medium"), &c->back_pressure.disk_free_medium);
		(void)parse_size(cfg_getstr(bp, "disk-free-high"), &c->back_pressure.disk_free_high);
		(void)parse_memory_limit(cfg_getstr(bp, "memory-high"),
					 &c->back_pressure.memory_high_percent,
					 &c->back_pressure.memory_high_bytes);
		c->back_pressure.queue_medium = (uint64_t)cfg_getint(bp, "queue-medium");
		c->back_pressure.queue_high = (uint64_t)cfg_getint(bp, "queue-high");
	}
	convert_logs(cfg_getsec(cfg, "logs"), c);
	{
		cfg_t *ctl = cfg_getsec(cfg, "control");
		const char *http = cfg_getstr(ctl, "http");
		c->control.http_enabled = http && *http && parse_binding(http, &c->control.http);
		c->control.http_allow_remote = cfg_getbool(ctl, "http-allow-remote") == cfg_true;
		c->control.socket = absolute_path(cfg_getstr(ctl, "socket"));
	}
	return 0;
}

/* The whole file, NUL-terminated, at most 4 MiB. NULL + errno. */
static char *read_config_text(const char *path)
{
	FILE *f = fopen(path, "r");
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(&b, chunk, n);
		if (b.len > 4u << 20) {
			fclose(f);
			buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
	}
	if (ferror(f)) {
		fclose(f);
		buf_free(&b);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	return buf_steal(&b);
}

/*
 * libConfuse 3.3 counts lines wrongly after comments, so its "file:line"
 * would point below the real error. Comments are therefore replaced by
 * spaces here (newlines kept) before libConfuse sees the text: '#' and
 * '//' to the end of the line, and '/' '*' ... '*' '/', outside quoted strings.
 */
static void blank_comments(char *s)
{
	char quote = 0;

	for (; *s; s++) {
		if (quote) {
			if (*s == '\\' && s[1] != '\0' && s[1] != '\n')
				s++;
			else if (*s == quote)
				quote = 0;
			continue;
		}
		if (*s == '"' || *s == '\'') {
			quote = *s;
		} else if (*s == '#' || (s[0] == '/' && s[1] == '/')) {
			for (; *s && *s != '\n'; s++)
				*s = ' ';
			if (*s == '\0')
				return;
		} else if (s[0] == '/' && s[1] == '*') {
			*s++ = ' ';
			*s = ' ';
			for (s++; *s && !(s[0] == '*' && s[1] == '/'); s++)
				if (*s != '\n')
					*s = ' ';
			if (*s == '\0')
				return;
			*s++ = ' ';
			*s = ' ';
		}
	}
}

struct config *conf_load(const char *path)
{
	struct config *c = xcalloc(1, sizeof(*c));
	cfg_t *cfg = cfg_init(top_opts, CFGF_NONE);
	char *text;
	int r;

	c->path = xstrdup(path);
	c->cfg = cfg;
	conf_set_validators(cfg);
	text = read_config_text(path);
	if (text == NULL) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		conf_free(c);
		return NULL;
	}
	blank_comments(text);
	conf_parsing_begin(cfg, path);
	r = cfg_parse_buf(cfg, text);
	conf_parsing_end();
	free(text);
	if (r != CFG_SUCCESS || convert(cfg, c) != 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

void conf_print(const struct config *c, FILE *out)
{
	fprintf(out, "# effective configuration of %s (defaults included)\n", c->path);
	fprintf(out, "# server.fqdn resolves to \"%s\", server.node to \"%s\", "
		     "server.postmaster to \"%s\"\n",
		c->server.fqdn, c->server.node, c->server.postmaster);
	cfg_print((cfg_t *)c->cfg, out);
}

const struct accepted_domain *conf_find_domain(const struct config *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->ndomains; i++)
		if (str_casecmp(c->domains[i].name, domain) == 0)
			return &c->domains[i];
	return NULL;
}

const struct send_connector *conf_find_send_connector(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nscs; i++)
		if (strcmp(c->scs[i].name, name) == 0)
			return &c->scs[i];
	return NULL;
}

void conf_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nrcs; i++) {
		struct receive_connector *rc = &c->rcs[i];
		free(rc->name);
		free(rc->bindings);
		free(rc->ranges);
		free(rc->trusted_proxies);
		for (size_t z = 0; z < rc->ndnsbl; z++) {
			free(rc->dnsbl[z].zone);
			free(rc->dnsbl[z].text);
		}
		free(rc->dnsbl);
		free(rc->dnsbl_allow);
		free(rc->banner);
		free(rc->fqdn);
		free(rc->tls_cert);
		free(rc->tls_key);
		tls_proto_free(&rc->tls_proto);
	}
	free(c->rcs);
	for (i = 0; i < c->nscs; i++)
		free_sc(&c->scs[i]);
	free(c->scs);
	for (i = 0; i < c->ndns_servers; i++)
		free(c->dns_servers[i]);
	free(c->dns_servers);
	free(c->dsn_template);
	for (i = 0; i < c->ndomains; i++)
		free(c->domains[i].name);
	free(c->domains);
	free(c->server.fqdn);
	free(c->server.spool);
	free(c->server.user);
	free(c->server.postmaster);
	free(c->server.node);
	free(c->server.tls_cert);
	free(c->server.tls_key);
	free(c->maildir);
	free(c->passwd_file);
	free(c->aliases_file);
	free(c->dovecot_auth);
	conf_ldap_free(&c->ldap);
	free(c->queue.retry);
	free(c->logs.path);
	free(c->control.socket);
	if (c->cfg)
		cfg_free((cfg_t *)c->cfg);
	free(c->path);
	free(c);
}
