/*
 * smtp_client_tx.c - one message over an open smtp_client connection
 * (contract in smtp_client.h): MAIL FROM with SIZE (RFC 1870),
 * BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461
 * 4.3, 4.4, xtext 4); RCPT TO with NOTIFY and ORCPT (RFC 3461 4.1, 4.2);
 * DATA (RFC 5321 4.1.1.4) with the content streamed from the queue file,
 * dot-stuffed (RFC 5321 4.5.2) and every line end sent as CRLF, so no
 * bare LF or CR ever leaves (SMTP smuggling). With PIPELINING (RFC 2920)
 * MAIL, all RCPTs and DATA go in one write and the replies are matched in
 * order (every status is checked, 3.1); without it, lockstep. RSET goes
 * alone, before the next MAIL, after a transaction that may have stayed
 * open at the peer.
 *
 * The content is read with pread in SMTPC_BLOCK blocks and the output
 * buffer is filled only up to SMTPC_OUT_HIWAT, refilled from the write
 * callback (under TLS the plain bufferevent below the filter is bounded
 * by the same mark, see smtpc_start_tls): memory stays bounded whatever
 * the message size, and a peer that stops reading makes the client stop
 * reading the file and time out (command_timeout without progress).
 *
 * A peer without 8BITMIME gets the content converted to 7 bit on the way
 * (smtp_client_conv.c decides before MAIL, mail/mime7bit.c converts each
 * block before it is dot-stuffed); without SMTPUTF8, a message that does
 * not need it is sent without the parameter.
 *
 * Outcome (struct smtpc_result):
 *  - refused before anything is sent (SMTPUTF8 needed but not offered:
 *    553 5.6.7; 8-bit and neither 8BITMIME nor convertible: 554 5.6.3;
 *    larger than the peer's SIZE: 552 5.3.4): PERM, still reusable; a
 *    non-ASCII recipient without SMTPUTF8: that recipient 553 5.6.7;
 *  - MAIL 4xx/5xx: TEMP/PERM, every recipient gets the MAIL reply;
 *  - no recipient accepted: DONE, each recipient has its RCPT reply,
 *    msg_reply is the first refusal;
 *  - DATA or final reply 2xx: DONE, accepted recipients get that reply;
 *    4xx/5xx: TEMP/PERM with that reply, which accepted recipients get
 *    too while refused ones keep their RCPT reply;
 *  - timeout, connection loss, protocol error, unreadable content: TEMP
 *    with a local 421, not reusable. A content that cannot be read to its
 *    end is never closed with "." (the connection is dropped instead).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "deliver/smtp_client.h"
#include "deliver/smtp_client_int.h"
#include "smtp/cmd.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define SMTPC_ADDR_MAX 512  /* longest address we put into MAIL/RCPT */
#define SMTPC_STUFF_MAX (2 * SMTPC_BLOCK + 8) /* worst case output of one block */

static bool is_2xx(int code) { return code / 100 == 2; }

/* ---- building the commands --------------------------------------------- */

/* No control characters (CR/LF would inject commands), bounded length. */
static bool smtpc_addr_ok(const char *a)
{
	size_t i;

	if (a == NULL)
		return false;
	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f || i >= SMTPC_ADDR_MAX)
			return false;
	return true;
}

/* xtext (RFC 3461 4): "!".."~" except "+" and "=" as they are, else "+XX". */
static void smtpc_xtext(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 33 && ch <= 126 && ch != '+' && ch != '=')
			buf_putc(b, (char)ch);
		else
			buf_printf(b, "+%02X", ch);
	}
}

static void smtpc_push(struct smtpc_tx *tx, enum smtpc_exp_kind kind, size_t idx,
		       const struct buf *line)
{
	struct smtpc_exp *e = &tx->exp[tx->nexp++];

	e->kind = kind;
	e->idx = idx;
	e->off = tx->cmds.len;
	e->len = line->len;
	buf_append(&tx->cmds, line->data, line->len);
}

