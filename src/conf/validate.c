/*
 * validate.c - the checks transit.conf(5) values get while the file is
 * parsed (libConfuse validate callbacks: the lexer's line is current, so
 * every error is "file:line: ..."): syntaxes, ranges, choices, and the
 * whole-section checks (a relay connector that would make an open relay,
 * a send connector's consistency, back-pressure thresholds). conf.c
 * declares the options and converts the parsed file; this file only
 * refuses.
 */
#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/values.h"
#include "conf/ldap_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <confuse.h>

#include "util/str.h"
#include "util/xmalloc.h"

static int v_hostname(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);
	if (v && !valid_hostname(v)) {
		cfg_error(cfg, "%s: \"%s\" is not a host name", opt->name, v);
		return -1;
	}
	return 0;
}

static int v_size(cfg_t *cfg, cfg_opt_t *opt)
{
	uint64_t v;
	const char *s = cfg_opt_getnstr(opt, 0);
	if (!parse_size(s, &v) || v == 0) {
		cfg_error(cfg, "%s: \"%s\" is not a size (like 25M, 100K, 1G)", opt->name, s);
		return -1;
	}
	return 0;
}

static int v_duration_list(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	uint64_t v;

	if (cfg_opt_size(opt) == 0) {
		cfg_error(cfg, "%s: needs at least one duration", opt->name);
		return -1;
	}
	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_duration(s, &v) || v == 0) {
			cfg_error(cfg, "%s: \"%s\" is not a duration (like 30s, 5m, 4h, 2d)",
				  opt->name, s);
			return -1;
		}
	}
	return 0;
}

static int v_duration_or_zero(cfg_t *cfg, cfg_opt_t *opt)
{
	uint64_t v;
	const char *s = cfg_opt_getnstr(opt, 0);
	if (!parse_duration(s, &v)) {
		cfg_error(cfg, "%s: \"%s\" is not a duration (like 30s, 5m, 4h, 2d; 0 = off)",
			  opt->name, s);
		return -1;
	}
	return 0;
}

/* users { dovecot-auth }: empty (off) or an absolute path that fits a
 * Unix socket address (sun_path: 108 bytes with its NUL). Dovecot need not
 * be running yet: an unreachable socket is a temporary AUTH failure. */
static int v_dovecot_socket(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s == NULL || *s == '\0')
		return 0;
	if (s[0] != '/' || strlen(s) >= 108) {
		cfg_error(cfg, "%s: \"%s\" must be the absolute path of Dovecot's auth-client "
			  "socket, shorter than 108 bytes", opt->name, s);
		return -1;
	}
	return 0;
}

/* A duration between 0 (or 1 s when !zero_ok) and max seconds. */
static int v_duration_upto(cfg_t *cfg, cfg_opt_t *opt, bool zero_ok, uint64_t max)
{
	uint64_t v;
	const char *s = cfg_opt_getnstr(opt, 0);
	if (!parse_duration(s, &v) || (v == 0 && !zero_ok) || v > max) {
		cfg_error(cfg, "%s: \"%s\" is not a duration from %s to %" PRIu64 "s", opt->name, s,
			  zero_ok ? "0 (off)" : "1s", max);
		return -1;
	}
	return 0;
}

/* tarpit: a refused recipient's reply waits at most a minute (each wait
 * holds a connection slot of ours too). */
static int v_tarpit(cfg_t *cfg, cfg_opt_t *opt) { return v_duration_upto(cfg, opt, true, 60); }

static int v_tarpit_total(cfg_t *cfg, cfg_opt_t *opt)
{
	return v_duration_upto(cfg, opt, false, 3600);
}

static int v_ptr_timeout(cfg_t *cfg, cfg_opt_t *opt)
{
	return v_duration_upto(cfg, opt, false, 60);
}

/* users { dovecot-auth-timeout }: 1 s to 5 min (a check holds an AUTH
 * worker thread that long at most). */
static int v_dovecot_timeout(cfg_t *cfg, cfg_opt_t *opt)
{
	return v_duration_upto(cfg, opt, false, 300);
}

/* A rate a minute: 0 (no limit) .. a million. */
static int v_rate(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);
	if (v < 0 || v > 1000000) {
		cfg_error(cfg, "%s: %ld is out of range (0 = no limit .. 1000000)", opt->name, v);
		return -1;
	}
	return 0;
}

