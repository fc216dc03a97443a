/*
 * server.c - SMTP server connections: accepting (with the total and
 * per-source limits), reading input and splitting it into command lines
 * or content lines, replies, timeouts and the whole-session deadline,
 * STARTTLS (RFC 3207) and implicit TLS (RFC 8314), closing.
 *
 * Security rules enforced here, before any command handler runs:
 *  - a command line is at most rc->max_line_length octets and ends in
 *    CRLF; a bare LF is refused (500 5.5.2) unless the connector has
 *    bare-lf = normalize, a bare CR or a NUL always (RFC 5321 2.3.8; SMTP
 *    smuggling). In DATA, end of data is only a real <CRLF>.<CRLF> in
 *    both modes (data_line_kind());
 *  - after STARTTLS, every byte the client pipelined behind the command
 *    is discarded and the session starts over (CVE-2011-0411);
 *  - a TLS session that ends in order (QUIT, a 421) ends with close_notify
 *    (RFC 8446 6.1); a failed handshake is logged with OpenSSL's reason;
 *  - from SESSION_SOFT_ERRORS errors on, each command's reply is held on
 *    a timer for SESSION_ERROR_DELAY_MS (input waits meanwhile); at
 *    rc->max_errors the session is closed with 421 4.7.0;
 *  - the recipient tarpit: a refused recipient's reply is held the same
 *    way for rc->tarpit, and at rc->max_refused_recipients refusals the
 *    session is closed with 421 4.7.0 (never for an authenticated one);
 *    the delays of one session add up to rc->tarpit_max_per_session at
 *    most, then the next refusal closes it the same way;
 *  - the whole-session deadline closes the session with 421 4.4.2; when
 *    it fires during a commit, right after the commit's reply;
 *  - what a peer makes a session hold is bounded: input is read only up
 *    to a high-water mark (SESSION_IN_HIWAT, or one text line when that
 *    is longer), and no further command is taken while the replies not
 *    yet sent (s->out plus the bufferevent's output) exceed
 *    SESSION_OUT_LOWAT: reading stops until the peer has taken them all
 *    (OpenSMTPD reads again only below IO_LOWAT). A client that
 *    pipelines commands and never reads costs at most about
 *    SESSION_IN_HIWAT + SESSION_OUT_LOWAT + one reply.
 * A connection from a trusted proxy starts in SS_PROXY: proxy_wait.c
 * reads its PROXY header before anything is said, then session_proxied()
 * picks the connector and applies the per-source limit for the client the
 * header names, and only then the banner (or the implicit TLS handshake).
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

#include "net/listener.h"
#include "net/source.h"
#include "net/tls.h"
#include "policy/auth.h"
#include "policy/ratelimit.h"
#include "smtp/reply.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"
#include "util/metrics.h"

/* Bounds on what one session may hold (see the header comment). */
#define SESSION_IN_HIWAT (256 * 1024)
#define SESSION_OUT_LOWAT (16 * 1024)
/* From this many errors on, each reply to a command waits a second
 * (Postfix smtpd_soft_error_limit and smtpd_error_sleep_time); at
 * rc->max_errors the session is closed (smtpd_hard_error_limit). */
#define SESSION_SOFT_ERRORS 10
#define SESSION_ERROR_DELAY_MS 1000
/* Rate buckets held (policy/ratelimit.h): about 100 octets each, so at
 * most some 6 MB however many sources and logins a peer makes up. */
#define SMTP_RATE_TABLE_MAX 65536

static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void tls_close_notify(struct smtp_session *s);
static void session_policy_cancel(struct smtp_session *s);

static const char *const state_names[] = {
	"greeting", "connected", "ready",    "mail",     "rcpt",
	"data",	    "bdat",	 "chunking", "commit", "policy",   "auth",
	"starttls", "closing", "proxy",
};

const char *session_state_name(enum session_state st) { return state_names[st]; }

