/*
 * content.c - message content intake for DATA (RFC 5321 4.1.1.4) and BDAT
 * (RFC 3030): the Received trace field (RFC 5321 4.4, protocol names from
 * RFC 3848 and RFC 6531 3.7.3), a Message-ID when the message has none
 * (RFC 5322 3.6.4; never changed when present), the size limit (RFC 1870,
 * 552 5.3.4), the hop limit (RFC 5321 6.3, 554 5.4.6), and the hand-over
 * to the queue's group commit. Only after the commit callback says the
 * message is durable does the client get its 250.
 *
 * A failure while content is arriving (too big, bare CR/LF, a NUL, an
 * over-long line, too many hops, disk error) is remembered in the
 * transaction with its reason, the queue file is dropped at once, and the
 * reply is given at the end of the content, when the client listens
 * again; the log line says reason=bare-lf|bare-cr|nul|line-too-long|...
 *
 * Line ends (RFC 5321 2.3.8): CRLF; a bare LF is refused (554 5.6.0) or,
 * on a connector with bare-lf = normalize, taken as CRLF (the stored
 * message has CRLF). Bare CR and NUL are refused in both modes (there is
 * no BINARYMIME). BDAT content has no dot transparency.
 */
#include "smtp/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/tracking.h"
#include "queue/queue.h"
#include "route/route.h"
#include "smtp/reply.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"
#include "util/metrics.h"


void content_fail(struct smtp_tx *tx, const char *reason, int code, const char *enh,
		  const char *text)
{
	if (tx->fail_code)
		return;
	tx->fail_reason = reason;
	tx->fail_code = code;
	tx->fail_enh = enh;
	tx->fail_text = text;
	if (tx->writer) {
		queue_writer_abort(tx->writer);
		tx->writer = NULL;
	}
}

static void content_write(struct smtp_tx *tx, const char *p, size_t n)
{
	if (tx->writer == NULL)
		return;
	if (queue_writer_write(tx->writer, p, n) < 0) {
		log_warn("%s queue write error: %s", tx->env.qid, strerror(errno));
		content_fail(tx, "queue-error", 451, "4.3.0",
			     "Error: queue file write error, try again later");
	}
}

static const char *protocol_name(const struct smtp_session *s)
{
	bool auth = s->tx->env.auth_user != NULL;

	if (s->tx->env.smtputf8)
		return s->tls ? (auth ? "UTF8SMTPSA" : "UTF8SMTPS") : (auth ? "UTF8SMTPA" : "UTF8SMTP");
	if (!s->esmtp)
		return "SMTP";
	return s->tls ? (auth ? "ESMTPSA" : "ESMTPS") : (auth ? "ESMTPA" : "ESMTP");
}

static void write_received(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct buf b = BUF_INIT;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_printf(&b, "Received: from %s (%s%s%s)\r\n", s->helo[0] ? s->helo : "unknown",
		   strchr(s->addr, ':') ? "[IPv6:" : "[", s->addr, "]");
	buf_printf(&b, "\tby %s (transit) with %s id %s\r\n", s->rc->fqdn, protocol_name(s),
		   tx->env.qid);
	if (s->tls)
		buf_printf(&b, "\t(%s)\r\n", s->tls_info);
	if (tx->env.nrcpt == 1)
		buf_printf(&b, "\tfor <%s>; %s\r\n", tx->env.rcpt[0].addr, date);
	else
		buf_printf(&b, "\t; %s\r\n", date);
	content_write(tx, b.data, b.len);
	buf_free(&b);
}

bool content_begin(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	queue_new_qid(s->srv->p.queue, tx->env.qid);
	tx->env.arrival = time(NULL);
	envelope_set_str(&tx->env.connector, s->rc->name);
	envelope_set_str(&tx->env.client_addr, s->addr);
	envelope_set_str(&tx->env.client_helo, s->helo[0] ? s->helo : NULL);
	tx->writer = queue_writer_new(s->srv->p.queue, &tx->env);
	if (tx->writer == NULL) {
		log_warn("%s queue file create error: %s", tx->env.qid, strerror(errno));
		session_reply(s, 451, "4.3.0", "Error: queue file write error, try again later");
		return false;
	}
	hdrscan_init(&tx->hdr);
	tx->size = 0;
	write_received(s);
	return tx->writer != NULL;
}

static void add_message_id(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char line[QID_MAX + 300];
	int n;

	if (tx->hdr.has_message_id || tx->message_id_added)
		return;
	n = snprintf(line, sizeof(line), "Message-ID: <%s@%s>\r\n", tx->env.qid, s->rc->fqdn);
	tx->message_id_added = true;
	if (n > 0 && (size_t)n < sizeof(line))
		content_write(tx, line, (size_t)n);
}

