/*
 * server.c - SMTP server connections: accepting (with the total and
 * per-source limits), reading input and splitting it into command lines
 * or content lines, replies, timeouts and the whole-session deadline,
 * STARTTLS (RFC 3207) and implicit TLS (RFC 8314), closing.
 *
 * Security rules enforced here, before any command handler runs:
 *  - a command line is at most rc->max_line_length octets and ends in
 *    CRLF; bare LF or bare CR is refused (500 5.5.2), never guessed
 *    (RFC 5321 2.3.8; SMTP smuggling);
 *  - after STARTTLS, every byte the client pipelined behind the command
 *    is discarded and the session starts over (CVE-2011-0411);
 *  - input is read only up to a high-water mark, so a client cannot make
 *    us buffer more than about one line while a commit is pending.
 * Command semantics live in commands.c, message content in content.c.
 */
#include "smtp/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "net/tls.h"
#include "smtp/reply.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_free(struct smtp_session *s);

static const char *const state_names[] = {
	"greeting", "connected", "ready", "mail", "rcpt", "data", "bdat", "commit", "starttls",
	"closing",
};

struct smtp_server *smtp_server_new(const struct smtp_server_params *p)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	uint32_t r = 0;

	srv->p = *p;
	srv->per_source = htable_new();
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)getpid();
	srv->next_id = (uint64_t)r << 32;
	return srv;
}

unsigned smtp_server_sessions(const struct smtp_server *srv) { return srv->nsessions; }

void smtp_server_free(struct smtp_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->sessions) {
		struct smtp_session *s = srv->sessions;
		/* Best effort: tell the client, then drop the connection. */
		if (s->bev && !s->dead) {
			smtp_reply_format(&s->out, 421, "4.3.2", "%s Service shutting down",
					  s->rc->fqdn);
			session_send(s);
		}
		if (s->commit_pending) {
			/* the queue still holds a pointer to us: detach and let it go */
			s->dead = true;
			srv->sessions = s->next;
			s->next = s->prev = NULL;
			continue;
		}
		session_free(s);
	}
	htable_free(srv->per_source, NULL);
	free(srv);
}

/* ---- accepting ----------------------------------------------------------- */

static void refuse_now(int fd, const char *text)
{
	/* The socket is new and non-blocking; a short write is acceptable. */
	if (write(fd, text, strlen(text)) < 0)
		(void)0;
	close(fd);
}

static void source_count(struct smtp_server *srv, const char *key, int delta)
{
	uintptr_t n = (uintptr_t)htable_get(srv->per_source, key);

	n = (uintptr_t)((intptr_t)n + delta);
	if (n == 0)
		htable_del(srv->per_source, key);
	else
		htable_put(srv->per_source, key, (void *)n);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)fd;
	(void)what;
	log_info("%s smtp timeout kind=session state=%s", s->id, state_names[s->state]);
	if (s->state == SS_COMMIT)
		return; /* a reply is about to be sent; the next read timeout ends it */
	session_reply(s, 421, "4.4.2", "%s Session time limit exceeded, closing connection",
		      s->rc->fqdn);
	session_close(s, "session-timeout");
}

static void session_setup_bev(struct smtp_session *s)
{
	size_t hiwat = 256 * 1024;

	if (s->rc->max_text_line_length + 4096 > hiwat)
		hiwat = s->rc->max_text_line_length + 4096;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, hiwat);
	session_data_timeouts(s, false);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void send_banner(struct smtp_session *s)
{
	smtp_reply_format(&s->out, 220, NULL, "%s", s->rc->banner);
	session_set_state(s, SS_CONNECTED);
	session_send(s);
}

