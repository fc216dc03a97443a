/*
 * conf.h - transit.conf(5): the one place every configuration parameter
 * is declared (name, default, bounds), parsed with libConfuse and turned
 * into typed structs. Errors are reported as "file:line: what is wrong".
 *
 * conf_load() never exits: it prints errors to stderr and returns NULL.
 * conf_print() prints the effective configuration, defaults included
 * (transitd -n).
 */
#ifndef TRANSIT_CONF_CONF_H
#define TRANSIT_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "conf/ldap_conf.h"
#include "log/logdir.h"
#include "conf/tls_opts.h"

enum domain_type { DOMAIN_AUTHORITATIVE = 0, DOMAIN_INTERNAL_RELAY = 1 };
enum rc_tls { RC_TLS_NONE = 0, RC_TLS_OFFER, RC_TLS_REQUIRE, RC_TLS_IMPLICIT };
enum rc_perm { PERM_ANONYMOUS = 1 << 0, PERM_AUTHENTICATED = 1 << 1, PERM_RELAY = 1 << 2 };
/* What a receive connector does with a line ending in a bare LF (RFC 5321
 * 2.3.8): refuse it, or take it as CRLF (Postfix 3.9
 * smtpd_forbid_bare_newline = normalize). End of data is a real
 * <CRLF>.<CRLF> in both modes; bare CR and NUL are refused in both. */
enum rc_bare_lf { RC_BARE_LF_REJECT = 0, RC_BARE_LF_NORMALIZE };
/* SASL mechanisms a receive connector offers (RFC 4954; none by default). */
enum rc_auth_mech { RC_AUTH_PLAIN = 1 << 0, RC_AUTH_LOGIN = 1 << 1 };
/* Where AUTH may run without TLS: nowhere, or from a loopback client. */
enum rc_auth_cleartext { RC_AUTH_CLEARTEXT_NEVER = 0, RC_AUTH_CLEARTEXT_LOOPBACK };
/* What MAIL FROM an authenticated login may use: its own address, or any. */
enum rc_sender_binding { RC_SENDER_BINDING_ENVELOPE = 0, RC_SENDER_BINDING_NONE };

struct ip_range {
	int family; /* AF_INET / AF_INET6 */
	unsigned char addr[16];
	unsigned prefix; /* 0..32 or 0..128 */
};

/* A DNS block list (RFC 5782) and the text added to its rejections. */
struct dnsbl_zone {
	char *zone; /* lower-case, no trailing dot */
	char *text; /* "zone=TEXT" in the configuration; NULL: none */
};

struct binding {
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[64]; /* as written: "127.0.0.1:2525", "[::]:25" */
};

struct accepted_domain {
	char *name; /* lower-case */
	enum domain_type type;
};

