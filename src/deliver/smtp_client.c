/*
 * smtp_client.c - one outbound SMTP connection, the connection half
 * (contract in smtp_client.h; the message transaction is in
 * smtp_client_tx.c, STARTTLS and AUTH in smtp_client_sec.c): non-blocking connect from an optional source
 * address, the greeting, EHLO with HELO fallback (RFC 5321 4.1.1.1,
 * 3.2) and its extension list, STARTTLS (RFC 3207) by policy, AUTH PLAIN
 * (RFC 4954, RFC 4616) or LOGIN only under TLS, the reply reader
 * (RFC 5321 4.2, 4.2.1 multi-line; enhanced codes RFC 3463 / RFC 2034),
 * timeouts (RFC 5321 4.5.3.2), QUIT and the object's lifetime.
 *
 * Replies are bounded: a line longer than SMTPC_LINE_MAX, more than
 * SMTPC_REPLY_LINES_MAX lines, a malformed code or a multi-line reply
 * whose lines disagree on the code is a protocol error (local 421 4.5.0).
 * Text from the peer has control characters replaced by '?'.
 *
 * TLS policy: NONE never starts TLS. OPPORTUNISTIC (RFC 7435) starts it
 * when offered without insisting on the certificate (the check still
 * runs and is reported as verified=yes/no) and goes on in clear when the
 * peer refuses STARTTLS; a failed handshake fails the connection (temp).
 * REQUIRE verifies the chain against the context's trust anchors and the
 * name (SSL_set1_host, plus SNI) and never sends MAIL (or AUTH) in clear.
 * After the 220 to STARTTLS whatever plaintext the peer sent along is
 * dropped (CVE-2011-0411); the TLS layer is an OpenSSL filter bufferevent
 * over the plain one, and EHLO is sent again (extensions re-read).
 *
 * Connection-level failures reach the caller as local 421 replies:
 * 4.4.1 connect, 4.4.2 timeout or connection loss, 4.5.0 protocol,
 * 4.7.x TLS and AUTH (misconfiguration must not bounce mail). When a
 * write fails in the middle of the content, what the peer said before it
 * hung up is still read (a 550 there is worth more than "reset").
 */
#include "deliver/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "deliver/smtp_client_int.h"
#include "log/protolog.h"
#include "net/tls.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define SMTPC_DEF_CONNECT 30
#define SMTPC_DEF_COMMAND 300
#define SMTPC_DEF_DATA 600


