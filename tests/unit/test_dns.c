/* test_dns.c - net/dns.c against a real authoritative server: the test writes an nsd
 * configuration and a zone into a mkdtemp directory, runs /usr/sbin/nsd in the foreground on a
 * loopback port derived from its pid, and points dns_new() at it. Covers MX preference order
 * and the shuffling of equal preferences, A+AAAA (IPv4 first), implicit MX, null MX (RFC 7505),
 * NXDOMAIN, MX hosts without addresses, a CNAME'd exchange, IP literals as exchange (skipped) and
 * as host (no query), the DNS_MAX_HOSTS bound, a dead server (TEMPFAIL in bounded time), the
 * "never called back from inside the call" rule and dns_free() with requests pending. Skipped
 * when nsd is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/dns.h"

#define NSD "/usr/sbin/nsd"
#define ZONE "dnstest.test"

static const char zone_text[] =
	"$ORIGIN dnstest.test.\n"
	"$TTL 30\n"
	"@ IN SOA ns hostmaster 1 3600 600 86400 30\n"
	"@ IN NS ns\n"
	"ns IN A 127.0.0.1\n"
	"; preference order, b and c equal\n"
	"order IN MX 20 c.order\n"
	"order IN MX 10 a.order\n"
	"order IN MX 20 b.order\n"
	"a.order IN A 127.0.0.11\n"
	"b.order IN A 127.0.0.12\n"
	"c.order IN A 127.0.0.13\n"
	"; one exchange with A and AAAA\n"
	"dual IN MX 5 mx.dual\n"
	"mx.dual IN AAAA 2001:db8::21\n"
	"mx.dual IN A 127.0.0.21\n"
	"; no MX: implicit MX\n"
	"implicit IN A 127.0.0.31\n"
	"implicit IN AAAA 2001:db8::31\n"
	"; exists, but no MX and no address\n"
	"empty IN TXT \"nothing\"\n"
	"; RFC 7505\n"
	"nullmx IN MX 0 .\n"
	"; a null MX among others is ignored\n"
	"mixed IN MX 0 .\n"
	"mixed IN MX 10 ok.mixed\n"
	"ok.mixed IN A 127.0.0.81\n"
	"; exchanges without any address\n"
	"noaddr IN MX 10 gone.noaddr\n"
	"noaddr IN MX 20 txt.noaddr\n"
	"txt.noaddr IN TXT \"no address\"\n"
	"; the first exchange has no address, the second has\n"
	"partial IN MX 10 gone.partial\n"
	"partial IN MX 20 ok.partial\n"
	"ok.partial IN A 127.0.0.41\n"
	"; the exchange is a CNAME\n"
	"cname IN MX 10 alias.cname\n"
	"alias.cname IN CNAME real.cname\n"
	"real.cname IN A 127.0.0.51\n"
	"; an IP address as exchange is not a host name\n"
	"literal IN MX 10 127.0.0.61.\n"
	"literal IN MX 20 ok.literal\n"
	"ok.literal IN A 127.0.0.62\n"
	"onlyliteral IN MX 10 127.0.0.63.\n"
	"; a host for dns_resolve_host\n"
	"host IN A 127.0.0.71\n"
	"host IN AAAA ::1\n"
	"v6only IN AAAA 2001:db8::72\n";

static bool have_nsd;
static char nsd_dir[64];
static int nsd_port;
static pid_t nsd_pid = -1;
static struct event_base *base;
static int outstanding;
static bool in_call;

/* ---- the nameserver ---- */