static int v_positive(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);
	if (v < 1 || v > 100000000) {
		cfg_error(cfg, "%s: %ld is out of range (1..100000000)", opt->name, v);
		return -1;
	}
	return 0;
}

/* What one "source" is for max-connections-per-source: a prefix length. */
static int v_prefix(cfg_t *cfg, cfg_opt_t *opt, long max)
{
	long v = cfg_opt_getnint(opt, 0);
	if (v < 1 || v > max) {
		cfg_error(cfg, "%s: %ld is out of range (1..%ld)", opt->name, v, max);
		return -1;
	}
	return 0;
}

static int v_prefix4(cfg_t *cfg, cfg_opt_t *opt) { return v_prefix(cfg, opt, 32); }

static int v_prefix6(cfg_t *cfg, cfg_opt_t *opt) { return v_prefix(cfg, opt, 128); }

static int v_line_length(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);
	if (v < 512 || v > 1048576) {
		cfg_error(cfg, "%s: %ld is out of range (512..1048576; RFC 5321 4.5.3.1 needs 512)",
			  opt->name, v);
		return -1;
	}
	return 0;
}

static int v_one_of(cfg_t *cfg, cfg_opt_t *opt, const char *const *choices)
{
	unsigned i, j;
	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		for (j = 0; choices[j]; j++)
			if (strcmp(s, choices[j]) == 0)
				break;
		if (choices[j] == NULL) {
			char list[256] = "";
			for (j = 0; choices[j]; j++) {
				strncat(list, j ? " | " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, choices[j], sizeof(list) - strlen(list) - 1);
			}
			cfg_error(cfg, "%s: \"%s\" is not one of %s", opt->name, s, list);
			return -1;
		}
	}
	return 0;
}

static int v_tls(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"none", "offer", "require", "implicit", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_auth_mechs(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"plain", "login", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_auth_cleartext(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"never", "loopback", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_sender_binding(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"envelope", "none", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_helo(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"lenient", "strict", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_bare_lf(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"reject", "normalize", NULL};
	return v_one_of(cfg, opt, c);
}

/* Where the receive connector being parsed set permissions and
 * remote-ip-ranges, so that conf_check_relay_ranges() can point at the
 * line to change (libConfuse keeps no line per option). */
static struct {
	const cfg_t *sec;
	int perm_line, ranges_line;
} conf_rc_lines;

static int conf_lexer_line(const cfg_t *cfg);

static void conf_note_line(const cfg_t *sec, bool perm)
{
	if (conf_rc_lines.sec != sec) {
		conf_rc_lines.sec = sec;
		conf_rc_lines.perm_line = conf_rc_lines.ranges_line = 0;
	}
	*(perm ? &conf_rc_lines.perm_line : &conf_rc_lines.ranges_line) = conf_lexer_line(sec);
}

static int v_perms(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"anonymous", "authenticated", "relay", NULL};
	conf_note_line(cfg, true);
	return v_one_of(cfg, opt, c);
}

static int v_protocol_log(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const v[] = {"none", "verbose", NULL};
	return v_one_of(cfg, opt, v);
}

static int v_domain_type(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"authoritative", "internal-relay", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_sync(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"fsync", "syncfs", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_bindings(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct binding b;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_binding(s, &b)) {
			cfg_error(cfg, "bindings: \"%s\" is not ADDRESS:PORT (like 0.0.0.0:25 or [::]:25)", s);
			return -1;
		}
	}
	return 0;
}

static int v_ranges(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct ip_range r;

	conf_note_line(cfg, false);
	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_range(s, &r)) {
			cfg_error(cfg, "remote-ip-ranges: \"%s\" is not ADDRESS[/PREFIX]", s);
			return -1;
		}
	}
	return 0;
}

/* dnsbl: "ZONE" or "ZONE=TEXT", TEXT added to the rejection (printable
 * ASCII, at most 200 octets, since it goes into an SMTP reply). */
static bool dnsbl_zone_ok(const char *s)
{
	const char *eq = strchr(s, '=');
	char zone[256];
	size_t n = eq ? (size_t)(eq - s) : strlen(s);

	if (n == 0 || n >= sizeof(zone))
		return false;
	memcpy(zone, s, n);
	zone[n] = '\0';
	if (!valid_hostname(zone))
		return false;
	if (eq) {
		const unsigned char *t = (const unsigned char *)eq + 1;
		if (strlen(eq + 1) > 200)
			return false;
		for (; *t; t++)
			if (*t < 0x20 || *t > 0x7e)
				return false;
	}
	return true;
}

static int v_dnsbl_zones(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!dnsbl_zone_ok(s)) {
			cfg_error(cfg, "dnsbl: \"%s\" is not ZONE or ZONE=TEXT (a domain name; "
				  "TEXT printable ASCII, at most 200 octets)", s);
			return -1;
		}
	}
	return 0;
}