static void smtpc_free(struct smtpc *c);
static void smtpc_close_now(struct smtpc *c);
static void smtpc_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_write_cb(struct bufferevent *bev, void *arg);
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);
void smtpc_fail(struct smtpc *c, const char *enh, const char *fmt, ...) PRINTF_LIKE(3, 4);
void smtpc_refuse(struct smtpc *c, const char *enh, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/* ---- small helpers ------------------------------------------------------ */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

void smtpc_set_reply(struct smtpc_reply *r, int code, const char *enh, bool local,
		     const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	str_copy(r->enh, enh != NULL ? enh : "", sizeof(r->enh));
	r->local = local;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void smtpc_arm(struct smtpc *c, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->ev_timer, &tv);
}

void smtpc_disarm(struct smtpc *c) { evtimer_del(c->ev_timer); }

void smtpc_write(struct smtpc *c, const void *p, size_t n)
{
	if (c->bev != NULL && !c->dead)
		bufferevent_write(c->bev, p, n);
}

void smtpc_plog_note(const struct smtpc *c, const char *fmt, ...)
{
	char text[PROTOLOG_TEXT_MAX + 1];
	va_list ap;
	int n;

	if (!c->plog)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n > 0)
		protolog_line(PROTOLOG_SEND, c->plog_id, '*', text,
			      (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void smtpc_log_command(const struct smtpc *c, const char *line, size_t len)
{
	char shown[SMTPC_LINE_MAX + 1], quoted[2 * SMTPC_LINE_MAX];

	if (c->plog)
		protolog_line(PROTOLOG_SEND, c->plog_id, '>', line, len);
	if (!log_debug_enabled())
		return;
	if (len > SMTPC_LINE_MAX)
		len = SMTPC_LINE_MAX;
	memcpy(shown, line, len);
	shown[len] = '\0';
	log_debug("smtpc peer=%s send=%s", c->info.peer, log_quote(shown, quoted, sizeof(quoted)));
}

void smtpc_command(struct smtpc *c, const char *line, size_t len)
{
	struct buf b = BUF_INIT;

	smtpc_log_command(c, line, len);
	buf_append(&b, line, len);
	buf_append(&b, "\r\n", 2);
	smtpc_write(c, b.data, b.len);
	buf_free(&b);
}

/* A command carrying credentials: logged as "shown <secret>". */
void smtpc_secret(struct smtpc *c, const char *shown, char *line, size_t len)
{
	char logged[64];

	snprintf(logged, sizeof(logged), "%s <secret>", shown);
	smtpc_log_command(c, logged, strlen(logged));
	smtpc_write(c, line, len);
	smtpc_write(c, "\r\n", 2);
	OPENSSL_cleanse(line, len);
}

/* Printable ASCII (and bytes >= 0x80) only, for names that end up in
 * logs and replies. */
static void smtpc_clean_copy(char *dst, const char *src, size_t dstsz)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < dstsz; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = (ch < 0x21 || ch == 0x7f) ? '?' : (char)ch;
	}
	dst[i] = '\0';
}

static void smtpc_format_peer(struct smtpc *c, const struct sockaddr *sa, socklen_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?", name[256];
	unsigned port = 0;

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
	}
	smtpc_clean_copy(name, c->peer_name, sizeof(name));
	snprintf(c->info.peer, sizeof(c->info.peer), "%s[%s]:%u", name, ip, port);
}

/* ---- lifetime ------------------------------------------------------------- */

void smtpc_enter(struct smtpc *c) { c->busy++; }

/* Free now, or at the outermost smtpc_leave. */
static void smtpc_release(struct smtpc *c)
{
	c->user_gone = true;
	if (c->busy > 0)
		c->free_pending = true;
	else
		smtpc_free(c);
}

void smtpc_leave(struct smtpc *c)
{
	if (--c->busy > 0)
		return;
	if (c->free_pending) {
		smtpc_free(c);
	} else if (c->close_pending) {
		c->close_pending = false;
		smtpc_close_now(c);
	}
}