static bool write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", nsd_dir, name);
	f = fopen(path, "w");
	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static bool write_conf(int port)
{
	char conf[2048];

	snprintf(conf, sizeof(conf),
		 "server:\n"
		 "  ip-address: 127.0.0.1@%d\n"
		 "  port: %d\n"
		 "  do-ip6: no\n"
		 "  reuseport: no\n"
		 "  server-count: 1\n"
		 "  username: \"\"\n"
		 "  chroot: \"\"\n"
		 "  zonesdir: \"%s\"\n"
		 "  database: \"\"\n"
		 "  zonelistfile: \"%s/zone.list\"\n"
		 "  xfrdfile: \"%s/xfrd.state\"\n"
		 "  xfrdir: \"%s\"\n"
		 "  pidfile: \"%s/nsd.pid\"\n"
		 "  logfile: \"%s/nsd.log\"\n"
		 "  verbosity: 1\n"
		 "remote-control:\n"
		 "  control-enable: no\n"
		 "zone:\n"
		 "  name: \"" ZONE "\"\n"
		 "  zonefile: \"" ZONE ".zone\"\n",
		 port, port, nsd_dir, nsd_dir, nsd_dir, nsd_dir, nsd_dir, nsd_dir);
	return write_file("nsd.conf", conf);
}

/* A hand-built SOA query for the zone: true once the server answers it NOERROR. */
static bool nsd_answers(int port)
{
	unsigned char q[64] = {0x4e, 0x53, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t n = 12;
	const char *labels[] = {"dnstest", "test"};
	unsigned char a[512];
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct pollfd pfd;
	bool ok = false;

	for (size_t i = 0; i < 2; i++) {
		q[n++] = (unsigned char)strlen(labels[i]);
		memcpy(q + n, labels[i], strlen(labels[i]));
		n += strlen(labels[i]);
	}
	q[n++] = 0;
	q[n++] = 0, q[n++] = 6; /* SOA */
	q[n++] = 0, q[n++] = 1; /* IN */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pfd.fd = socket(AF_INET, SOCK_DGRAM, 0);
	pfd.events = POLLIN;
	if (pfd.fd < 0)
		return false;
	if (sendto(pfd.fd, q, n, 0, (struct sockaddr *)&sin, sizeof(sin)) == (ssize_t)n &&
	    poll(&pfd, 1, 200) == 1) {
		ssize_t r = recv(pfd.fd, a, sizeof(a), 0);
		ok = r >= 12 && a[0] == 0x4e && a[1] == 0x53 && (a[2] & 0x80) && (a[3] & 0x0f) == 0;
	}
	close(pfd.fd);
	return ok;
}

static void nsd_stop(void)
{
	int status;

	if (nsd_pid <= 0)
		return;
	kill(nsd_pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
			nsd_pid = -1;
			return;
		}
		usleep(100000);
	}
	kill(nsd_pid, SIGKILL);
	waitpid(nsd_pid, &status, 0);
	nsd_pid = -1;
}

/* Start nsd on port; false when it exits (port taken) or does not answer in 10 s. */
static bool nsd_start(int port)
{
	char conf[128], out[128];
	int status;

	if (!write_conf(port))
		return false;
	snprintf(conf, sizeof(conf), "%s/nsd.conf", nsd_dir);
	snprintf(out, sizeof(out), "%s/nsd.out", nsd_dir);
	nsd_pid = fork();
	if (nsd_pid < 0)
		return false;
	if (nsd_pid == 0) {
		if (!freopen(out, "a", stdout) || !freopen(out, "a", stderr))
			_exit(126);
		execl(NSD, "nsd", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 50; i++) {
		if (nsd_answers(port))
			return true;
		if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
			nsd_pid = -1;
			return false;
		}
		usleep(200000);
	}
	nsd_stop();
	return false;
}

static void remove_dir(void)
{
	DIR *dir = opendir(nsd_dir);
	struct dirent *e;
	char path[512];

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", nsd_dir, e->d_name);
		unlink(path);
	}
	closedir(dir);
	rmdir(nsd_dir);
}

/* The zone: the fixed records plus generated ones, 20 exchanges for
 * "many" (the best 16 are kept) and 12 A records for "mx.wide". */
static char zone_full[8192];

static void build_zone(void)
{
	size_t n = strlen(zone_text);

	memcpy(zone_full, zone_text, n + 1);
	for (int i = 20; i >= 1; i--)
		n += (size_t)snprintf(zone_full + n, sizeof(zone_full) - n,
				      "many IN MX %d h%d.many\nh%d.many IN A 127.0.1.%d\n", i, i, i, i);
	n += (size_t)snprintf(zone_full + n, sizeof(zone_full) - n, "wide IN MX 1 mx.wide\n");
	for (int i = 1; i <= 12; i++)
		n += (size_t)snprintf(zone_full + n, sizeof(zone_full) - n, "mx.wide IN A 127.0.2.%d\n",
				      i);
}

