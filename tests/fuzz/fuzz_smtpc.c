/*
 * fuzz_smtpc.c - libFuzzer target for a whole outbound SMTP client session
 * (src/deliver/smtp_client.c, smtp_client_tx.c): smtpc_open() connects to
 * a listener of the fuzzer on 127.0.0.1, and the fuzzer plays the server.
 * It reads the client's command lines and answers each one with the next
 * reply of the input (a reply is the input up to a line end whose line
 * does not continue with "ddd-"); after a 3xx to DATA it reads the content
 * up to the final "." line, which it answers too. When the input runs out
 * the server closes. The client sends one message from sender to three
 * recipients (content from a file on tmpfs) and then closes. Byte 0 bit 0
 * gives the client AUTH credentials (PLAIN/LOGIN when offered).
 *
 * Checks:
 *  - every line the client sends ends in CRLF, has no other CR or LF and
 *    is at most 512 octets (RFC 5321 4.5.3.1.4); the content it sends
 *    after a 354 is exactly the file, dot-stuffed (RFC 5321 4.5.2), or
 *    nothing ("." alone);
 *  - the open callback runs once, the send callback at most once and
 *    only after a good open; every reply code reported is 200..599,
 *    local ones 4xx/5xx;
 *  - THE RECIPIENT INVARIANT, when every reply the server gave was one
 *    well-formed reply: a recipient is reported 2xx exactly when its RCPT
 *    got a 2xx, DATA a 354 and the final "." a 2xx (a 2xx reported without
 *    that loses mail; the reverse delivers twice); and a transaction with
 *    no 2xx for the final "." never reports DONE with a 2xx recipient.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/smtp_client.h"
#include "deliver/smtp_client_int.h" /* the client's socket, to see what is in flight */
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NRCPT 3
#define CONTENT "Subject: fuzz\r\n\r\nline\r\n.starts with a dot\r\n..two\r\n.\r\nend\r\n"
/* CONTENT dot-stuffed, as it must appear on the wire (without the final ".") */
#define STUFFED "Subject: fuzz\r\n\r\nline\r\n..starts with a dot\r\n...two\r\n..\r\nend\r\n"

static struct event_base *g_base;
static int g_listen = -1, g_content = -1, g_null = -1, g_report = 2;
static struct sockaddr_in g_addr;

enum verb { V_OTHER, V_EHLO, V_HELO, V_MAIL, V_RCPT, V_DATA, V_DOT, V_RSET, V_QUIT };

static struct {
	const uint8_t *in;
	size_t n;
	int fd; /* the server's end */
	struct buf rx; /* client bytes not yet consumed */
	bool in_data;	/* reading content after a 354 */
	struct buf data; /* the content received */
	bool ambiguous; /* a reply that was not exactly one well-formed reply */
	int mail_code, data_code, dot_code, rcpt_code[NRCPT];
	size_t nrcpt_seen;
	bool data_seen, dot_seen, content_ok;
	int open_calls, send_calls;
	bool closed; /* smtpc_close called */
	struct smtpc *c;
	bool server_closed;
} g;

static void fail(const char *what)
{
	dup2(g_report, 2);
	fprintf(stderr, "fuzz_smtpc: %s\n", what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char path[128];
	socklen_t len = sizeof(g_addr);
	(void)argc;
	(void)argv;

	signal(SIGPIPE, SIG_IGN);
	g_report = dup(2);
	g_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	g_base = event_base_new();
	g_listen = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&g_addr, 0, sizeof(g_addr));
	g_addr.sin_family = AF_INET;
	g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!g_base || g_listen < 0 || bind(g_listen, (struct sockaddr *)&g_addr, sizeof(g_addr)) ||
	    listen(g_listen, 16) || getsockname(g_listen, (struct sockaddr *)&g_addr, &len))
		fail("listener");
	snprintf(path, sizeof(path), "%s/fuzz_smtpc.XXXXXX", tmp);
	g_content = mkstemp(path);
	if (g_content < 0 || write(g_content, CONTENT, strlen(CONTENT)) != (ssize_t)strlen(CONTENT))
		fail("content file");
	unlink(path);
	buf_init(&g.rx);
	buf_init(&g.data);
	log_init("fuzz_smtpc", getenv("FUZZ_SMTPC_TRACE") != NULL);
	return 0;
}