void smtpc_kill(struct smtpc *c)
{
	c->dead = true;
	c->state = SC_DEAD;
	smtpc_disarm(c);
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

void smtpc_later(struct smtpc *c) { event_active(c->ev_later, EV_TIMEOUT, 1); }

static void smtpc_free(struct smtpc *c)
{
	smtpc_plog_note(c, "closed");
	log_debug("smtpc peer=%s closed", c->info.peer);
	if (c->ev_conn != NULL)
		event_free(c->ev_conn);
	event_free(c->ev_timer);
	event_free(c->ev_later);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket, frees the SSL */
	if (c->fd >= 0)
		close(c->fd);
	if (c->tx != NULL)
		smtpc_tx_free(c->tx);
	buf_free(&c->rd.text);
	if (c->auth_pass != NULL)
		OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
	free(c->auth_pass);
	free(c->auth_user);
	free(c->helo_name);
	free(c->tls_name);
	free(c->peer_name);
	free(c);
}

static void smtpc_close_now(struct smtpc *c)
{
	if (c->state == SC_IDLE && !c->dead && c->bev != NULL) {
		smtpc_command(c, "QUIT", 4);
		c->state = SC_QUIT;
		smtpc_arm(c, c->t_command < SMTPC_QUIT_WAIT ? c->t_command : SMTPC_QUIT_WAIT);
		return;
	}
	smtpc_release(c);
}

void smtpc_close(struct smtpc *c)
{
	if (c == NULL)
		return;
	c->user_gone = true;
	if (c->busy > 0)
		c->close_pending = true;
	else
		smtpc_close_now(c);
}

const struct smtpc_info *smtpc_info(const struct smtpc *c) { return &c->info; }

/* ---- outcomes of the opening -------------------------------------------- */

/* The open failed: tell the user once, then QUIT (when the dialogue is at
 * a command boundary, state SC_IDLE) or free, at the outermost leave. */
void smtpc_open_failed(struct smtpc *c, const struct smtpc_reply *r)
{
	smtpc_open_cb cb = c->open_cb;

	c->open_cb = NULL;
	if (log_debug_enabled()) {
		char q[2 * sizeof(r->text)];
		log_debug("smtpc peer=%s open-failed code=%d enh=%s text=%s", c->info.peer, r->code,
			  r->enh[0] != '\0' ? r->enh : "-", log_quote(r->text, q, sizeof(q)));
	}
	if (cb != NULL && !c->user_gone)
		cb(c, c->open_arg, r);
	c->user_gone = true;
	c->close_pending = true;
}

/* A local failure at a command boundary: report it, then QUIT. */
/* A local 421 reply with enhanced code enh and a formatted text. */
static void local_421(struct smtpc_reply *r, const char *enh, const char *fmt, va_list ap)
{
	r->code = 421;
	str_copy(r->enh, enh, sizeof(r->enh));
	r->local = true;
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
}

void smtpc_refuse(struct smtpc *c, const char *enh, const char *fmt, ...)
{
	struct smtpc_reply r;
	va_list ap;

	va_start(ap, fmt);
	local_421(&r, enh, fmt, ap);
	va_end(ap);
	c->state = SC_IDLE;
	smtpc_disarm(c);
	smtpc_open_failed(c, &r);
}

/* The peer said no during the opening: its reply goes to the user. */
static void smtpc_peer_refused(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 421)
		smtpc_kill(c); /* the peer is closing the connection */
	else
		c->state = SC_IDLE;
	smtpc_disarm(c);
	smtpc_open_failed(c, r);
}

/* The connection is broken (timeout, loss, protocol error): local 421. */
static void smtpc_lost(struct smtpc *c, const struct smtpc_reply *r)
{
	enum smtpc_state was = c->state;

	smtpc_kill(c);
	if (was == SC_QUIT)
		smtpc_release(c);
	else if (c->open_cb != NULL)
		smtpc_open_failed(c, r);
	else if (c->tx != NULL)
		smtpc_tx_fail(c, r);
	else
		log_debug("smtpc peer=%s idle connection lost: %s", c->info.peer, r->text);
}

void smtpc_fail(struct smtpc *c, const char *enh, const char *fmt, ...)
{
	struct smtpc_reply r;
	va_list ap;

	va_start(ap, fmt);
	local_421(&r, enh, fmt, ap);
	va_end(ap);
	smtpc_lost(c, &r);
}

void smtpc_ready(struct smtpc *c)
{
	smtpc_open_cb cb = c->open_cb;

	c->open_cb = NULL;
	c->state = SC_IDLE;
	smtpc_disarm(c);
	log_debug("smtpc peer=%s ready esmtp=%d pipelining=%d size=%llu 8bitmime=%d smtputf8=%d "
		  "dsn=%d tls=%d auth=%s",
		  c->info.peer, c->ext.esmtp, c->ext.pipelining, (unsigned long long)c->ext.size,
		  c->ext.eightbitmime, c->ext.smtputf8, c->ext.dsn, c->info.tls,
		  c->auth_user != NULL ? "yes" : "no");
	if (cb != NULL && !c->user_gone)
		cb(c, c->open_arg, NULL);
}

