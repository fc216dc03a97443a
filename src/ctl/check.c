/*
 * check.c - see check.h. Every question is one probe: it reserves its
 * result line when started (so the output keeps the order of the
 * questions) and fills it from its DNS callback(s). The loop ends when no
 * probe is pending, or at CHECK_DEADLINE seconds, when the lines still
 * empty say UNKNOWN.
 */
#include "ctl/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/values.h"
#include "net/dns.h"
#include "net/listener.h"
#include "policy/dnsbl.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define CHECK_DEADLINE 20 /* seconds for every answer */
#define CHECK_MAX_ADDRS 64

enum check_status { CK_PENDING = 0, CK_OK, CK_LISTED, CK_PROBLEM, CK_UNKNOWN };

static const char *const check_status_name[] = {"UNKNOWN", "OK", "LISTED", "PROBLEM", "UNKNOWN"};

struct check_line {
	const char *check; /* "blocklist", "mx", "ptr" */
	char subject[300];
	enum check_status status;
	char detail[700];
};

struct check_addr {
	struct sockaddr_storage ss;
	char text[INET6_ADDRSTRLEN];
	const char *fqdn; /* the name its PTR should give */
	char who[160];	  /* "send-connector NAME" or "command line" */
};

struct check_run {
	const struct config *c;
	struct event_base *base;
	struct dns *dns;
	struct check_line *lines;
	size_t nlines;
	unsigned pending;
	struct probe *probes; /* every probe, freed at the end (answered or not) */
};

struct probe {
	struct check_run *run;
	size_t line;
	const struct check_addr *addr;
	char name[300]; /* zone, domain or fqdn asked about */
	struct probe *next;
};

static size_t line_new(struct check_run *r, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static size_t line_new(struct check_run *r, const char *check, const char *fmt, ...)
{
	struct check_line *l;
	va_list ap;

	r->lines = xrealloc(r->lines, (r->nlines + 1) * sizeof(*r->lines));
	l = &r->lines[r->nlines];
	memset(l, 0, sizeof(*l));
	l->check = check;
	va_start(ap, fmt);
	vsnprintf(l->subject, sizeof(l->subject), fmt, ap);
	va_end(ap);
	return r->nlines++;
}

static void line_set(struct check_run *r, size_t i, enum check_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line_set(struct check_run *r, size_t i, enum check_status st, const char *fmt, ...)
{
	va_list ap;

	r->lines[i].status = st;
	va_start(ap, fmt);
	vsnprintf(r->lines[i].detail, sizeof(r->lines[i].detail), fmt, ap);
	va_end(ap);
}

static struct probe *probe_new(struct check_run *r, size_t line, const struct check_addr *a,
			       const char *name)
{
	struct probe *p = xcalloc(1, sizeof(*p));

	p->run = r;
	p->line = line;
	p->addr = a;
	str_copy(p->name, name ? name : "", sizeof(p->name));
	p->next = r->probes;
	r->probes = p;
	r->pending++;
	return p;
}

static void probe_done(struct probe *p)
{
	struct check_run *r = p->run;

	if (--r->pending == 0)
		event_base_loopbreak(r->base);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	const void *ip = ss->ss_family == AF_INET
				 ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				 : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (inet_ntop(ss->ss_family, ip, out, (socklen_t)outsz) == NULL)
		str_copy(out, "?", outsz);
}

/* ---- blocklists ------------------------------------------------------------ */

static void on_blocklist(void *arg, const struct dns_result *res)
{
	struct probe *p = arg;
	struct check_run *r = p->run;
	char ans[INET6_ADDRSTRLEN] = "";
	bool listed = false;

	if (res->status == DNS_OK && res->nhosts > 0) {
		const struct dns_host *h = &res->hosts[0];
		for (size_t i = 0; i < h->naddr && !listed; i++) {
			const unsigned char *b;
			if (h->addr[i].ss_family != AF_INET)
				continue;
			b = (const unsigned char *)&((const struct sockaddr_in *)&h->addr[i])->sin_addr;
			inet_ntop(AF_INET, b, ans, sizeof(ans));
			listed = dnsbl_answer_lists(b);
		}
		if (listed)
			line_set(r, p->line, CK_LISTED, "listed in %s (answer %s): mail from it is refused "
				 "by servers that use this list", p->name, ans);
		else
			line_set(r, p->line, CK_UNKNOWN, "%s answered %s: not a listing but the list's "
				 "error code (is the resolver refused by the list?)", p->name, ans);
	} else if (res->status == DNS_NXDOMAIN || res->status == DNS_NO_ADDRESS) {
		line_set(r, p->line, CK_OK, "not listed in %s", p->name);
	} else {
		line_set(r, p->line, CK_UNKNOWN, "%s: lookup failed: %s", p->name, res->error);
	}
	probe_done(p);
}

static void zone_once(const char ***zones, size_t *n, const char *z)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*zones)[i], z) == 0)
			return;
	*zones = xrealloc(*zones, (*n + 1) * sizeof(**zones));
	(*zones)[(*n)++] = z;
}