static void smtpc_mail_line(const struct smtpc *c, const struct smtpc_msg *m, struct buf *l)
{
	buf_printf(l, "MAIL FROM:<%s>", m->sender);
	if (c->ext.has_size)
		buf_printf(l, " SIZE=%llu", (unsigned long long)m->content_len);
	if (m->body == BODY_8BITMIME && c->ext.eightbitmime)
		buf_puts(l, " BODY=8BITMIME");
	if (c->tx->utf8)
		buf_puts(l, " SMTPUTF8");
	if (!c->ext.dsn)
		return;
	if (m->ret == DSN_RET_FULL)
		buf_puts(l, " RET=FULL");
	else if (m->ret == DSN_RET_HDRS)
		buf_puts(l, " RET=HDRS");
	if (m->envid != NULL && m->envid[0] != '\0' && strlen(m->envid) < SMTP_ENVID_MAX) {
		buf_puts(l, " ENVID=");
		smtpc_xtext(l, m->envid, strlen(m->envid));
	}
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2) from the decoded "type;address". */
static void smtpc_orcpt(struct buf *l, const char *orcpt)
{
	const char *semi = orcpt != NULL ? strchr(orcpt, ';') : NULL;
	size_t i, tlen;

	if (semi == NULL || semi[1] == '\0' || strlen(orcpt) >= SMTP_ORCPT_MAX)
		return;
	tlen = (size_t)(semi - orcpt);
	if (tlen == 0 || tlen > 20)
		return;
	for (i = 0; i < tlen; i++) {
		char ch = orcpt[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return;
	}
	buf_puts(l, " ORCPT=");
	buf_append(l, orcpt, tlen + 1);
	smtpc_xtext(l, semi + 1, strlen(semi + 1));
}

static void smtpc_rcpt_line(const struct smtpc *c, const struct smtpc_rcpt *r, struct buf *l)
{
	buf_printf(l, "RCPT TO:<%s>", r->addr);
	if (!c->ext.dsn)
		return;
	if (r->notify & DSN_NOTIFY_NEVER) {
		buf_puts(l, " NOTIFY=NEVER");
	} else if (r->notify != 0) {
		const char *sep = " NOTIFY=";
		if (r->notify & DSN_NOTIFY_SUCCESS) {
			buf_printf(l, "%sSUCCESS", sep);
			sep = ",";
		}
		if (r->notify & DSN_NOTIFY_FAILURE) {
			buf_printf(l, "%sFAILURE", sep);
			sep = ",";
		}
		if (r->notify & DSN_NOTIFY_DELAY)
			buf_printf(l, "%sDELAY", sep);
	}
	smtpc_orcpt(l, r->orcpt);
}

void smtpc_preset(struct smtpc_tx *tx, enum smtpc_status st, int code, const char *enh,
		  const char *text)
{
	tx->preset = true;
	tx->preset_status = st;
	smtpc_set_reply(&tx->preset_reply, code, enh, true, "%s", text);
}

/* Refusals that need no word with the peer. false when preset. */
static bool smtpc_tx_check(struct smtpc *c, const struct smtpc_msg *m)
{
	struct smtpc_tx *tx = c->tx;
	char text[512];

	if (c->dead || c->state != SC_IDLE || c->open_cb != NULL) {
		snprintf(text, sizeof(text), "connection to %s is not usable", c->info.peer);
		smtpc_preset(tx, SMTPC_TEMP, 421, "4.4.2", text);
	} else if (c->ext.size > 0 && m->content_len > c->ext.size) {
		snprintf(text, sizeof(text), "message size %llu exceeds the limit %llu of %s",
			 (unsigned long long)m->content_len, (unsigned long long)c->ext.size,
			 c->info.peer);
		smtpc_preset(tx, SMTPC_PERM, 552, "5.3.4", text);
	} else if (!smtpc_addr_ok(m->sender)) {
		smtpc_preset(tx, SMTPC_PERM, 553, "5.1.7", "invalid sender address");
	} else if (m->nrcpt == 0) {
		smtpc_preset(tx, SMTPC_PERM, 554, "5.5.1", "no recipients");
	} else if (m->content_off + m->content_len < m->content_off) {
		smtpc_preset(tx, SMTPC_TEMP, 451, "4.3.0", "bad message content range");
	} else {
		return true;
	}
	return false;
}

/* The command list: [RSET] MAIL RCPT... DATA. false when nothing is to be
 * sent (every recipient address was unusable). */
static bool smtpc_tx_build(struct smtpc *c, const struct smtpc_msg *m)
{
	struct smtpc_tx *tx = c->tx;
	struct buf l = BUF_INIT;
	size_t i, nsent = 0;

	tx->exp = xcalloc(m->nrcpt + 3, sizeof(*tx->exp));
	if (c->need_rset) {
		buf_puts(&l, "RSET");
		smtpc_push(tx, EXP_RSET, 0, &l);
	}
	buf_reset(&l);
	smtpc_mail_line(c, m, &l);
	smtpc_push(tx, EXP_MAIL, 0, &l);
	for (i = 0; i < m->nrcpt; i++) {
		if (!smtpc_addr_ok(m->rcpt[i].addr)) {
			smtpc_set_reply(&tx->rcpt[i], 553, "5.1.3", true,
					"invalid recipient address");
			tx->rstate[i] = RS_REFUSED;
			continue;
		}
		if (!tx->utf8 && !smtpc_is_ascii(m->rcpt[i].addr)) {
			smtpc_set_reply(&tx->rcpt[i], 553, "5.6.7", true,
					"the recipient address is not ASCII and %s does not "
					"support SMTPUTF8", c->info.peer);
			tx->rstate[i] = RS_REFUSED;
			continue;
		}
		buf_reset(&l);
		smtpc_rcpt_line(c, &m->rcpt[i], &l);
		smtpc_push(tx, EXP_RCPT, i, &l);
		nsent++;
	}
	buf_reset(&l);
	buf_puts(&l, "DATA");
	smtpc_push(tx, EXP_DATA, 0, &l);
	buf_free(&l);
	if (nsent == 0) {
		tx->preset = true;
		tx->preset_status = SMTPC_DONE;
		tx->preset_reply = tx->rcpt[0];
		return false;
	}
	return true;
}

/* RSET goes alone; then with PIPELINING the whole group in one write,
 * else one command. */
static void smtpc_tx_send_next(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	struct buf group = BUF_INIT;
	bool all = c->ext.pipelining && tx->exp[tx->next_send].kind != EXP_RSET;

	while (tx->next_send < tx->nexp) {
		const struct smtpc_exp *e = &tx->exp[tx->next_send++];
		smtpc_log_command(c, tx->cmds.data + e->off, e->len);
		buf_append(&group, tx->cmds.data + e->off, e->len);
		buf_append(&group, "\r\n", 2);
		if (!all || e->kind == EXP_RSET)
			break;
	}
	smtpc_write(c, group.data, group.len);
	buf_free(&group);
}

void smtpc_send(struct smtpc *c, const struct smtpc_msg *m, smtpc_send_cb cb, void *arg)
{
	struct smtpc_tx *tx;
	size_t n = m->nrcpt > 0 ? m->nrcpt : 1;

	if (c->tx != NULL)
		log_panic("smtpc_send: a message is already in progress to %s", c->info.peer);
	tx = xcalloc(1, sizeof(*tx));
	tx->cb = cb;
	tx->arg = arg;
	tx->nrcpt = m->nrcpt;
	tx->rcpt = xcalloc(n, sizeof(*tx->rcpt));
	tx->rstate = xcalloc(n, 1);
	tx->fd = m->content_fd;
	tx->pos = m->content_off;
	tx->len = m->content_len;
	tx->end = m->content_off + m->content_len;
	buf_init(&tx->cmds);
	c->tx = tx;
	buf_init(&tx->conv);
	buf_init(&tx->stuffed);
	if (!smtpc_tx_check(c, m) || !smtpc_conv_check(c, m) || !smtpc_tx_build(c, m)) {
		smtpc_later(c); /* the callback never runs inside smtpc_send */
		return;
	}
	if (tx->scanning)
		smtpc_conv_scan(c); /* then smtpc_tx_start, or the refusal */
	else
		smtpc_tx_start(c);
}

void smtpc_tx_start(struct smtpc *c)
{
	c->state = SC_TX;
	smtpc_tx_send_next(c);
	smtpc_arm(c, c->t_command);
}

/* ---- the content --------------------------------------------------------- */

/* Dot-stuff in[0..n) into out (room for 2n + 2): a "." starting a line
 * is doubled; LF, CRLF and a lone CR all become CRLF. The state carries
 * over block boundaries. Returns the bytes written. */
static size_t smtpc_stuff(struct smtpc_stuff *st, const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		char ch = in[i];
		size_t j;

		if (st->cr_pending) {
			st->cr_pending = false;
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
			if (ch == '\n') {
				i++;
				continue;
			}
			/* a lone CR ended the line; ch starts the next one */
		}
		if (ch == '\r') {
			st->cr_pending = true;
			i++;
			continue;
		}
		if (ch == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
			i++;
			continue;
		}
		if (st->bol && ch == '.')
			out[o++] = '.';
		st->bol = false;
		for (j = i; j < n && in[j] != '\r' && in[j] != '\n'; j++)
			;
		memcpy(out + o, in + i, j - i);
		o += j - i;
		i = j;
	}
	return o;
}