void conf_parse_dnsbl_zone(const char *s, struct dnsbl_zone *z)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s), i;

	z->zone = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		z->zone[i] = (char)tolower((unsigned char)s[i]);
	while (n > 0 && z->zone[n - 1] == '.')
		n--;
	z->zone[n] = '\0';
	z->text = eq && eq[1] ? xstrdup(eq + 1) : NULL;
}

/* trusted-proxies: ranges as remote-ip-ranges, but never a /0 - a
 * "proxy" anywhere on the internet could claim any client address. */
static int v_trusted_proxies(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct ip_range r;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_range(s, &r)) {
			cfg_error(cfg, "trusted-proxies: \"%s\" is not ADDRESS[/PREFIX]", s);
			return -1;
		}
		if (r.prefix == 0) {
			cfg_error(cfg, "trusted-proxies: \"%s\" would let any host on the internet "
				  "claim any client address; list the load balancers' addresses", s);
			return -1;
		}
	}
	return 0;
}

static int v_maildir(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);
	const char *p;

	for (p = s; (p = strchr(p, '%')) != NULL; p += 2) {
		if (p[1] != 'd' && p[1] != 'u' && p[1] != '%') {
			cfg_error(cfg, "maildir: unknown \"%%%c\" in \"%s\" (use %%d, %%u, %%%%)",
				  p[1] ? p[1] : ' ', s);
			return -1;
		}
	}
	if (strstr(s, "%u") == NULL) {
		cfg_error(cfg, "maildir: \"%s\" must contain %%u (the mailbox)", s);
		return -1;
	}
	return 0;
}

static int v_spaces(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct address_space a;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_space(s, &a)) {
			cfg_error(cfg, "address-spaces: \"%s\" is not DOMAIN, *.DOMAIN or * "
				       "(optionally ;COST with COST 1..1000)", s);
			return -1;
		}
		free(a.domain);
	}
	return 0;
}

static int v_smart_hosts(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct smart_host h;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (!parse_smart_host(s, &h)) {
			cfg_error(cfg, "smart-hosts: \"%s\" is not HOST, HOST:PORT, [HOST] or [HOST]:PORT", s);
			return -1;
		}
		free(h.host);
	}
	return 0;
}

static int v_source_ip(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i, n4 = 0, n6 = 0;
	unsigned char tmp[16];

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		if (inet_pton(AF_INET, s, tmp) == 1)
			n4++;
		else if (inet_pton(AF_INET6, s, tmp) == 1)
			n6++;
		else {
			cfg_error(cfg, "source-ip: \"%s\" is not an IPv4 or IPv6 address", s);
			return -1;
		}
	}
	if (n4 > 1 || n6 > 1) {
		cfg_error(cfg, "source-ip: at most one IPv4 and one IPv6 address");
		return -1;
	}
	return 0;
}

static int v_size_or_zero(cfg_t *cfg, cfg_opt_t *opt)
{
	uint64_t v;
	const char *s = cfg_opt_getnstr(opt, 0);
	if (!parse_size(s, &v)) {
		cfg_error(cfg, "%s: \"%s\" is not a size (like 25M, 100K, 1G; 0 = no limit)",
			  opt->name, s);
		return -1;
	}
	return 0;
}

static int v_sc_tls(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"none", "opportunistic", "require", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_routing(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const c[] = {"dns", "smart-host", NULL};
	return v_one_of(cfg, opt, c);
}

static int v_port(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);
	if (v < 1 || v > 65535) {
		cfg_error(cfg, "%s: %ld is not a port (1..65535)", opt->name, v);
		return -1;
	}
	return 0;
}