void content_data_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_tx *tx = s->tx;

	if (tx->fail_code)
		return;
	tx->size += len + 2;
	if (tx->size > s->rc->max_message_size) {
		log_info("%s smtp reject reason=size limit=%" PRIu64, s->id, s->rc->max_message_size);
		content_fail(tx, "size", 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	if (!tx->hdr.in_body) {
		switch (hdrscan_line(&tx->hdr, line, len)) {
		case HDRLINE_END:
			add_message_id(s);
			break;
		case HDRLINE_NOT_HEADER:
			/* header section ended without its empty line: add both */
			add_message_id(s);
			content_write(tx, "\r\n", 2);
			break;
		default:
			from_binding_line(s, line, len); /* sender-binding-header */
			break;
		}
	}
	content_write(tx, line, len);
	content_write(tx, "\r\n", 2);
}

void content_fail_long_line(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx->fail_code)
		return;
	snprintf(tx->fail_buf, sizeof(tx->fail_buf),
		 "Message refused: line too long (limit is %u octets)", s->rc->max_text_line_length);
	content_fail(tx, "line-too-long", 554, "5.6.0", tx->fail_buf);
}

bool content_line_ok(struct smtp_session *s, const char *p, size_t len)
{
	if (memchr(p, '\r', len) != NULL) {
		content_fail(s->tx, "bare-cr", 554, "5.6.0",
			     "Message refused: bare CR in message data (RFC 5321 2.3.8)");
		return false;
	}
	if (memchr(p, '\0', len) != NULL) {
		content_fail(s->tx, "nul", 554, "5.6.0",
			     "Message refused: NUL character in message data");
		return false;
	}
	return true;
}

/* One BDAT line including its LF (final: the end of the last chunk, no LF).
 * No dot transparency in BDAT (RFC 3030 2). */
static void bdat_line(struct smtp_session *s, const char *p, size_t len, bool final)
{
	size_t body = len;

	if (!final) {
		if (len >= 2 && p[len - 2] == '\r') {
			body = len - 2;
		} else if (s->rc->bare_lf == RC_BARE_LF_NORMALIZE) {
			body = len - 1; /* taken as CRLF */
		} else {
			content_fail(s->tx, "bare-lf", 554, "5.6.0",
				     "Message refused: bare LF in message data (RFC 5321 2.3.8)");
			return;
		}
	}
	if (content_line_ok(s, p, body))
		content_data_line(s, p, body);
}

void content_bdat_bytes(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_tx *tx = s->tx;
	size_t max = s->rc->max_text_line_length + 2;

	while (n > 0 && !tx->fail_code) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf ? (size_t)(lf - p) + 1 : n;

		if (tx->partial.len + take > max) {
			content_fail_long_line(s);
			buf_free(&tx->partial);
			return;
		}
		if (lf && tx->partial.len == 0) {
			bdat_line(s, p, take, false);
		} else {
			buf_append(&tx->partial, p, take);
			if (lf) {
				bdat_line(s, tx->partial.data, tx->partial.len, false);
				buf_reset(&tx->partial);
			}
		}
		p += take;
		n -= take;
	}
}

/* Message tracking: RECEIVE, once the message is on disk. */
static void track_receive(const struct smtp_session *s, const struct envelope *env)
{
	const struct smtp_tx *tx = s->tx;
	const char **rcpts = xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(char *));
	char msgid[QID_MAX + 300];
	struct track_event ev = {
		.event = "RECEIVE",
		.qid = env->qid,
		.sender = env->sender,
		.nrecipients = env->nrcpt,
		.connector = env->connector,
		.remote_host = env->client_helo,
		.remote_ip = env->client_addr,
		.tls = s->tls ? s->tls_info : NULL,
		.has_size = true,
		.size = env->content_len,
		.status = "2.0.0",
		.session = s->id,
	};

	for (size_t i = 0; i < env->nrcpt; i++)
		rcpts[i] = env->rcpt[i].addr;
	ev.recipients = rcpts;
	if (tx != NULL && tx->message_id_added) {
		snprintf(msgid, sizeof(msgid), "<%s@%s>", env->qid, s->rc->fqdn);
		ev.message_id = msgid;
	} else if (tx != NULL && tx->hdr.message_id[0]) {
		ev.message_id = tx->hdr.message_id;
	}
	tracking_event(&ev);
	free(rcpts);
}