struct smtp_server *smtp_server_new(const struct smtp_server_params *p)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	uint32_t r = 0;

	srv->p = *p;
	srv->p.gen = NULL;
	srv->per_source = htable_new();
	smtp_server_set_generation(srv, p->gen);
	srv->rates = ratelimit_new(SMTP_RATE_TABLE_MAX);
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)getpid();
	srv->next_id = (uint64_t)r << 32;
	return srv;
}

void smtp_server_set_generation(struct smtp_server *srv, struct conf_gen *gen)
{
	const struct config *c = gen->conf;

	conf_gen_ref(gen);
	conf_gen_unref(srv->p.gen);
	srv->p.gen = gen;
	/* the AUTH checker is made once, when the first connector offers AUTH
	 * (its auth-failures limits are restart-only) */
	for (size_t i = 0; i < c->nrcs && srv->auth == NULL; i++)
		if (c->rcs[i].auth_mechs && srv->p.users)
			srv->auth = policy_auth_new(srv->p.base, srv->p.users, c);
}

unsigned smtp_server_sessions(const struct smtp_server *srv) { return srv->nsessions; }

unsigned smtp_server_sessions_on(const struct smtp_server *srv, const char *connector)
{
	const struct smtp_session *s;
	unsigned n = 0;

	/* by name: a session started on an older configuration generation
	 * counts on the connector of the same name */
	for (s = srv->sessions; s; s = s->next)
		if (s->rc != NULL && strcmp(s->rc->name, connector) == 0)
			n++;
	return n;
}

void smtp_server_free(struct smtp_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->shutdown_tick)
		event_free(srv->shutdown_tick);
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
	policy_auth_free(srv->auth); /* after the sessions: their checks are cancelled */
	htable_free(srv->per_source, NULL);
	conf_gen_unref(srv->p.gen);
	ratelimit_free(srv->rates);
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

void smtp_server_refuse_busy(struct smtp_server *srv, int fd, const struct receive_connector *rc)
{
	char text[SMTP_REPLY_TEXT_MAX + 16];

	snprintf(text, sizeof(text),
		 "421 4.3.2 %s Service temporarily unavailable (out of file descriptors), try again "
		 "later\r\n",
		 rc ? rc->fqdn : srv->p.gen->conf->server.fqdn);
	refuse_now(fd, text);
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

/* The whole-session deadline has passed: 421 4.4.2 after whatever reply
 * is already built, and close. */
static void session_deadline_close(struct smtp_session *s)
{
	session_reply(s, 421, "4.4.2", "%s Session time limit exceeded, closing connection",
		      s->rc->fqdn);
	session_close(s, "session-timeout");
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)fd;
	(void)what;
	log_info("%s smtp timeout kind=session state=%s", s->id, state_names[s->state]);
	if (s->state == SS_COMMIT) {
		/* The commit's reply must come first (the message may already
		 * be durable): session_resume() closes right after it. */
		s->deadline_passed = true;
		return;
	}
	session_deadline_close(s);
}

static void session_setup_bev(struct smtp_session *s)
{
	size_t hiwat = SESSION_IN_HIWAT;

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

static void address_text(const struct sockaddr *sa, char addr[INET6_ADDRSTRLEN])
{
	str_copy(addr, "?", INET6_ADDRSTRLEN);
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr,
			  INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
			  INET6_ADDRSTRLEN);
}

/* The per-source limit of connector rc_index for the client at sa (the
 * real client, when a proxy told us): its key into key, false (logged)
 * when the source is at its limit. */
static bool source_admit(struct smtp_server *srv, size_t rc_index, const struct sockaddr *sa,
			 const char *addr, const char *proxy, char *key, size_t keysz)
{
	const struct receive_connector *rc = &srv->p.gen->conf->rcs[rc_index];
	char source[SOURCE_KEY_MAX];

	/* per connector and per source prefix (net/source.h) */
	if (!source_prefix_key(sa, rc->source_prefix_ipv4, rc->source_prefix_ipv6, source,
			       sizeof(source)))
		str_copy(source, addr, sizeof(source));
	/* by name: indexes may differ between configuration generations */
	snprintf(key, keysz, "%s|%s", rc->name, source);
	if ((uintptr_t)htable_get(srv->per_source, key) < rc->max_connections_per_source)
		return true;
	log_info("smtp refused address=%s%s%s connector=%s reason=max-connections-per-source "
		 "source=%s limit=%u",
		 addr, proxy[0] ? " proxy=" : "", proxy, rc->name, source,
		 rc->max_connections_per_source);
	return false;
}