static int v_dns_servers(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned i;
	struct binding b;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		const char *s = cfg_opt_getnstr(opt, i);
		unsigned char tmp[16];
		if (!parse_binding(s, &b) && inet_pton(AF_INET, s, tmp) != 1 &&
		    inet_pton(AF_INET6, s, tmp) != 1) {
			cfg_error(cfg, "servers: \"%s\" is not ADDRESS or ADDRESS:PORT", s);
			return -1;
		}
	}
	return 0;
}

static int v_memory_limit(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned pct;
	uint64_t bytes;
	const char *s = cfg_opt_getnstr(opt, 0);
	if (!parse_memory_limit(s, &pct, &bytes)) {
		cfg_error(cfg, "%s: \"%s\" is neither a percentage of physical memory (1%%..100%%) "
			  "nor a size (like 2G)", opt->name, s);
		return -1;
	}
	return 0;
}

/* The back-pressure thresholds in a consistent order: the High level is
 * reached after the Medium one (less free disk, more messages). */
static int v_bp_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	uint64_t dm = 0, dh = 0;

	(void)parse_size(cfg_getstr(sec, "disk-free-medium"), &dm); /* validated */
	(void)parse_size(cfg_getstr(sec, "disk-free-high"), &dh);
	if (dh >= dm) {
		cfg_error(cfg, "back-pressure: disk-free-high (\"%s\") must be less than "
			  "disk-free-medium (\"%s\"): High is entered when the spool volume has "
			  "less free space than disk-free-high, after Medium",
			  cfg_getstr(sec, "disk-free-high"), cfg_getstr(sec, "disk-free-medium"));
		return -1;
	}
	if (cfg_getint(sec, "queue-high") <= cfg_getint(sec, "queue-medium")) {
		cfg_error(cfg, "back-pressure: queue-high (%ld) must be greater than queue-medium "
			  "(%ld)", cfg_getint(sec, "queue-high"), cfg_getint(sec, "queue-medium"));
		return -1;
	}
	return 0;
}

static int v_sc_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	if (cfg_size(sec, "address-spaces") == 0) {
		cfg_error(cfg, "send-connector \"%s\": needs address-spaces = { \"DOMAIN\" }",
			  cfg_title(sec));
		return -1;
	}
	if (strcmp(cfg_getstr(sec, "routing"), "smart-host") == 0 &&
	    cfg_size(sec, "smart-hosts") == 0) {
		cfg_error(cfg, "send-connector \"%s\": routing = \"smart-host\" needs smart-hosts",
			  cfg_title(sec));
		return -1;
	}
	return 0;
}

/* An error at a given line of the file being parsed ("file:line: ..."),
 * for checks that concern a whole section rather than the lexer's line. */
static void conf_error_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A receive connector with the "relay" permission relays for every
 * client in its remote-ip-ranges without AUTH: that is only safe for a
 * short, explicit list of networks (printers, application servers). The
 * default ranges (0.0.0.0/0, ::/0), any range of prefix length 0, or
 * ranges that add up to a whole address family make it an open relay,
 * so the configuration is refused, pointing at the section.
 */