static const char *smtpc_waiting_for(const struct smtpc *c)
{
	switch (c->state) {
	case SC_CONNECTING: return "connecting";
	case SC_GREETING: return "waiting for the greeting";
	case SC_EHLO: return "waiting for the reply to EHLO";
	case SC_HELO: return "waiting for the reply to HELO";
	case SC_STARTTLS: return "waiting for the reply to STARTTLS";
	case SC_HANDSHAKE: return "in the TLS handshake";
	case SC_AUTH: return "waiting for the reply to AUTH";
	case SC_TX:
	case SC_DATA_BODY:
	case SC_DATA_DOT: return smtpc_tx_waiting_for(c);
	case SC_QUIT: return "waiting for the reply to QUIT";
	default: return "idle";
	}
}

/* ---- EHLO and its extensions -------------------------------------------- */

static uint64_t smtpc_parse_count(const char *s)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; is_digit(s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (i >= 20 || v > (UINT64_MAX - d) / 10)
			return 0; /* absurd: treat as no limit announced */
		v = v * 10 + d;
	}
	return (s[i] == '\0' || s[i] == ' ') ? v : 0;
}

static void smtpc_auth_mechs(struct smtpc_ext *x, const char *p)
{
	while (*p != '\0') {
		size_t n = 0;
		while (*p == ' ')
			p++;
		while (p[n] != '\0' && p[n] != ' ')
			n++;
		if (n == 5 && str_ncasecmp(p, "PLAIN", 5) == 0)
			x->auth_plain = true;
		else if (n == 5 && str_ncasecmp(p, "LOGIN", 5) == 0)
			x->auth_login = true;
		p += n;
	}
}

/* One EHLO reply line after the first: "KEYWORD [params]" (RFC 5321
 * 4.1.1.1), also the old "AUTH=..." form. */
void smtpc_ext_line(struct smtpc_ext *x, const char *t)
{
	char kw[32];
	size_t n = 0;
	const char *p;

	while (t[n] != '\0' && t[n] != ' ' && t[n] != '=') {
		if (n + 1 >= sizeof(kw))
			return; /* not a keyword we know */
		kw[n] = t[n];
		n++;
	}
	kw[n] = '\0';
	p = t + n;
	while (*p == ' ' || *p == '=')
		p++;
	if (str_casecmp(kw, "PIPELINING") == 0)
		x->pipelining = true;
	else if (str_casecmp(kw, "8BITMIME") == 0)
		x->eightbitmime = true;
	else if (str_casecmp(kw, "SMTPUTF8") == 0)
		x->smtputf8 = true;
	else if (str_casecmp(kw, "DSN") == 0)
		x->dsn = true;
	else if (str_casecmp(kw, "STARTTLS") == 0)
		x->starttls = true;
	else if (str_casecmp(kw, "CHUNKING") == 0)
		x->chunking = true;
	else if (str_casecmp(kw, "ENHANCEDSTATUSCODES") == 0)
		x->enhanced = true;
	else if (str_casecmp(kw, "SIZE") == 0) {
		x->has_size = true;
		x->size = smtpc_parse_count(p);
	} else if (str_casecmp(kw, "AUTH") == 0)
		smtpc_auth_mechs(x, p);
}

void smtpc_send_hello(struct smtpc *c, const char *verb)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "%s %s", verb, c->helo_name);

	memset(&c->ext, 0, sizeof(c->ext));
	c->info.size_limit = 0;
	smtpc_command(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	c->state = verb[0] == 'E' ? SC_EHLO : SC_HELO;
	smtpc_arm(c, c->t_command);
}

/* ---- the opening dialogue ------------------------------------------------ */

/* After EHLO/HELO: STARTTLS, AUTH or ready, as the policy says. */
static void smtpc_after_hello(struct smtpc *c)
{
	c->info.size_limit = c->ext.size;
	if (!c->info.tls && !c->tls_tried && c->tls != SMTPC_TLS_NONE && c->ext.starttls) {
		smtpc_command(c, "STARTTLS", 8);
		c->state = SC_STARTTLS;
		smtpc_arm(c, c->t_command);
		return;
	}
	if (c->tls == SMTPC_TLS_REQUIRE && !c->info.tls) {
		smtpc_refuse(c, "4.7.4", "TLS required but not offered by %s", c->info.peer);
		return;
	}
	if (c->auth_user != NULL) {
		smtpc_auth_start(c);
		return;
	}
	smtpc_ready(c);
}

