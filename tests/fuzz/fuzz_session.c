/*
 * fuzz_session.c - libFuzzer target for a whole SMTP server session
 * (src/smtp/server.c, commands.c, content.c) over an in-memory transport,
 * with the real queue store committing to a spool on tmpfs.
 *
 * Input: byte 0 chooses the receive connector (bits 0-1: "mx" anonymous
 * with STARTTLS offered and small limits, "relay" with relay permission,
 * "sub" with TLS required), the mode (bit 2: pipelined) and, in lock-step
 * mode, whether the client does the TLS handshake after a 220 to STARTTLS
 * (bit 3); the rest is what the client sends. The server end of a socketpair(AF_UNIX) is
 * handed to smtp_server_accept() as a connection from 127.0.0.1; the
 * fuzzer writes to the other end and reads the replies, running the
 * event loop until the session is idle (a commit in flight is waited
 * for: the queue's sync thread wakes the loop).
 *
 * Lock-step mode: the client stream is cut where the server will cut it
 * (a command line when the session reads commands, the announced octets
 * of a BDAT chunk, DATA content up to CRLF.CRLF), peeking at the session
 * state; each piece may be written in a few parts to exercise partial
 * lines, and the replies it caused are read before the next piece. A
 * command line the server takes as one command (it ends in LF, fits the
 * line limit, nothing else is buffered) is paired with its reply. Checked:
 *  - THE ENVELOPE INVARIANT: every committed envelope holds exactly the
 *    recipients answered 250 to a RCPT since the MAIL that opened the
 *    transaction: none answered 250 is missing, none not answered 250 is
 *    there (recipients compare as the server maps them: the formatted
 *    address, a local [IP] literal on the default domain, postmaster);
 *  - MAIL, RCPT, RSET and NOOP in proper CRLF lines get a reply;
 *  - with the TLS handshake done, the server says nothing before the
 *    first command over TLS, though the client pipelined a command in
 *    the same write as STARTTLS (RFC 3207 4.2, CVE-2011-0411).
 * Pipelined mode: the stream is written in a few arbitrary parts without
 * waiting. Checked: every committed recipient is one some RCPT line of
 * the input names, and a committed envelope has no more recipients than
 * the 250 replies to RCPT between its MAIL's 250 and its "queued as".
 * Both modes also check: every reply line is well formed ("ddd " or
 * "ddd-", CRLF, under 512 octets, one code per reply); every committed
 * message was answered "250 ... queued as <qid>" and every such reply
 * names a committed message; the queue file on disk holds the same
 * envelope (queue_load); after a 220 to STARTTLS without a handshake no
 * plaintext reply follows (only TLS records may); the session is freed once the client has gone and no file is
 * left in the queue (committed ones are removed after the checks).
 * ASan/UBSan and libFuzzer's leak check cover the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sanitizer/common_interface_defs.h>

#include "conf/conf.h"
#include "conf/gen.h"
#include "dir/passwd.h"
#include "mail/addr.h"
#include "mail/envelope.h"
#include "net/tls.h"
#include "queue/qfile.h" /* struct queue: commits in flight */
#include "queue/queue.h"
#include "smtp/cmd.h"
#include "smtp/server.h"
#include "smtp/session.h" /* the session state, to cut the stream as the server does */
#include "util/buf.h"
#include "util/str.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FQDN "mx.example.test"
#define POSTMASTER "postmaster@example.test"
#define TRANSCRIPT_MAX (4u << 20)
#define MAX_ACCEPTED 64
#define MAX_COMMITTED 64

static char g_spool[128];
static struct config *g_conf;
static struct event_base *g_base;
static struct queue *g_q;
static struct passwd_db *g_users;
static SSL_CTX **g_tls;
static struct smtp_server *g_srv;
static int g_report_fd = 2; /* the real stderr; fd 2 is /dev/null while the server runs */
static int g_null_fd = -1;
static SSL_CTX *g_client_tls;