static void commit_done(void *arg, int error, struct envelope *env)
{
	struct smtp_session *s = arg;
	const char *rcpt0 = env && env->nrcpt ? env->rcpt[0].addr : "";

	s->commit_pending = false;
	if (error == 0) {
		char from[ADDR_TEXT_MAX * 4 + 8], to[ADDR_TEXT_MAX * 4 + 8], helo[1100];
		char tmp[ADDR_TEXT_MAX + 8];
		snprintf(tmp, sizeof(tmp), "<%s>", env->sender);
		log_quote(tmp, from, sizeof(from));
		snprintf(tmp, sizeof(tmp), "<%s>", rcpt0);
		log_quote(tmp, to, sizeof(to));
		log_quote(env->client_helo ? env->client_helo : "-", helo, sizeof(helo));
		log_info("%s receive from=%s size=%" PRIu64 " nrcpt=%zu to=%s%s connector=%s "
			 "client=%s helo=%s sid=%s tls=%s",
			 env->qid, from, env->content_len, env->nrcpt, to, env->nrcpt > 1 ? ",..." : "",
			 env->connector, env->client_addr, helo, s->id, s->tls ? "yes" : "no");
		track_receive(s, env);
	}
	if (s->dead) {
		/* the client is gone but the message is safe: deliver it */
		if (error == 0) {
			metrics_add(&metric_received, env->connector, NULL, 1);
			s->srv->p.on_message(s->srv->p.on_message_arg, env);
		}
		session_release_dead(s);
		return;
	}
	if (error) {
		log_warn("%s queue commit failed: %s", s->tx->env.qid, strerror(error));
		session_reply(s, 451, "4.3.0", "Error: queue file write error, try again later");
	} else {
		s->messages++;
		metrics_add(&metric_received, env->connector, NULL, 1);
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", env->qid);
		s->srv->p.on_message(s->srv->p.on_message_arg, env);
	}
	session_reset_tx(s);
	session_set_state(s, SS_READY);
	session_data_timeouts(s, false);
	session_resume(s);
}

/* Send connector restrictions that only the final size can decide: when
 * no recipient may take the message, refuse it now (552 5.3.4); when only
 * some may not, accept and let the scheduler bounce those with a DSN. */
static void check_routes(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct config *c = s->gen->conf;
	struct route_verdict v;
	size_t i, refused = 0;
	/* the size the scheduler will see: what the client sent plus our own
	 * Received and Message-ID fields, so accept-then-bounce cannot happen */
	uint64_t size = tx->writer ? queue_writer_size(tx->writer) : tx->size;

	for (i = 0; i < tx->env.nrcpt; i++) {
		const char *at = strrchr(tx->env.rcpt[i].addr, '@');
		struct route r;
		struct route_verdict one;
		if (at == NULL)
			continue;
		route_domain(c, at + 1, &r);
		if (r.kind == ROUTE_CONNECTOR &&
		    !route_check(r.sc, tx->env.sender, size, &one)) {
			if (refused++ == 0)
				v = one;
		}
	}
	if (refused > 0 && refused == tx->env.nrcpt) {
		str_copy(tx->fail_buf, v.text, sizeof(tx->fail_buf));
		content_fail(tx, "route", v.code, v.enh, tx->fail_buf);
	}
}

void content_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx->bdat && tx->partial.len > 0 && !tx->fail_code) {
		/* the last chunk did not end in CRLF: take the rest as a line */
		bdat_line(s, tx->partial.data, tx->partial.len, true);
		buf_reset(&tx->partial);
	}
	if (!tx->fail_code && !tx->hdr.in_body)
		add_message_id(s);
	if (!tx->fail_code && tx->hdr.received > s->gen->conf->server.max_hop_count) {
		log_info("%s smtp reject reason=hop-count received=%u limit=%u", s->id,
			 tx->hdr.received, s->gen->conf->server.max_hop_count);
		content_fail(tx, "hop-count", 554, "5.4.6", "Too many hops: mail forwarding loop detected");
	}
	if (!tx->fail_code)
		from_binding_check(s); /* sender-binding-header: 550 5.7.1 */
	if (!tx->fail_code)
		check_routes(s);
	session_data_timeouts(s, false);
	if (tx->fail_code) {
		char from[ADDR_TEXT_MAX * 4 + 8], tmp[ADDR_TEXT_MAX + 8];
		snprintf(tmp, sizeof(tmp), "<%s>", tx->env.sender);
		log_info("%s smtp reject cmd=%s reply=\"%d %s\" reason=%s from=%s size=%" PRIu64,
			 s->id, tx->bdat ? "BDAT" : "DATA", tx->fail_code, tx->fail_enh,
			 tx->fail_reason, log_quote(tmp, from, sizeof(from)), tx->size);
		session_reply(s, tx->fail_code, tx->fail_enh, "%s", tx->fail_text);
		session_reset_tx(s);
		session_set_state(s, SS_READY);
		return;
	}
	session_set_state(s, SS_COMMIT);
	s->commit_pending = true;
	queue_writer_commit(tx->writer, commit_done, s);
	tx->writer = NULL;
}