static void check_blocklists(struct check_run *r, const struct check_addr *addrs, size_t naddrs)
{
	const struct config *c = r->c;
	const char **zones = NULL;
	size_t nzones = 0, i, k;

	for (i = 0; i < c->nrcs; i++)
		for (k = 0; k < c->rcs[i].ndnsbl; k++)
			zone_once(&zones, &nzones, c->rcs[i].dnsbl[k].zone);
	if (nzones == 0) {
		size_t l = line_new(r, "blocklist", "-");
		line_set(r, l, CK_OK, "no receive connector has dnsbl zones: nothing to look up "
			 "(set dnsbl = { \"ZONE\" } to check against those lists)");
	}
	if (naddrs == 0 && nzones > 0) {
		size_t l = line_new(r, "blocklist", "-");
		line_set(r, l, CK_UNKNOWN, "no address to look up: no send connector has source-ip; "
			 "give this server's public addresses on the command line");
	}
	for (i = 0; i < naddrs; i++)
		for (k = 0; k < nzones; k++) {
			char qname[300];
			size_t l = line_new(r, "blocklist", "%s %s", addrs[i].text, zones[k]);
			if (!dnsbl_query_name((const struct sockaddr *)&addrs[i].ss, zones[k], qname,
					      sizeof(qname))) {
				line_set(r, l, CK_UNKNOWN, "query name too long");
				continue;
			}
			dns_resolve_host(r->dns, qname, on_blocklist, probe_new(r, l, &addrs[i], zones[k]));
		}
	free(zones);
}

/* ---- MX ------------------------------------------------------------------------ */

static bool our_name(const struct config *c, const char *name)
{
	if (strcasecmp(name, c->server.fqdn) == 0)
		return true;
	for (size_t i = 0; i < c->nrcs; i++)
		if (c->rcs[i].fqdn && strcasecmp(name, c->rcs[i].fqdn) == 0)
			return true;
	return false;
}

static bool our_host(const struct config *c, const struct dns_host *h)
{
	if (our_name(c, h->name))
		return true;
	for (size_t i = 0; i < h->naddr; i++) {
		const struct sockaddr_storage *a = &h->addr[i];
		const void *ip = a->ss_family == AF_INET
					 ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
					 : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
		if (listeners_is_local_ip(a->ss_family, ip))
			return true;
	}
	return false;
}

static void on_mx(void *arg, const struct dns_result *res)
{
	struct probe *p = arg;
	struct check_run *r = p->run;
	char hosts[500] = "";
	size_t i, n = 0;

	switch (res->status) {
	case DNS_OK:
		for (i = 0; i < res->nhosts; i++) {
			char one[300];
			snprintf(one, sizeof(one), "%s%s (%u)", n++ ? ", " : "", res->hosts[i].name,
				 res->hosts[i].pref);
			if (strlen(hosts) + strlen(one) < sizeof(hosts))
				strcat(hosts, one);
		}
		for (i = 0; i < res->nhosts; i++)
			if (our_host(r->c, &res->hosts[i]))
				break;
		if (i < res->nhosts)
			line_set(r, p->line, CK_OK, "MX %s: %s is this server", hosts,
				 res->hosts[i].name);
		else
			line_set(r, p->line, CK_PROBLEM, "MX %s: none is this server (%s, or an address "
				 "it listens on): mail for %s goes elsewhere", hosts, r->c->server.fqdn,
				 p->name);
		break;
	case DNS_NULL_MX:
		line_set(r, p->line, CK_PROBLEM, "null MX (RFC 7505): the domain says it accepts no "
			 "mail");
		break;
	case DNS_NXDOMAIN:
	case DNS_NO_ADDRESS:
		line_set(r, p->line, CK_PROBLEM, "no MX and no address: %s", res->error);
		break;
	default:
		line_set(r, p->line, CK_UNKNOWN, "lookup failed: %s", res->error);
	}
	probe_done(p);
}

