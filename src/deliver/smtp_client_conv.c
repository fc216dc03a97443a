/*
 * smtp_client_conv.c - what to do when a message needs an extension the
 * peer did not offer (the rest of the transaction is smtp_client_tx.c):
 *
 *  - SMTPUTF8 (RFC 6531 3.4): a message received with the SMTPUTF8
 *    parameter is sent without it when nothing in it needs it: the sender
 *    and recipient addresses are ASCII and no header field holds a non-ASCII
 *    octet. A non-ASCII sender or header fails the message, a non-ASCII
 *    recipient that recipient, with 553 5.6.7 (RFC 6531 3.7.5, RFC 3463).
 *  - 8BITMIME (RFC 6152 3): a message with 8-bit octets is converted to 7
 *    bit on the way out (mail/mime7bit.c: quoted-printable, like Postfix's
 *    MIME output conversion); one that cannot be converted (8-bit octets in
 *    a header, or where no encoding can be declared) fails with 554 5.6.3.
 *
 * Both decisions need to look at the content, which mime7bit does in one
 * scan over the queue file before MAIL is sent, only when the peer lacks
 * one of the extensions: pread SMTPC_BLOCK at a time (bounded memory),
 * SMTPC_SCAN_SLICE per turn of the event loop (a large message does not
 * hold the loop; the connection waits in SC_TX with nothing sent).
 * Every refusal here is a local reply: the peer never said it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/smtp_client.h"
#include "deliver/smtp_client_int.h"
#include "mail/mime7bit.h"
#include "util/xmalloc.h"

bool smtpc_is_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

bool smtpc_conv_check(struct smtpc *c, const struct smtpc_msg *m)
{
	struct smtpc_tx *tx = c->tx;
	char text[512];

	tx->utf8 = m->smtputf8 && c->ext.smtputf8;
	tx->utf8_missing = m->smtputf8 && !c->ext.smtputf8;
	if (tx->utf8_missing && !smtpc_is_ascii(m->sender)) {
		snprintf(text, sizeof(text),
			 "the sender address is not ASCII and %s does not support SMTPUTF8",
			 c->info.peer);
		smtpc_preset(tx, SMTPC_PERM, 553, "5.6.7", text);
		return false;
	}
	if (tx->utf8_missing || !c->ext.eightbitmime) {
		tx->mime = xmalloc(sizeof(*tx->mime));
		mime7_init(tx->mime);
		tx->scanning = true;
		tx->scan_pos = m->content_off;
	}
	return true;
}

/* The scan is over: refuse (false, preset) or send, converted or not. */
static bool smtpc_conv_verdict(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	enum mime7_verdict v = mime7_end(tx->mime, NULL);
	char text[512];

	if (tx->utf8_missing && v == MIME7_HEADER_8BIT) {
		snprintf(text, sizeof(text),
			 "the message header is not ASCII and %s does not support SMTPUTF8",
			 c->info.peer);
		smtpc_preset(tx, SMTPC_PERM, 553, "5.6.7", text);
		return false;
	}
	if (c->ext.eightbitmime || v == MIME7_CLEAN) {
		free(tx->mime);
		tx->mime = NULL;
		return true;
	}
	if (v == MIME7_CONVERT) {
		log_debug("smtpc peer=%s no 8BITMIME: converting the content to 7 bit",
			  c->info.peer);
		mime7_start_convert(tx->mime);
		return true;
	}
	snprintf(text, sizeof(text),
		 "%s does not support 8BITMIME and the message cannot be converted to 7 bit "
		 "(8-bit octets %s)",
		 c->info.peer,
		 v == MIME7_HEADER_8BIT ? "in a header field"
					: "where no transfer encoding can be declared");
	smtpc_preset(tx, SMTPC_PERM, 554, "5.6.3", text);
	return false;
}

/* One slice of the scan (SMTPC_SCAN_SLICE octets, so a large message does
 * not hold the event loop), then again from the loop, or the verdict. */
static void smtpc_conv_step(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;
	char *blk = xmalloc(SMTPC_BLOCK);
	uint64_t slice_end = tx->end - tx->scan_pos > SMTPC_SCAN_SLICE
				     ? tx->scan_pos + SMTPC_SCAN_SLICE
				     : tx->end;
	char text[512];

	while (tx->scan_pos < slice_end) {
		uint64_t left = slice_end - tx->scan_pos;
		ssize_t n = pread(tx->fd, blk, left < SMTPC_BLOCK ? (size_t)left : SMTPC_BLOCK,
				  (off_t)tx->scan_pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(text, sizeof(text), "cannot read the message content: %s",
				 n < 0 ? strerror(errno) : "file too short");
			free(blk);
			tx->scanning = false;
			smtpc_preset(tx, SMTPC_TEMP, 451, "4.3.0", text);
			smtpc_tx_finish(c);
			return;
		}
		mime7_feed(tx->mime, blk, (size_t)n, NULL);
		tx->scan_pos += (uint64_t)n;
	}
	free(blk);
	if (tx->scan_pos < tx->end) {
		event_active(tx->ev_scan, EV_TIMEOUT, 1);
		return;
	}
	tx->scanning = false;
	if (smtpc_conv_verdict(c))
		smtpc_tx_start(c);
	else
		smtpc_tx_finish(c);
}

static void smtpc_conv_scan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	smtpc_enter(c);
	if (c->tx != NULL && c->tx->scanning && !c->dead)
		smtpc_conv_step(c);
	smtpc_leave(c);
}

void smtpc_conv_scan(struct smtpc *c)
{
	struct smtpc_tx *tx = c->tx;

	tx->ev_scan = event_new(c->base, -1, 0, smtpc_conv_scan_cb, c);
	if (tx->ev_scan == NULL)
		log_panic("smtpc: out of memory for an event");
	c->state = SC_TX; /* nothing sent yet: a reply now is a protocol error */
	event_active(tx->ev_scan, EV_TIMEOUT, 1);
}