static int setup_nsd(void **state)
{
	(void)state;
	base = event_base_new();
	if (!base)
		return -1;
	if (access(NSD, X_OK) != 0)
		return 0; /* every test that needs it skips */
	build_zone();
	snprintf(nsd_dir, sizeof(nsd_dir), "/tmp/transit-test-dns-XXXXXX");
	if (!mkdtemp(nsd_dir) || !write_file(ZONE ".zone", zone_full))
		return -1;
	for (int attempt = 0; attempt < 8; attempt++) {
		int port = 20000 + (int)(((unsigned)getpid() * 7u + (unsigned)attempt * 4099u) % 30000u);
		if (nsd_start(port)) {
			nsd_port = port;
			have_nsd = true;
			return 0;
		}
	}
	fprintf(stderr, "nsd did not start, see %s/nsd.log and nsd.out\n", nsd_dir);
	return -1;
}

static int teardown_nsd(void **state)
{
	(void)state;
	nsd_stop();
	if (nsd_dir[0])
		remove_dir();
	event_base_free(base);
	return 0;
}

/* ---- helpers ---- */

struct got {
	int calls;
	struct dns_result res;
};

static void on_result(void *arg, const struct dns_result *res)
{
	struct got *g = arg;

	assert_false(in_call); /* never from inside dns_resolve_* */
	g->calls++;
	g->res = *res;
	if (--outstanding == 0)
		event_base_loopbreak(base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Run the loop until every expected callback came, at most seconds. */
static void run_loop(int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	struct event *t = evtimer_new(base, on_deadline, NULL);

	evtimer_add(t, &tv);
	if (outstanding > 0)
		event_base_dispatch(base);
	event_free(t);
}

/* A UDP socket on 127.0.0.1 that never answers: a dead DNS server
 * nobody else can be listening on. Returns the fd, *port its port. */
static int black_hole(int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static struct dns *dns_test_server(void)
{
	char spec[32], err[256] = "";
	char *servers[] = {spec};
	struct dns *d;

	snprintf(spec, sizeof(spec), "127.0.0.1:%d", nsd_port);
	d = dns_new(base, servers, 1, err, sizeof(err));
	if (!d)
		fail_msg("dns_new: %s", err);
	return d;
}

static void resolve(struct dns *d, bool mx, const char *name, struct got *g)
{
	memset(g, 0, sizeof(*g));
	outstanding = 1;
	in_call = true;
	if (mx)
		dns_resolve_mx(d, name, on_result, g);
	else
		dns_resolve_host(d, name, on_result, g);
	in_call = false;
	assert_int_equal(g->calls, 0);
	run_loop(20);
	assert_int_equal(g->calls, 1);
}

static const char *addr_text(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		assert_int_equal(sin->sin_port, 0);
		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsz);
	} else {
		assert_int_equal(ss->ss_family, AF_INET6);
		assert_int_equal(sin6->sin6_port, 0);
		inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outsz);
	}
	return out;
}

static void assert_host(const struct dns_host *h, const char *name, unsigned pref,
			const char *const *addrs, size_t naddr)
{
	char buf[64];

	assert_string_equal(h->name, name);
	assert_int_equal(h->pref, pref);
	assert_int_equal(h->naddr, naddr);
	for (size_t i = 0; i < naddr; i++)
		assert_string_equal(addr_text(&h->addr[i], buf, sizeof(buf)), addrs[i]);
}

#define NEED_NSD()             \
	do {                   \
		if (!have_nsd) \
			skip(); \
	} while (0)

/* ---- tests ---- */