static bool total_admit(struct smtp_server *srv, const char *addr, const char *connector)
{
	if (srv->nsessions < srv->p.gen->conf->server.max_connections)
		return true;
	log_info("smtp refused address=%s connector=%s reason=max-connections limit=%u", addr,
		 connector, srv->p.gen->conf->server.max_connections);
	return false;
}

/* A session for fd, linked and counted, served by connector rc_index
 * for now; NULL (fd closed) when its timer cannot be made. */
static struct smtp_session *session_new(struct smtp_server *srv, int fd, const struct sockaddr *sa,
					socklen_t salen, size_t rc_index)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	struct timeval tv;

	s->srv = srv;
	s->gen = conf_gen_ref(srv->p.gen);
	s->rc = &s->gen->conf->rcs[rc_index];
	s->rc_index = rc_index;
	s->fd = fd;
	snprintf(s->id, sizeof(s->id), "%016" PRIx64, srv->next_id++);
	address_text(sa, s->addr);
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	buf_init(&s->out);
	srv->nsessions++;
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;

	s->deadline = evtimer_new(srv->p.base, deadline_cb, s);
	if (s->deadline == NULL) {
		log_warn("%s smtp session setup failed: no memory for its timer", s->id);
		session_close(s, "out-of-memory");
		return NULL;
	}
	tv.tv_sec = (time_t)s->rc->session_timeout;
	tv.tv_usec = 0;
	evtimer_add(s->deadline, &tv);
	return s;
}

/* The client is known and admitted: log it, then the TLS handshake
 * (implicit TLS) or the banner. */