/* ---- the server side ----------------------------------------------------- */

static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Length of the next reply in the input; sets *code, or -1 when the
 * reply is not exactly one well-formed reply as RFC 5321 4.2 has it. */
static size_t next_reply(int *code)
{
	size_t off = 0, lines = 0;

	*code = 0;
	while (off < g.n) {
		const uint8_t *l = g.in + off, *nl = memchr(l, '\n', g.n - off);
		size_t len = nl ? (size_t)(nl - l) : g.n - off;
		size_t text = len > 0 && l[len - 1] == '\r' ? len - 1 : len;
		bool more = text >= 4 && l[3] == '-';
		bool good = nl && text >= 3 && text <= 2048 && l[0] >= '2' && l[0] <= '5' &&
			    l[1] >= '0' && l[1] <= '5' && digit(l[2]) &&
			    (text == 3 || l[3] == ' ' || l[3] == '-') &&
			    !memchr(l, '\r', text) && ++lines <= 100;
		int c = good ? (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0') : -1;

		if (!good || (*code && c != *code))
			*code = -1;
		else if (*code == 0)
			*code = c;
		off += nl ? len + 1 : len;
		if (!more)
			break;
	}
	if (off == g.n && (g.n == 0 || g.in[g.n - 1] != '\n'))
		*code = -1; /* cut short */
	return off;
}

/* Answer one client command; false when the input is used up. */
static bool answer(int *code_out)
{
	int code;
	size_t len;

	if (g.n == 0 || g.server_closed) {
		if (!g.server_closed) {
			shutdown(g.fd, SHUT_RDWR);
			g.server_closed = true;
		}
		*code_out = -1; /* closed: the client got no reply (not ambiguous) */
		return false;
	}
	len = next_reply(&code);
	if (code < 0)
		g.ambiguous = true;
	if (write(g.fd, g.in, len) != (ssize_t)len)
		g.ambiguous = true; /* the client went away: nothing more is certain */
	g.in += len;
	g.n -= len;
	*code_out = code;
	return true;
}

static enum verb verb_of(const char *l, size_t n)
{
	static const struct { const char *w; enum verb v; } t[] = {
		{"EHLO ", V_EHLO}, {"HELO ", V_HELO}, {"MAIL FROM:", V_MAIL}, {"RCPT TO:", V_RCPT},
		{"DATA", V_DATA}, {"RSET", V_RSET}, {"QUIT", V_QUIT},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (n >= strlen(t[i].w) && memcmp(l, t[i].w, strlen(t[i].w)) == 0)
			return t[i].v;
	return V_OTHER;
}

static void on_command(enum verb v, int code)
{
	switch (v) {
	case V_MAIL:
		g.mail_code = code;
		g.nrcpt_seen = 0;
		g.data_seen = g.dot_seen = false;
		break;
	case V_RCPT:
		if (g.nrcpt_seen < NRCPT)
			g.rcpt_code[g.nrcpt_seen] = code;
		g.nrcpt_seen++;
		break;
	case V_DATA:
		g.data_seen = true;
		g.data_code = code;
		if (code == 354) {
			g.in_data = true;
			buf_reset(&g.data);
		}
		break;
	case V_DOT:
		g.dot_seen = true;
		g.dot_code = code;
		break;
	case V_RSET:
		/* the next MAIL starts again */
		break;
	default:
		break;
	}
}

/* Consume what the client sent: lines, or content after a 354. */
static void serve(void)
{
	char b[65536];
	ssize_t r;

	while ((r = read(g.fd, b, sizeof(b))) > 0) {
		buf_append(&g.rx, b, (size_t)r);
		if (getenv("FUZZ_SMTPC_TRACE"))
			dprintf(g_report, "S: read %zd\n", r);
	}
	for (;;) {
		const char *p = g.rx.data;
		const char *nl = g.rx.len ? memchr(p, '\n', g.rx.len) : NULL;
		size_t len;
		int code;

		if (!nl) {
			if (!g.in_data && g.rx.len > 512)
				fail("command line longer than 512 octets");
			return;
		}
		len = (size_t)(nl - p) + 1;
		if (len < 2 || p[len - 2] != '\r' || memchr(p, '\r', len - 2))
			fail("a line from the client without CRLF or with a bare CR");
		if (getenv("FUZZ_SMTPC_TRACE") && g.in_data)
			dprintf(g_report, "D: %.*s", (int)len, p);
		if (g.in_data) {
			if (len == 3 && p[0] == '.') {
				g.in_data = false;
				g.content_ok = g.data.len == 0 || (g.data.len == strlen(STUFFED) &&
								   memcmp(g.data.data, STUFFED, g.data.len) == 0);
				if (!g.content_ok)
					fail("the content sent is not the file dot-stuffed");
				answer(&code);
				on_command(V_DOT, code);
			} else {
				buf_append(&g.data, p, len);
			}
		} else {
			if (len > 512)
				fail("command line longer than 512 octets");
			enum verb v = verb_of(p, len - 2);
			if (getenv("FUZZ_SMTPC_TRACE"))
				dprintf(g_report, "C: %.*s", (int)len, p);
			answer(&code);
			on_command(v, code);
		}
		memmove(g.rx.data, g.rx.data + len, g.rx.len - len);
		g.rx.len -= len;
	}
}

/* Bytes written on fd that the other end's kernel has not taken yet
 * (TCP on loopback under load can be late: "nothing moves" must not be
 * decided while something is still in flight). */
static int in_flight(int fd)
{
	int n = 0;

	if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) != 0)
		return 0;
	return n;
}