static int conf_check_relay_ranges(cfg_t *sec)
{
	cfg_opt_t *ranges = cfg_getopt(sec, "remote-ip-ranges");
	bool explicit_ranges = ranges && (ranges->flags & CFGF_MODIFIED);
	uint64_t v4 = 0, v6 = 0; /* addresses covered: IPv4, and IPv6 in /64 units */
	const char *whole = NULL;
	unsigned i;
	bool relay = false;
	bool noted = conf_rc_lines.sec == sec;
	int perm_line = noted && conf_rc_lines.perm_line ? conf_rc_lines.perm_line : sec->line;
	int ranges_line = noted && conf_rc_lines.ranges_line ? conf_rc_lines.ranges_line : sec->line;

	for (i = 0; i < cfg_size(sec, "permissions"); i++)
		relay |= strcmp(cfg_getnstr(sec, "permissions", i), "relay") == 0;
	if (!relay)
		return 0;
	for (i = 0; i < cfg_size(sec, "remote-ip-ranges"); i++) {
		const char *s = cfg_getnstr(sec, "remote-ip-ranges", i);
		struct ip_range r;

		if (!parse_range(s, &r))
			continue; /* v_ranges reported it */
		if (r.prefix == 0) {
			whole = s;
			break;
		}
		/* saturating sums: more than the family holds is "the whole internet" */
		if (r.family == AF_INET)
			v4 += 1ull << (32 - r.prefix);
		else if (r.prefix < 64 && (v6 += 1ull << (64 - r.prefix)) < (1ull << (64 - r.prefix)))
			v6 = UINT64_MAX;
	}
	if (!explicit_ranges) {
		conf_error_at(perm_line, "receive-connector \"%s\": permissions include \"relay\" "
			      "but remote-ip-ranges is not set, so it is 0.0.0.0/0 and ::/0: this "
			      "would relay mail for the whole internet without AUTH (an open relay); "
			      "list the networks of the devices that may relay (remote-ip-ranges = "
			      "{ \"192.0.2.0/24\" }) and let people's mail clients use AUTH on a "
			      "submission connector (587)",
			      cfg_title(sec));
		return -1;
	}
	if (whole != NULL || v4 >= (1ull << 32) || v6 == UINT64_MAX) {
		conf_error_at(ranges_line, "receive-connector \"%s\": permissions include \"relay\" "
			      "and remote-ip-ranges %s%s%s the whole %s address space: this would "
			      "relay mail for the whole internet without AUTH (an open relay); list "
			      "only the networks of the devices that may relay, and let people's mail "
			      "clients use AUTH on a submission connector (587)",
			      cfg_title(sec), whole ? "has \"" : "", whole ? whole : "",
			      whole ? "\", prefix length 0, which is" : "add up to",
			      whole ? (strchr(whole, ':') ? "IPv6" : "IPv4")
				    : v4 >= (1ull << 32) ? "IPv4" : "IPv6");
		return -1;
	}
	return 0;
}

/* control.http: ADDRESS:PORT, and on loopback unless http-allow-remote
 * says otherwise (the page has no authentication). */
static int v_control_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, 0);
	const char *http = sec ? cfg_getstr(sec, "http") : NULL;
	struct binding b;

	if (http == NULL || *http == '\0')
		return 0;
	if (!parse_binding(http, &b)) {
		cfg_error(cfg, "control: http \"%s\" is not ADDRESS:PORT (like 127.0.0.1:9425)", http);
		return -1;
	}
	if (!binding_is_loopback(&b) && cfg_getbool(sec, "http-allow-remote") != cfg_true) {
		cfg_error(cfg, "control: http \"%s\" is not a loopback address: /metrics and "
			       "/status have no authentication; bind 127.0.0.1 (and put a proxy with "
			       "authentication in front), or set http-allow-remote = true",
			  http);
		return -1;
	}
	return 0;
}

static int v_rc_section(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	if (cfg_size(sec, "bindings") == 0) {
		cfg_error(cfg, "receive-connector \"%s\": needs bindings = { \"ADDRESS:PORT\" }",
			  cfg_title(sec));
		return -1;
	}
	if (conf_check_relay_ranges(sec) != 0)
		return -1;
	if (cfg_size(sec, "auth") > 0 && strcmp(cfg_getstr(sec, "tls"), "none") == 0 &&
	    strcmp(cfg_getstr(sec, "auth-cleartext"), "loopback") != 0) {
		/* AUTH runs only under TLS: it could never be used here */
		cfg_error(cfg, "receive-connector \"%s\": auth needs tls (offer, require or "
			       "implicit), or auth-cleartext = \"loopback\" for loopback clients",
			  cfg_title(sec));
		return -1;
	}
	return 0;
}

/* libConfuse reports errors against the section being parsed, which
 * does not always know the file name; report against the file and the
 * lexer's current line instead, always as "file:line: message". */
static cfg_t *conf_parsing_root;
static const char *conf_parsing_path;

void conf_parsing_begin(cfg_t *root, const char *path)
{
	conf_parsing_root = root;
	conf_parsing_path = path;
}

void conf_parsing_end(void)
{
	conf_parsing_root = NULL;
	conf_parsing_path = NULL;
}

/* The line the lexer is on while cfg is being parsed. */
static int conf_lexer_line(const cfg_t *cfg)
{
	const cfg_t *root = conf_parsing_root ? conf_parsing_root : cfg;
	return cfg->line > root->line ? cfg->line : root->line;
}