static void smtpc_on_starttls(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 220) {
		smtpc_start_tls(c);
		return;
	}
	c->tls_tried = true;
	if (r->code == 421) {
		smtpc_peer_refused(c, r);
	} else if (c->tls == SMTPC_TLS_REQUIRE) {
		smtpc_refuse(c, "4.7.4", "STARTTLS refused by %s: %d %s", c->info.peer, r->code,
			     r->text);
	} else {
		log_debug("smtpc peer=%s STARTTLS refused, going on without TLS", c->info.peer);
		smtpc_after_hello(c);
	}
}

static void smtpc_dispatch(struct smtpc *c, const struct smtpc_reply *r)
{
	switch (c->state) {
	case SC_GREETING:
		if (r->code == 220)
			smtpc_send_hello(c, "EHLO");
		else
			smtpc_peer_refused(c, r);
		break;
	case SC_EHLO:
		if (r->code / 100 == 2) {
			c->ext.esmtp = true;
			smtpc_after_hello(c);
		} else if (r->code / 100 == 5) {
			smtpc_send_hello(c, "HELO");
		} else {
			smtpc_peer_refused(c, r);
		}
		break;
	case SC_HELO:
		if (r->code / 100 == 2)
			smtpc_after_hello(c);
		else
			smtpc_peer_refused(c, r);
		break;
	case SC_STARTTLS: smtpc_on_starttls(c, r); break;
	case SC_AUTH: smtpc_on_auth(c, r); break;
	case SC_TX:
	case SC_DATA_BODY:
	case SC_DATA_DOT: smtpc_tx_reply(c, r); break;
	case SC_QUIT:
		smtpc_tls_close(c); /* the reply to QUIT: end the TLS session cleanly */
		smtpc_release(c);
		break;
	case SC_IDLE:
		log_debug("smtpc peer=%s unsolicited reply while idle", c->info.peer);
		smtpc_kill(c);
		break;
	default: break;
	}
}

/* ---- the reply reader (RFC 5321 4.2) ------------------------------------- */

/* Length of an enhanced status code "c.sss.ddd" (RFC 3463 2) at the start
 * of t whose class matches the reply code, including one following
 * space; 0 when there is none. */
size_t smtpc_enh_len(const char *t, int code)
{
	size_t i = 2, k;

	if (t[0] != (char)('0' + code / 100) || t[1] != '.')
		return 0;
	for (k = 0; k < 3 && is_digit(t[i]); k++)
		i++;
	if (k == 0 || t[i] != '.')
		return 0;
	i++;
	for (k = 0; k < 3 && is_digit(t[i]); k++)
		i++;
	if (k == 0 || (t[i] != '\0' && t[i] != ' '))
		return 0;
	return t[i] == ' ' ? i + 1 : i;
}

/* "250-text", "250 text", "250": code, last line?, text. */
bool smtpc_parse_line(const char *l, size_t n, int *code, bool *last, const char **text)
{
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || !is_digit(l[2]))
		return false;
	*code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (n == 3) {
		*last = true;
		*text = l + 3;
		return true;
	}
	if (l[3] != ' ' && l[3] != '-')
		return false;
	*last = l[3] == ' ';
	*text = l + 4;
	return true;
}

static void smtpc_rd_text(struct smtpc *c, int code, const char *text)
{
	struct smtpc_rd *rd = &c->rd;
	size_t el = smtpc_enh_len(text, code), room;

	if (rd->lines == 1 && el > 0) {
		size_t n = el < sizeof(rd->enh) ? el : sizeof(rd->enh) - 1;
		memcpy(rd->enh, text, n);
		rd->enh[n] = '\0';
		if (n > 0 && rd->enh[n - 1] == ' ')
			rd->enh[n - 1] = '\0';
	}
	text += el;
	room = sizeof(((struct smtpc_reply *)0)->text) - 1;
	if (rd->text.len >= room)
		return;
	if (rd->lines > 1)
		buf_append(&rd->text, "; ", 2);
	buf_append(&rd->text, text, strlen(text));
}