static void check_mx(struct check_run *r)
{
	for (size_t i = 0; i < r->c->ndomains; i++) {
		const char *d = r->c->domains[i].name;
		size_t l = line_new(r, "mx", "%s", d);
		dns_resolve_mx(r->dns, d, on_mx, probe_new(r, l, NULL, d));
	}
}

/* ---- PTR, forward-confirmed ---------------------------------------------------- */

static void on_forward(void *arg, const struct dns_result *res)
{
	struct probe *p = arg;
	struct check_run *r = p->run;
	bool back = false;

	for (size_t h = 0; res->status == DNS_OK && h < res->nhosts; h++)
		for (size_t i = 0; i < res->hosts[h].naddr; i++)
			back |= same_addr(&res->hosts[h].addr[i], &p->addr->ss);
	if (back)
		line_set(r, p->line, CK_OK, "PTR %s, which resolves back to %s", p->name,
			 p->addr->text);
	else if (res->status == DNS_TEMPFAIL)
		line_set(r, p->line, CK_UNKNOWN, "PTR %s; its address lookup failed: %s", p->name,
			 res->error);
	else
		line_set(r, p->line, CK_PROBLEM, "PTR %s, but %s does not resolve back to %s "
			 "(receivers that want forward-confirmed reverse DNS refuse the mail)",
			 p->name, p->name, p->addr->text);
	probe_done(p);
}

static void on_ptr(void *arg, const struct dns_result *res)
{
	struct probe *p = arg;
	struct check_run *r = p->run;
	char names[500] = "";
	size_t i;

	if (res->status == DNS_TEMPFAIL) {
		line_set(r, p->line, CK_UNKNOWN, "PTR lookup failed: %s", res->error);
		probe_done(p);
		return;
	}
	if (res->status != DNS_OK || res->nhosts == 0) {
		line_set(r, p->line, CK_PROBLEM, "no PTR record: receivers expect one naming %s "
			 "(many refuse mail from addresses without)", p->name);
		probe_done(p);
		return;
	}
	for (i = 0; i < res->nhosts; i++) {
		if (strcasecmp(res->hosts[i].name, p->name) == 0)
			break;
		if (strlen(names) + strlen(res->hosts[i].name) + 3 < sizeof(names)) {
			if (names[0])
				strcat(names, ", ");
			strcat(names, res->hosts[i].name);
		}
	}
	if (i == res->nhosts) {
		line_set(r, p->line, CK_PROBLEM, "PTR %s does not match the FQDN %s that %s says "
			 "in EHLO", names, p->name, p->addr->who);
		probe_done(p);
		return;
	}
	dns_resolve_host(r->dns, p->name, on_forward, p); /* the same probe goes on */
}

static void check_ptr(struct check_run *r, const struct check_addr *addrs, size_t naddrs)
{
	if (naddrs == 0) {
		size_t l = line_new(r, "ptr", "-");
		line_set(r, l, CK_UNKNOWN, "no address to look up: no send connector has source-ip; "
			 "give this server's public addresses on the command line");
	}
	for (size_t i = 0; i < naddrs; i++) {
		size_t l = line_new(r, "ptr", "%s", addrs[i].text);
		dns_resolve_ptr(r->dns, (const struct sockaddr *)&addrs[i].ss, on_ptr,
				probe_new(r, l, &addrs[i], addrs[i].fqdn));
	}
}

/* ---- addresses, output ------------------------------------------------------- */

static void addr_add(struct check_addr *v, size_t *n, const struct sockaddr *sa, const char *fqdn,
		     const char *who)
{
	struct check_addr a;

	if (*n >= CHECK_MAX_ADDRS)
		return;
	memset(&a, 0, sizeof(a));
	memcpy(&a.ss, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						    : sizeof(struct sockaddr_in6));
	for (size_t i = 0; i < *n; i++)
		if (same_addr(&v[i].ss, &a.ss))
			return; /* two connectors on one address: asked once */
	addr_text(&a.ss, a.text, sizeof(a.text));
	a.fqdn = fqdn;
	str_copy(a.who, who, sizeof(a.who));
	v[(*n)++] = a;
}

static json_t *results_json(const struct check_run *r, const char *what, bool ok)
{
	json_t *o = json_object(), *a = json_array();

	json_object_set_new(o, "time", json_integer((json_int_t)time(NULL)));
	json_object_set_new(o, "checks", json_string(what));
	json_object_set_new(o, "ok", json_boolean(ok));
	for (size_t i = 0; i < r->nlines; i++) {
		const struct check_line *l = &r->lines[i];
		json_t *e = json_object();
		json_object_set_new(e, "check", json_string(l->check));
		json_object_set_new(e, "subject", json_string(l->subject));
		json_object_set_new(e, "status", json_string(check_status_name[l->status]));
		json_object_set_new(e, "detail", json_string(l->detail));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "results", a);
	return o;
}