static void session_begin(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	const struct receive_connector *rc = s->rc;
	int fd = s->fd;

	log_info("%s smtp connect address=%s%s%s connector=%s tls=%s", s->id, s->addr,
		 s->proxy_addr[0] ? " proxy=" : "", s->proxy_addr, rc->name,
		 rc->tls == RC_TLS_IMPLICIT ? "implicit" : "no");
	plog_note(s, "connect address=%s%s%s connector=%s", s->addr,
		  s->proxy_addr[0] ? " proxy=" : "", s->proxy_addr, rc->name);
	session_checks_start(s);

	if (rc->tls == RC_TLS_IMPLICIT) {
		s->ssl = SSL_new(s->gen->rc_tls[s->rc_index]);
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

void smtp_server_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
			size_t rc_index)
{
	const struct receive_connector *rc = &srv->p.gen->conf->rcs[rc_index];
	struct smtp_session *s;
	char addr[INET6_ADDRSTRLEN];
	char key[SOURCE_KEY_MAX + 24];

	address_text(sa, addr);
	if (!total_admit(srv, addr, rc->name)) {
		refuse_now(fd, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	if (!source_admit(srv, rc_index, sa, addr, "", key, sizeof(key))) {
		refuse_now(fd, "421 4.7.0 Too many connections from your address, try again later\r\n");
		return;
	}
	s = session_new(srv, fd, sa, salen, rc_index);
	if (s == NULL)
		return;
	str_copy(s->source_key, key, sizeof(s->source_key));
	source_count(srv, key, +1);
	session_begin(s);
}

/* ---- PROXY protocol: the pre-banner state (SS_PROXY) ---------------------- */

void smtp_server_accept_proxied(struct smtp_server *srv, int fd, const struct sockaddr *sa,
				socklen_t salen, const struct binding *b)
{
	int rc = listeners_trusting_connector(srv->p.gen->conf, b, sa);
	struct smtp_session *s;
	char addr[INET6_ADDRSTRLEN];

	address_text(sa, addr);
	if (rc < 0) { /* the listener asked; cannot happen */
		close(fd);
		return;
	}
	/* the total limit counts the proxy's connections; the per-source
	 * limit waits for the real client */
	if (!total_admit(srv, addr, srv->p.gen->conf->rcs[rc].name)) {
		refuse_now(fd, "421 4.7.0 Too many connections, try again later\r\n");
		return;
	}
	s = session_new(srv, fd, sa, salen, (size_t)rc);
	if (s == NULL)
		return;
	str_copy(s->proxy_addr, s->addr, sizeof(s->proxy_addr));
	session_set_state(s, SS_PROXY);
	proxy_wait_start(s, b);
}

void session_proxied(struct smtp_session *s, const struct sockaddr *client, socklen_t clientlen,
		     size_t rc_index)
{
	char key[SOURCE_KEY_MAX + 24];
	struct sockaddr_storage ss; /* client may be &s->ss (LOCAL) */
	struct timeval tv;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, client, clientlen < sizeof(ss) ? clientlen : sizeof(ss));
	s->rc = &s->gen->conf->rcs[rc_index];
	s->rc_index = rc_index;
	s->ss = ss;
	address_text((const struct sockaddr *)&ss, s->addr);
	if (!source_admit(s->srv, rc_index, (const struct sockaddr *)&ss, s->addr, s->proxy_addr,
			  key, sizeof(key))) {
		proxy_say(s, "421 4.7.0 Too many connections from your address, try again later\r\n");
		session_close(s, "max-connections-per-source");
		return;
	}
	str_copy(s->source_key, key, sizeof(s->source_key));
	source_count(s->srv, key, +1);
	/* the session deadline is the serving connector's, from now */
	tv.tv_sec = (time_t)s->rc->session_timeout;
	tv.tv_usec = 0;
	evtimer_add(s->deadline, &tv);
	session_begin(s);
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
	plog_out(s, s->out.data, s->out.len);
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

static void reply_delay_cb(evutil_socket_t fd, short what, void *arg);

/* Hold the replies built so far (and the input behind them) on the
 * reply-delay timer; the loop goes on serving everyone else. */
static void session_hold_reply(struct smtp_session *s, const struct timeval *tv)
{
	if (s->reply_delay == NULL)
		s->reply_delay = evtimer_new(s->srv->p.base, reply_delay_cb, s);
	s->reply_delayed = true;
	evtimer_add(s->reply_delay, tv);
}

/* The recipient tarpit (issue 7), called after each refused recipient's
 * reply is built. Not an error towards max-errors: a legitimate sender
 * with a stale address list must not be cut off by the error limit.
 * Instead each refusal's reply waits rc->tarpit (Exchange: 5 s), and at
 * rc->max_refused_recipients refusals the session is closed with 421
 * 4.7.0. An authenticated session is never tarpitted nor cut off (some
 * applications' SMTP engines cannot bear a delay; a login is accountable). */
void session_rcpt_refused(struct smtp_session *s)
{
	uint64_t delay = s->rc->tarpit;
	struct timeval tv;

	s->rcpts_refused++;
	if (s->auth_user != NULL)
		return;
	if (s->rcpts_refused >= s->rc->max_refused_recipients) {
		log_info("%s smtp reject cmd=RCPT reply=\"421 4.7.0\" reason=too-many-refused-recipients "
			 "refused=%u",
			 s->id, s->rcpts_refused);
		session_reply(s, 421, "4.7.0", "%s Too many refused recipients, closing connection",
			      s->rc->fqdn);
		session_close(s, "too-many-refused-recipients");
		return;
	}
	if (delay == 0)
		return;
	/* The session's tarpit budget (tarpit-max-per-session): a session
	 * holds a connection slot of ours while it waits, so its delays add
	 * up to at most the budget; the refusal that finds it spent closes
	 * the session as the refused-recipient limit does. */
	if (s->tarpit_spent >= s->rc->tarpit_max_per_session) {
		log_info("%s smtp reject cmd=RCPT reply=\"421 4.7.0\" reason=tarpit-budget-spent "
			 "refused=%u tarpit-total=%" PRIu64 "s",
			 s->id, s->rcpts_refused, s->tarpit_spent);
		session_reply(s, 421, "4.7.0", "%s Too many refused recipients, closing connection",
			      s->rc->fqdn);
		session_close(s, "tarpit-budget-spent");
		return;
	}
	if (delay > s->rc->tarpit_max_per_session - s->tarpit_spent)
		delay = s->rc->tarpit_max_per_session - s->tarpit_spent;
	s->tarpit_spent += delay;
	log_info("%s smtp delay cmd=RCPT reason=tarpit delay=%" PRIu64 "s refused=%u", s->id, delay,
		 s->rcpts_refused);
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = 0;
	session_hold_reply(s, &tv);
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

void session_free(struct smtp_session *s)
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
	session_policy_cancel(s);
	auth_reset(s);
	session_checks_free(s);
	session_dir_free(s);
	session_unlink(s);
	if (s->tx) {
		tx_free(s->tx);
		s->tx = NULL;
	}
	proxy_wait_free(s); /* its event is on s->fd: before the close */
	if (s->bev)
		bufferevent_free(s->bev); /* frees SSL and closes fd when TLS */
	if (s->fd >= 0)
		close(s->fd);
	if (s->deadline)
		event_free(s->deadline);
	if (s->reply_delay)
		event_free(s->reply_delay);
	if (s->tls_switch)
		event_free(s->tls_switch);
	if (s->wait_timer)
		event_free(s->wait_timer);
	if (s->source_key[0]) /* not yet counted while reading a PROXY header */
		source_count(s->srv, s->source_key, -1);
	s->srv->nsessions--;
	buf_free(&s->out);
	conf_gen_unref(s->gen); /* maybe the last holder of an old generation */
	free(s);
}

void session_release_dead(struct smtp_session *s)
{
	s->commit_pending = false;
	session_free(s);
}

void session_close(struct smtp_session *s, const char *reason)
{
	session_policy_cancel(s);
	log_info("%s smtp disconnect reason=%s messages=%u errors=%u", s->id, reason, s->messages,
		 s->errors);
	if (s->reply_delayed) {
		/* the held reply goes out now, before the last one */
		s->reply_delayed = false;
		evtimer_del(s->reply_delay);
	}
	session_send(s);
	plog_note(s, "disconnect reason=%s", reason);
	if (s->bev && evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		session_set_state(s, SS_CLOSING);
		bufferevent_disable(s->bev, EV_READ);
		return; /* session_write_cb frees when flushed */
	}
	tls_close_notify(s);
	session_free(s);
}

/* ---- TLS ------------------------------------------------------------------ */

/* An orderly end of a TLS session: send close_notify (RFC 8446 6.1) once
 * every reply is out, so the peer can tell our close from a truncation
 * (Exim logs "unexpected EOF" otherwise). Not after a TLS or socket
 * error, and without waiting for the peer's own close_notify. */
static void tls_close_notify(struct smtp_session *s)
{
	if (s->ssl == NULL || !s->tls || s->dead || s->bev == NULL)
		return;
	if (SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN)
		return;
	(void)SSL_shutdown(s->ssl);
	ERR_clear_error();
}

static void starttls_switch(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	SSL_CTX *ctx = s->gen->rc_tls[s->rc_index];
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
	plog_note(s, "tls %s", s->tls_info);
	metrics_add(&metric_tls, "inbound", SSL_get_version(s->ssl), 1);
	/* RFC 3207 4.2: forget everything learnt before TLS; a new EHLO is needed. */
	s->helo[0] = '\0';
	s->esmtp = false;
	session_reset_tx(s);
	auth_reset(s);
	if (implicit)
		send_banner(s);
	else
		session_set_state(s, SS_CONNECTED);
}

/* ---- input ---------------------------------------------------------------- */

/* A command line that is not taken: 500 5.5.2, counted as an error. */
static size_t command_refused(struct smtp_session *s, size_t linelen, const char *reason,
			      const char *text)
{
	log_info("%s smtp reject reason=%s", s->id, reason);
	if (s->state == SS_AUTH)
		auth_abort(s);
	session_reply(s, 500, "5.5.2", "%s", text);
	session_error(s);
	return linelen;
}

/* One command line, if complete. Returns bytes consumed (0: need more).
 * Ends in CRLF, or in a bare LF on a bare-lf = normalize connector; never
 * a bare CR or a NUL inside. */
static size_t read_command(struct smtp_session *s, const char *p, size_t len)
{
	size_t max = s->rc->max_line_length;
	const char *lf;
	size_t linelen, cmdlen;

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
		if (s->state == SS_AUTH)
			auth_abort(s);
		session_reply(s, 500, "5.5.2", "Line too long (limit is %zu octets)", max);
		if (session_error(s))
			return len;
		s->skip_cmd_line = true;
		return max;
	}
	linelen = (size_t)(lf - p) + 1;
	s->cmd_bare_lf = linelen < 2 || p[linelen - 2] != '\r';
	cmdlen = linelen - (s->cmd_bare_lf ? 1 : 2);
	if (s->cmd_bare_lf && s->rc->bare_lf != RC_BARE_LF_NORMALIZE)
		return command_refused(s, linelen, "bare-lf",
				       "Bare LF in command refused (RFC 5321 2.3.8)");
	if (memchr(p, '\r', cmdlen) != NULL)
		return command_refused(s, linelen, "bare-cr",
				       "Bare CR in command refused (RFC 5321 2.3.8)");
	if (memchr(p, '\0', cmdlen) != NULL)
		return command_refused(s, linelen, "nul", "NUL character in command refused");
	if (s->state != SS_AUTH && session_checks_hold(s, p, cmdlen))
		return 0; /* an RCPT waits for the client checks, then is read again */
	if (s->state != SS_AUTH && session_dir_hold(s, p, cmdlen))
		return 0; /* MAIL/RCPT wait for the LDAP directory, then are read again */
	if (log_debug_enabled() || plog_on(s))
		auth_log_command(s, p, cmdlen); /* credentials masked */
	if (s->state == SS_AUTH)
		auth_response_line(s, p, cmdlen);
	else
		commands_dispatch(s, p, cmdlen);
	return linelen;
}

/* Classify one DATA line (with its LF) under the connector's bare-lf
 * mode. End of data is only a real <CRLF>.<CRLF>: a "." line that ends
 * in a bare LF, or that follows a line ending in a bare LF, is content
 * (a line "." with its transparency dot removed), so none of the SMTP
 * smuggling shapes ends the data early in either mode. */
static enum dataline_kind data_line_kind(struct smtp_session *s, const char *line, size_t len,
					 const char **c, size_t *clen)
{
	struct smtp_tx *tx = s->tx;
	bool normalize = s->rc->bare_lf == RC_BARE_LF_NORMALIZE;
	enum dataline_kind kind = dataline_classify(line, len, c, clen);
	bool after_bare_lf = tx->after_bare_lf;

	tx->after_bare_lf = kind == DATALINE_BARE_LF;
	if (kind == DATALINE_END && after_bare_lf)
		return normalize ? DATALINE_TEXT : DATALINE_BARE_LF;
	if (kind == DATALINE_BARE_LF && normalize)
		return DATALINE_TEXT; /* content_line_ok() still refuses a CR inside */
	return kind;
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
				content_fail_long_line(s);
				tx->skipping_long_line = true;
				tx->skipped_cr = p[len - 1] == '\r';
				off = len;
			}
			break;
		}
		linelen = (size_t)(lf - (p + off)) + 1;
		if (tx->skipping_long_line || linelen > max + 2) {
			/* An over-long line still decides whether a "." line after
			 * it may end the data: "<long line><LF>.<CRLF>" must not. */
			bool crlf = linelen >= 2 ? p[off + linelen - 2] == '\r'
						 : tx->skipping_long_line && tx->skipped_cr;
			tx->after_bare_lf = !crlf;
			tx->skipping_long_line = false;
			content_fail_long_line(s);
		} else {
			switch (data_line_kind(s, p + off, linelen, &c, &clen)) {
			case DATALINE_END:
				off += linelen;
				plog_note(s, "message data: %" PRIu64 " octets (not logged)", tx->size);
				content_end(s);
				return off;
			case DATALINE_TEXT:
				if (!tx->fail_code && content_line_ok(s, c, clen))
					content_data_line(s, c, clen);
				break;
			case DATALINE_BARE_LF:
				content_fail(tx, "bare-lf", 554, "5.6.0",
					     "Message refused: bare LF in message data "
					     "(RFC 5321 2.3.8)");
				break;
			case DATALINE_BARE_CR:
				content_fail(tx, "bare-cr", 554, "5.6.0",
					     "Message refused: bare CR in message data "
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
		session_set_state(s, session_command_state(s));
		return; /* the refusal was replied when the command came */
	}
	if (s->bdat_last) {
		content_end(s);
		return;
	}
	session_data_timeouts(s, false);
	session_reply(s, 250, "2.0.0", "%" PRIu64 " octets received", s->tx->size);
	session_set_state(s, SS_CHUNKING);
}

static void reply_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)fd;
	(void)what;
	s->reply_delayed = false;
	session_resume(s);
}