/* ---- per input ----------------------------------------------------------- */

/* A RCPT answered 250: the addresses the server may have queued for it. */
struct accepted {
	char formatted[ADDR_TEXT_MAX];
	char literal_mapped[ADDR_TEXT_MAX]; /* "" unless [IP] literal */
	bool may_be_postmaster;
};

struct committed {
	char qid[QID_MAX];
	size_t nrcpt;
	bool replied;
};

static struct buf g_out; /* everything the server sent on this input */

static struct {
	bool pipelined;
	const uint8_t *input;
	size_t input_len;
	int fd; /* the client's end */
	bool want_tls;	  /* do the TLS handshake after a 220 to STARTTLS */
	SSL *ssl;	  /* the client's TLS session once the handshake is done */
	bool tls_done;	  /* ... and it was (g.ssl is freed before the checks) */
	size_t tls_from;  /* where the decrypted part of g_out starts */
	struct accepted acc[MAX_ACCEPTED];
	size_t nacc;
	bool acc_overflow; /* more than MAX_ACCEPTED: the exact check is off */
	struct committed com[MAX_COMMITTED];
	size_t ncom;
	uint64_t rng;
} g;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	dup2(g_report_fd, 2);
	if (write(2, "fuzz_session: ", 14) < 0 || write(2, msg, (size_t)n) < 0 ||
	    write(2, "\n", 1) < 0)
		(void)0;
	abort();
}

static void quiet(bool on)
{
	/* transit logs every event to stderr: keep the fuzzer's output readable */
	dup2(on ? g_null_fd : g_report_fd, 2);
}

static uint32_t rnd(void)
{
	g.rng ^= g.rng << 13;
	g.rng ^= g.rng >> 7;
	g.rng ^= g.rng << 17;
	return (uint32_t)g.rng;
}

/* ---- set-up (once) --------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		fail("cannot write %s", path);
}

static bool local_ip(int family, const void *ip)
{
	static const unsigned char lo[4] = {127, 0, 0, 1};

	return family == AF_INET && memcmp(ip, lo, 4) == 0;
}

static void on_message(void *arg, struct envelope *env);

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The spool on tmpfs goes when the fuzzer exits normally (a crash leaves
 * it, with the input, for whoever looks). */