static void smtpc_tx_end_body(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	char tail[8];
	size_t k = 0;

	if (tx->st.cr_pending) {
		tail[k++] = '\r';
		tail[k++] = '\n';
		tx->st.bol = true;
	}
	if (!tx->st.bol) { /* the content did not end with a line end */
		tail[k++] = '\r';
		tail[k++] = '\n';
	}
	memcpy(tail + k, ".\r\n", 3);
	k += 3;
	smtpc_write(c, tail, k);
	log_debug("smtpc peer=%s send=. (after %llu octets of content)", c->info.peer,
		  (unsigned long long)tx->len);
	smtpc_plog_note(c, "message data: %llu octets (not logged)", (unsigned long long)tx->len);
	free(tx->blk);
	tx->blk = NULL;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->state = SC_DATA_DOT;
	smtpc_arm(c, c->t_data);
}

/* The content cannot be read: drop the connection, never send ".". */
static void smtpc_tx_read_failed(struct smtpc *c, const char *why)
{
	struct smtpc_reply r;

	smtpc_set_reply(&r, 421, "4.3.0", true, "cannot read the message content: %s", why);
	smtpc_kill(c);
	smtpc_tx_fail(c, &r);
}

/* Dot-stuff p[0..n) onto the output, through tx->stuffed (the 7-bit
 * conversion path, whose blocks are larger than SMTPC_BLOCK). */