/* After the soft error limit, hold the reply just built (and the input
 * behind it) for SESSION_ERROR_DELAY_MS on a timer; the loop goes on
 * serving everyone else. */
static void session_maybe_delay_reply(struct smtp_session *s)
{
	struct timeval tv = {SESSION_ERROR_DELAY_MS / 1000, (SESSION_ERROR_DELAY_MS % 1000) * 1000};

	if (s->errors < SESSION_SOFT_ERRORS || s->out.len == 0 || s->state == SS_CLOSING ||
	    s->state == SS_STARTTLS || s->state == SS_POLICY || s->reply_delayed)
		return; /* reply_delayed: the tarpit holds it already, longer */
	session_hold_reply(s, &tv);
}

/* Replies not yet taken by the peer: being built, or queued to send. */
static size_t session_output_backlog(struct smtp_session *s)
{
	return s->out.len + evbuffer_get_length(bufferevent_get_output(s->bev));
}

/* Stop reading until the peer has read every reply (session_write_cb
 * resumes). Input already buffered stays there, below the high-water
 * mark. */
static void session_hold_input(struct smtp_session *s)
{
	if (!s->input_held)
		log_debug("%s smtp input held backlog=%zu", s->id, session_output_backlog(s));
	s->input_held = true;
	bufferevent_disable(s->bev, EV_READ);
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
		if (s->state == SS_COMMIT || s->state == SS_POLICY || s->state == SS_GREETING ||
		    s->reply_delayed)
			break;
		if (session_output_backlog(s) > SESSION_OUT_LOWAT) {
			session_hold_input(s);
			break;
		}
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
		if (s->state == SS_DATA) {
			used = read_data(s, p, len);
		} else {
			used = read_command(s, p, len);
			if (used > 0 && !s->dead && s->bev)
				session_maybe_delay_reply(s);
		}
		if (s->dead || s->bev == NULL)
			return;
		if (used == 0)
			break;
		evbuffer_drain(bufferevent_get_input(s->bev), used);
		if (s->state == SS_CLOSING || s->state == SS_STARTTLS || s->state == SS_POLICY ||
		    s->reply_delayed)
			break;
	}
	if (!s->reply_delayed)
		session_send(s);
}