static int client_fd(void)
{
	if (g.closed || !g.c)
		return -1;
	return g.c->bev ? bufferevent_getfd(g.c->bev) : g.c->fd;
}

/* ---- the client ---------------------------------------------------------- */

static void check_reply(const struct smtpc_reply *r)
{
	if (r->code < 200 || r->code > 599 || (r->local && r->code < 400) ||
	    !memchr(r->text, '\0', sizeof(r->text)) || !memchr(r->enh, '\0', sizeof(r->enh)))
		fail("reply code out of range");
}

static void on_sent(struct smtpc *c, void *arg, const struct smtpc_result *res)
{
	bool certain = !g.ambiguous;
	(void)arg;

	if (++g.send_calls > 1 || g.open_calls != 1)
		fail("send callback twice or before open");
	if (res->nrcpt != NRCPT)
		fail("result with another number of recipients");
	check_reply(&res->msg_reply);
	if (getenv("FUZZ_SMTPC_TRACE"))
		dprintf(g_report, "result status=%d msg=%d rcpt=%d,%d,%d certain=%d dot=%d\n",
			(int)res->status, res->msg_reply.code, res->rcpt[0].code, res->rcpt[1].code,
			res->rcpt[2].code, certain, g.dot_code);
	for (size_t i = 0; i < NRCPT; i++) {
		const struct smtpc_reply *r = &res->rcpt[i];
		bool delivered = certain && g.mail_code / 100 == 2 && g.nrcpt_seen == NRCPT &&
				 g.rcpt_code[i] / 100 == 2 && g.data_code == 354 && g.dot_seen &&
				 g.dot_code / 100 == 2;

		check_reply(r);
		/* src/queue/remote.c takes exactly this as "relayed" */
		if (r->code / 100 == 2 && res->status == SMTPC_DONE) {
			/* reported accepted: the peer must really have taken it */
			if (certain && !delivered)
				fail("a recipient reported 2xx that the server did not accept with the "
				     "message");
		} else if (delivered) {
			fail("a recipient the server accepted with the message is not reported 2xx");
		}
	}
	g.closed = true;
	smtpc_close(c);
}