struct receive_connector {
	char *name;
	struct binding *bindings;
	size_t nbindings;
	struct ip_range *ranges;
	size_t nranges;
	/* load balancers whose connections start with a PROXY header
	 * (net/proxy.h); the client address in it replaces theirs */
	struct ip_range *trusted_proxies;
	size_t ntrusted_proxies;
	/* DNSBL (policy/dnsbl.c): zones asked about each client not in
	 * dnsbl_allow, each answer awaited at most dnsbl_timeout seconds */
	struct dnsbl_zone *dnsbl;
	size_t ndnsbl;
	struct ip_range *dnsbl_allow;
	size_t ndnsbl_allow;
	uint64_t dnsbl_timeout;
	bool require_ptr; /* RCPT needs forward-confirmed reverse DNS (policy/fcrdns.c) */
	char *banner;	/* text after "220 " */
	char *fqdn;	/* name in EHLO reply / Received: by (default server.fqdn) */
	unsigned permissions; /* PERM_* */
	enum rc_tls tls;
	char *tls_cert, *tls_key; /* NULL: server's */
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_connections_per_source;
	unsigned source_prefix_ipv4;	/* one "source" is an IPv4 /n (default 32) */
	unsigned source_prefix_ipv6;	/* ... and an IPv6 /n (default 64) */
	unsigned max_errors;
	unsigned max_line_length;	/* command lines, octets incl. CRLF */
	unsigned max_text_line_length;	/* message lines in DATA */
	enum rc_bare_lf bare_lf;	/* default: rc_default_bare_lf(permissions) */
	uint64_t command_timeout;	/* seconds (RFC 5321 4.5.3.2: 5 min) */
	uint64_t data_timeout;		/* seconds waiting for data blocks */
	uint64_t session_timeout;	/* whole-session deadline, seconds */
	unsigned auth_mechs;		/* RC_AUTH_* offered; 0: no AUTH */
	enum rc_auth_cleartext auth_cleartext;
	enum rc_sender_binding sender_binding;
	/* recipient tarpit (issue 7): each refused recipient's reply waits
	 * this long, seconds (0: off); at max_refused_recipients refusals
	 * the session is closed with 421 4.7.0. Not for AUTH sessions. */
	uint64_t tarpit;
	unsigned max_refused_recipients;
	bool helo_strict; /* helo = "strict": RFC 5321 syntax only (smtp_parse_helo) */
	bool reject_spoofed_local_senders; /* sender_spoofs_local_domain() */
	/* rates (policy/ratelimit.h), a minute, 0: no limit. Anonymous and
	 * relay sessions count per source prefix, authenticated ones per login */
	unsigned messages_per_minute_per_source, messages_per_minute_per_login;
	unsigned recipients_per_minute_per_source, recipients_per_minute_per_login;
	bool sender_binding_header; /* From: of an AUTH session bound too (smtp/from_binding.c) */
	uint64_t ptr_timeout;	    /* require-ptr: seconds the PTR check may take */
	uint64_t tarpit_max_per_session; /* seconds of tarpit a session gets at most */
	bool protocol_log; /* protocol-log = "verbose" (log/protolog.h) */
	struct tls_proto tls_proto; /* tls-protocols, tls-ciphers, tls-ciphersuites */
};

enum sc_tls { SC_TLS_NONE = 0, SC_TLS_OPPORTUNISTIC, SC_TLS_REQUIRE };

struct address_space {
	char *domain;	/* lower-case; "" for "*" */
	bool wildcard;	/* "*.example.com" (subdomains and the domain) or "*" */
	unsigned cost;	/* "domain;cost", default 1 */
};

struct smart_host {
	char *host;	/* name or IP address, no brackets */
	bool no_mx;	/* written as [host]: A/AAAA only, no MX lookup */
	uint16_t port;
};

struct send_connector {
	char *name;
	bool enabled;
	struct address_space *spaces;
	size_t nspaces;
	struct smart_host *hosts; /* empty: routing = dns */
	size_t nhosts;
	uint16_t port;		  /* destination port for DNS routing (25) */
	bool has_source4, has_source6;
	struct sockaddr_in source4;
	struct sockaddr_in6 source6;
	char *fqdn;		  /* EHLO name (default server.fqdn) */
	enum sc_tls tls;
	char *tls_ca_file;	  /* extra trust anchors for verification, or NULL */
	uint64_t max_message_size; /* 0: no limit */
	char **allowed_senders;	  /* patterns like "*@example.test"; none: anyone */
	size_t nallowed;
	char *auth_secret;	  /* file holding "user:password", or NULL */
	unsigned max_connections_per_destination;
	uint64_t connect_timeout; /* seconds */
	uint64_t command_timeout; /* seconds, per reply (RFC 5321 4.5.3.2: 5 min) */
	uint64_t data_timeout;	  /* seconds for the reply to the final dot (10 min) */
	bool protocol_log;	  /* protocol-log = "verbose" (log/protolog.h) */
	struct tls_proto tls_proto; /* tls-protocols, tls-ciphers, tls-ciphersuites */
};