/* ---- the policy step (session.h) ------------------------------------------ */

static void policy_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	const struct session_wait_ops *ops = s->wait;
	(void)fd;
	(void)what;

	log_info("%s smtp timeout kind=policy wait=%s", s->id, ops->what);
	s->wait = NULL;
	ops->cancel(s);
	ops->timeout(s);
	session_policy_done(s, session_command_state(s));
}

bool session_policy_wait(struct smtp_session *s, const struct session_wait_ops *ops)
{
	struct timeval tv = {(time_t)s->rc->command_timeout, 0};

	if (s->wait_timer == NULL &&
	    (s->wait_timer = evtimer_new(s->srv->p.base, policy_wait_timeout, s)) == NULL) {
		log_warn("%s smtp policy wait=%s failed: no memory for its timer", s->id, ops->what);
		return false;
	}
	s->wait = ops;
	evtimer_add(s->wait_timer, &tv);
	session_set_state(s, SS_POLICY);
	/* Nothing is read while waiting: what is buffered stays bounded by
	 * the high-water mark, and no read timeout runs against the client,
	 * who is waiting for us. */
	if (s->bev)
		bufferevent_disable(s->bev, EV_READ);
	return true;
}

/* Drop the request of a wait in progress (closing, freeing). */
static void session_policy_cancel(struct smtp_session *s)
{
	const struct session_wait_ops *ops = s->wait;

	if (ops == NULL)
		return;
	s->wait = NULL;
	evtimer_del(s->wait_timer);
	ops->cancel(s);
}

