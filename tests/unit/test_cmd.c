/*
 * test_cmd.c - smtp/cmd.c: verb split, MAIL/RCPT paths and every ESMTP
 * parameter with its errors, BDAT, HELO/EHLO; plus the golden file
 * tests/golden/cmd.in -> cmd.ref.
 *
 * Golden files: every line of cmd.in is one command line (no CRLF); MAIL,
 * RCPT, BDAT, HELO and EHLO lines are parsed, others only split. Lines
 * starting with '#' are comments copied to the .ref. To regenerate
 * cmd.ref after an intended change, run
 *     UPDATE_GOLDEN=1 /tmp/build-X/tests/unit/test_cmd
 * and review the diff of tests/golden/cmd.ref before committing it.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/cmd.h"
#include "util/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_split(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
		const char *arg;
	} cases[] = {
		{"MAIL FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>"},
		{"mail from:<a@b>", SMTP_MAIL, "from:<a@b>"},
		{"RcPt TO:<a@b> NOTIFY=NEVER", SMTP_RCPT, "TO:<a@b> NOTIFY=NEVER"},
		{"EHLO client.test", SMTP_EHLO, "client.test"},
		{"HELO x", SMTP_HELO, "x"},
		{"DATA", SMTP_DATA, ""},
		{"BDAT 10 LAST", SMTP_BDAT, "10 LAST"},
		{"RSET", SMTP_RSET, ""},
		{"NOOP hello", SMTP_NOOP, "hello"},
		{"QUIT", SMTP_QUIT, ""},
		{"quit ", SMTP_QUIT, ""},
		{"HELP", SMTP_HELP, ""},
		{"VRFY postmaster", SMTP_VRFY, "postmaster"},
		{"EXPN list", SMTP_EXPN, "list"},
		{"STARTTLS", SMTP_STARTTLS, ""},
		{"AUTH PLAIN AGFAAGI=", SMTP_AUTH, "PLAIN AGFAAGI="},
		{"MAIL  FROM:<a@b>", SMTP_MAIL, " FROM:<a@b>"},
		{"MAILFROM:<a@b>", SMTP_UNKNOWN, ""},
		{"MAI", SMTP_UNKNOWN, ""},
		{"STARTTLSX", SMTP_UNKNOWN, ""},
		{"", SMTP_UNKNOWN, ""},
		{" MAIL FROM:<a@b>", SMTP_UNKNOWN, "MAIL FROM:<a@b>"},
		{"QUIT\t", SMTP_UNKNOWN, ""},
		{"GET / HTTP/1.0", SMTP_UNKNOWN, "/ HTTP/1.0"},
	};
	struct smtp_cmd c;
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		smtp_cmd_split(cases[i].line, strlen(cases[i].line), &c);
		if (c.verb != cases[i].verb)
			fail_msg("\"%s\": verb %d, want %d", cases[i].line, c.verb, cases[i].verb);
		assert_int_equal(c.arg_len, strlen(cases[i].arg));
		assert_memory_equal(c.arg, cases[i].arg, c.arg_len);
	}
	/* counted input: a NUL inside the verb makes it unknown */
	smtp_cmd_split("DATA\0x", 6, &c);
	assert_int_equal(c.verb, SMTP_UNKNOWN);
	smtp_cmd_split("DATAX", 4, &c);
	assert_int_equal(c.verb, SMTP_DATA);
}

static void test_verb_name(void **state)
{
	struct smtp_cmd c;
	int v;
	(void)state;
	assert_string_equal(smtp_verb_name(SMTP_EHLO), "EHLO");
	assert_string_equal(smtp_verb_name(SMTP_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)-1), "UNKNOWN");
	/* every name splits back to its verb */
	for (v = SMTP_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		smtp_cmd_split(name, strlen(name), &c);
		assert_int_equal(c.verb, v);
	}
}

static bool mail(const char *arg, struct mail_addr *a, struct mail_params *p, struct smtp_err *e)
{
	return smtp_parse_mail(arg, strlen(arg), a, p, e);
}

static bool rcpt(const char *arg, struct mail_addr *a, struct rcpt_params *p, struct smtp_err *e)
{
	return smtp_parse_rcpt(arg, strlen(arg), a, p, e);
}

