/*
 * fuzz_cmd.c - libFuzzer target for smtp/cmd.c: the input is one command
 * line; it is split, and its argument is given to every argument parser
 * (MAIL, RCPT, BDAT, HELO), whatever the verb. Accepted paths must render
 * within ADDR_TEXT_MAX and parse again to the same mailbox; failures must
 * carry a 5xx reply.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct smtp_err *e)
{
	if ((e->code != 501 && e->code != 555) || !e->enh || !e->text || e->text[0] == '\0')
		abort();
}

/* Re-render an accepted MAIL/RCPT path and parse it again. */
static void check_path(const struct mail_addr *a, bool is_mail)
{
	char text[ADDR_TEXT_MAX], line[ADDR_TEXT_MAX + 16];
	struct mail_addr again;
	struct mail_params mp;
	struct rcpt_params rp;
	struct smtp_err e;
	int n;
	bool ok;

	if (!addr_format(a, text, sizeof(text)))
		abort();
	n = snprintf(line, sizeof(line), "%s<%s>", is_mail ? "FROM:" : "TO:", text);
	if (n < 0 || (size_t)n >= sizeof(line))
		abort();
	ok = is_mail ? smtp_parse_mail(line, (size_t)n, &again, &mp, &e)
		     : smtp_parse_rcpt(line, (size_t)n, &again, &rp, &e);
	if (!ok || strcmp(again.local, a->local) != 0 || strcmp(again.domain, a->domain) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd c;
	struct smtp_err e;
	struct mail_addr a;
	struct mail_params mp;
	struct rcpt_params rp;
	uint64_t bsize;
	bool last;
	char host[256];

	if (size > 4096)
		return 0;
	smtp_cmd_split(line, size, &c);
	if ((unsigned)c.verb >= SMTP_VERB_COUNT || !smtp_verb_name(c.verb))
		abort();
	if (c.arg_len > 0 && (c.arg < line || c.arg + c.arg_len != line + size))
		abort();

	if (smtp_parse_mail(c.arg, c.arg_len, &a, &mp, &e)) {
		if (memchr(mp.envid, '\0', sizeof(mp.envid)) == NULL ||
		    memchr(mp.auth, '\0', sizeof(mp.auth)) == NULL)
			abort();
		check_path(&a, true);
	} else {
		check_err(&e);
	}
	if (smtp_parse_rcpt(c.arg, c.arg_len, &a, &rp, &e)) {
		if ((rp.notify & DSN_NOTIFY_NEVER) && rp.notify != DSN_NOTIFY_NEVER)
			abort();
		if (memchr(rp.orcpt, '\0', sizeof(rp.orcpt)) == NULL || (a.flags & ADDR_F_NULL))
			abort();
		check_path(&a, false);
	} else {
		check_err(&e);
	}
	if (!smtp_parse_bdat(c.arg, c.arg_len, &bsize, &last, &e))
		check_err(&e);
	for (int m = SMTP_HELO_LENIENT; m <= SMTP_HELO_STRICT; m++) {
		if (smtp_parse_helo(c.arg, c.arg_len, (enum smtp_helo_mode)m, host, sizeof(host), &e)) {
			if (host[0] == '\0' || strchr(host, ' '))
				abort();
		} else {
			check_err(&e);
		}
	}
	return 0;
}