static void remove_spool(void) { nftw(g_spool, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[256], conf[4096], err[256];
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	struct smtp_server_params sp;
	size_t i;
	(void)argc;
	(void)argv;

	signal(SIGPIPE, SIG_IGN);
	g_report_fd = dup(2);
	g_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (g_report_fd < 0 || g_null_fd < 0)
		fail("dup/open: %s", strerror(errno));
	__sanitizer_set_report_fd((void *)(intptr_t)g_report_fd);

	snprintf(g_spool, sizeof(g_spool), "%s/fuzz_session.XXXXXX", tmp);
	if (!mkdtemp(g_spool))
		fail("mkdtemp: %s", strerror(errno));
	atexit(remove_spool);
	snprintf(path, sizeof(path), "%s/users", g_spool);
	write_file(path, "alice@example.test:{CRYPT}x::::::\n"
			 "bob@example.test:{CRYPT}x::::::\n"
			 "carol@example.test:{CRYPT}x::::::\n"
			 "abuse@example.test:{CRYPT}x::::::\n"
			 "j\xc3\xb6rg@example.test:{CRYPT}x::::::\n");
	snprintf(conf, sizeof(conf),
		 "server {\n"
		 "  fqdn = \"" FQDN "\"\n"
		 "  spool = \"%s\"\n"
		 "  postmaster = \"" POSTMASTER "\"\n"
		 "  max-hop-count = 5\n"
		 "}\n"
		 "accepted-domain \"example.test\" { type = \"authoritative\" }\n"
		 "accepted-domain \"relay.example.test\" { type = \"internal-relay\" }\n"
		 "mailboxes { maildir = \"%s/mail/%%d/%%u\" }\n"
		 "users { passwd-file = \"%s/users\" }\n"
		 "receive-connector \"mx\" {\n"
		 "  bindings = { \"127.0.0.1:1\" }\n"
		 "  remote-ip-ranges = { \"0.0.0.0/0\", \"::/0\" }\n"
		 "  permissions = { \"anonymous\" }\n"
		 "  tls = \"offer\"\n"
		 "  max-message-size = \"2000\"\n"
		 "  max-recipients = 4\n"
		 "  max-errors = 6\n"
		 "  tarpit = \"0s\"\n" /* a refused RCPT answered at once (tarpit: test_tarpit.py) */
		 "  max-line-length = 512\n"
		 "  max-text-line-length = 512\n"
		 "}\n"
		 "receive-connector \"relay\" {\n"
		 "  bindings = { \"127.0.0.1:2\" }\n"
		 "  remote-ip-ranges = { \"127.0.0.0/8\" }\n"
		 "  permissions = { \"relay\" }\n"
		 "  tls = \"none\"\n"
		 "  max-errors = 8\n" /* under the 1 s reply delay from the 10th error */
		 "  tarpit = \"0s\"\n"
		 "  max-message-size = \"64k\"\n"
		 "  max-recipients = 20\n"
		 "  auth = { \"plain\", \"login\" }\n" /* in clear: the client is 127.0.0.1 */
		 "  auth-cleartext = \"loopback\"\n"
		 "}\n"
		 "receive-connector \"sub\" {\n"
		 "  bindings = { \"127.0.0.1:3\" }\n"
		 "  remote-ip-ranges = { \"0.0.0.0/0\" }\n"
		 "  permissions = { \"anonymous\" }\n"
		 "  tls = \"require\"\n"
		 "  max-errors = 8\n"
		 "  tarpit = \"0s\"\n"
		 "}\n"
		 "send-connector \"small\" {\n"
		 "  address-spaces = { \"small.test\" }\n"
		 "  smart-hosts = { \"[127.0.0.1]\" }\n"
		 "  max-message-size = \"600\"\n"
		 "  allowed-senders = { \"*@example.test\" }\n"
		 "}\n"
		 "send-connector \"out\" {\n"
		 "  address-spaces = { \"*\" }\n"
		 "}\n"
		 "queue { sync = \"syncfs\" }\n"
		 /* no wait after a failed AUTH, no lockout carried between inputs */
		 "auth-failures { delay = \"0s\" max-per-source = 100000000 "
		 "max-per-login = 100000000 }\n",
		 g_spool, g_spool, g_spool);
	snprintf(path, sizeof(path), "%s/transit.conf", g_spool);
	write_file(path, conf);
	g_conf = conf_load(path);
	if (!g_conf)
		fail("conf_load failed");

	if (evthread_use_pthreads() != 0)
		fail("evthread_use_pthreads");
	g_base = event_base_new();
	g_q = queue_open(g_spool, "fz", QUEUE_SYNC_SYNCFS, g_base, err, sizeof(err));
	if (!g_base || !g_q)
		fail("queue_open: %s", err);
	g_users = passwd_db_open(g_conf->passwd_file);
	if (!g_users || passwd_db_count(g_users) != 5)
		fail("users file not read");
	g_tls = calloc(g_conf->nrcs, sizeof(*g_tls));
	for (i = 0; i < g_conf->nrcs; i++) {
		if (g_conf->rcs[i].tls == RC_TLS_NONE)
			continue;
		g_tls[i] = tls_server_ctx(NULL, NULL, g_spool, FQDN, err, sizeof(err));
		if (!g_tls[i])
			fail("tls_server_ctx: %s", err);
	}
	memset(&sp, 0, sizeof(sp));
	sp.gen = conf_gen_new(g_conf, 1); /* lives as long as the process */
	sp.gen->rc_tls = g_tls;
	sp.base = g_base;
	sp.queue = g_q;
	sp.users = g_users;
	sp.is_local_ip = local_ip;
	sp.on_message = on_message;
	g_srv = smtp_server_new(&sp);
	g_client_tls = SSL_CTX_new(TLS_client_method());
	if (!g_client_tls)
		fail("client SSL_CTX_new");
	SSL_CTX_set_verify(g_client_tls, SSL_VERIFY_NONE, NULL);
	buf_init(&g_out);
	return 0;
}

/* ---- the client side ------------------------------------------------------ */

static struct smtp_session *session(void) { return g_srv->sessions; }

static size_t drain_client(void)
{
	char b[16384];
	size_t total = 0;
	ssize_t n;

	if (g.ssl) {
		int r;
		while ((r = SSL_read(g.ssl, b, sizeof(b))) > 0) {
			if (g_out.len + (size_t)r <= TRANSCRIPT_MAX)
				buf_append(&g_out, b, (size_t)r);
			total += (size_t)r;
		}
		ERR_clear_error();
		return total;
	}
	while ((n = read(g.fd, b, sizeof(b))) > 0) {
		if (g_out.len + (size_t)n <= TRANSCRIPT_MAX)
			buf_append(&g_out, b, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

struct snapshot {
	unsigned nsessions;
	int state;
	size_t in, out;
};

static struct snapshot snap(void)
{
	struct snapshot sn = {g_srv->nsessions, -1, 0, 0};
	struct smtp_session *s = session();

	if (s) {
		sn.state = (int)s->state;
		if (s->bev) {
			sn.in = evbuffer_get_length(bufferevent_get_input(s->bev));
			sn.out = evbuffer_get_length(bufferevent_get_output(s->bev));
		}
	}
	return sn;
}

/* Run the loop until nothing moves (a commit in flight is waited for). */
static void pump(void)
{
	struct snapshot before = snap(), after;
	int idle = 0;
	time_t deadline = time(NULL) + 10;

	for (unsigned i = 0; idle < 3; i++) {
		bool commit = g_q->inflight > 0;

		if (i > 200000 || time(NULL) > deadline)
			fail("the session never settles (state %d)", before.state);
		event_base_loop(g_base, commit ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
		after = snap();
		if (drain_client() > 0 || commit || memcmp(&before, &after, sizeof(after)) != 0)
			idle = 0;
		else
			idle++;
		before = after;
	}
}

/* Write everything (pumping while the socket is full); false if the
 * server has gone. */
static bool send_bytes(const uint8_t *p, size_t n)
{
	time_t deadline = time(NULL) + 10;

	while (n > 0) {
		ssize_t w;

		if (g.ssl) {
			int r = SSL_write(g.ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
			int e = r > 0 ? 0 : SSL_get_error(g.ssl, r);
			ERR_clear_error();
			if (e != 0 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return false;
			w = r > 0 ? r : -1;
			errno = EAGAIN;
		} else {
			w = write(g.fd, p, n);
		}
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return false; /* EPIPE: the server closed */
		if (g_srv->nsessions == 0 || time(NULL) > deadline)
			return false;
		pump();
	}
	return true;
}

/* Write a piece in up to three parts, letting the server read between. */
static bool send_piece(const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t part = n;

		if (n > 1 && rnd() % 4 == 0)
			part = 1 + rnd() % (n - 1);
		if (!send_bytes(p, part))
			return false;
		p += part;
		n -= part;
		if (n > 0)
			pump();
	}
	pump();
	return true;
}

/* ---- recipients ----------------------------------------------------------- */

/* What the server may queue for "RCPT <arg>" if it says 250. */
static bool accepted_from_arg(const char *arg, size_t len, struct accepted *a)
{
	struct mail_addr to, mapped;
	struct rcpt_params rp;
	struct smtp_err err;

	memset(a, 0, sizeof(*a));
	if (!smtp_parse_rcpt(arg, len, &to, &rp, &err))
		return false;
	if (!addr_format(&to, a->formatted, sizeof(a->formatted)))
		return false;
	if (to.flags & ADDR_F_LITERAL) {
		mapped = to;
		str_copy(mapped.domain, "example.test", sizeof(mapped.domain));
		if (!addr_format(&mapped, a->literal_mapped, sizeof(a->literal_mapped)))
			a->literal_mapped[0] = '\0';
	}
	a->may_be_postmaster = (to.flags & ADDR_F_NO_DOMAIN) ||
			       str_casecmp(to.local, "postmaster") == 0 ||
			       str_casecmp(to.local, "abuse") == 0;
	return true;
}

static bool accepted_matches(const struct accepted *a, const char *addr)
{
	return str_casecmp(a->formatted, addr) == 0 ||
	       (a->literal_mapped[0] && str_casecmp(a->literal_mapped, addr) == 0) ||
	       (a->may_be_postmaster && str_casecmp(addr, POSTMASTER) == 0);
}

/* Pipelined mode: is addr what some RCPT line of the input asks for? */
static bool named_by_input(const char *addr)
{
	const char *p = (const char *)g.input, *end = p + g.input_len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct smtp_cmd c;
		struct accepted a;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		smtp_cmd_split(p, len, &c);
		if (c.verb == SMTP_RCPT && accepted_from_arg(c.arg, c.arg_len, &a) &&
		    accepted_matches(&a, addr))
			return true;
		p += len + 1;
		while (p < end && p[-1] != '\n')
			p++;
	}
	return false;
}

static void check_same_envelope(const struct envelope *a, const struct envelope *b)
{
	if (strcmp(a->qid, b->qid) != 0 || strcmp(a->sender, b->sender) != 0 || a->nrcpt != b->nrcpt)
		fail("queue file %s differs from the committed envelope", a->qid);
	for (size_t i = 0; i < a->nrcpt; i++)
		if (strcmp(a->rcpt[i].addr, b->rcpt[i].addr) != 0)
			fail("queue file %s: recipient %zu differs", a->qid, i);
	if (a->content_len != b->content_len)
		fail("queue file %s: content length differs", a->qid);
}

static void on_message(void *arg, struct envelope *env)
{
	char path[512], err[256];
	struct envelope disk;
	(void)arg;

	if (env->nrcpt == 0)
		fail("committed %s without recipients", env->qid);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const char *r = env->rcpt[i].addr;
		bool ok = false;

		if (g.pipelined) {
			ok = named_by_input(r);
		} else {
			for (size_t k = 0; k < g.nacc && !ok; k++)
				ok = accepted_matches(&g.acc[k], r);
			ok = ok || g.acc_overflow;
		}
		if (!ok)
			fail("committed %s has recipient <%s> that no RCPT got a 250 for", env->qid, r);
	}
	if (!g.pipelined) {
		for (size_t k = 0; k < g.nacc; k++) {
			bool found = false;
			for (size_t i = 0; i < env->nrcpt && !found; i++)
				found = accepted_matches(&g.acc[k], env->rcpt[i].addr);
			if (!found)
				fail("RCPT TO:<%s> was answered 250 but is missing from committed %s "
				     "(%zu recipients)",
				     g.acc[k].formatted, env->qid, env->nrcpt);
		}
	}
	queue_path(g_q, env->qid, path, sizeof(path));
	if (queue_load(path, &disk, err, sizeof(err)) != 0)
		fail("committed %s cannot be loaded: %s", env->qid, err);
	check_same_envelope(env, &disk);
	envelope_free(&disk);
	if (g.ncom < MAX_COMMITTED) {
		struct committed *c = &g.com[g.ncom++];
		str_copy(c->qid, env->qid, sizeof(c->qid));
		c->nrcpt = env->nrcpt;
		c->replied = false;
	}
	if (queue_remove(g_q, env->qid) != 0)
		fail("queue_remove %s: %s", env->qid, strerror(errno));
	envelope_free(env);
	free(env);
}

/* ---- replies --------------------------------------------------------------- */

/* Code of the first reply in out[from..]; 0 when there is none complete. */
static int first_reply_code(size_t from)
{
	const char *p = g_out.data + from;
	size_t n = g_out.len - from;

	while (n >= 4) {
		const char *nl = memchr(p, '\n', n);
		if (!nl)
			return 0;
		if (p[3] == ' ' || nl - p == 4)
			return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return 0;
}

static struct committed *find_committed(const char *qid, size_t len)
{
	for (size_t i = 0; i < g.ncom; i++)
		if (strlen(g.com[i].qid) == len && memcmp(g.com[i].qid, qid, len) == 0)
			return &g.com[i];
	return NULL;
}

/* The whole transcript: syntax, "queued as", STARTTLS, RCPT counts. */
static void check_transcript(void)
{
	const char *p = g_out.data, *end = p + g_out.len;
	static const char tls220[] = "220 2.0.0 Ready to start TLS\r\n";
	int code = 0; /* of the multi-line reply in progress */
	size_t rcpt_ok = 0;

	if (g_out.len >= TRANSCRIPT_MAX)
		return; /* cut: only the beginning was kept */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;
		int c;

		if (!nl)
			fail("reply without CRLF at the end of the transcript");
		len = (size_t)(nl - p) + 1;
		if (len < 5 || p[len - 2] != '\r' || memchr(p, '\r', len - 2))
			fail("malformed reply line \"%.*s\"", (int)len, p);
		if (len > 512)
			fail("reply line of %zu octets (RFC 5321 4.5.3.1.5: 512)", len);
		if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
		    p[2] > '9' || (p[3] != ' ' && p[3] != '-' && len != 5))
			fail("malformed reply line \"%.*s\"", (int)len, p);
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (code && c != code)
			fail("multi-line reply changes its code: %d then %d", code, c);
		code = p[3] == '-' ? c : 0;
		if (len >= 14 && memcmp(p, "250 2.1.0 ", 10) == 0)
			rcpt_ok = 0;
		else if (len >= 14 && memcmp(p, "250 2.1.5 ", 10) == 0)
			rcpt_ok++;
		else if (len > 25 && memcmp(p, "250 2.0.0 Ok: queued as ", 24) == 0) {
			struct committed *m = find_committed(p + 24, len - 26);
			if (!m)
				fail("\"%.*s\" but no such message was committed", (int)len - 2, p);
			if (m->replied)
				fail("%s: two replies for one message", m->qid);
			m->replied = true;
			if (m->nrcpt > rcpt_ok)
				fail("%s has %zu recipients but only %zu RCPT got a 250", m->qid,
				     m->nrcpt, rcpt_ok);
		}
		p += len;
		if (g.tls_done && (size_t)(p - g_out.data) == g.tls_from)
			continue; /* the handshake was done: TLS replies follow */
		if (len == sizeof(tls220) - 1 && memcmp(p - len, tls220, len) == 0) {
			/* only TLS records (handshake, alert) may follow */
			if (p < end && *p != 0x15 && *p != 0x16)
				fail("plaintext after the 220 to STARTTLS: \"%.*s\"",
				     (int)(end - p > 60 ? 60 : end - p), p);
			break;
		}
	}
	if (code)
		fail("the transcript ends inside a multi-line reply");
	for (size_t i = 0; i < g.ncom; i++)
		if (!g.com[i].replied && p >= end)
			fail("%s was committed but never answered", g.com[i].qid);
}

/* ---- the two modes ---------------------------------------------------------- */

/* The session reads command lines (any state but these; a state added
 * later for commands, like one between BDAT chunks, counts too). */
static bool command_state(enum session_state st)
{
	return st != SS_GREETING && st != SS_DATA && st != SS_BDAT && st != SS_COMMIT &&
	       st != SS_STARTTLS && st != SS_CLOSING;
}

/* Length of the DATA content piece at p: through the first CRLF.CRLF
 * (or a leading ".CRLF"), else all of it. */
static size_t data_piece(const uint8_t *p, size_t n)
{
	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= n; i++)
		if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return n;
}

/* The client side of STARTTLS (RFC 3207), driven step by step with the
 * server's loop. false if it failed (the session is then gone or going). */
static bool client_handshake(void)
{
	time_t deadline = time(NULL) + 10;
	size_t before;

	g.ssl = SSL_new(g_client_tls);
	if (!g.ssl || SSL_set_fd(g.ssl, g.fd) != 1)
		fail("client SSL_new");
	SSL_set_connect_state(g.ssl);
	for (;;) {
		int r = SSL_do_handshake(g.ssl);
		int e = r == 1 ? 0 : SSL_get_error(g.ssl, r);

		ERR_clear_error();
		if (r == 1)
			break;
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    g_srv->nsessions == 0 || time(NULL) > deadline) {
			SSL_free(g.ssl);
			g.ssl = NULL;
			return false;
		}
		event_base_loop(g_base, EVLOOP_NONBLOCK);
	}
	g.tls_from = g_out.len;
	g.tls_done = true;
	before = g_out.len;
	pump();
	/* RFC 3207 4: the server must not speak first, and anything the
	 * client pipelined behind STARTTLS was discarded, never answered */
	if (g_out.len != before)
		fail("the server sent \"%.*s\" after the TLS handshake, before any command",
		     (int)(g_out.len - before > 80 ? 80 : g_out.len - before), g_out.data + before);
	return true;
}

/* After a command line: run the loop until its reply has come, the
 * session reads a BDAT chunk, or it is gone. A reply the server delays on
 * a timer (a tarpit) is waited for, up to 3 s. */
static void wait_reply(size_t from)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct smtp_session *s = session();
		struct timeval tv = {0, 20000};

		if (first_reply_code(from) != 0 || !s || s->dead || s->state == SS_BDAT)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 3)
			return;
		event_base_loopexit(g_base, &tv);
		event_base_dispatch(g_base);
		pump();
	}
}