/* <spool>/check.json, replaced atomically; a spool we cannot write is
 * only a warning (transitctl may run as a user without access to it). */
static void save_result(const struct config *c, json_t *o)
{
	char path[4200], tmp[4300];

	snprintf(path, sizeof(path), "%s/%s", c->server.spool, CHECK_RESULT_FILE);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (json_dump_file(o, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "transitctl: check: cannot record the result in %s: %s\n", path,
			strerror(errno));
		unlink(tmp);
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int check_main(const struct config *c, int argc, char **argv)
{
	struct check_addr addrs[CHECK_MAX_ADDRS];
	struct check_run run;
	bool json = false, bl = true, dns = true, ok = true;
	const char *what = "all";
	struct timeval deadline = {CHECK_DEADLINE, 0};
	struct event *timer;
	char err[512];
	size_t naddrs = 0, i;
	int a = 1;
	json_t *o;

	if (a < argc && strcmp(argv[a], "blocklists") == 0) {
		dns = false;
		what = argv[a++];
	} else if (a < argc && strcmp(argv[a], "dns") == 0) {
		bl = false;
		what = argv[a++];
	}
	for (i = 0; i < c->nscs; i++) {
		char who[160];
		const char *fqdn = c->scs[i].fqdn ? c->scs[i].fqdn : c->server.fqdn;
		snprintf(who, sizeof(who), "send-connector %s", c->scs[i].name);
		if (c->scs[i].has_source4)
			addr_add(addrs, &naddrs, (const struct sockaddr *)&c->scs[i].source4, fqdn, who);
		if (c->scs[i].has_source6)
			addr_add(addrs, &naddrs, (const struct sockaddr *)&c->scs[i].source6, fqdn, who);
	}
	for (; a < argc; a++) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		if (strcmp(argv[a], "--json") == 0) {
			json = true;
		} else if (inet_pton(AF_INET, argv[a], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
			ss.ss_family = AF_INET;
			addr_add(addrs, &naddrs, (struct sockaddr *)&ss, c->server.fqdn, "command line");
		} else if (inet_pton(AF_INET6, argv[a], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
			ss.ss_family = AF_INET6;
			addr_add(addrs, &naddrs, (struct sockaddr *)&ss, c->server.fqdn, "command line");
		} else {
			fprintf(stderr, "transitctl: check: '%s' is not an IP address (usage: transitctl "
					"check [blocklists|dns] [--json] [ADDRESS...])\n", argv[a]);
			return 2;
		}
	}

	memset(&run, 0, sizeof(run));
	run.c = c;
	if ((run.base = event_base_new()) == NULL) {
		fprintf(stderr, "transitctl: check: cannot create an event loop\n");
		return 1;
	}
	if ((run.dns = dns_new(run.base, c->dns_servers, c->ndns_servers, err, sizeof(err))) == NULL) {
		fprintf(stderr, "transitctl: check: dns: %s\n", err);
		event_base_free(run.base);
		return 1;
	}
	listeners_note_local_ips(c);
	if (bl)
		check_blocklists(&run, addrs, naddrs);
	if (dns) {
		check_mx(&run);
		check_ptr(&run, addrs, naddrs);
	}
	timer = evtimer_new(run.base, on_deadline, run.base);
	evtimer_add(timer, &deadline);
	if (run.pending > 0)
		event_base_dispatch(run.base);
	dns_free(run.dns); /* unanswered probes: their callbacks never come */
	event_free(timer);
	event_base_free(run.base);

	for (i = 0; i < run.nlines; i++) {
		struct check_line *l = &run.lines[i];
		if (l->status == CK_PENDING)
			snprintf(l->detail, sizeof(l->detail), "no answer within %ds", CHECK_DEADLINE);
		if (l->status != CK_OK)
			ok = false;
	}
	o = results_json(&run, what, ok);
	save_result(c, o);
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		for (i = 0; i < run.nlines; i++)
			printf("%-8s %-9s %-40s %s\n", check_status_name[run.lines[i].status],
			       run.lines[i].check, run.lines[i].subject, run.lines[i].detail);
	}
	json_decref(o);
	while (run.probes) {
		struct probe *next = run.probes->next;
		free(run.probes);
		run.probes = next;
	}
	free(run.lines);
	return ok ? 0 : 1;
}
