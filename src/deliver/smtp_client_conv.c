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
 * scan over the queue file (pread, SMTPC_BLOCK at a time, bounded memory)
 * before MAIL is sent, only when the peer lacks one of the extensions.
 * Every refusal here is a local reply: the peer never said it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deliver/smtp_client.h"
#include "deliver/smtp_client_int.h"
#include "mail/mime7bit.h"
#include "smtp/cmd.h"
#include "util/xmalloc.h"

bool smtpc_is_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* One pass of mime7 over the content. false with err when it cannot be read. */
static bool smtpc_conv_scan(const struct smtpc_msg *m, struct mime7 *mm, char *err, size_t errsz)
{
	char *blk = xmalloc(SMTPC_BLOCK);
	uint64_t pos = m->content_off, end = m->content_off + m->content_len;
	bool ok = true;

	while (pos < end) {
		uint64_t left = end - pos;
		ssize_t n = pread(m->content_fd, blk, left < SMTPC_BLOCK ? (size_t)left : SMTPC_BLOCK,
				  (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errsz, "%s", n < 0 ? strerror(errno) : "file too short");
			ok = false;
			break;
		}
		mime7_feed(mm, blk, (size_t)n, NULL);
		pos += (uint64_t)n;
	}
	free(blk);
	return ok;
}

static void smtpc_conv_refuse(struct smtpc_tx *tx, enum smtpc_status st, int code,
			      const char *enh, const char *text)
{
	tx->preset = true;
	tx->preset_status = st;
	smtpc_set_reply(&tx->preset_reply, code, enh, true, "%s", text);
}

bool smtpc_conv_check(struct smtpc *c, const struct smtpc_msg *m)
{
	struct smtpc_tx *tx = c->tx;
	bool utf8_missing = m->smtputf8 && !c->ext.smtputf8;
	struct mime7 *mm;
	enum mime7_verdict v;
	char text[512], err[128];

	tx->utf8 = m->smtputf8 && c->ext.smtputf8;
	if (utf8_missing && !smtpc_is_ascii(m->sender)) {
		snprintf(text, sizeof(text),
			 "the sender address is not ASCII and %s does not support SMTPUTF8",
			 c->info.peer);
		smtpc_conv_refuse(tx, SMTPC_PERM, 553, "5.6.7", text);
		return false;
	}
	if (!utf8_missing && c->ext.eightbitmime)
		return true;
	mm = xmalloc(sizeof(*mm));
	mime7_init(mm);
	if (!smtpc_conv_scan(m, mm, err, sizeof(err))) {
		snprintf(text, sizeof(text), "cannot read the message content: %s", err);
		smtpc_conv_refuse(tx, SMTPC_TEMP, 451, "4.3.0", text);
		free(mm);
		return false;
	}
	v = mime7_end(mm, NULL);
	if (utf8_missing && v == MIME7_HEADER_8BIT) {
		snprintf(text, sizeof(text),
			 "the message header is not ASCII and %s does not support SMTPUTF8",
			 c->info.peer);
		smtpc_conv_refuse(tx, SMTPC_PERM, 553, "5.6.7", text);
	} else if (c->ext.eightbitmime || v == MIME7_CLEAN) {
		free(mm);
		return true;
	} else if (v == MIME7_CONVERT) {
		log_debug("smtpc peer=%s no 8BITMIME: converting the content to 7 bit",
			  c->info.peer);
		mime7_start_convert(mm);
		tx->mime = mm;
		return true;
	} else {
		snprintf(text, sizeof(text),
			 "%s does not support 8BITMIME and the message cannot be converted to 7 bit "
			 "(8-bit octets %s)",
			 c->info.peer,
			 v == MIME7_HEADER_8BIT ? "in a header field"
						: "where no transfer encoding can be declared");
		smtpc_conv_refuse(tx, SMTPC_PERM, 554, "5.6.3", text);
	}
	free(mm);
	return false;
}