static void run_lockstep(const uint8_t *p, size_t n)
{
	while (n > 0) {
		struct smtp_session *s = session();
		size_t piece, from = g_out.len;
		bool paired = false; /* the server takes this piece as one command line */
		bool strict = false; /* ... and it is a proper one: CRLF, no other CR */

		if (s == NULL || s->dead || s->bev == NULL)
			return;
		if (s->state == SS_COMMIT) {
			pump();
			if (session() == s && s->state == SS_COMMIT)
				fail("commit never finished");
			continue;
		}
		if (s->state == SS_BDAT) {
			piece = s->bdat_left < n ? (size_t)s->bdat_left : n;
		} else if (s->state == SS_DATA) {
			piece = data_piece(p, n);
		} else if (command_state(s->state)) {
			const uint8_t *nl = memchr(p, '\n', n);
			piece = nl ? (size_t)(nl - p) + 1 : n;
			paired = p[piece - 1] == '\n' && piece <= s->rc->max_line_length &&
				 !s->skip_cmd_line &&
				 evbuffer_get_length(bufferevent_get_input(s->bev)) == 0;
			strict = paired && piece >= 2 && p[piece - 2] == '\r' &&
				 !memchr(p, '\r', piece - 2);
		} else {
			/* closing, or a TLS handshake the fuzzer cannot do: the rest
			 * goes as it is (after STARTTLS it must be discarded) */
			send_piece(p, n);
			return;
		}
		if (strict && g.want_tls && !s->tls && s->helo[0] &&
		    (s->rc->tls == RC_TLS_OFFER || s->rc->tls == RC_TLS_REQUIRE) && piece == 10 &&
		    memcmp(p, "STARTTLS\r\n", 10) == 0) {
			/* a line pipelined behind STARTTLS goes in the same write:
			 * the server must drop it (CVE-2011-0411) */
			const uint8_t *nl = memchr(p + piece, '\n', n - piece);
			size_t extra = nl ? (size_t)(nl - (p + piece)) + 1 : 0;
			if (!send_bytes(p, piece + extra))
				return;
			pump();
			if (first_reply_code(from) != 220)
				fail("STARTTLS after EHLO on a TLS connector not answered 220");
			p += piece + extra;
			n -= piece + extra;
			if (!client_handshake())
				return;
			continue;
		}
		if (!send_piece(p, piece))
			return;
		if (paired) {
			/* a bare LF line end may be taken as a line end too (bare-lf =
			 * normalize): pair it, but only a strict line must be answered */
			size_t len = piece - 1 - (piece >= 2 && p[piece - 2] == '\r');
			struct smtp_cmd c;
			int code;

			wait_reply(from);
			smtp_cmd_split((const char *)p, len, &c);
			code = first_reply_code(from);
			if (strict && code == 0 && (c.verb == SMTP_MAIL || c.verb == SMTP_RCPT ||
						    c.verb == SMTP_RSET || c.verb == SMTP_NOOP))
				fail("no reply to \"%.*s\"", (int)(piece - 2), (const char *)p);
			if (c.verb == SMTP_MAIL && code == 250) {
				g.nacc = 0;
				g.acc_overflow = false;
			} else if (c.verb == SMTP_STARTTLS && code == 220 && g.want_tls) {
				p += piece;
				n -= piece;
				if (!client_handshake())
					return;
				continue;
			} else if (c.verb == SMTP_RCPT && code == 250) {
				struct accepted a;
				if (!accepted_from_arg(c.arg, c.arg_len, &a)) {
					if (strict)
						fail("250 to a RCPT the parser refuses: \"%.*s\"",
						     (int)len, (const char *)p);
					g.acc_overflow = true; /* not ours to map: no exact check */
				} else if (g.nacc < MAX_ACCEPTED)
					g.acc[g.nacc++] = a;
				else
					g.acc_overflow = true;
			}
		}
		p += piece;
		n -= piece;
	}
}