static void conf_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	const cfg_t *root = conf_parsing_root ? conf_parsing_root : cfg;
	int line = conf_lexer_line(cfg);

	const char *file = conf_parsing_path ? conf_parsing_path : root->filename;

	if (file && line > 0)
		fprintf(stderr, "%s:%d: ", file, line);
	else if (file)
		fprintf(stderr, "%s: ", file);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void conf_error_at(int line, const char *fmt, ...)
{
	va_list ap;

	if (conf_parsing_path && line > 0)
		fprintf(stderr, "%s:%d: ", conf_parsing_path, line);
	else if (conf_parsing_path)
		fprintf(stderr, "%s: ", conf_parsing_path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void conf_set_validators(cfg_t *cfg)
{
	cfg_set_error_function(cfg, conf_error);
	cfg_set_validate_func(cfg, "server|fqdn", v_hostname);
	cfg_set_validate_func(cfg, "server|max-hop-count", v_positive);
	cfg_set_validate_func(cfg, "server|max-connections", v_positive);
	cfg_set_validate_func(cfg, "accepted-domain|type", v_domain_type);
	cfg_set_validate_func(cfg, "mailboxes|maildir", v_maildir);
	cfg_set_validate_func(cfg, "receive-connector", v_rc_section);
	cfg_set_validate_func(cfg, "receive-connector|bindings", v_bindings);
	cfg_set_validate_func(cfg, "receive-connector|remote-ip-ranges", v_ranges);
	cfg_set_validate_func(cfg, "receive-connector|trusted-proxies", v_trusted_proxies);
	cfg_set_validate_func(cfg, "receive-connector|dnsbl", v_dnsbl_zones);
	cfg_set_validate_func(cfg, "receive-connector|dnsbl-allow", v_ranges);
	cfg_set_validate_func(cfg, "receive-connector|dnsbl-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "receive-connector|fqdn", v_hostname);
	cfg_set_validate_func(cfg, "receive-connector|permissions", v_perms);
	cfg_set_validate_func(cfg, "receive-connector|tls", v_tls);
	cfg_set_validate_func(cfg, "receive-connector|max-message-size", v_size);
	cfg_set_validate_func(cfg, "receive-connector|max-recipients", v_positive);
	cfg_set_validate_func(cfg, "receive-connector|max-connections-per-source", v_positive);
	cfg_set_validate_func(cfg, "receive-connector|source-prefix-ipv4", v_prefix4);
	cfg_set_validate_func(cfg, "receive-connector|source-prefix-ipv6", v_prefix6);
	cfg_set_validate_func(cfg, "receive-connector|max-errors", v_positive);
	cfg_set_validate_func(cfg, "receive-connector|max-line-length", v_line_length);
	cfg_set_validate_func(cfg, "receive-connector|max-text-line-length", v_line_length);
	cfg_set_validate_func(cfg, "receive-connector|bare-lf", v_bare_lf);
	cfg_set_validate_func(cfg, "receive-connector|command-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "receive-connector|data-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "receive-connector|session-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "receive-connector|auth", v_auth_mechs);
	cfg_set_validate_func(cfg, "receive-connector|auth-cleartext", v_auth_cleartext);
	cfg_set_validate_func(cfg, "receive-connector|sender-binding", v_sender_binding);
	cfg_set_validate_func(cfg, "receive-connector|tarpit", v_tarpit);
	cfg_set_validate_func(cfg, "receive-connector|helo", v_helo);
	cfg_set_validate_func(cfg, "receive-connector|max-refused-recipients", v_positive);
	cfg_set_validate_func(cfg, "receive-connector|max-messages-per-minute-per-source", v_rate);
	cfg_set_validate_func(cfg, "receive-connector|max-messages-per-minute-per-login", v_rate);
	cfg_set_validate_func(cfg, "receive-connector|max-recipients-per-minute-per-source",
			      v_rate);
	cfg_set_validate_func(cfg, "receive-connector|max-recipients-per-minute-per-login", v_rate);
	cfg_set_validate_func(cfg, "receive-connector|ptr-timeout", v_ptr_timeout);
	cfg_set_validate_func(cfg, "receive-connector|tarpit-max-per-session", v_tarpit_total);
	cfg_set_validate_func(cfg, "auth-failures|delay", v_duration_or_zero);
	cfg_set_validate_func(cfg, "auth-failures|delay-max", v_duration_or_zero);
	cfg_set_validate_func(cfg, "auth-failures|window", v_duration_list);
	cfg_set_validate_func(cfg, "auth-failures|max-per-source", v_positive);
	cfg_set_validate_func(cfg, "auth-failures|max-per-login", v_positive);
	cfg_set_validate_func(cfg, "auth-failures|lockout", v_duration_list);
	cfg_set_validate_func(cfg, "auth-failures|table-size", v_positive);
	cfg_set_validate_func(cfg, "users|dovecot-auth", v_dovecot_socket);
	cfg_set_validate_func(cfg, "users|dovecot-auth-timeout", v_dovecot_timeout);
	conf_ldap_validators(cfg);
	cfg_set_validate_func(cfg, "send-connector", v_sc_section);
	cfg_set_validate_func(cfg, "send-connector|address-spaces", v_spaces);
	cfg_set_validate_func(cfg, "send-connector|routing", v_routing);
	cfg_set_validate_func(cfg, "send-connector|smart-hosts", v_smart_hosts);
	cfg_set_validate_func(cfg, "send-connector|port", v_port);
	cfg_set_validate_func(cfg, "send-connector|source-ip", v_source_ip);
	cfg_set_validate_func(cfg, "send-connector|fqdn", v_hostname);
	cfg_set_validate_func(cfg, "send-connector|tls", v_sc_tls);
	cfg_set_validate_func(cfg, "send-connector|max-message-size", v_size_or_zero);
	cfg_set_validate_func(cfg, "send-connector|max-connections-per-destination", v_positive);
	cfg_set_validate_func(cfg, "send-connector|connect-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "send-connector|command-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "send-connector|data-timeout", v_duration_list);
	cfg_set_validate_func(cfg, "receive-connector|tls-protocols", tls_opts_v_protocols);
	cfg_set_validate_func(cfg, "receive-connector|tls-ciphers", tls_opts_v_ciphers);
	cfg_set_validate_func(cfg, "receive-connector|tls-ciphersuites", tls_opts_v_ciphersuites);
	cfg_set_validate_func(cfg, "send-connector|tls-protocols", tls_opts_v_protocols);
	cfg_set_validate_func(cfg, "send-connector|tls-ciphers", tls_opts_v_ciphers);
	cfg_set_validate_func(cfg, "send-connector|tls-ciphersuites", tls_opts_v_ciphersuites);
	cfg_set_validate_func(cfg, "dns|servers", v_dns_servers);
	cfg_set_validate_func(cfg, "queue|max-connections", v_positive);
	cfg_set_validate_func(cfg, "queue|retry", v_duration_list);
	cfg_set_validate_func(cfg, "queue|expire", v_duration_list);
	cfg_set_validate_func(cfg, "queue|delay-notice", v_duration_or_zero);
	cfg_set_validate_func(cfg, "queue|sync", v_sync);
	cfg_set_validate_func(cfg, "queue|delivery-threads", v_positive);
	cfg_set_validate_func(cfg, "queue|max-batch", v_positive);
	cfg_set_validate_func(cfg, "back-pressure", v_bp_section);
	cfg_set_validate_func(cfg, "back-pressure|disk-free-medium", v_size);
	cfg_set_validate_func(cfg, "back-pressure|disk-free-high", v_size);
	cfg_set_validate_func(cfg, "back-pressure|memory-high", v_memory_limit);
	cfg_set_validate_func(cfg, "back-pressure|queue-medium", v_positive);
	cfg_set_validate_func(cfg, "back-pressure|queue-high", v_positive);
	cfg_set_validate_func(cfg, "receive-connector|protocol-log", v_protocol_log);
	cfg_set_validate_func(cfg, "send-connector|protocol-log", v_protocol_log);
	cfg_set_validate_func(cfg, "logs|tracking|max-file-size", v_size);
	cfg_set_validate_func(cfg, "logs|tracking|max-dir-size", v_size);
	cfg_set_validate_func(cfg, "logs|tracking|max-age", v_duration_list);
	cfg_set_validate_func(cfg, "logs|protocol|max-file-size", v_size);
	cfg_set_validate_func(cfg, "logs|protocol|max-dir-size", v_size);
	cfg_set_validate_func(cfg, "logs|protocol|max-age", v_duration_list);
	cfg_set_validate_func(cfg, "control", v_control_section);
}