void session_policy_done(struct smtp_session *s, enum session_state next)
{
	s->wait = NULL;
	if (s->wait_timer)
		evtimer_del(s->wait_timer);
	session_set_state(s, next);
	if (s->bev && !s->input_held)
		bufferevent_enable(s->bev, EV_READ);
	session_resume(s);
}

void session_resume(struct smtp_session *s)
{
	if (s->deadline_passed) {
		session_deadline_close(s);
		return;
	}
	session_send(s);
	if (s->srv->shutting_down) {
		session_shutdown_step(s, false); /* the reply just sent, then 421 */
		return;
	}
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
	if (s->state == SS_CLOSING) {
		tls_close_notify(s);
		session_free(s);
	}
	else if (s->state == SS_STARTTLS) {
		/* switch on the next turn of the loop, on an event the session
		 * owns: session_free() cancels it if the session ends first */
		if (s->tls_switch == NULL)
			s->tls_switch = evtimer_new(s->srv->p.base, starttls_switch, s);
		evtimer_add(s->tls_switch, &now);
	}
	else if (s->input_held && s->state != SS_POLICY) {
		/* the peer took every reply: read and process again (a policy
		 * wait reads again with its answer, session_policy_done) */
		s->input_held = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

/* Why the connection failed, in words: the first OpenSSL error that
 * libevent kept for this bufferevent, else the socket error, else EOF. */
static void session_io_error(struct smtp_session *s, short what, char *out, size_t outsz)
{
	unsigned long e = s->ssl ? bufferevent_get_openssl_error(s->bev) : 0;
	int err = EVUTIL_SOCKET_ERROR();

	while (s->ssl && bufferevent_get_openssl_error(s->bev) != 0)
		; /* keep the first, drop the rest */
	if (e != 0)
		ERR_error_string_n(e, out, outsz);
	else if ((what & BEV_EVENT_ERROR) && err != 0)
		str_copy(out, strerror(err), outsz);
	else
		str_copy(out, "connection closed by the peer", outsz);
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
	if ((what & BEV_EVENT_ERROR) || s->state == SS_GREETING) {
		char why[256], q[300];
		session_io_error(s, what, why, sizeof(why));
		log_info("%s smtp disconnect reason=%s state=%s %s=%s messages=%u", s->id,
			 s->state == SS_GREETING ? "tls-handshake-failed" : "error",
			 state_names[s->state], s->ssl ? "tls-error" : "error",
			 log_quote(why, q, sizeof(q)), s->messages);
	} else {
		if (s->ssl && s->tls && (SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN))
			tls_close_notify(s); /* the client closed first: answer it */
		log_info("%s smtp disconnect reason=%s state=%s messages=%u", s->id,
			 s->state == SS_CLOSING ? "quit" : "peer-closed", state_names[s->state],
			 s->messages);
	}
	session_free(s);
}