static void run_pipelined(const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t part = n > 1 && rnd() % 2 ? 1 + rnd() % n : n;
		if (part > n)
			part = n;
		if (!send_bytes(p, part))
			return;
		pump();
		p += part;
		n -= part;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct sockaddr_in sin;
	size_t rc;
	time_t deadline;
	uint64_t h = 1469598103934665603ull;

	if (size < 1 || size > 65536)
		return 0;
	rc = (size_t)(data[0] & 3) % g_conf->nrcs;
	memset(&g, 0, sizeof(g));
	g.pipelined = (data[0] & 4) != 0;
	g.want_tls = !g.pipelined && (data[0] & 8) != 0;
	g.input = data + 1;
	g.input_len = size - 1;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	g.rng = h | 1;
	buf_reset(&g_out);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		fail("socketpair: %s", strerror(errno));
	g.fd = sv[1];
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	quiet(true);
	smtp_server_accept(g_srv, sv[0], (struct sockaddr *)&sin, sizeof(sin), rc);
	pump();
	if (g.pipelined)
		run_pipelined(g.input, g.input_len);
	else
		run_lockstep(g.input, g.input_len);
	pump();
	/* the client goes away; the session must be freed */
	if (g.ssl) {
		SSL_free(g.ssl); /* no close_notify: an abrupt end is what a server must survive */
		g.ssl = NULL;
	}
	close(g.fd);
	deadline = time(NULL) + 10;
	while (g_srv->nsessions > 0 || g_q->inflight > 0) {
		if (time(NULL) > deadline)
			fail("session not freed after the client left");
		event_base_loop(g_base, g_q->inflight > 0 ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
	}
	quiet(false);
	if (getenv("FUZZ_SESSION_TRACE")) /* to see a dialogue: the server's side */
		if (write(g_report_fd, g_out.data, g_out.len) < 0)
			(void)0;
	check_transcript();
	return 0;
}
