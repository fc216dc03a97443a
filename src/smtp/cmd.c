/*
 * cmd.c - SMTP command line parsing for the server: verb split, MAIL and
 * RCPT paths with their ESMTP parameters, BDAT and HELO/EHLO arguments.
 * Contract in cmd.h; no allocation, no session state.
 *
 * Standards:
 *   RFC 5321 4.1.1, 4.1.2  verbs, Path, Mail-parameters / Rcpt-parameters
 *                          (esmtp-keyword, esmtp-value)
 *   RFC 1870 SIZE, RFC 6152 BODY=7BIT|8BITMIME, RFC 6531 SMTPUTF8,
 *   RFC 3461 4.1-4.4 NOTIFY, ORCPT, RET, ENVID (xtext),
 *   RFC 4954 5 AUTH=<mailbox> (xtext), RFC 3030 2 BDAT.
 *
 * Replies chosen for failures (code, enhanced code per RFC 3463):
 *   missing "FROM:" / "TO:", unclosed '<', junk right after '>',
 *   empty path                            501 5.5.4 Syntax: MAIL FROM:<address>
 *                                         501 5.5.4 Syntax: RCPT TO:<address>
 *   address rejected by addr_parse()      501 5.1.7 (MAIL) / 501 5.1.3 (RCPT),
 *                                         text = addr_parse()'s reason
 *   path body longer than ADDR_TEXT_MAX   501 5.1.7 / 501 5.1.3 Address too long
 *                                         (it is the address that is wrong, so
 *                                         the address codes, not 5.5.4)
 *   RCPT TO:<>                            501 5.1.3 (null address not allowed here)
 *   malformed parameter (bad keyword, empty value, value with '=' or
 *   control characters, bad SIZE/BODY/RET/NOTIFY/ORCPT/ENVID/AUTH value,
 *   SMTPUTF8 with a value)                501 5.5.4 <which one>
 *   same parameter twice                  501 5.5.4 Duplicate parameter
 *   parameter we do not know (or one of the other command's)
 *                                         555 5.5.4 Unsupported parameter
 *   BDAT syntax / size over 2^64-1        501 5.5.4
 *   HELO/EHLO empty, not a domain or address literal (RFC 5321 4.1.2,
 *   strict or lenient per connector), too long
 *                                         501 5.5.4
 *
 * Tolerance (as Postfix): spaces between "FROM:" and the path, several
 * spaces between parameters, trailing spaces, an unbracketed address
 * (it then ends at the first space). SIZE with more than 20 digits is
 * malformed; 20 digits over 2^64-1 saturate to UINT64_MAX so the size
 * check answers 552. ORCPT's and ENVID's decoded values must be printable
 * US-ASCII (RFC 3461 4.2, 4.4); AUTH= may decode to UTF-8 octets but no
 * control characters. Whether a UTF-8 address comes with SMTPUTF8 is for
 * the session to check (RCPT does not know what MAIL said).
 */
#include "smtp/cmd.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/str.h"

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_UNKNOWN] = "UNKNOWN", [SMTP_HELO] = "HELO",	  [SMTP_EHLO] = "EHLO",
	[SMTP_MAIL] = "MAIL",	    [SMTP_RCPT] = "RCPT",	  [SMTP_DATA] = "DATA",
	[SMTP_BDAT] = "BDAT",	    [SMTP_RSET] = "RSET",	  [SMTP_NOOP] = "NOOP",
	[SMTP_QUIT] = "QUIT",	    [SMTP_HELP] = "HELP",	  [SMTP_VRFY] = "VRFY",
	[SMTP_EXPN] = "EXPN",	    [SMTP_STARTTLS] = "STARTTLS", [SMTP_AUTH] = "AUTH",
};

const char *smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB_COUNT)
		return verb_names[SMTP_UNKNOWN];
	return verb_names[v];
}

static bool token_is(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && str_ncasecmp(s, word, n) == 0;
}

void smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *out)
{
	size_t v = 0;
	int i;

	while (v < len && line[v] != ' ')
		v++;
	out->verb = SMTP_UNKNOWN;
	for (i = SMTP_UNKNOWN + 1; i < SMTP_VERB_COUNT; i++)
		if (token_is(line, v, verb_names[i]))
			out->verb = (enum smtp_verb)i;
	if (v < len) {
		out->arg = line + v + 1;
		out->arg_len = len - v - 1;
	} else {
		out->arg = "";
		out->arg_len = 0;
	}
}

/* --- replies ------------------------------------------------------------- */

static bool fail(struct smtp_err *err, int code, const char *enh, const char *text)
{
	err->code = code;
	err->enh = enh;
	err->text = text;
	return false;
}

static bool fail_param(struct smtp_err *err, const char *text)
{
	return fail(err, 501, "5.5.4", text);
}

/* --- the path ------------------------------------------------------------- */

struct path_cmd {
	const char *prefix;   /* "FROM:" / "TO:" */
	const char *usage;    /* syntax reply text */
	const char *addr_enh; /* "5.1.7" / "5.1.3" */
	bool allow_null;
};

static const struct path_cmd mail_cmd = {"FROM:", "Syntax: MAIL FROM:<address>", "5.1.7", true};
static const struct path_cmd rcpt_cmd = {"TO:", "Syntax: RCPT TO:<address>", "5.1.3", false};

static size_t skip_spaces(const char *s, size_t n, size_t i)
{
	while (i < n && s[i] == ' ')
		i++;
	return i;
}

/* Offset of the '>' closing a path that opens at s[open] == '<', with
 * '>' inside a quoted local part skipped; n when there is none. */
static size_t path_close(const char *s, size_t n, size_t open)
{
	bool quoted = false;
	size_t i;

	for (i = open + 1; i < n; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			return i;
	}
	return n;
}

/* Find the path after "FROM:"/"TO:", parse it into *a. *rest is set to
 * the offset where the parameters start. */
static bool path_parse(const struct path_cmd *pc, const char *arg, size_t len,
		       struct mail_addr *a, size_t *rest, struct smtp_err *err)
{
	size_t plen = strlen(pc->prefix), i = skip_spaces(arg, len, 0), start, end;
	const char *why;

	if (len - i < plen || str_ncasecmp(arg + i, pc->prefix, plen) != 0)
		return fail(err, 501, "5.5.4", pc->usage);
	i = skip_spaces(arg, len, i + plen);
	if (i < len && arg[i] == '<') {
		start = i + 1;
		if ((end = path_close(arg, len, i)) == len)
			return fail(err, 501, "5.5.4", pc->usage);
		*rest = end + 1;
		if (*rest < len && arg[*rest] != ' ')
			return fail(err, 501, "5.5.4", pc->usage);
	} else {
		start = i;
		end = i;
		while (end < len && arg[end] != ' ')
			end++;
		if (end == start)
			return fail(err, 501, "5.5.4", pc->usage);
		*rest = end;
	}
	if (end - start > ADDR_TEXT_MAX)
		return fail(err, 501, pc->addr_enh, "Address too long");
	if (addr_parse(arg + start, end - start, pc->allow_null, a, &why) != ADDR_OK)
		return fail(err, 501, pc->addr_enh, why);
	return true;
}

/* --- ESMTP parameters ------------------------------------------------------ */

struct param {
	const char *key, *val; /* val is NULL when there was no '=' */
	size_t key_len, val_len;
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool keyword_valid(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
		if (!alnum && (i == 0 || c != '-'))
			return false;
	}
	return n > 0;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 octets (RFC 6531). */
static bool value_valid(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c == '=' || c == 127)
			return false;
	}
	return n > 0;
}