void smtp_server_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
			size_t rc_index)
{
	const struct receive_connector *rc = &srv->p.conf->rcs[rc_index];
	struct smtp_session *s;
	char addr[INET6_ADDRSTRLEN] = "?";
	char key[128];
	struct timeval tv;

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
			  sizeof(addr));
	snprintf(key, sizeof(key), "%s|%s", rc->name, addr);

	if (srv->nsessions >= srv->p.conf->server.max_connections) {
		log_info("smtp refused address=%s connector=%s reason=max-connections limit=%u", addr,
			 rc->name, srv->p.conf->server.max_connections);
		refuse_now(fd, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	if ((uintptr_t)htable_get(srv->per_source, key) >= rc->max_connections_per_source) {
		log_info("smtp refused address=%s connector=%s reason=max-connections-per-source "
			 "limit=%u",
			 addr, rc->name, rc->max_connections_per_source);
		refuse_now(fd, "421 4.7.0 Too many connections from your address, try again later\r\n");
		return;
	}

	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->rc = rc;
	s->rc_index = rc_index;
	s->fd = fd;
	snprintf(s->id, sizeof(s->id), "%016" PRIx64, srv->next_id++);
	memcpy(s->addr, addr, sizeof(addr));
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	str_copy(s->source_key, key, sizeof(s->source_key));
	buf_init(&s->out);
	source_count(srv, key, +1);
	srv->nsessions++;
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;

	s->deadline = evtimer_new(srv->p.base, deadline_cb, s);
	if (s->deadline == NULL) {
		log_warn("%s smtp session setup failed: no memory for its timer", s->id);
		session_close(s, "out-of-memory");
		return;
	}
	tv.tv_sec = (time_t)rc->session_timeout;
	tv.tv_usec = 0;
	evtimer_add(s->deadline, &tv);

	log_info("%s smtp connect address=%s connector=%s tls=%s", s->id, addr, rc->name,
		 rc->tls == RC_TLS_IMPLICIT ? "implicit" : "no");

	if (rc->tls == RC_TLS_IMPLICIT) {
		s->ssl = SSL_new(srv->p.tls_ctx[rc_index]);
		if (s->ssl == NULL) {
			ERR_clear_error();
			log_warn("%s smtp session setup failed: SSL_new", s->id);
			session_close(s, "out-of-memory");
			return;
		}
		s->bev = bufferevent_openssl_socket_new(srv->p.base, fd, s->ssl,
							BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
		s->fd = -1; /* owned by the bufferevent now */
		if (s->bev == NULL) {
			/* libevent freed the SSL (and the socket, unless it ran
			 * out of memory before taking them) */
			s->ssl = NULL;
			log_warn("%s smtp session setup failed: no memory for its bufferevent", s->id);
			session_close(s, "out-of-memory");
			return;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
		session_set_state(s, SS_GREETING);
		session_setup_bev(s);
		return;
	}
	s->bev = bufferevent_socket_new(srv->p.base, fd, 0);
	if (s->bev == NULL) {
		log_warn("%s smtp session setup failed: no memory for its bufferevent", s->id);
		session_close(s, "out-of-memory"); /* closes fd */
		return;
	}
	session_setup_bev(s);
	send_banner(s);
}

/* ---- output, state, errors ----------------------------------------------- */

void session_send(struct smtp_session *s)
{
	if (s->out.len == 0 || s->bev == NULL || s->dead) {
		buf_reset(&s->out);
		return;
	}
	if (log_debug_enabled())
		log_debug("%s smtp out %.*s", s->id, (int)(s->out.len > 2 ? s->out.len - 2 : 0),
			  s->out.data);
	bufferevent_write(s->bev, s->out.data, s->out.len);
	buf_reset(&s->out);
}

void session_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtp_reply_format(&s->out, code, enh, "%s", text);
}

void session_set_state(struct smtp_session *s, enum session_state st)
{
	if (s->state != st)
		log_debug("%s smtp state %s -> %s", s->id, state_names[s->state], state_names[st]);
	s->state = st;
}

bool session_error(struct smtp_session *s)
{
	if (++s->errors < s->rc->max_errors)
		return false;
	session_reply(s, 421, "4.7.0", "%s Too many errors, closing connection", s->rc->fqdn);
	session_close(s, "too-many-errors");
	return true;
}

void session_data_timeouts(struct smtp_session *s, bool data)
{
	struct timeval rd, wr;

	rd.tv_sec = (time_t)(data ? s->rc->data_timeout : s->rc->command_timeout);
	rd.tv_usec = 0;
	wr.tv_sec = (time_t)s->rc->command_timeout;
	wr.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &rd, &wr);
}

static void session_unlink(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;

	if (s->prev)
		s->prev->next = s->next;
	else if (srv->sessions == s)
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void session_free(struct smtp_session *s)
{
	if (s->commit_pending) {
		/* The queue will call us back; finish then. */
		if (!s->dead) {
			s->dead = true;
			if (s->bev) {
				bufferevent_free(s->bev);
				s->bev = NULL;
			}
			if (s->fd >= 0) {
				close(s->fd);
				s->fd = -1;
			}
		}
		return;
	}
	session_unlink(s);
	if (s->tx) {
		tx_free(s->tx);
		s->tx = NULL;
	}
	if (s->bev)
		bufferevent_free(s->bev); /* frees SSL and closes fd when TLS */
	if (s->fd >= 0)
		close(s->fd);
	if (s->deadline)
		event_free(s->deadline);
	source_count(s->srv, s->source_key, -1);
	s->srv->nsessions--;
	buf_free(&s->out);
	free(s);
}

/* Called by content.c when the commit callback came back for a session
 * whose connection had already gone. */
void session_release_dead(struct smtp_session *s);
void session_release_dead(struct smtp_session *s)
{
	s->commit_pending = false;
	session_free(s);
}

void session_close(struct smtp_session *s, const char *reason)
{
	log_info("%s smtp disconnect reason=%s messages=%u errors=%u", s->id, reason, s->messages,
		 s->errors);
	session_send(s);
	if (s->bev && evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		session_set_state(s, SS_CLOSING);
		bufferevent_disable(s->bev, EV_READ);
		return; /* session_write_cb frees when flushed */
	}
	session_free(s);
}

/* ---- TLS ------------------------------------------------------------------ */

static void starttls_switch(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	SSL_CTX *ctx = s->srv->p.tls_ctx[s->rc_index];
	(void)fd;
	(void)what;

	/* Drop the plaintext bufferevent and whatever it had read: the
	 * client may have pipelined commands behind STARTTLS. */
	bufferevent_free(s->bev);
	s->bev = NULL;
	s->ssl = SSL_new(ctx);
	if (s->ssl == NULL) {
		ERR_clear_error();
		log_warn("%s smtp STARTTLS failed: SSL_new", s->id);
		session_close(s, "out-of-memory"); /* closes fd */
		return;
	}
	s->bev = bufferevent_openssl_socket_new(s->srv->p.base, s->fd, s->ssl,
						BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	s->fd = -1;
	if (s->bev == NULL) {
		s->ssl = NULL; /* freed by libevent, as the socket (see accept) */
		log_warn("%s smtp STARTTLS failed: no memory for its bufferevent", s->id);
		session_close(s, "out-of-memory");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	session_set_state(s, SS_GREETING);
	session_setup_bev(s);
}

void session_start_tls(struct smtp_session *s)
{
	/* 220 is queued; stop reading so no TLS bytes reach the plain buffer,
	 * and switch once the 220 has been written out. */
	bufferevent_disable(s->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(s->bev),
		       evbuffer_get_length(bufferevent_get_input(s->bev)));
	session_set_state(s, SS_STARTTLS);
	session_send(s);
}

static void tls_established(struct smtp_session *s)
{
	bool implicit = !s->tls && s->rc->tls == RC_TLS_IMPLICIT;

	s->tls = true;
	tls_describe(s->ssl, s->tls_info, sizeof(s->tls_info));
	log_info("%s smtp tls %s", s->id, s->tls_info);
	/* RFC 3207 4.2: forget everything learnt before TLS; a new EHLO is needed. */
	s->helo[0] = '\0';
	s->esmtp = false;
	session_reset_tx(s);
	if (implicit)
		send_banner(s);
	else
		session_set_state(s, SS_CONNECTED);
}

/* ---- input ---------------------------------------------------------------- */

/* One command line, if complete. Returns bytes consumed (0: need more). */
static size_t read_command(struct smtp_session *s, const char *p, size_t len)
{
	size_t max = s->rc->max_line_length;
	const char *lf;
	size_t linelen;

	if (s->skip_cmd_line) {
		/* the tail of an over-long line already refused */
		lf = memchr(p, '\n', len);
		if (lf == NULL)
			return len;
		s->skip_cmd_line = false;
		return (size_t)(lf - p) + 1;
	}
	lf = memchr(p, '\n', len < max ? len : max);
	if (lf == NULL) {
		if (len < max)
			return 0;
		log_info("%s smtp reject reason=line-too-long limit=%zu", s->id, max);
		session_reply(s, 500, "5.5.2", "Line too long (limit is %zu octets)", max);
		if (session_error(s))
			return len;
		s->skip_cmd_line = true;
		return max;
	}
	linelen = (size_t)(lf - p) + 1;
	if (linelen < 2 || p[linelen - 2] != '\r' || memchr(p, '\r', linelen - 2) != NULL) {
		log_info("%s smtp reject reason=bare-lf-or-cr-in-command", s->id);
		session_reply(s, 500, "5.5.2", "Bare LF or CR in command refused (RFC 5321 2.3.8)");
		session_error(s);
		return linelen;
	}
	if (log_debug_enabled())
		log_debug("%s smtp in %.*s", s->id, (int)(linelen - 2), p);
	commands_dispatch(s, p, linelen - 2);
	return linelen;
}

/* Content lines of DATA. Returns bytes consumed. */
static size_t read_data(struct smtp_session *s, const char *p, size_t len)
{
	size_t off = 0, max = s->rc->max_text_line_length;
	struct smtp_tx *tx = s->tx;

	while (off < len && s->state == SS_DATA) {
		const char *lf = memchr(p + off, '\n', len - off);
		size_t linelen;
		const char *c;
		size_t clen;

		if (lf == NULL) {
			if (len - off > max) {
				content_fail(tx, 554, "5.6.0", "Message refused: line too long");
				tx->skipping_long_line = true;
				off = len;
			}
			break;
		}
		linelen = (size_t)(lf - (p + off)) + 1;
		if (tx->skipping_long_line) {
			tx->skipping_long_line = false;
		} else if (linelen > max + 2) {
			content_fail(tx, 554, "5.6.0", "Message refused: line too long");
		} else {
			enum dataline_kind kind = dataline_classify(p + off, linelen, &c, &clen);
			/* "." ends the data only after a CRLF: "\n.\r\n" is not an end */
			if (kind == DATALINE_END && tx->after_bare_lf)
				kind = DATALINE_BARE_LF;
			tx->after_bare_lf = kind == DATALINE_BARE_LF;
			switch (kind) {
			case DATALINE_END:
				off += linelen;
				content_end(s);
				return off;
			case DATALINE_TEXT:
				content_data_line(s, c, clen);
				break;
			case DATALINE_BARE_LF:
			case DATALINE_BARE_CR:
				content_fail(tx, 554, "5.6.0",
					     "Message refused: bare LF or CR in message data "
					     "(RFC 5321 2.3.8)");
				break;
			}
		}
		off += linelen;
	}
	return off;
}

static void bdat_chunk_done(struct smtp_session *s)
{
	if (s->bdat_discard) {
		s->bdat_discard = false;
		session_set_state(s, s->tx ? (s->tx->env.nrcpt ? SS_RCPT : SS_MAIL) : SS_READY);
		if (s->helo[0] == '\0')
			session_set_state(s, SS_CONNECTED);
		return; /* the refusal was replied when the command came */
	}
	if (s->bdat_last) {
		content_end(s);
		return;
	}
	session_data_timeouts(s, false);
	session_reply(s, 250, "2.0.0", "%" PRIu64 " octets received", s->tx->size);
	session_set_state(s, SS_RCPT);
}

static void session_process(struct smtp_session *s)
{
	struct evbuffer *in;

	while (!s->dead && s->bev) {
		size_t len, used = 0;
		const char *p;

		in = bufferevent_get_input(s->bev);
		len = evbuffer_get_length(in);
		if (len == 0)
			break;
		if (s->state == SS_STARTTLS || s->state == SS_CLOSING) {
			evbuffer_drain(in, len);
			break;
		}
		if (s->state == SS_COMMIT || s->state == SS_GREETING)
			break;
		if (s->state == SS_BDAT) {
			size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
			p = (const char *)evbuffer_pullup(in, (ssize_t)n);
			if (!s->bdat_discard)
				content_bdat_bytes(s, p, n);
			evbuffer_drain(in, n);
			s->bdat_left -= n;
			if (s->bdat_left == 0)
				bdat_chunk_done(s);
			continue;
		}
		p = (const char *)evbuffer_pullup(in, -1);
		if (s->state == SS_DATA)
			used = read_data(s, p, len);
		else
			used = read_command(s, p, len);
		if (s->dead || s->bev == NULL)
			return;
		if (used == 0)
			break;
		evbuffer_drain(bufferevent_get_input(s->bev), used);
		if (s->state == SS_CLOSING || s->state == SS_STARTTLS)
			break;
	}
	session_send(s);
}

void session_resume(struct smtp_session *s)
{
	session_send(s);
	session_process(s);
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	struct timeval now = {0, 0};

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (s->state == SS_CLOSING)
		session_free(s);
	else if (s->state == SS_STARTTLS)
		event_base_once(s->srv->p.base, -1, EV_TIMEOUT, starttls_switch, s, &now);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		session_process(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("%s smtp timeout kind=%s state=%s", s->id,
			 (what & BEV_EVENT_READING) ? "read" : "write", state_names[s->state]);
		if (s->state == SS_CLOSING) {
			session_free(s);
			return;
		}
		session_reply(s, 421, "4.4.2", "%s Timeout exceeded, closing connection", s->rc->fqdn);
		session_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = s->ssl ? ERR_get_error() : 0;
		char ebuf[256] = "";
		if (e)
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
		log_info("%s smtp disconnect reason=%s state=%s%s%s messages=%u", s->id,
			 s->state == SS_GREETING ? "tls-handshake-failed" : "error",
			 state_names[s->state], e ? " tls-error=" : "", ebuf, s->messages);
	} else {
		log_info("%s smtp disconnect reason=%s state=%s messages=%u", s->id,
			 s->state == SS_CLOSING ? "quit" : "peer-closed", state_names[s->state],
			 s->messages);
	}
	session_free(s);
}