static void smtpc_reply_line(struct smtpc *c, char *line, size_t n)
{
	struct smtpc_rd *rd = &c->rd;
	struct smtpc_reply r;
	const char *text;
	bool last;
	int code;
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (c->plog)
		protolog_line(PROTOLOG_SEND, c->plog_id, '<', line, n);
	if (!smtpc_parse_line(line, n, &code, &last, &text)) {
		smtpc_fail(c, "4.5.0", "malformed reply from %s", c->info.peer);
		return;
	}
	if (rd->lines > 0 && code != rd->code) {
		smtpc_fail(c, "4.5.0", "inconsistent multi-line reply from %s", c->info.peer);
		return;
	}
	if (++rd->lines > SMTPC_REPLY_LINES_MAX) {
		smtpc_fail(c, "4.5.0", "reply from %s longer than %d lines", c->info.peer,
			   SMTPC_REPLY_LINES_MAX);
		return;
	}
	rd->code = code;
	if (c->state == SC_EHLO && rd->lines > 1 && code / 100 == 2)
		smtpc_ext_line(&c->ext, text);
	smtpc_rd_text(c, code, text);
	if (!last)
		return;
	r.code = rd->code;
	str_copy(r.enh, rd->enh, sizeof(r.enh));
	str_copy(r.text, rd->text.data != NULL ? rd->text.data : "", sizeof(r.text));
	r.local = false;
	rd->code = 0;
	rd->lines = 0;
	rd->enh[0] = '\0';
	buf_reset(&rd->text);
	if (log_debug_enabled()) {
		char q[2 * sizeof(r.text)];
		log_debug("smtpc peer=%s reply=%d enh=%s text=%s", c->info.peer, r.code,
			  r.enh[0] != '\0' ? r.enh : "-", log_quote(r.text, q, sizeof(q)));
	}
	smtpc_dispatch(c, &r);
}

static bool smtpc_reading(const struct smtpc *c)
{
	return c->bev != NULL && !c->free_pending && !c->close_pending && !c->dead &&
	       c->state != SC_HANDSHAKE && c->state != SC_CONNECTING;
}

static void smtpc_read_replies(struct smtpc *c)
{
	char line[SMTPC_LINE_MAX + 1];

	while (smtpc_reading(c)) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t eol = 0, n;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);

		if (p.pos < 0) {
			if (evbuffer_get_length(in) > SMTPC_LINE_MAX + 2)
				smtpc_fail(c, "4.5.0", "reply line from %s longer than %d octets",
					   c->info.peer, SMTPC_LINE_MAX);
			return;
		}
		n = (size_t)p.pos;
		if (n > SMTPC_LINE_MAX) {
			smtpc_fail(c, "4.5.0", "reply line from %s longer than %d octets",
				   c->info.peer, SMTPC_LINE_MAX);
			return;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol);
		line[n] = '\0';
		smtpc_reply_line(c, line, n);
	}
}

/* ---- libevent callbacks ------------------------------------------------ */

static void smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_enter(c);
	smtpc_read_replies(c);
	smtpc_leave(c);
}

static void smtpc_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_enter(c);
	if (c->state == SC_DATA_BODY)
		smtpc_tx_writable(c);
	smtpc_leave(c);
}

/* Writing the content failed (the peer reset the connection): the peer
 * may have said why before it hung up (e.g. 550 and close in the middle
 * of DATA), and that reply is worth more than "connection reset". Reads
 * what the socket still holds and hands it to the reply reader. Plain
 * connections only. Returns true when a reply ended the transaction. */