/* Next space-separated parameter of arg[*pos..len); false at the end. */
static bool param_next(const char *arg, size_t len, size_t *pos, struct param *p)
{
	size_t i = skip_spaces(arg, len, *pos), end = i, eq;

	if (i == len)
		return false;
	while (end < len && arg[end] != ' ')
		end++;
	for (eq = i; eq < end && arg[eq] != '='; eq++)
		;
	p->key = arg + i;
	p->key_len = eq - i;
	p->val = eq < end ? arg + eq + 1 : NULL;
	p->val_len = eq < end ? end - eq - 1 : 0;
	*pos = end;
	return true;
}

static bool param_is(const struct param *p, const char *key)
{
	return token_is(p->key, p->key_len, key);
}

static bool val_is(const struct param *p, const char *word)
{
	return token_is(p->val, p->val_len, word);
}

/* SIZE: 1*20DIGIT; a 20-digit value beyond 2^64-1 saturates. */
static bool size_value(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = (v > (UINT64_MAX - d) / 10) ? UINT64_MAX : v * 10 + d;
	}
	*out = v;
	return true;
}

/* Decode an xtext value into out (size outsz). Decoded octets must be
 * printable US-ASCII or space; with allow_8bit also octets >= 0x80. */
static bool xtext_value(const struct param *p, char *out, size_t outsz, bool allow_8bit)
{
	size_t i;

	if (p->val_len >= outsz)
		return false;
	memcpy(out, p->val, p->val_len);
	out[p->val_len] = '\0';
	if (!xtext_decode(out) || out[0] == '\0')
		return false;
	for (i = 0; out[i]; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c < 32 || c == 127 || (c >= 128 && !allow_8bit))
			return false;
	}
	return true;
}

/* ORCPT=addr-type;xtext stored as "type;decoded" with type lower-cased. */
static bool orcpt_value(const struct param *p, char *out, size_t outsz)
{
	const char *semi = memchr(p->val, ';', p->val_len);
	struct param rest = {0};
	size_t tlen, i;

	if (!semi || semi == p->val)
		return false;
	tlen = (size_t)(semi - p->val);
	for (i = 0; i < tlen; i++)
		if (!(p->val[i] >= 33 && p->val[i] <= 126) || strchr("()<>[]:;@\\,.\"", p->val[i]))
			return false;
	if (tlen + 1 >= outsz)
		return false;
	memcpy(out, p->val, tlen);
	out[tlen] = ';';
	out[tlen + 1] = '\0';
	str_lower(out);
	rest.val = semi + 1;
	rest.val_len = p->val_len - tlen - 1;
	return xtext_value(&rest, out + tlen + 1, outsz - tlen - 1, false);
}

/* NOTIFY=NEVER | 1#(SUCCESS / FAILURE / DELAY) */
static bool notify_value(const struct param *p, unsigned *out)
{
	size_t i = 0, end;
	unsigned bit, v = 0;

	if (val_is(p, "NEVER")) {
		*out = DSN_NOTIFY_NEVER;
		return true;
	}
	while (i <= p->val_len) {
		end = i;
		while (end < p->val_len && p->val[end] != ',')
			end++;
		if (token_is(p->val + i, end - i, "SUCCESS"))
			bit = DSN_NOTIFY_SUCCESS;
		else if (token_is(p->val + i, end - i, "FAILURE"))
			bit = DSN_NOTIFY_FAILURE;
		else if (token_is(p->val + i, end - i, "DELAY"))
			bit = DSN_NOTIFY_DELAY;
		else
			return false;
		if (v & bit)
			return false;
		v |= bit;
		i = end + 1;
	}
	*out = v;
	return true;
}

enum mail_param_bit { MP_SIZE = 1, MP_BODY = 2, MP_UTF8 = 4, MP_RET = 8, MP_ENVID = 16, MP_AUTH = 32 };