static void on_open(struct smtpc *c, void *arg, const struct smtpc_reply *err)
{
	static const struct smtpc_rcpt rcpt[NRCPT] = {
		{"alice@example.test", 0, NULL},
		{"bob@example.test", 6, "rfc822;bob+x@example.test"},
		{"carol@example.test", 1, NULL},
	};
	struct smtpc_msg m = {
		.sender = "sender@example.test",
		.envid = "ENV 1",
		.ret = 1,
		.body = 0,
		.smtputf8 = false,
		.nrcpt = NRCPT,
		.rcpt = rcpt,
		.content_fd = g_content,
		.content_off = 0,
		.content_len = strlen(CONTENT),
	};
	(void)arg;

	if (++g.open_calls > 1)
		fail("open callback twice");
	if (err) {
		check_reply(err);
		g.closed = true; /* the client frees itself */
		return;
	}
	smtpc_send(c, &m, on_sent, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpc_opts o;
	time_t deadline;
	unsigned idle = 0;

	if (size < 1 || size > 65536)
		return 0;
	memset(&o, 0, sizeof(o));
	o.helo_name = "client.example.test";
	o.tls = SMTPC_TLS_NONE;
	if (data[0] & 1) {
		o.auth_user = "user@example.test";
		o.auth_pass = "secret";
	}
	o.connect_timeout = o.command_timeout = o.data_timeout = 30;

	g.in = data + 1;
	g.n = size - 1;
	g.fd = -1;
	buf_reset(&g.rx);
	buf_reset(&g.data);
	g.in_data = g.ambiguous = g.server_closed = false;
	g.mail_code = g.data_code = g.dot_code = 0;
	g.nrcpt_seen = 0;
	g.data_seen = g.dot_seen = g.content_ok = false;
	g.open_calls = g.send_calls = 0;
	g.closed = false;

	if (!getenv("FUZZ_SMTPC_TRACE"))
		dup2(g_null, 2); /* transit's log lines */
	g.c = smtpc_open(g_base, (struct sockaddr *)&g_addr, sizeof(g_addr), "peer.test", &o,
			 on_open, NULL);
	deadline = time(NULL) + 10;
	while (g.fd < 0) {
		if (time(NULL) > deadline)
			fail("no connection");
		event_base_loop(g_base, EVLOOP_NONBLOCK);
		g.fd = accept4(g_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	}
	{
		int code;
		answer(&code); /* the greeting */
	}
	/* serve until the client is done and gone */
	while (idle < 50) {
		size_t before = g.n + g.rx.len;
		if (time(NULL) > deadline)
			fail("the session never ends");
		event_base_loop(g_base, EVLOOP_NONBLOCK);
		serve();
		if (g.n + g.rx.len == before &&
		    (g.closed || (in_flight(g.fd) == 0 && in_flight(client_fd()) == 0)))
			idle++;
		else
			idle = 0;
		if (idle == 49 && !g.server_closed) {
			/* nothing moves: the client waits for more than the input has */
			if (getenv("FUZZ_SMTPC_TRACE"))
				dprintf(g_report, "S: closing, nothing moves\n");
			shutdown(g.fd, SHUT_RDWR);
			g.server_closed = true;
			idle = 0;
		}
		if (g.closed && event_base_get_num_events(g_base, EVENT_BASE_COUNT_ADDED) == 0)
			break; /* the client has finished and freed itself */
	}
	close(g.fd);
	g.fd = -1;
	while (event_base_get_num_events(g_base, EVENT_BASE_COUNT_ADDED) > 0) {
		if (time(NULL) > deadline)
			fail("the client never finishes");
		event_base_loop(g_base, EVLOOP_NONBLOCK);
	}
	dup2(g_report, 2);
	if (g.open_calls != 1)
		fail("open callback never ran");
	return 0;
}