static void test_mail_paths(void **state)
{
	static const struct {
		const char *arg, *local, *domain;
		unsigned flags;
	} ok[] = {
		{"FROM:<alice@example.test>", "alice", "example.test", 0},
		{"from:<alice@example.test>", "alice", "example.test", 0},
		{"FROM: <alice@example.test>", "alice", "example.test", 0},
		{"FROM:alice@example.test", "alice", "example.test", 0},
		{"FROM:alice@example.test SIZE=1", "alice", "example.test", 0},
		{"FROM:<>", "", "", ADDR_F_NULL},
		{"FROM:<> ", "", "", ADDR_F_NULL},
		{"FROM:<\"a> b\"@example.test>", "a> b", "example.test", ADDR_F_QUOTED},
		{"FROM:<\"a\\\"> b\"@example.test>", "a\"> b", "example.test", ADDR_F_QUOTED},
		{"FROM:<@relay.test:bob@example.test>", "bob", "example.test", ADDR_F_SOURCE_ROUTE},
		{"FROM:<postmaster>", "postmaster", "", ADDR_F_NO_DOMAIN},
		{"FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8", "δοκιμή", "παράδειγμα.δοκιμή",
		 ADDR_F_UTF8},
		{" FROM:<a@b>", "a", "b", 0},
	};
	static const struct {
		const char *arg;
		int code;
		const char *enh;
	} bad[] = {
		{"", 501, "5.5.4"},
		{"FROM", 501, "5.5.4"},
		{"FROM:", 501, "5.5.4"},
		{"FROM: ", 501, "5.5.4"},
		{"TO:<a@b>", 501, "5.5.4"},
		{"FROM <a@b>", 501, "5.5.4"},
		{"FROM:<a@b", 501, "5.5.4"},
		{"FROM:<\"a>@b", 501, "5.5.4"},
		{"FROM:<a@b>SIZE=1", 501, "5.5.4"},
		{"FROM:<a@b>>", 501, "5.5.4"},
		{"FROM:<a@>", 501, "5.1.7"},
		{"FROM:<a b@c>", 501, "5.1.7"},
		{"FROM:a@b>", 501, "5.1.7"},
		{"FROM:<<a@b>>", 501, "5.5.4"},
		{"FROM:<a@[1.2.3]>", 501, "5.1.7"},
		{"FROM:<\xff@b>", 501, "5.1.7"},
	};
	struct mail_addr a;
	struct mail_params p;
	struct smtp_err e;
	size_t i;
	(void)state;

	for (i = 0; i < N(ok); i++) {
		if (!mail(ok[i].arg, &a, &p, &e))
			fail_msg("\"%s\": %d %s %s", ok[i].arg, e.code, e.enh, e.text);
		assert_string_equal(a.local, ok[i].local);
		assert_string_equal(a.domain, ok[i].domain);
		assert_int_equal(a.flags, ok[i].flags);
	}
	for (i = 0; i < N(bad); i++) {
		memset(&e, 0, sizeof(e));
		if (mail(bad[i].arg, &a, &p, &e))
			fail_msg("\"%s\" accepted", bad[i].arg);
		assert_int_equal(e.code, bad[i].code);
		assert_string_equal(e.enh, bad[i].enh);
		assert_non_null(e.text);
	}
	assert_false(mail("", &a, &p, &e));
	assert_string_equal(e.text, "Syntax: MAIL FROM:<address>");
}

static void test_path_too_long(void **state)
{
	char arg[1400];
	struct mail_addr a;
	struct mail_params p;
	struct rcpt_params rp;
	struct smtp_err e;
	size_t i;
	(void)state;

	/* over ADDR_TEXT_MAX between the brackets, whatever it is */
	strcpy(arg, "FROM:<");
	for (i = 0; i < 150; i++)
		strcat(arg, "@a.b,");
	strcat(arg, "@c:u@d>");
	assert_false(mail(arg, &a, &p, &e));
	assert_int_equal(e.code, 501);
	assert_string_equal(e.enh, "5.1.7");
	assert_string_equal(e.text, "Address too long");
	memcpy(arg, "  TO:", 5);
	assert_false(rcpt(arg, &a, &rp, &e));
	assert_string_equal(e.enh, "5.1.3");
	/* a long local part gets addr_parse's reason */
	strcpy(arg, "FROM:<");
	memset(arg + 6, 'x', 65);
	strcpy(arg + 71, "@d>");
	assert_false(mail(arg, &a, &p, &e));
	assert_int_equal(e.code, 501);
	assert_string_equal(e.enh, "5.1.7");
}