static bool smtpc_salvage_reply(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (c->ssl != NULL || fd < 0 || c->state != SC_DATA_BODY)
		return false;
	log_debug("smtpc peer=%s write failed, reading what the peer said", c->info.peer);
	while (evbuffer_get_length(in) < 4 * SMTPC_LINE_MAX && evbuffer_read(in, fd, 4096) > 0)
		;
	smtpc_read_replies(c);
	return c->dead;
}

static void smtpc_io_error(struct smtpc *c, short what)
{
	char why[256];
	int err = EVUTIL_SOCKET_ERROR();

	if (c->state == SC_QUIT) {
		smtpc_release(c);
		return;
	}
	if (c->state == SC_HANDSHAKE) {
		smtpc_tls_failed(c);
		return;
	}
	if ((what & BEV_EVENT_WRITING) && smtpc_salvage_reply(c))
		return;
	if (what & BEV_EVENT_EOF)
		str_copy(why, "connection closed", sizeof(why));
	else if (c->ssl != NULL)
		smtpc_ssl_error(c, why, sizeof(why));
	else
		str_copy(why, strerror(err), sizeof(why));
	smtpc_fail(c, "4.4.2", "%s: %s while %s", c->info.peer, why, smtpc_waiting_for(c));
}

static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == SC_HANDSHAKE)
			smtpc_tls_done(c);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->dead || c->state == SC_QUIT)
			smtpc_io_error(c, what);
	}
	smtpc_leave(c);
}

static void smtpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	smtpc_enter(c);
	if (c->state == SC_QUIT)
		smtpc_release(c);
	else if (!c->dead)
		smtpc_fail(c, "4.4.2", "%s: timeout while %s", c->info.peer, smtpc_waiting_for(c));
	smtpc_leave(c);
}

static void smtpc_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	smtpc_enter(c);
	if (c->later_open_fail) {
		c->later_open_fail = false;
		smtpc_kill(c);
		smtpc_open_failed(c, &c->later_reply);
	} else if (c->tx != NULL) {
		smtpc_tx_finish(c);
	}
	smtpc_leave(c);
}

void smtpc_watch(struct smtpc *c, struct bufferevent *bev)
{
	bufferevent_setcb(bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* ---- connecting ------------------------------------------------------------- */

static void smtpc_connected(struct smtpc *c)
{
	c->bev = bufferevent_socket_new(c->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		smtpc_fail(c, "4.4.0", "cannot set up the connection to %s", c->info.peer);
		return;
	}
	c->fd = -1; /* the bufferevent owns it */
	smtpc_watch(c, c->bev);
	log_debug("smtpc peer=%s connected", c->info.peer);
	smtpc_plog_note(c, "connect peer=%s", c->info.peer);
	c->state = SC_GREETING;
	smtpc_arm(c, c->t_command);
}

static void smtpc_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	smtpc_enter(c);
	if (what & EV_TIMEOUT) {
		smtpc_fail(c, "4.4.1", "connect to %s: timed out", c->info.peer);
	} else {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0)
			smtpc_fail(c, "4.4.1", "connect to %s: %s", c->info.peer, strerror(err));
		else
			smtpc_connected(c);
	}
	smtpc_leave(c);
}