static void test_mx_preference_order_and_shuffle(void **state)
{
	struct dns *d;
	struct got g;
	int b_first = 0, c_first = 0;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	for (int run = 0; run < 40; run++) {
		resolve(d, true, "Order." ZONE ".", &g);
		assert_int_equal(g.res.status, DNS_OK);
		assert_int_equal(g.res.nhosts, 3);
		assert_host(&g.res.hosts[0], "a.order." ZONE, 10, (const char *[]){"127.0.0.11"}, 1);
		assert_int_equal(g.res.hosts[1].pref, 20);
		assert_int_equal(g.res.hosts[2].pref, 20);
		if (strcmp(g.res.hosts[1].name, "b.order." ZONE) == 0) {
			b_first++;
			assert_host(&g.res.hosts[2], "c.order." ZONE, 20,
				    (const char *[]){"127.0.0.13"}, 1);
		} else {
			c_first++;
			assert_host(&g.res.hosts[1], "c.order." ZONE, 20,
				    (const char *[]){"127.0.0.13"}, 1);
			assert_host(&g.res.hosts[2], "b.order." ZONE, 20,
				    (const char *[]){"127.0.0.12"}, 1);
		}
	}
	assert_true(b_first > 0);
	assert_true(c_first > 0);
	dns_free(d);
}

static void test_mx_a_and_aaaa_ipv4_first(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "dual." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "mx.dual." ZONE, 5,
		    (const char *[]){"127.0.0.21", "2001:db8::21"}, 2);
	dns_free(d);
}

static void test_no_mx_is_implicit_mx(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "implicit." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "implicit." ZONE, 0,
		    (const char *[]){"127.0.0.31", "2001:db8::31"}, 2);

	resolve(d, true, "empty." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NO_ADDRESS);
	assert_int_equal(g.res.nhosts, 0);
	assert_non_null(strstr(g.res.error, "empty." ZONE));
	dns_free(d);
}

static void test_null_mx(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "nullmx." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NULL_MX);
	assert_int_equal(g.res.nhosts, 0);
	assert_non_null(strstr(g.res.error, "null MX"));

	resolve(d, true, "mixed." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "ok.mixed." ZONE, 10, (const char *[]){"127.0.0.81"}, 1);
	dns_free(d);
}

/* A zone the server does not serve: it answers REFUSED, unbound SERVFAIL. */
static void test_refused_is_tempfail(void **state)
{
	struct dns *d;
	struct got g;
	struct timespec t0, t1;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	resolve(d, true, "elsewhere.example", &g);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(g.res.status, DNS_TEMPFAIL);
	assert_int_equal(g.res.nhosts, 0);
	print_message("REFUSED: %s after %.2f s\n", g.res.error,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	dns_free(d);
}

static void test_nxdomain(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "nonexistent." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NXDOMAIN);
	assert_int_equal(g.res.nhosts, 0);
	resolve(d, false, "nonexistent." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NXDOMAIN);
	dns_free(d);
}

static void test_mx_hosts_without_address(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "noaddr." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NO_ADDRESS);
	assert_int_equal(g.res.nhosts, 0);

	resolve(d, true, "partial." ZONE, &g); /* the host without address is dropped */
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "ok.partial." ZONE, 20, (const char *[]){"127.0.0.41"}, 1);
	dns_free(d);
}

static void test_mx_target_is_cname(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "cname." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "alias.cname." ZONE, 10, (const char *[]){"127.0.0.51"}, 1);
	dns_free(d);
}

static void test_mx_ip_literal_exchange_skipped(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "literal." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "ok.literal." ZONE, 20, (const char *[]){"127.0.0.62"}, 1);

	resolve(d, true, "onlyliteral." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NO_ADDRESS);
	dns_free(d);
}