static void test_mail_params(void **state)
{
	struct mail_addr a;
	struct mail_params p;
	struct smtp_err e;
	(void)state;

	assert_true(mail("FROM:<a@b>", &a, &p, &e));
	assert_false(p.has_size);
	assert_int_equal(p.body, BODY_7BIT);
	assert_false(p.smtputf8);
	assert_int_equal(p.ret, DSN_RET_UNSPEC);
	assert_string_equal(p.envid, "");
	assert_string_equal(p.auth, "");

	assert_true(mail("FROM:<a@b> SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS "
			 "ENVID=QQ+2B1 AUTH=e+2Bx@example.test",
			 &a, &p, &e));
	assert_true(p.has_size);
	assert_int_equal(p.size, 12345);
	assert_int_equal(p.body, BODY_8BITMIME);
	assert_true(p.smtputf8);
	assert_int_equal(p.ret, DSN_RET_HDRS);
	assert_string_equal(p.envid, "QQ+1");
	assert_string_equal(p.auth, "e+x@example.test");

	/* keywords and fixed values are case-insensitive; spaces tolerated */
	assert_true(mail("FROM:<a@b>   size=0  body=7bit ret=full smtputf8  auth=<> ", &a, &p, &e));
	assert_true(p.has_size);
	assert_int_equal(p.size, 0);
	assert_int_equal(p.body, BODY_7BIT);
	assert_int_equal(p.ret, DSN_RET_FULL);
	assert_string_equal(p.auth, "<>");

	/* SIZE: 20 digits that overflow saturate; 21 digits are malformed */
	assert_true(mail("FROM:<a@b> SIZE=18446744073709551615", &a, &p, &e));
	assert_int_equal(p.size, UINT64_MAX);
	assert_true(mail("FROM:<a@b> SIZE=99999999999999999999", &a, &p, &e));
	assert_int_equal(p.size, UINT64_MAX);
	assert_true(mail("FROM:<a@b> SIZE=00000000000000000010", &a, &p, &e));
	assert_int_equal(p.size, 10);

	/* ENVID: 100 characters of xtext at most */
	{
		char arg[200];
		strcpy(arg, "FROM:<a@b> ENVID=");
		memset(arg + 17, 'e', 100);
		arg[117] = '\0';
		assert_true(mail(arg, &a, &p, &e));
		assert_int_equal(strlen(p.envid), 100);
		strcat(arg, "e");
		assert_false(mail(arg, &a, &p, &e));
		assert_int_equal(e.code, 501);
	}
}