/* Socket, bind, non-blocking connect. On failure fills later_reply. */
static int smtpc_start_connect(struct smtpc *c, const struct sockaddr *dst, socklen_t dstlen)
{
	struct smtpc_reply *r = &c->later_reply;
	struct timeval tv = {(time_t)c->t_connect, 0};

	if ((dst->sa_family != AF_INET && dst->sa_family != AF_INET6) || dstlen > sizeof(c->dst)) {
		smtpc_set_reply(r, 421, "4.4.0", true, "connect to %s: bad address", c->info.peer);
		return -1;
	}
	memcpy(&c->dst, dst, dstlen);
	c->dstlen = dstlen;
	if (c->tls != SMTPC_TLS_NONE && c->tls_ctx == NULL) {
		smtpc_set_reply(r, 421, "4.7.5", true, "no TLS client context for %s", c->info.peer);
		return -1;
	}
	c->fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		smtpc_set_reply(r, 421, "4.4.0", true, "socket: %s", strerror(errno));
		return -1;
	}
	/* Replies and the final "." are small writes behind bulk data: without
	 * TCP_NODELAY, Nagle and the peer's delayed ACK stall each message. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (c->srclen > 0) {
		if (c->src.ss_family != dst->sa_family) {
			smtpc_set_reply(r, 421, "4.4.0", true,
					"source address family does not match %s", c->info.peer);
			return -1;
		}
		if (bind(c->fd, (const struct sockaddr *)&c->src, c->srclen) < 0) {
			smtpc_set_reply(r, 421, "4.4.0", true, "bind source address for %s: %s",
					c->info.peer, strerror(errno));
			return -1;
		}
	}
	if (connect(c->fd, dst, dstlen) < 0 && errno != EINPROGRESS) {
		smtpc_set_reply(r, 421, "4.4.1", true, "connect to %s: %s", c->info.peer,
				strerror(errno));
		return -1;
	}
	c->ev_conn = event_new(c->base, c->fd, EV_WRITE, smtpc_conn_cb, c);
	if (c->ev_conn == NULL || event_add(c->ev_conn, &tv) < 0) {
		smtpc_set_reply(r, 421, "4.4.0", true, "cannot wait for %s", c->info.peer);
		return -1;
	}
	return 0;
}

static char *smtpc_dup_token(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = xstrdup(s);
	smtpc_clean_copy(d, s, strlen(s) + 1);
	return d;
}

struct smtpc *smtpc_open(struct event_base *base, const struct sockaddr *dst, socklen_t dstlen,
			 const char *peer_name, const struct smtpc_opts *o, smtpc_open_cb cb,
			 void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->fd = -1;
	c->open_cb = cb;
	c->open_arg = arg;
	c->state = SC_CONNECTING;
	c->peer_name = xstrdup(peer_name != NULL ? peer_name : "");
	c->helo_name = smtpc_dup_token(o->helo_name != NULL ? o->helo_name : "localhost");
	c->tls_name = o->tls_name != NULL ? xstrdup(o->tls_name) : NULL;
	c->tls = o->tls;
	c->tls_ctx = o->tls_ctx;
	if (o->auth_user != NULL) {
		c->auth_user = xstrdup(o->auth_user);
		c->auth_pass = xstrdup(o->auth_pass != NULL ? o->auth_pass : "");
	}
	if (o->source != NULL && o->sourcelen > 0 && o->sourcelen <= sizeof(c->src)) {
		memcpy(&c->src, o->source, o->sourcelen);
		c->srclen = o->sourcelen;
	}
	c->t_connect = o->connect_timeout > 0 ? o->connect_timeout : SMTPC_DEF_CONNECT;
	c->t_command = o->command_timeout > 0 ? o->command_timeout : SMTPC_DEF_COMMAND;
	c->t_data = o->data_timeout > 0 ? o->data_timeout : SMTPC_DEF_DATA;
	if (o->protocol_log) {
		static unsigned long long plog_seq;
		c->plog = true;
		snprintf(c->plog_id, sizeof(c->plog_id), "C%llx-%llx", (unsigned long long)getpid(),
			 ++plog_seq);
	}
	buf_init(&c->rd.text);
	c->ev_timer = evtimer_new(base, smtpc_timer_cb, c);
	c->ev_later = event_new(base, -1, 0, smtpc_later_cb, c);
	if (c->ev_timer == NULL || c->ev_later == NULL)
		log_fatal("smtpc: out of memory for events");
	smtpc_format_peer(c, dst, dstlen);
	if (smtpc_start_connect(c, dst, dstlen) < 0) {
		c->later_open_fail = true;
		smtpc_later(c); /* the callback never runs before smtpc_open returns */
	}
	return c;
}