static void smtpc_tx_put(struct smtpc *c, const char *p, size_t n)
{
	struct smtpc_tx *tx = c->tx;

	buf_reset(&tx->stuffed);
	buf_reserve(&tx->stuffed, 2 * n + 2);
	evbuffer_add(bufferevent_get_output(c->bev), tx->stuffed.data,
		     smtpc_stuff(&tx->st, p, n, tx->stuffed.data));
}

/* One block of content (or its end, n == 0 and end) through the 7-bit
 * conversion. */
static void smtpc_tx_convert(struct smtpc *c, const char *p, size_t n, bool end)
{
	struct smtpc_tx *tx = c->tx;

	buf_reset(&tx->conv);
	if (end)
		mime7_end(tx->mime, &tx->conv);
	else
		mime7_feed(tx->mime, p, n, &tx->conv);
	smtpc_tx_put(c, tx->conv.data, tx->conv.len);
}

static void smtpc_tx_fill(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char *stuffed = tx->blk + SMTPC_BLOCK;

	while (c->state == SC_DATA_BODY && evbuffer_get_length(out) < SMTPC_OUT_HIWAT) {
		uint64_t left = tx->end - tx->pos;
		size_t want = left < SMTPC_BLOCK ? (size_t)left : SMTPC_BLOCK;
		ssize_t n;

		if (left == 0) {
			if (tx->mime != NULL)
				smtpc_tx_convert(c, NULL, 0, true);
			smtpc_tx_end_body(c);
			return;
		}
		n = pread(tx->fd, tx->blk, want, (off_t)tx->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			smtpc_tx_read_failed(c, n < 0 ? strerror(errno) : "file too short");
			return;
		}
		if (tx->mime != NULL)
			smtpc_tx_convert(c, tx->blk, (size_t)n, false);
		else
			evbuffer_add(out, stuffed, smtpc_stuff(&tx->st, tx->blk, (size_t)n, stuffed));
		tx->pos += (uint64_t)n;
	}
	smtpc_arm(c, c->t_command); /* progress: the peer is reading */
}

void smtpc_tx_writable(struct smtpc *c)
{
	if (c->tx != NULL && c->state == SC_DATA_BODY)
		smtpc_tx_fill(c);
}

static void smtpc_tx_start_body(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;

	tx->blk = xmalloc(SMTPC_BLOCK + SMTPC_STUFF_MAX);
	tx->st.bol = true;
	tx->st.cr_pending = false;
	c->state = SC_DATA_BODY;
	log_debug("smtpc peer=%s send=<content %llu octets>", c->info.peer,
		  (unsigned long long)tx->len);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTPC_OUT_LOWAT, 0);
	smtpc_tx_fill(c);
}

/* 354 although no recipient was accepted (or MAIL failed): end the
 * empty message at once (RFC 2920 3.1) and ignore its reply. */
static void smtpc_tx_lone_dot(struct smtpc *c)
{
	c->tx->lone_dot = true;
	smtpc_command(c, ".", 1);
	c->state = SC_DATA_DOT;
	smtpc_arm(c, c->t_command);
}