static void test_resolve_host(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, false, "HOST." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_host(&g.res.hosts[0], "host." ZONE, 0, (const char *[]){"127.0.0.71", "::1"}, 2);

	resolve(d, false, "v6only." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_host(&g.res.hosts[0], "v6only." ZONE, 0, (const char *[]){"2001:db8::72"}, 1);

	resolve(d, false, "empty." ZONE, &g);
	assert_int_equal(g.res.status, DNS_NO_ADDRESS);
	dns_free(d);
}

/* Literals and invalid names need no server at all: the system resolver
 * is configured but never asked (no query leaves the machine). */
static void test_literals_and_invalid_names_without_query(void **state)
{
	char err[256] = "";
	struct dns *d = dns_new(base, NULL, 0, err, sizeof(err));
	struct got g;
	char buf[64];

	(void)state;
	if (!d)
		fail_msg("dns_new: %s", err);
	resolve(d, false, "127.0.0.9", &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_host(&g.res.hosts[0], "127.0.0.9", 0, (const char *[]){"127.0.0.9"}, 1);

	resolve(d, false, "[IPv6:2001:db8::9]", &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 1);
	assert_string_equal(addr_text(&g.res.hosts[0].addr[0], buf, sizeof(buf)), "2001:db8::9");

	resolve(d, true, "[192.0.2.7]", &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_string_equal(addr_text(&g.res.hosts[0].addr[0], buf, sizeof(buf)), "192.0.2.7");

	const char *bad[] = {"", ".", "a..b", "bad name.test", "x@y.test", "caf\xc3\xa9.test",
			     "[1.2.3.4", "[IPv6:nope]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		resolve(d, true, bad[i], &g);
		assert_int_equal(g.res.status, DNS_NXDOMAIN);
		assert_int_equal(g.res.nhosts, 0);
		assert_true(g.res.error[0] != '\0');
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	resolve(d, false, longname, &g);
	assert_int_equal(g.res.status, DNS_NXDOMAIN);
	dns_free(d);
}

static void test_server_spec_errors(void **state)
{
	char err[256];
	const char *bad[] = {"not-an-ip", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x",
			     "[::1", "[::1]x", ""};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *servers[] = {(char *)bad[i]};
		err[0] = '\0';
		assert_null(dns_new(base, servers, 1, err, sizeof(err)));
		assert_non_null(strstr(err, "bad server address"));
	}
	char *good[] = {"127.0.0.1", "127.0.0.1:5353", "[::1]:5353", "::1", "[::1]"};
	struct dns *d = dns_new(base, good, 5, err, sizeof(err));
	assert_non_null(d);
	dns_free(d);
}

/* The server never answers: TEMPFAIL, in bounded time. */
static void test_dead_server_tempfail(void **state)
{
	char spec[32], err[256] = "";
	char *servers[] = {spec};
	struct dns *d;
	struct got g;
	struct timespec t0, t1;
	int port, hole;

	(void)state;
	hole = black_hole(&port);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	d = dns_new(base, servers, 1, err, sizeof(err));
	assert_non_null(d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	resolve(d, true, "order." ZONE, &g);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(g.res.status, DNS_TEMPFAIL);
	assert_int_equal(g.res.nhosts, 0);
	assert_non_null(strstr(g.res.error, "SERVFAIL"));
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("dead server: TEMPFAIL after %.2f s\n", took);
	assert_true(took < 10.0);
	/* the server is now known to be down: the next answer is immediate */
	resolve(d, false, "host." ZONE, &g);
	assert_int_equal(g.res.status, DNS_TEMPFAIL);
	dns_free(d);
	close(hole);
}

/* More MX records than DNS_MAX_HOSTS: the best ones are kept, in order,
 * with at most DNS_INFLIGHT address queries in flight. */
static void test_many_mx_bounded(void **state)
{
	struct dns *d;
	struct got g;

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	resolve(d, true, "many." ZONE, &g);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, DNS_MAX_HOSTS);
	for (size_t i = 0; i < DNS_MAX_HOSTS; i++) {
		char name[64], addr[32];
		snprintf(name, sizeof(name), "h%zu.many." ZONE, i + 1);
		snprintf(addr, sizeof(addr), "127.0.1.%zu", i + 1);
		assert_host(&g.res.hosts[i], name, (unsigned)i + 1, (const char *[]){addr}, 1);
	}
	resolve(d, true, "wide." ZONE, &g); /* one host, more A records than DNS_MAX_ADDRS */
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.hosts[0].naddr, DNS_MAX_ADDRS);
	dns_free(d);
}

static void never_called(void *arg, const struct dns_result *res)
{
	(void)arg;
	(void)res;
	fail_msg("callback of a request cancelled by dns_free");
}

static void count_call(void *arg, const struct dns_result *res)
{
	int *calls = arg;

	(void)res;
	assert_int_equal(++*calls, 1);
}

/* dns_free() with requests in every stage (answered but not delivered,
 * waiting for MX, resolving addresses): none is called back after it,
 * nothing leaks (ASan) and nothing of them is left in the loop. */
static void test_free_with_pending(void **state)
{
	char spec[32], err[256] = "";
	char *servers[] = {spec};
	struct dns *d, *dead;
	int calls[5] = {0}, before[5];
	int port, hole;

	(void)state;
	NEED_NSD();
	hole = black_hole(&port);
	d = dns_test_server();
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	dead = dns_new(base, servers, 1, err, sizeof(err));
	assert_non_null(dead);
	dns_resolve_mx(dead, "order." ZONE, never_called, NULL); /* 2 s to fail */
	dns_resolve_host(d, "127.0.0.1", count_call, &calls[0]);
	dns_resolve_mx(d, "bad name", count_call, &calls[1]);
	dns_resolve_mx(d, "order." ZONE, count_call, &calls[2]);
	dns_resolve_mx(d, "many." ZONE, count_call, &calls[3]);
	dns_resolve_mx(d, "many." ZONE, count_call, &calls[4]);
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_ONCE);
	dns_free(d);
	dns_free(dead);
	memcpy(before, calls, sizeof(calls));
	struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_memory_equal(before, calls, sizeof(calls));
	close(hole);
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
							     EVENT_BASE_COUNT_ACTIVE),
			 0);
}