/* One MAIL parameter; *bit says which it was (0: unknown). */
static bool mail_param(const struct param *pr, struct mail_params *p, unsigned *bit,
		       struct smtp_err *err)
{
	*bit = 0;
	if (param_is(pr, "SMTPUTF8")) {
		*bit = MP_UTF8;
		if (pr->val)
			return fail_param(err, "SMTPUTF8 takes no value");
		p->smtputf8 = true;
		return true;
	}
	if (!pr->val) {
		if (param_is(pr, "SIZE") || param_is(pr, "BODY") || param_is(pr, "RET") ||
		    param_is(pr, "ENVID") || param_is(pr, "AUTH"))
			return fail_param(err, "Parameter needs a value");
		return fail(err, 555, "5.5.4", "Unsupported parameter");
	}
	if (param_is(pr, "SIZE")) {
		*bit = MP_SIZE;
		p->has_size = true;
		return size_value(pr->val, pr->val_len, &p->size) ||
		       fail_param(err, "Invalid SIZE value");
	}
	if (param_is(pr, "BODY")) {
		*bit = MP_BODY;
		if (val_is(pr, "7BIT"))
			p->body = BODY_7BIT;
		else if (val_is(pr, "8BITMIME"))
			p->body = BODY_8BITMIME;
		else
			return fail_param(err, "BODY must be 7BIT or 8BITMIME");
		return true;
	}
	if (param_is(pr, "RET")) {
		*bit = MP_RET;
		if (val_is(pr, "FULL"))
			p->ret = DSN_RET_FULL;
		else if (val_is(pr, "HDRS"))
			p->ret = DSN_RET_HDRS;
		else
			return fail_param(err, "RET must be FULL or HDRS");
		return true;
	}
	if (param_is(pr, "ENVID")) {
		*bit = MP_ENVID;
		return xtext_value(pr, p->envid, sizeof(p->envid), false) ||
		       fail_param(err, "Invalid ENVID value");
	}
	if (param_is(pr, "AUTH")) {
		*bit = MP_AUTH;
		return xtext_value(pr, p->auth, sizeof(p->auth), true) ||
		       fail_param(err, "Invalid AUTH value");
	}
	return fail(err, 555, "5.5.4", "Unsupported parameter");
}

enum rcpt_param_bit { RP_NOTIFY = 1, RP_ORCPT = 2 };

static bool rcpt_param(const struct param *pr, struct rcpt_params *p, unsigned *bit,
		       struct smtp_err *err)
{
	*bit = 0;
	if (param_is(pr, "NOTIFY")) {
		*bit = RP_NOTIFY;
		return (pr->val && notify_value(pr, &p->notify)) ||
		       fail_param(err, "Invalid NOTIFY value");
	}
	if (param_is(pr, "ORCPT")) {
		*bit = RP_ORCPT;
		return (pr->val && orcpt_value(pr, p->orcpt, sizeof(p->orcpt))) ||
		       fail_param(err, "Invalid ORCPT value");
	}
	return fail(err, 555, "5.5.4", "Unsupported parameter");
}

/* Generic syntax of one parameter: a keyword and, if '=', a value. */
static bool param_syntax(const struct param *pr, struct smtp_err *err)
{
	if (!keyword_valid(pr->key, pr->key_len))
		return fail_param(err, "Invalid parameter keyword");
	if (pr->val && !value_valid(pr->val, pr->val_len))
		return fail_param(err, "Invalid parameter value");
	return true;
}

bool smtp_parse_mail(const char *arg, size_t len, struct mail_addr *from, struct mail_params *p,
		     struct smtp_err *err)
{
	struct param pr;
	size_t pos;
	unsigned seen = 0, bit;

	memset(p, 0, sizeof(*p));
	if (!path_parse(&mail_cmd, arg, len, from, &pos, err))
		return false;
	while (param_next(arg, len, &pos, &pr)) {
		if (!param_syntax(&pr, err) || !mail_param(&pr, p, &bit, err))
			return false;
		if (seen & bit)
			return fail_param(err, "Duplicate parameter");
		seen |= bit;
	}
	return true;
}

bool smtp_parse_rcpt(const char *arg, size_t len, struct mail_addr *to, struct rcpt_params *p,
		     struct smtp_err *err)
{
	struct param pr;
	size_t pos;
	unsigned seen = 0, bit;