/* ---- replies -------------------------------------------------------------- */

static void smtpc_tx_protocol(struct smtpc *c, const char *what)
{
	struct smtpc_reply r;

	smtpc_set_reply(&r, 421, "4.5.0", true, "%s: %s", c->info.peer, what);
	smtpc_kill(c);
	smtpc_tx_fail(c, &r);
}

/* One reply in SC_TX. Returns false when the transaction ended. */
static bool smtpc_tx_step(struct smtpc *c, const struct smtpc_exp *e, const struct smtpc_reply *r)
{
	struct smtpc_tx *tx = c->tx;

	switch (e->kind) {
	case EXP_RSET:
		if (!is_2xx(r->code))
			break; /* handled below as a failure of the connection */
		c->need_rset = false;
		return true;
	case EXP_MAIL:
		if (is_2xx(r->code))
			return true;
		tx->mail_failed = true;
		tx->mail_reply = *r;
		c->need_rset = true;
		return c->ext.pipelining; /* lockstep: nothing more was sent */
	case EXP_RCPT:
		if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5)
			break;
		tx->rcpt[e->idx] = *r;
		tx->rstate[e->idx] = is_2xx(r->code) ? RS_ACCEPTED : RS_REFUSED;
		if (is_2xx(r->code))
			tx->naccepted++;
		c->need_rset = true;
		/* lockstep: DATA is next; without an accepted recipient, stop */
		return c->ext.pipelining || tx->naccepted > 0 ||
		       tx->exp[tx->next_reply].kind != EXP_DATA;
	case EXP_DATA:
		if (r->code == 354) {
			if (!tx->mail_failed && tx->naccepted > 0)
				smtpc_tx_start_body(c);
			else
				smtpc_tx_lone_dot(c);
			return true;
		}
		if (is_2xx(r->code))
			break;
		tx->have_data_reply = true;
		tx->data_reply = *r;
		return false;
	}
	smtpc_set_reply(&tx->preset_reply, 421, "4.5.0", true, "unexpected reply %d from %s",
			r->code, c->info.peer);
	if (e->kind == EXP_RSET)
		tx->preset_reply = *r;
	tx->preset = true;
	tx->preset_status = SMTPC_TEMP;
	smtpc_kill(c);
	return false;
}

void smtpc_tx_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_tx *tx = c->tx;

	if (tx == NULL) {
		smtpc_kill(c);
		return;
	}
	if (c->state == SC_DATA_BODY || c->state == SC_DATA_DOT) {
		if (c->state == SC_DATA_BODY) /* the peer gave up in the middle */
			smtpc_kill(c);
		if (!tx->lone_dot) {
			tx->have_data_reply = true;
			tx->data_reply = *r;
		}
		c->need_rset = tx->lone_dot;
		if (r->code == 421)
			smtpc_kill(c);
		smtpc_tx_finish(c);
		return;
	}
	if (tx->next_reply >= tx->next_send) {
		smtpc_tx_protocol(c, "reply without a command");
		return;
	}
	if (r->code == 421) { /* the peer is closing the connection */
		tx->next_reply++;
		smtpc_preset(tx, SMTPC_TEMP, 421, r->enh, r->text);
		tx->preset_reply.local = false;
		smtpc_kill(c);
		smtpc_tx_finish(c);
		return;
	}
	if (!smtpc_tx_step(c, &tx->exp[tx->next_reply++], r)) {
		smtpc_tx_finish(c);
		return;
	}
	if (c->state != SC_TX)
		return; /* DATA accepted: the content (or a lone ".") is on its way */
	if (tx->next_reply == tx->next_send && tx->next_send < tx->nexp)
		smtpc_tx_send_next(c);
	smtpc_arm(c, c->t_command);
}

void smtpc_tx_fail(struct smtpc *c, const struct smtpc_reply *local)
{
	struct smtpc_tx *tx = c->tx;

	tx->preset = true;
	tx->preset_status = SMTPC_TEMP;
	tx->preset_reply = *local;
	smtpc_tx_finish(c);
}

/* ---- the result ------------------------------------------------------------ */

static enum smtpc_status smtpc_class(int code)
{
	if (code / 100 == 2)
		return SMTPC_DONE;
	return code / 100 == 5 ? SMTPC_PERM : SMTPC_TEMP;
}