struct chain {
	struct dns *d;
	int calls;
};

static void free_from_callback(void *arg, const struct dns_result *res)
{
	struct chain *c = arg;

	assert_int_equal(res->status, DNS_OK);
	c->calls++;
	dns_free(c->d); /* the others are pending: they are dropped */
	c->d = NULL;
	event_base_loopbreak(base);
}

static void test_free_inside_callback(void **state)
{
	struct chain c = {0};

	(void)state;
	NEED_NSD();
	c.d = dns_test_server();
	dns_resolve_host(c.d, "127.0.0.1", free_from_callback, &c); /* completes first */
	dns_resolve_mx(c.d, "order." ZONE, never_called, NULL);
	dns_resolve_mx(c.d, "many." ZONE, never_called, NULL);
	outstanding = 1;
	run_loop(10);
	assert_int_equal(c.calls, 1);
	assert_null(c.d);
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
	event_base_loopexit(base, &tv); /* late answers must go nowhere */
	event_base_dispatch(base);
}

/* Many requests at once on one resolver: each called back exactly once. */
static void test_concurrent_requests(void **state)
{
	struct dns *d;
	struct got g[24];
	const char *names[] = {"order", "dual", "implicit", "nullmx", "nonexistent", "cname"};
	const enum dns_status want[] = {DNS_OK, DNS_OK, DNS_OK, DNS_NULL_MX, DNS_NXDOMAIN, DNS_OK};

	(void)state;
	NEED_NSD();
	d = dns_test_server();
	memset(g, 0, sizeof(g));
	outstanding = 24;
	in_call = true;
	for (size_t i = 0; i < 24; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s." ZONE, names[i % 6]);
		dns_resolve_mx(d, name, on_result, &g[i]);
	}
	in_call = false;
	run_loop(20);
	for (size_t i = 0; i < 24; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res.status, want[i % 6]);
	}
	dns_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_preference_order_and_shuffle),
		cmocka_unit_test(test_mx_a_and_aaaa_ipv4_first),
		cmocka_unit_test(test_no_mx_is_implicit_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_refused_is_tempfail),
		cmocka_unit_test(test_mx_hosts_without_address),
		cmocka_unit_test(test_mx_target_is_cname),
		cmocka_unit_test(test_mx_ip_literal_exchange_skipped),
		cmocka_unit_test(test_resolve_host),
		cmocka_unit_test(test_many_mx_bounded),
		cmocka_unit_test(test_concurrent_requests),
		cmocka_unit_test(test_literals_and_invalid_names_without_query),
		cmocka_unit_test(test_server_spec_errors),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_free_inside_callback),
		cmocka_unit_test(test_dead_server_tempfail),
	};
	return cmocka_run_group_tests_name("dns", tests, setup_nsd, teardown_nsd);
}