static void test_mail_param_errors(void **state)
{
	static const struct {
		const char *arg;
		int code;
	} cases[] = {
		/* unknown: 555 */
		{"FROM:<a@b> FOO=1", 555},
		{"FROM:<a@b> FOO", 555},
		{"FROM:<a@b> NOTIFY=NEVER", 555},
		{"FROM:<a@b> ORCPT=rfc822;a@b", 555},
		{"FROM:<a@b> X-FOO=1", 555},
		/* duplicate: 501 */
		{"FROM:<a@b> SIZE=1 SIZE=1", 501},
		{"FROM:<a@b> SMTPUTF8 SMTPUTF8", 501},
		{"FROM:<a@b> BODY=7BIT body=8bitmime", 501},
		{"FROM:<a@b> RET=FULL RET=HDRS", 501},
		{"FROM:<a@b> ENVID=a ENVID=b", 501},
		{"FROM:<a@b> AUTH=<> AUTH=<>", 501},
		/* malformed: 501 */
		{"FROM:<a@b> SIZE=", 501},
		{"FROM:<a@b> SIZE", 501},
		{"FROM:<a@b> SIZE=-1", 501},
		{"FROM:<a@b> SIZE=1k", 501},
		{"FROM:<a@b> SIZE=0x10", 501},
		{"FROM:<a@b> SIZE=999999999999999999999", 501},
		{"FROM:<a@b> BODY=", 501},
		{"FROM:<a@b> BODY=8BIT", 501},
		{"FROM:<a@b> BODY=BINARYMIME", 501},
		{"FROM:<a@b> SMTPUTF8=yes", 501},
		{"FROM:<a@b> RET=NONE", 501},
		{"FROM:<a@b> RET", 501},
		{"FROM:<a@b> ENVID=", 501},
		{"FROM:<a@b> ENVID=a+2", 501},
		{"FROM:<a@b> ENVID=+0A", 501},
		{"FROM:<a@b> ENVID=+C3+A9", 501},
		{"FROM:<a@b> ENVID=a=b", 501},
		{"FROM:<a@b> AUTH=+0D+0A", 501},
		{"FROM:<a@b> AUTH=", 501},
		{"FROM:<a@b> =1", 501},
		{"FROM:<a@b> -X=1", 501},
		{"FROM:<a@b> SI_ZE=1", 501},
		{"FROM:<a@b> SIZE=1\x01", 501},
		{"FROM:<a@b> SIZE=1\t", 501},
	};
	struct mail_addr a;
	struct mail_params p;
	struct smtp_err e;
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		memset(&e, 0, sizeof(e));
		if (mail(cases[i].arg, &a, &p, &e))
			fail_msg("\"%s\" accepted", cases[i].arg);
		if (e.code != cases[i].code)
			fail_msg("\"%s\": %d, want %d", cases[i].arg, e.code, cases[i].code);
		assert_string_equal(e.enh, "5.5.4");
		assert_non_null(e.text);
	}
}