struct config {
	char *path;
	struct {
		char *fqdn;
		char *spool;
		char *user; /* NULL: don't drop privileges */
		char *postmaster;
		char *node; /* queue id tag; default from the FQDN */
		unsigned max_hop_count;
		unsigned max_connections;
		char *tls_cert, *tls_key; /* NULL: self-signed in spool */
	} server;
	char *maildir; /* template, "%d" "%u" */
	char *passwd_file;
	char *aliases_file; /* users { aliases }: NULL when not set */
	struct ldap_conf ldap; /* users { ldap { } }: .uri NULL when not set */
	struct accepted_domain *domains;
	size_t ndomains;
	struct receive_connector *rcs;
	size_t nrcs;
	struct send_connector *scs;
	size_t nscs;
	char **dns_servers; /* "127.0.0.1:5353"; none: the system resolver */
	size_t ndns_servers;
	char *dsn_template; /* file with the human-readable DSN text, or NULL */
	struct {		   /* auth-failures { }: AUTH brute-force control */
		uint64_t delay;	   /* seconds before the first 535 (doubles per failure) */
		uint64_t delay_max; /* cap on that wait, seconds */
		uint64_t window;   /* failures older than this are forgotten, seconds */
		unsigned max_per_source; /* failures from one source prefix in the window */
		unsigned max_per_login;	 /* failures for one login name in the window */
		uint64_t lockout;  /* then AUTH is refused (454 4.7.0) this long, seconds */
		unsigned table_size; /* sources and logins remembered (oldest evicted) */
	} auth_failures;
	struct {
		unsigned max_connections; /* outbound SMTP connections in total */
		uint64_t *retry; /* seconds between attempts; last repeats */
		size_t nretry;
		uint64_t expire;
		uint64_t delay_notice;
		int sync_mode; /* enum queue_sync_mode */
		unsigned delivery_threads;
		unsigned max_batch;
	} queue;
	struct {
		bool enabled;
		uint64_t disk_free_medium, disk_free_high; /* bytes free on the spool volume */
		unsigned memory_high_percent; /* of physical memory; 0: memory_high_bytes */
		uint64_t memory_high_bytes;
		uint64_t queue_medium, queue_high; /* messages */
	} back_pressure; /* policy/backpressure.c */
	char *dovecot_auth;	      /* users { dovecot-auth }: socket path, NULL when not set */
	uint64_t dovecot_auth_timeout; /* seconds for one check (dir/dovecot_auth.c) */
	struct {
		char *path;	/* tracking/, SmtpReceive/, SmtpSend/ below it */
		bool tracking;	/* logs.tracking.enabled */
		struct logdir_limits tracking_limits, protocol_limits;
	} logs; /* log/tracking.c, log/protolog.c */
	struct {
		/* control { http = "127.0.0.1:9425" }: /metrics and /status
		 * (ctl/http.c); http_enabled false when not set */
		bool http_enabled;
		struct binding http;
		bool http_allow_remote; /* http-allow-remote = true: a non-loopback address */
		char *socket; /* control { socket }: the unix socket of ctl/control.c */
	} control;
	void *cfg; /* the libConfuse tree, for conf_print */
};

struct config *conf_load(const char *path);
void conf_print(const struct config *c, FILE *out);
void conf_free(struct config *c);

/* Find the accepted domain for a (lower-case) domain name, or NULL. */
const struct accepted_domain *conf_find_domain(const struct config *c, const char *domain);

/* Find a send connector by name, or NULL. */
const struct send_connector *conf_find_send_connector(const struct config *c, const char *name);

/* The bare-lf mode of a connector that does not set one: normalize when
 * its permissions include relay or authenticated, reject otherwise. */
enum rc_bare_lf rc_default_bare_lf(unsigned permissions);

bool ip_range_contains(const struct ip_range *r, const struct sockaddr *sa);

#endif