static void smtpc_tx_outcome(struct smtpc_tx *tx, struct smtpc_result *res)
{
	size_t i;

	if (tx->preset) {
		res->status = tx->preset_status;
		res->msg_reply = tx->preset_reply;
	} else if (tx->mail_failed) {
		res->status = smtpc_class(tx->mail_reply.code);
		if (res->status == SMTPC_DONE)
			res->status = SMTPC_TEMP;
		res->msg_reply = tx->mail_reply;
		for (i = 0; i < tx->nrcpt; i++)
			if (!tx->rcpt[i].local)
				tx->rstate[i] = RS_PENDING; /* RCPT replies after a failed MAIL mean nothing */
	} else if (tx->naccepted == 0) {
		res->status = SMTPC_DONE;
		res->msg_reply = tx->nrcpt > 0 ? tx->rcpt[0] : tx->data_reply;
		for (i = 0; i < tx->nrcpt; i++)
			if (tx->rstate[i] == RS_REFUSED) {
				res->msg_reply = tx->rcpt[i];
				break;
			}
	} else if (tx->have_data_reply) {
		res->status = smtpc_class(tx->data_reply.code);
		res->msg_reply = tx->data_reply;
		for (i = 0; i < tx->nrcpt; i++)
			if (tx->rstate[i] == RS_ACCEPTED)
				tx->rcpt[i] = tx->data_reply;
	} else {
		res->status = SMTPC_TEMP;
		smtpc_set_reply(&res->msg_reply, 421, "4.5.0", true, "transaction ended early");
	}
	for (i = 0; i < tx->nrcpt; i++)
		if (tx->rstate[i] == RS_PENDING ||
		    (tx->rstate[i] == RS_ACCEPTED && res->status != SMTPC_DONE))
			tx->rcpt[i] = res->msg_reply;
}

static const char *smtpc_status_name(enum smtpc_status st)
{
	return st == SMTPC_DONE ? "done" : st == SMTPC_TEMP ? "temp" : "perm";
}

void smtpc_tx_finish(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	struct smtpc_result res;

	if (tx == NULL)
		return;
	c->tx = NULL; /* the callback may start the next message */
	memset(&res, 0, sizeof(res));
	smtpc_tx_outcome(tx, &res);
	if (!c->dead && (c->state == SC_TX || c->state == SC_DATA_BODY || c->state == SC_DATA_DOT)) {
		c->state = SC_IDLE;
		smtpc_disarm(c);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	}
	res.rcpt = tx->rcpt;
	res.nrcpt = tx->nrcpt;
	res.peer_dsn = c->ext.dsn;
	res.reusable = !c->dead && c->state == SC_IDLE && c->open_cb == NULL;
	if (log_debug_enabled()) {
		char q[2 * sizeof(res.msg_reply.text)];
		log_debug("smtpc peer=%s result=%s accepted=%zu/%zu reply=%d enh=%s text=%s "
			  "reusable=%d",
			  c->info.peer, smtpc_status_name(res.status), tx->naccepted, tx->nrcpt,
			  res.msg_reply.code, res.msg_reply.enh[0] != '\0' ? res.msg_reply.enh : "-",
			  log_quote(res.msg_reply.text, q, sizeof(q)), res.reusable);
	}
	if (!c->user_gone && tx->cb != NULL)
		tx->cb(c, tx->arg, &res);
	smtpc_tx_free(tx);
}

void smtpc_tx_free(struct smtpc_tx *tx)
{
	buf_free(&tx->cmds);
	free(tx->exp);
	free(tx->rcpt);
	free(tx->rstate);
	free(tx->blk);
	free(tx->mime);
	if (tx->ev_scan != NULL)
		event_free(tx->ev_scan);
	buf_free(&tx->conv);
	buf_free(&tx->stuffed);
	free(tx);
}

const char *smtpc_tx_waiting_for(const struct smtpc *c)
{
	const struct smtpc_tx *tx = c->tx;

	if (c->state == SC_DATA_BODY)
		return "sending the message content";
	if (c->state == SC_DATA_DOT)
		return "waiting for the reply to the end of data";
	if (tx == NULL || tx->next_reply >= tx->nexp)
		return "waiting for a reply";
	switch (tx->exp[tx->next_reply].kind) {
	case EXP_RSET: return "waiting for the reply to RSET";
	case EXP_MAIL: return "waiting for the reply to MAIL";
	case EXP_RCPT: return "waiting for the reply to RCPT";
	default: return "waiting for the reply to DATA";
	}
}