	memset(p, 0, sizeof(*p));
	if (!path_parse(&rcpt_cmd, arg, len, to, &pos, err))
		return false;
	while (param_next(arg, len, &pos, &pr)) {
		if (!param_syntax(&pr, err) || !rcpt_param(&pr, p, &bit, err))
			return false;
		if (seen & bit)
			return fail_param(err, "Duplicate parameter");
		seen |= bit;
	}
	return true;
}

/* --- BDAT, HELO/EHLO ------------------------------------------------------- */

bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, struct smtp_err *err)
{
	static const char usage[] = "Syntax: BDAT <size> [LAST]";
	size_t i = skip_spaces(arg, len, 0), start = i;
	uint64_t v = 0;

	*size = 0;
	*last = false;
	while (i < len && arg[i] >= '0' && arg[i] <= '9') {
		unsigned d = (unsigned)(arg[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(err, 501, "5.5.4", "BDAT size too large");
		v = v * 10 + d;
		i++;
	}
	if (i == start || (i < len && arg[i] != ' '))
		return fail(err, 501, "5.5.4", usage);
	i = skip_spaces(arg, len, i);
	if (len - i >= 4 && str_ncasecmp(arg + i, "LAST", 4) == 0) {
		*last = true;
		i += 4;
		if (i < len && arg[i] != ' ')
			return fail(err, 501, "5.5.4", usage);
		i = skip_spaces(arg, len, i);
	}
	if (i != len) {
		*last = false;
		return fail(err, 501, "5.5.4", usage);
	}
	*size = v;
	return true;
}

static bool is_let_dig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2), labels of at most 63 octets (RFC 1035 2.3.4).
 * Lenient: '_' counts as a letter (Windows host names). */
static bool helo_domain_ok(const char *p, size_t n, bool lenient)
{
	size_t i, label = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_let_dig(c) && !(lenient && c == '_') && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && p[n - 1] != '-';
}

/* address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]" (RFC 5321 4.1.3);
 * a General-address-literal has no standardized tag besides IPv6. */
static bool helo_literal_ok(const char *p, size_t n)
{
	char ip[INET6_ADDRSTRLEN + 8];
	unsigned char bin[16];

	if (n < 3 || p[0] != '[' || p[n - 1] != ']' || n - 2 >= sizeof(ip))
		return false;
	memcpy(ip, p + 1, n - 2);
	ip[n - 2] = '\0';
	if (str_ncasecmp(ip, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, ip + 5, bin) == 1;
	return inet_pton(AF_INET, ip, bin) == 1;
}

/* HELO/EHLO: a domain or an address literal (RFC 5321 4.1.1.1), as
 * strictly as the connector's HELO policy says. */
bool smtp_parse_helo(const char *arg, size_t len, enum smtp_helo_mode mode, char *out, size_t outsz,
		     struct smtp_err *err)
{
	bool lenient = mode == SMTP_HELO_LENIENT;
	size_t start = skip_spaces(arg, len, 0), end = len, n;

	if (outsz > 0)
		out[0] = '\0';
	while (end > start && arg[end - 1] == ' ')
		end--;
	if (end == start)
		return fail(err, 501, "5.5.4", "Syntax: EHLO hostname");
	if (end != len && !lenient)
		return fail(err, 501, "5.5.4", "Invalid domain name");
	n = end - start;
	if (lenient && n > 1 && arg[end - 1] == '.' && arg[end - 2] != '.')
		n--; /* "host.example." : the root's dot, as Gmail takes it */
	if (!helo_literal_ok(arg + start, n) && !helo_domain_ok(arg + start, n, lenient))
		return fail(err, 501, "5.5.4", "Invalid domain name");
	if (end - start >= outsz)
		return fail(err, 501, "5.5.4", "Hostname too long");
	memcpy(out, arg + start, end - start);
	out[end - start] = '\0';
	return true;
}