static void test_rcpt(void **state)
{
	static const struct {
		const char *arg;
		int code;
		const char *enh;
	} bad[] = {
		{"TO:<>", 501, "5.1.3"},
		{"TO:<a@>", 501, "5.1.3"},
		{"TO:", 501, "5.5.4"},
		{"FROM:<a@b>", 501, "5.5.4"},
		{"TO:<a@b> SIZE=1", 555, "5.5.4"},
		{"TO:<a@b> SMTPUTF8", 555, "5.5.4"},
		{"TO:<a@b> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=SUCCESS,NEVER", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=SUCCESS,", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=,SUCCESS", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=ALWAYS", 501, "5.5.4"},
		{"TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc822", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=;a@b", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc822;", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc822;a+2", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc822;a+0Ab", 501, "5.5.4"},
		{"TO:<a@b> ORCPT=rfc@822;a@b", 501, "5.5.4"},
		{"TO:<a@b> ORCPT", 501, "5.5.4"},
	};
	struct mail_addr a;
	struct rcpt_params p;
	struct smtp_err e;
	size_t i;
	(void)state;

	assert_true(rcpt("TO:<bob@example.test>", &a, &p, &e));
	assert_string_equal(a.local, "bob");
	assert_int_equal(p.notify, DSN_NOTIFY_UNSPEC);
	assert_string_equal(p.orcpt, "");
	assert_true(rcpt("to: bob@example.test", &a, &p, &e));
	assert_true(rcpt("TO:<postmaster>", &a, &p, &e));
	assert_int_equal(a.flags, ADDR_F_NO_DOMAIN);
	assert_true(rcpt("TO:<user@other@local>", &a, &p, &e));
	assert_int_equal(a.flags, ADDR_F_ROUTING);

	assert_true(rcpt("TO:<a@b> NOTIFY=NEVER", &a, &p, &e));
	assert_int_equal(p.notify, DSN_NOTIFY_NEVER);
	assert_true(rcpt("TO:<a@b> notify=success,Failure,DELAY", &a, &p, &e));
	assert_int_equal(p.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_true(rcpt("TO:<a@b> NOTIFY=DELAY", &a, &p, &e));
	assert_int_equal(p.notify, DSN_NOTIFY_DELAY);

	assert_true(rcpt("TO:<a@b> ORCPT=rfc822;bob+2Bx@example.test NOTIFY=FAILURE", &a, &p, &e));
	assert_string_equal(p.orcpt, "rfc822;bob+x@example.test");
	assert_int_equal(p.notify, DSN_NOTIFY_FAILURE);
	assert_true(rcpt("TO:<a@b> ORCPT=RFC822;a+20b@c", &a, &p, &e));
	assert_string_equal(p.orcpt, "rfc822;a b@c");
	assert_true(rcpt("TO:<a@b> ORCPT=x-local;anything", &a, &p, &e));
	assert_string_equal(p.orcpt, "x-local;anything");

	for (i = 0; i < N(bad); i++) {
		memset(&e, 0, sizeof(e));
		if (rcpt(bad[i].arg, &a, &p, &e))
			fail_msg("\"%s\" accepted", bad[i].arg);
		if (e.code != bad[i].code || strcmp(e.enh, bad[i].enh) != 0)
			fail_msg("\"%s\": %d %s, want %d %s", bad[i].arg, e.code, e.enh, bad[i].code,
				 bad[i].enh);
	}
	assert_false(rcpt("TO:", &a, &p, &e));
	assert_string_equal(e.text, "Syntax: RCPT TO:<address>");

	/* ORCPT over SMTP_ORCPT_MAX */
	{
		char arg[SMTP_ORCPT_MAX + 64];
		size_t n;
		strcpy(arg, "TO:<a@b> ORCPT=rfc822;");
		n = strlen(arg);
		memset(arg + n, 'x', SMTP_ORCPT_MAX);
		arg[n + SMTP_ORCPT_MAX] = '\0';
		assert_false(rcpt(arg, &a, &p, &e));
		assert_int_equal(e.code, 501);
	}
}

static void test_bdat(void **state)
{
	static const struct {
		const char *arg;
		bool ok;
		uint64_t size;
		bool last;
	} cases[] = {
		{"0", true, 0, false},
		{"1000", true, 1000, false},
		{"1000 LAST", true, 1000, true},
		{"1000 last", true, 1000, true},
		{"0 LAST", true, 0, true},
		{" 5  LAST ", true, 5, true},
		{"18446744073709551615", true, UINT64_MAX, false},
		{"18446744073709551616", false, 0, false},
		{"99999999999999999999999", false, 0, false},
		{"", false, 0, false},
		{"LAST", false, 0, false},
		{"-1", false, 0, false},
		{"10LAST", false, 0, false},
		{"10 LASTX", false, 0, false},
		{"10 LAST x", false, 0, false},
		{"10 FIRST", false, 0, false},
		{"1 0", false, 0, false},
		{"0x10", false, 0, false},
	};
	struct smtp_err e;
	uint64_t size;
	bool last;
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		bool ok = smtp_parse_bdat(cases[i].arg, strlen(cases[i].arg), &size, &last, &e);
		if (ok != cases[i].ok)
			fail_msg("BDAT \"%s\": %d, want %d", cases[i].arg, ok, cases[i].ok);
		if (ok) {
			assert_true(size == cases[i].size);
			assert_int_equal(last, cases[i].last);
		} else {
			assert_int_equal(e.code, 501);
			assert_string_equal(e.enh, "5.5.4");
		}
	}
}

/* HELO policy table: what each mode accepts (NULL: refused with 501 5.5.4). */
static void test_helo(void **state)
{
	static const struct {
		const char *arg, *lenient, *strict;
	} cases[] = {
		{"client.test", "client.test", "client.test"},
		{"x", "x", "x"},
		{"a-b.c9", "a-b.c9", "a-b.c9"},
		{"[192.0.2.1]", "[192.0.2.1]", "[192.0.2.1]"},
		{"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
		{"[ipv6:::1]", "[ipv6:::1]", "[ipv6:::1]"},
		{"  client", "client", "client"},
		/* what Gmail takes and RFC 5321 does not */
		{"client.test.", "client.test.", NULL},
		{"client  ", "client", NULL},
		{"client.test. ", "client.test.", NULL},
		{"my_pc.lan", "my_pc.lan", NULL},
		/* never */
		{"", NULL, NULL},
		{"   ", NULL, NULL},
		{".", NULL, NULL},
		{"client..test", NULL, NULL},
		{"client.test..", NULL, NULL},
		{".client", NULL, NULL},
		{"-client", NULL, NULL},
		{"client-", NULL, NULL},
		{"a.-b", NULL, NULL},
		{"two words", NULL, NULL},
		{"tab\there", NULL, NULL},
		{"ctl\x01", NULL, NULL},
		{"del\x7f", NULL, NULL},
		{"caf\xc3\xa9.test", NULL, NULL},
		{"[192.0.2.256]", NULL, NULL},
		{"[192.0.2]", NULL, NULL},
		{"[2001:db8::1]", NULL, NULL},
		{"[IPv6:zz::1]", NULL, NULL},
		{"[x-tag:foo]", NULL, NULL},
		{"[]", NULL, NULL},
		{"192.0.2.1]", NULL, NULL},
		{"host@example", NULL, NULL},
		{"<host>", NULL, NULL},
	};
	char out[64];
	struct smtp_err e;
	size_t i;
	(void)state;

	for (i = 0; i < N(cases); i++) {
		for (int m = SMTP_HELO_LENIENT; m <= SMTP_HELO_STRICT; m++) {
			const char *want = m == SMTP_HELO_STRICT ? cases[i].strict : cases[i].lenient;
			bool ok = smtp_parse_helo(cases[i].arg, strlen(cases[i].arg),
						  (enum smtp_helo_mode)m, out, sizeof(out), &e);
			if (ok != (want != NULL))
				fail_msg("HELO \"%s\" mode %d: %d", cases[i].arg, m, ok);
			if (ok) {
				assert_string_equal(out, want);
			} else {
				assert_int_equal(e.code, 501);
				assert_string_equal(e.enh, "5.5.4");
			}
		}
	}
	/* labels of 63 octets at most (RFC 1035 2.3.4) */
	{
		char label[70];
		memset(label, 'a', 64);
		label[64] = '\0';
		assert_false(smtp_parse_helo(label, 64, SMTP_HELO_LENIENT, out, sizeof(out), &e));
	}
	/* out too small: refused, never truncated silently */
	assert_false(smtp_parse_helo("0123456789abcdef", 16, SMTP_HELO_STRICT, out, 16, &e));
	assert_true(smtp_parse_helo("0123456789abcde", 15, SMTP_HELO_STRICT, out, 16, &e));
	assert_false(smtp_parse_helo("a\0b", 3, SMTP_HELO_LENIENT, out, sizeof(out), &e));
}

/* --- golden file ------------------------------------------------------------ */

static void flags_text(unsigned f, struct buf *out)
{
	static const char *const names[] = {"NULL",    "QUOTED",       "UTF8",	    "LITERAL",
					    "ROUTING", "SOURCE_ROUTE", "NO_DOMAIN"};
	size_t i;
	const char *sep = "";

	if (f == 0)
		buf_puts(out, "-");
	for (i = 0; i < N(names); i++)
		if (f & (1u << i)) {
			buf_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
}

static void path_text(const struct mail_addr *a, struct buf *out)
{
	char text[ADDR_TEXT_MAX];
	addr_format(a, text, sizeof(text));
	buf_printf(out, " <%s> flags=", text);
	flags_text(a->flags, out);
}

static void mail_text(const struct mail_params *p, struct buf *out)
{
	if (p->has_size)
		buf_printf(out, " SIZE=%" PRIu64, p->size);
	if (p->body == BODY_8BITMIME)
		buf_puts(out, " BODY=8BITMIME");
	if (p->smtputf8)
		buf_puts(out, " SMTPUTF8");
	if (p->ret)
		buf_puts(out, p->ret == DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
	if (p->envid[0])
		buf_printf(out, " ENVID={%s}", p->envid);
	if (p->auth[0])
		buf_printf(out, " AUTH={%s}", p->auth);
}

static void rcpt_text(const struct rcpt_params *p, struct buf *out)
{
	static const char *const names[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
	const char *sep = " NOTIFY=";
	size_t i;

	for (i = 0; i < N(names); i++)
		if (p->notify & (1u << i)) {
			buf_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
	if (p->orcpt[0])
		buf_printf(out, " ORCPT={%s}", p->orcpt);
}

static void golden_cmd_line(const char *line, size_t len, struct buf *out)
{
	struct smtp_cmd c;
	struct smtp_err e;
	struct mail_addr a;
	struct mail_params mp;
	struct rcpt_params rp;
	uint64_t size;
	bool last, ok = true;
	char host[256];

	smtp_cmd_split(line, len, &c);
	switch (c.verb) {
	case SMTP_MAIL:
		if ((ok = smtp_parse_mail(c.arg, c.arg_len, &a, &mp, &e))) {
			buf_puts(out, "OK MAIL");
			path_text(&a, out);
			mail_text(&mp, out);
		}
		break;
	case SMTP_RCPT:
		if ((ok = smtp_parse_rcpt(c.arg, c.arg_len, &a, &rp, &e))) {
			buf_puts(out, "OK RCPT");
			path_text(&a, out);
			rcpt_text(&rp, out);
		}
		break;
	case SMTP_BDAT:
		if ((ok = smtp_parse_bdat(c.arg, c.arg_len, &size, &last, &e)))
			buf_printf(out, "OK BDAT %" PRIu64 "%s", size, last ? " LAST" : "");
		break;
	case SMTP_HELO:
	case SMTP_EHLO:
		if ((ok = smtp_parse_helo(c.arg, c.arg_len, SMTP_HELO_LENIENT, host, sizeof(host),
					  &e)))
			buf_printf(out, "OK %s {%s}", smtp_verb_name(c.verb), host);
		break;
	default:
		buf_printf(out, "OK %s arg={%.*s}", smtp_verb_name(c.verb), (int)c.arg_len, c.arg);
		break;
	}
	if (!ok)
		buf_printf(out, "ERR %d %s %s", e.code, e.enh, e.text);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	buf_reserve(&b, 0);
	*len = b.len;
	return buf_steal(&b);
}

/* Same runner as in test_addr.c (kept per test so each stays standalone). */
static void golden_run(const char *name, void (*fn)(const char *, size_t, struct buf *))
{
	char in_path[512], ref_path[512];
	struct buf got = BUF_INIT;
	size_t in_len, ref_len, pos = 0, line_no = 1, i;
	char *in, *ref;

	snprintf(in_path, sizeof(in_path), "%s/%s.in", GOLDEN_DIR, name);
	snprintf(ref_path, sizeof(ref_path), "%s/%s.ref", GOLDEN_DIR, name);
	if (!(in = slurp(in_path, &in_len)))
		fail_msg("cannot read %s", in_path);
	while (pos < in_len) {
		const char *nl = memchr(in + pos, '\n', in_len - pos);
		size_t n = nl ? (size_t)(nl - (in + pos)) : in_len - pos;
		if (n > 0 && in[pos] == '#')
			buf_append(&got, in + pos, n);
		else
			fn(in + pos, n, &got);
		buf_putc(&got, '\n');
		pos += n + 1;
	}
	free(in);
	if (getenv("UPDATE_GOLDEN")) {
		FILE *f = fopen(ref_path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(got.data, 1, got.len, f), got.len);
		assert_int_equal(fclose(f), 0);
		print_message("rewrote %s\n", ref_path);
		buf_free(&got);
		return;
	}
	if (!(ref = slurp(ref_path, &ref_len))) {
		buf_free(&got);
		fail_msg("cannot read %s (UPDATE_GOLDEN=1 creates it)", ref_path);
	}
	for (i = 0; i < got.len && i < ref_len && got.data[i] == ref[i]; i++)
		if (ref[i] == '\n')
			line_no++;
	if (i != got.len || i != ref_len) {
		const char *g = got.data + i, *r = ref + i;
		while (g > got.data && g[-1] != '\n')
			g--;
		while (r > ref && r[-1] != '\n')
			r--;
		print_error("%s.ref line %zu differs:\n  want: %.*s\n  got:  %.*s\n", name, line_no,
			    (int)strcspn(r, "\n"), r, (int)strcspn(g, "\n"), g);
		free(ref);
		buf_free(&got);
		fail_msg("golden mismatch (UPDATE_GOLDEN=1 regenerates after review)");
	}
	free(ref);
	buf_free(&got);
}

static void test_golden(void **state)
{
	(void)state;
	golden_run("cmd", golden_cmd_line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),	      cmocka_unit_test(test_verb_name),
		cmocka_unit_test(test_mail_paths),    cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_mail_params),   cmocka_unit_test(test_mail_param_errors),
		cmocka_unit_test(test_rcpt),	      cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_helo),	      cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
