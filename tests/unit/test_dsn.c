/*
 * test_dsn.c - mail/dsn.c: failure, delay and success reports built from a
 * temporary content file, checked octet by octet for structure (headers,
 * boundary, part types, every per-recipient field, CRLF only, lines of at
 * most 998 octets), hostile peer text, RET=FULL vs HDRS and the size
 * downgrade, SMTPUTF8 (RFC 6533) types, templates and their fallback, and
 * unreadable content. Every built report is also parsed by Python's email
 * package (tests/unit/dsn_check.py), as the integration tests will.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "mail/dsn.h"

#define ARRIVAL 1700000000	 /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define ATTEMPT 1700003600	 /* Tue, 14 Nov 2023 23:13:20 +0000 */
#define UNTIL 1700400000	 /* Sun, 19 Nov 2023 13:20:00 +0000 */

static const char ORIGINAL[] =
	"Received: from client.example.test by mx.example.test\r\n"
	"\tfor <bob@partner.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"From: Alice <alice@example.test>\r\n"
	"To: bob@partner.test\r\n"
	"Subject: lunch\r\n"
	"Message-ID: <orig-1@example.test>\r\n"
	"\r\n"
	"Shall we have lunch on Friday?\r\n"
	"--=_transit_Q1_ looks like a boundary but is not one\r\n";

/* getrandom() as dsn.c sees it: the real one, unless a test scripts the
 * bytes (to force a boundary that collides with the content). Each call
 * fills the buffer with the next byte of fake_bytes. */
static const char *fake_bytes;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	if (!fake_bytes || !*fake_bytes)
		return syscall(SYS_getrandom, buf, len, flags);
	memset(buf, *fake_bytes, len);
	if (fake_bytes[1])
		fake_bytes++;
	return (ssize_t)len;
}

/* A test's temporary files and the report built. */
struct fixture {
	char content[64];
	char tmpl[64];
	struct buf out;
	char err[256];
};

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	strcpy(fx->content, "/tmp/test_dsn_contentXXXXXX");
	fd = mkstemp(fx->content);
	assert_true(fd >= 0);
	close(fd);
	/* 7 octets of unrelated queue-file data before the content */
	{
		char data[7 + sizeof(ORIGINAL)];

		memcpy(data, "HEADER\n", 7);
		memcpy(data + 7, ORIGINAL, sizeof(ORIGINAL));
		write_file(fx->content, data, sizeof(data) - 1);
	}
	strcpy(fx->tmpl, "/tmp/test_dsn_tmplXXXXXX");
	fd = mkstemp(fx->tmpl);
	assert_true(fd >= 0);
	close(fd);
	buf_init(&fx->out);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->content);
	unlink(fx->tmpl);
	buf_free(&fx->out);
	free(fx);
	return 0;
}

static const struct dsn_rcpt two_rcpts[] = {
	{"bob@partner.test", "rfc822;Bob@Partner.test", "failed", "5.1.1", "mx1.partner.test",
	 "550-5.1.1 <bob@partner.test>: unknown user\r\n550 5.1.1 see https://partner.test/",
	 ATTEMPT},
	{"carol@far.test", NULL, "failed", "5.4.4", NULL, "no route to far.test", 0},
};

static struct dsn_info base_info(const struct fixture *fx, enum dsn_kind kind)
{
	struct dsn_info info = {
		.kind = kind,
		.reporting_mta = "mx.example.test",
		.qid = "Q1",
		.envid = "ENV-42",
		.sender = "alice@example.test",
		.arrival = ARRIVAL,
		.retry_until = UNTIL,
		.ret = 2,
		.rcpt = two_rcpts,
		.nrcpt = 2,
		.content_path = fx->content,
		.content_off = 7,
		.content_len = sizeof(ORIGINAL) - 1,
		.message_id = "<Q1.dsn@mx.example.test>",
	};
	return info;
}

/* ---- helpers that look at the output ---- */

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* CRLF only, no line over 998 octets, no NUL. */
static void assert_wire_clean(const struct buf *b)
{
	size_t col = 0;

	assert_int_equal(strlen(b->data), b->len);
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\n')
			fail_msg("bare LF at %zu", i);
		if (b->data[i] == '\r') {
			if (i + 1 >= b->len || b->data[i + 1] != '\n')
				fail_msg("bare CR at %zu", i);
			i++;
			col = 0;
			continue;
		}
		if (++col > 998)
			fail_msg("line longer than 998 octets at %zu", i);
	}
	assert_true(b->len >= 2 && memcmp(b->data + b->len - 2, "\r\n", 2) == 0);
}

/* Python's email package must agree (tests/unit/dsn_check.py). */
static void assert_python_ok(const struct buf *b, int nrcpt, const char *part3, bool global)
{
	char cmd[1024];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/../unit/dsn_check.py' %d '%s'%s",
		 GOLDEN_DIR, nrcpt, part3, global ? " global" : "");
	p = popen(cmd, "w");
	assert_non_null(p);
	assert_int_equal(fwrite(b->data, 1, b->len, p), b->len);
	st = pclose(p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct report {
	char *head;	/* top-level header section, with its final CRLF */
	char boundary[128];
	int nparts;
	char *ptype[4]; /* each part's Content-Type value */
	char *phead[4]; /* each part's header section */
	char *body[4];	/* each part's content (RFC 2046 5.1.1: up to the CRLF of the delimiter) */
};

static char *dup_range(const char *a, const char *b)
{
	size_t n = (size_t)(b - a);
	char *s = malloc(n + 1);

	memcpy(s, a, n);
	s[n] = '\0';
	return s;
}

static char *field_value(const char *head, const char *name)
{
	char key[128];
	const char *p, *e;

	snprintf(key, sizeof(key), "%s: ", name);
	p = head;
	if (strncmp(p, key, strlen(key)) != 0) {
		snprintf(key, sizeof(key), "\r\n%s: ", name);
		p = strstr(head, key);
		if (!p)
			return NULL;
	}
	p += strlen(key);
	e = strstr(p, "\r\n");
	return dup_range(p, e);
}

/* Split a built report into its parts, asserting the MIME framing. */
static void parse_report(const struct buf *b, struct report *r)
{
	const char *eoh = strstr(b->data, "\r\n\r\n"), *bp, *p;
	char delim[140], close_delim[140];

	memset(r, 0, sizeof(*r));
	assert_non_null(eoh);
	r->head = dup_range(b->data, eoh + 2);
	bp = strstr(r->head, "boundary=\"");
	assert_non_null(bp);
	bp += 10;
	assert_true(strchr(bp, '"') - bp < (long)sizeof(r->boundary));
	memcpy(r->boundary, bp, (size_t)(strchr(bp, '"') - bp));
	assert_true(strlen(r->boundary) >= 1 && strlen(r->boundary) <= 70);
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", r->boundary);
	snprintf(close_delim, sizeof(close_delim), "\r\n--%s--\r\n", r->boundary);
	/* the boundary appears only in the header and the delimiter lines */
	p = strstr(b->data, delim);
	assert_non_null(p);
	while (p) {
		const char *start = p + strlen(delim), *next = strstr(start, delim);
		const char *end = next ? next : strstr(start, close_delim);
		const char *pe;

		assert_non_null(end);
		assert_true(r->nparts < 4);
		pe = strstr(start, "\r\n\r\n");
		assert_non_null(pe);
		assert_true(pe <= end);
		r->phead[r->nparts] = dup_range(start, pe + 2);
		r->body[r->nparts] = dup_range(pe + 4 > end ? end : pe + 4, end);
		r->ptype[r->nparts] = field_value(r->phead[r->nparts], "Content-Type");
		assert_non_null(r->ptype[r->nparts]);
		r->nparts++;
		p = next;
	}
	assert_int_equal(count(b->data, r->boundary), (size_t)r->nparts + 2);
	/* the close delimiter ends the message */
	assert_true(b->len > strlen(close_delim));
	assert_string_equal(b->data + b->len - strlen(close_delim), close_delim);
}

static void free_report(struct report *r)
{
	free(r->head);
	for (int i = 0; i < r->nparts; i++) {
		free(r->ptype[i]);
		free(r->phead[i]);
		free(r->body[i]);
	}
}

static void assert_head_has(const struct report *r, const char *name, const char *want)
{
	char *v = field_value(r->head, name);

	if (!v)
		fail_msg("no %s field", name);
	assert_string_equal(v, want);
	free(v);
}

static void assert_rfc5322_date(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (!end || *end)
		fail_msg("not an RFC 5322 date: '%s'", s);
}

static void build_ok(struct fixture *fx, const struct dsn_info *info)
{
	buf_reset(&fx->out);
	fx->err[0] = '\0';
	if (dsn_build(info, &fx->out, fx->err, sizeof(fx->err)) != 0)
		fail_msg("dsn_build: %s", fx->err);
	assert_wire_clean(&fx->out);
}

/* ---- tests ---- */

static void test_failure_headers_only(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct report r;
	char *date;

	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_true(strncmp(r.head, "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n",
			    60) == 0);
	assert_head_has(&r, "To", "<alice@example.test>");
	assert_head_has(&r, "Subject", "Undelivered Mail Returned to Sender");
	assert_head_has(&r, "Message-ID", "<Q1.dsn@mx.example.test>");
	assert_head_has(&r, "Auto-Submitted", "auto-replied");
	assert_head_has(&r, "MIME-Version", "1.0");
	assert_non_null(strstr(r.head, "Content-Type: multipart/report; "
					"report-type=delivery-status;\r\n\tboundary=\""));
	assert_non_null(strstr(r.boundary, "Q1"));
	date = field_value(r.head, "Date");
	assert_non_null(date);
	assert_rfc5322_date(date);
	free(date);

	assert_int_equal(r.nparts, 3);
	assert_string_equal(r.ptype[0], "text/plain; charset=utf-8");
	assert_string_equal(r.ptype[1], "message/delivery-status");
	assert_string_equal(r.ptype[2], "text/rfc822-headers");
	/* part 1: what happened, the remote reply quoted line by line */
	assert_non_null(strstr(r.body[0], "could not be delivered"));
	assert_non_null(strstr(r.body[0], "queue id Q1"));
	assert_non_null(strstr(r.body[0], "<bob@partner.test>: failed, status 5.1.1\r\n"));
	assert_non_null(strstr(r.body[0], "The server mx1.partner.test said:\r\n"
					  "      550-5.1.1 <bob@partner.test>: unknown user\r\n"
					  "      550 5.1.1 see https://partner.test/\r\n"));
	assert_non_null(strstr(r.body[0], "<carol@far.test>: failed, status 5.4.4\r\n"
					  "    Reason:\r\n      no route to far.test\r\n"));
	/* part 2, every field, in RFC 3464 order */
	assert_string_equal(r.body[1],
		"Original-Envelope-Id: ENV-42\r\n"
		"Reporting-MTA: dns; mx.example.test\r\n"
		"X-Transit-Queue-ID: Q1\r\n"
		"Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
		"\r\n"
		"Original-Recipient: rfc822; Bob@Partner.test\r\n"
		"Final-Recipient: rfc822; bob@partner.test\r\n"
		"Action: failed\r\n"
		"Status: 5.1.1\r\n"
		"Remote-MTA: dns; mx1.partner.test\r\n"
		"Diagnostic-Code: smtp; 550-5.1.1 <bob@partner.test>: unknown user 550 5.1.1\r\n"
		" see https://partner.test/\r\n"
		"Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
		"\r\n"
		"Final-Recipient: rfc822; carol@far.test\r\n"
		"Action: failed\r\n"
		"Status: 5.4.4\r\n"
		"Diagnostic-Code: X-Transit; no route to far.test\r\n");
	/* part 3: exactly the header section of the original */
	assert_string_equal(r.body[2],
		"Received: from client.example.test by mx.example.test\r\n"
		"\tfor <bob@partner.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
		"From: Alice <alice@example.test>\r\n"
		"To: bob@partner.test\r\n"
		"Subject: lunch\r\n"
		"Message-ID: <orig-1@example.test>\r\n");
	assert_python_ok(&fx->out, 2, "text/rfc822-headers", false);
	free_report(&r);
}

static void test_failure_ret_full(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct report r;

	info.ret = 1;
	info.envid = NULL;
	info.max_full_size = sizeof(ORIGINAL) - 1; /* exactly at the limit: still whole */
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_int_equal(r.nparts, 3);
	assert_string_equal(r.ptype[2], "message/rfc822");
	assert_string_equal(r.body[2], ORIGINAL); /* octet for octet */
	assert_null(strstr(r.body[1], "Original-Envelope-Id"));
	assert_null(strstr(r.body[0], "only its headers"));
	assert_python_ok(&fx->out, 2, "message/rfc822", false);
	free_report(&r);
}

static void test_failure_full_too_big(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct report r;

	info.ret = 1;
	info.max_full_size = 100;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_string_equal(r.ptype[2], "text/rfc822-headers");
	assert_null(strstr(r.body[2], "lunch on Friday"));
	assert_non_null(strstr(r.body[0], "larger than 100 bytes, so only its headers"));
	assert_python_ok(&fx->out, 2, "text/rfc822-headers", false);
	free_report(&r);
}

static void test_delay(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_DELAY);
	struct dsn_rcpt rc = {"bob@partner.test", NULL, "delayed", "4.4.1", "mx1.partner.test",
			      "421 4.4.1 try again later", ATTEMPT};
	struct report r;

	info.rcpt = &rc;
	info.nrcpt = 1;
	info.ret = 1; /* RET=FULL is for failures only: headers here */
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_head_has(&r, "Subject", "Delayed Mail (still being retried)");
	assert_string_equal(r.ptype[2], "text/rfc822-headers");
	assert_non_null(strstr(r.body[0], "retried until Sun, 19 Nov 2023 13:20:00 +0000"));
	assert_non_null(strstr(r.body[1],
		"\r\n\r\nFinal-Recipient: rfc822; bob@partner.test\r\n"
		"Action: delayed\r\n"
		"Status: 4.4.1\r\n"
		"Remote-MTA: dns; mx1.partner.test\r\n"
		"Diagnostic-Code: smtp; 421 4.4.1 try again later\r\n"
		"Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
		"Will-Retry-Until: Sun, 19 Nov 2023 13:20:00 +0000\r\n"));
	assert_python_ok(&fx->out, 1, "text/rfc822-headers", false);
	free_report(&r);
}

static void test_success_and_defaults(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_SUCCESS);
	/* a bad status and an unknown action fall back to the kind's defaults */
	struct dsn_rcpt rc[] = {
		{"bob@partner.test", NULL, "delivered", "2.0.0", "mx1.partner.test",
		 "250 2.0.0 Ok: queued as 4AbC", ATTEMPT},
		{"dan@partner.test", NULL, "exploded", "2.x.0", NULL, NULL, 0},
		/* an ORCPT without a type, a quoted local part with ';' */
		{"\"e;f\"@partner.test", "erin@partner.test", NULL, NULL, NULL, NULL, 0},
	};
	struct report r;

	info.rcpt = rc;
	info.nrcpt = 3;
	info.arrival = 0;
	info.message_id = "not-an-id\r\nBcc: x@y.test"; /* replaced by one of our own */
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_head_has(&r, "Subject", "Successful Mail Delivery Report");
	assert_null(strstr(r.body[1], "Arrival-Date"));
	assert_null(strstr(r.body[1], "Will-Retry-Until"));
	assert_non_null(strstr(r.body[1], "Final-Recipient: rfc822; dan@partner.test\r\n"
					  "Action: delivered\r\nStatus: 2.0.0\r\n"));
	assert_int_equal(count(r.body[1], "Action: delivered\r\n"), 3);
	assert_non_null(strstr(r.body[1], "Original-Recipient: rfc822; erin@partner.test\r\n"
					  "Final-Recipient: rfc822; \"e;f\"@partner.test\r\n"));
	assert_non_null(strstr(r.body[0], "was delivered"));
	assert_non_null(strstr(r.body[0], "received on an unknown time"));
	/* a Message-ID of our own when none is given */
	{
		char *mid = field_value(r.head, "Message-ID");
		assert_non_null(mid);
		assert_true(mid[0] == '<' && strstr(mid, "@mx.example.test>") != NULL);
		assert_null(strstr(mid, "not-an-id"));
		free(mid);
	}
	assert_python_ok(&fx->out, 3, "text/rfc822-headers", false);
	free_report(&r);
}

static void test_hostile_peer_text(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	char longdiag[6000];
	struct dsn_rcpt rc[3] = {
		{"bob@partner.test\r\nBcc: victim@x.test", "rfc822;x\r\nAction: delivered",
		 "failed", "5.1.1\r\nStatus: 2.0.0", "mx1.partner.test\r\nX-Evil: 1",
		 "550 no\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@x.test\r\n"
		 "\x01\x7f\xff tail", 0},
		{"carol@far.test", NULL, "failed", "5.0.0", "mx.far.test", longdiag, 0},
		{"dave@far.test", NULL, "failed", "5.0.0", NULL, "\r\n\r\n", 0},
	};
	struct report r;
	const char *p;

	/* one 3000-octet word, then many short words */
	memset(longdiag, 'A', 3000);
	for (size_t i = 3000; i < sizeof(longdiag) - 1; i++)
		longdiag[i] = (i % 7 == 0) ? ' ' : 'b';
	longdiag[sizeof(longdiag) - 1] = '\0';
	info.rcpt = rc;
	info.nrcpt = 3;
	info.envid = "env\r\nX-Env: 1";
	info.sender = "alice@example.test>\r\nBcc: <all@x.test";
	info.qid = "Q1\r\n--";
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	/* nothing injected became a header field or a report field */
	for (p = fx->out.data; p; p = strstr(p, "\r\n")) {
		p += (p == fx->out.data) ? 0 : 2;
		assert_false(strncmp(p, "X-Injected", 10) == 0);
		assert_false(strncmp(p, "X-Evil", 6) == 0);
		assert_false(strncmp(p, "X-Env", 5) == 0);
		assert_false(strncmp(p, "Bcc", 3) == 0);
		if (p == fx->out.data)
			p++;
	}
	assert_int_equal(count(r.body[1], "\r\nFinal-Recipient:"), 3);
	assert_int_equal(count(r.body[1], "\r\nAction:"), 3);
	assert_int_equal(count(r.body[1], "Action: failed\r\n"), 3);
	assert_int_equal(count(r.body[1], "\r\nStatus:"), 3);
	assert_non_null(strstr(r.body[1], "Original-Recipient: rfc822; x Action: delivered\r\n"));
	assert_non_null(strstr(r.body[1], "Status: 5.0.0\r\n")); /* the bad status replaced */
	assert_non_null(strstr(r.body[1],
		"Diagnostic-Code: smtp; 550 no X-Injected: yes Final-Recipient: rfc822;\r\n"
		" evil@x.test ? tail\r\n"));
	assert_non_null(strstr(r.body[1], "Remote-MTA: dns; mx1.partner.test X-Evil: 1\r\n"));
	/* the empty-after-cleaning diagnostic still gives a well-formed field */
	assert_non_null(strstr(r.body[1], "Final-Recipient: rfc822; dave@far.test\r\n"
					  "Action: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: X-Transit;"));
	/* the long word is broken into continuation lines */
	assert_non_null(strstr(r.body[1], "Diagnostic-Code: X-Transit;\r\n AAAA"));
	assert_head_has(&r, "To", "<alice@example.test> Bcc: <all@x.test>");
	assert_python_ok(&fx->out, 3, "text/rfc822-headers", false);
	free_report(&r);
}

/* A reason transit gave itself while talking to a server (the peer lacks
 * SMTPUTF8, a connection timed out) is not the server's word: no "The
 * server ... said", no Remote-MTA (RFC 3464 2.3.5), Diagnostic-Code type
 * X-Transit, not smtp (2.3.6). A real reply keeps all three. */
static void test_local_reason_not_attributed(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct dsn_rcpt rc[] = {
		{"bob@partner.test", NULL, "failed", "5.6.7", "mx1.partner.test",
		 "the message header is not ASCII and mx1.partner.test[192.0.2.1]:25 does not "
		 "support SMTPUTF8", ATTEMPT},
		{"carol@partner.test", NULL, "failed", "5.1.1", "mx1.partner.test",
		 "550 5.1.1 no such user", ATTEMPT},
	};
	struct report r;

	info.rcpt = rc;
	info.nrcpt = 2;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_int_equal(count(r.body[0], " said:"), 1); /* carol's real reply only */
	assert_non_null(strstr(r.body[0], "<bob@partner.test>: failed, status 5.6.7\r\n"
					  "    Reason:\r\n      the message header is not ASCII"));
	assert_non_null(strstr(r.body[1], "Final-Recipient: rfc822; bob@partner.test\r\n"
					  "Action: failed\r\nStatus: 5.6.7\r\n"
					  "Diagnostic-Code: X-Transit; the message header"));
	assert_int_equal(count(r.body[1], "Remote-MTA:"), 1);
	assert_non_null(strstr(r.body[1], "Status: 5.1.1\r\nRemote-MTA: dns; mx1.partner.test\r\n"
					  "Diagnostic-Code: smtp; 550 5.1.1 no such user"));
	assert_python_ok(&fx->out, 2, "text/rfc822-headers", false);
	free_report(&r);
}

static void test_original_normalised(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	static char data[8000];
	struct report r;
	size_t n = 0;

	n += (size_t)sprintf(data + n, "Subject: bare\nX-Long: ");
	memset(data + n, 'h', 1500);
	n += 1500;
	n += (size_t)sprintf(data + n, "\r\nX-Cr: a\rb\n\nbody line\n");
	memset(data + n, 'x', 2500);
	n += 2500;
	n += (size_t)sprintf(data + n, "\nlast line without end");
	write_file(fx->content, data, n);
	info.content_off = 0;
	info.content_len = n;
	info.ret = 1;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_string_equal(r.ptype[2], "message/rfc822");
	assert_true(strncmp(r.body[2], "Subject: bare\r\nX-Long: hhh", 26) == 0);
	/* the long header line continues on a folded line */
	assert_non_null(strstr(r.body[2], "hhh\r\n hhh"));
	assert_non_null(strstr(r.body[2], "\r\nX-Cr: a\r\nb\r\n\r\nbody line\r\nxxx"));
	assert_non_null(strstr(r.body[2], "xxx\r\nxxx")); /* the body line broken, no space */
	assert_non_null(strstr(r.body[2], "\r\nlast line without end"));
	assert_python_ok(&fx->out, 2, "message/rfc822", false);
	free_report(&r);

	/* headers only stops at the empty line */
	info.ret = 2;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_null(strstr(r.body[2], "body line"));
	assert_non_null(strstr(r.body[2], "X-Cr: a\r\nb"));
	free_report(&r);
}

static void test_smtputf8(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct dsn_rcpt rc = {"用户@例子.test", "utf-8;用户@例子.test", "failed", "5.1.1",
			      "mx.例子.test", "550 5.1.1 用户 unknown \xff", 0};
	static const char orig[] = "From: 李 <li@例子.test>\r\nSubject: 你好\r\n\r\n正文\r\n";
	struct report r;

	write_file(fx->content, orig, sizeof(orig) - 1);
	info.content_off = 0;
	info.content_len = sizeof(orig) - 1;
	info.smtputf8 = 1;
	info.sender = "李@例子.test";
	info.rcpt = &rc;
	info.nrcpt = 1;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_non_null(strstr(r.head, "report-type=global-delivery-status;"));
	assert_head_has(&r, "Content-Transfer-Encoding", "8bit");
	assert_head_has(&r, "To", "<李@例子.test>");
	assert_string_equal(r.ptype[1], "message/global-delivery-status");
	assert_string_equal(r.ptype[2], "message/global-headers");
	assert_non_null(strstr(r.body[1], "Original-Recipient: utf-8; 用户@例子.test\r\n"
					  "Final-Recipient: utf-8; 用户@例子.test\r\n"));
	assert_non_null(strstr(r.body[1], "Diagnostic-Code: smtp; 550 5.1.1 用户 unknown ?\r\n"));
	assert_non_null(strstr(r.phead[1], "Content-Transfer-Encoding: 8bit"));
	assert_non_null(strstr(r.body[0], "<用户@例子.test>: failed"));
	assert_python_ok(&fx->out, 1, "message/global-headers", true);
	free_report(&r);

	info.ret = 1;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_string_equal(r.ptype[2], "message/global");
	assert_python_ok(&fx->out, 1, "message/global", true);
	free_report(&r);

	/* the same address in an ASCII report is never raw 8-bit */
	info.smtputf8 = 0;
	info.sender = "alice@example.test";
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	for (const char *q = r.body[1]; *q; q++)
		assert_true((unsigned char)*q < 0x80);
	free_report(&r);
}

static void test_template(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_DELAY);
	static const char tmpl[] =
		"Dear %{sender},\n"
		"message %{qid} at %{reporting_mta} (%{kind}) arrived %{arrival},\n"
		"retried until %{retry_until}.\n"
		"%{recipients}"
		"Unknown %{nope} and %{sender stay; so does a lone %{ and 100%.\n"
		"bell \a here\n";
	struct report r;

	write_file(fx->tmpl, tmpl, sizeof(tmpl) - 1);
	info.template_path = fx->tmpl;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_string_equal(r.body[0],
		"Dear alice@example.test,\r\n"
		"message Q1 at mx.example.test (delay) arrived Tue, 14 Nov 2023 22:13:20 +0000,\r\n"
		"retried until Sun, 19 Nov 2023 13:20:00 +0000.\r\n"
		"<bob@partner.test>: failed, status 5.1.1\r\n"
		"    (original recipient: Bob@Partner.test)\r\n"
		"    The server mx1.partner.test said:\r\n"
		"      550-5.1.1 <bob@partner.test>: unknown user\r\n"
		"      550 5.1.1 see https://partner.test/\r\n"
		"<carol@far.test>: failed, status 5.4.4\r\n"
		"    Reason:\r\n"
		"      no route to far.test\r\n"
		"Unknown %{nope} and %{sender stay; so does a lone %{ and 100%.\r\n"
		"bell ? here\r\n");
	assert_python_ok(&fx->out, 2, "text/rfc822-headers", false);
	free_report(&r);

	/* a long template line is broken before 998 octets */
	{
		char *big = malloc(5000);
		memset(big, 'w', 4999);
		big[4999] = '\0';
		write_file(fx->tmpl, big, 4999);
		free(big);
		build_ok(fx, &info);
		parse_report(&fx->out, &r);
		assert_int_equal(count(r.body[0], "\r\n"), 6); /* 5 x 998 + 9 */
		free_report(&r);
	}
}

static void test_template_missing(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct report r;

	info.template_path = "/nonexistent/dsn-template.txt";
	build_ok(fx, &info);
	assert_string_equal(fx->err, ""); /* a fallback is not an error */
	parse_report(&fx->out, &r);
	assert_non_null(strstr(r.body[0], "could not be delivered"));
	assert_non_null(strstr(r.body[0], "<carol@far.test>: failed"));
	free_report(&r);
}

static void test_unreadable_content(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);

	buf_reset(&fx->out);
	buf_puts(&fx->out, "keep");
	info.content_path = "/nonexistent/queue/file";
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "/nonexistent/queue/file"));
	assert_string_equal(fx->out.data, "keep"); /* nothing appended */

	/* a directory cannot be read */
	info.content_path = "/tmp";
	fx->err[0] = '\0';
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	assert_true(fx->err[0] != '\0');

	/* content beyond the end of the file: short */
	info = base_info(fx, DSN_FAILURE);
	info.ret = 1;
	info.content_len += 10;
	fx->err[0] = '\0';
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "shorter"));
	/* headers only reads just the header section: the short tail is not needed */
	info.ret = 2;
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), 0);
	/* an offset range that overflows */
	buf_reset(&fx->out);
	info.content_off = UINT64_MAX - 2;
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	assert_int_equal(fx->out.len, 0);
}

static void test_bad_arguments(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);

	info.sender = "";
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	info = base_info(fx, DSN_FAILURE);
	info.nrcpt = 0;
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	info = base_info(fx, DSN_FAILURE);
	info.reporting_mta = NULL;
	assert_int_equal(dsn_build(&info, &fx->out, NULL, 0), -1);
	info = base_info(fx, DSN_FAILURE);
	info.kind = (enum dsn_kind)7;
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	assert_int_equal(fx->out.len, 0);
}

static void test_no_content_path(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	struct report r;

	info.content_path = NULL;
	build_ok(fx, &info);
	parse_report(&fx->out, &r);
	assert_int_equal(r.nparts, 2);
	assert_python_ok(&fx->out, 2, "none", false);
	free_report(&r);
}

static void test_boundary_collision(void **state)
{
	struct fixture *fx = *state;
	struct dsn_info info = base_info(fx, DSN_FAILURE);
	static const char orig[] = "Subject: x\r\n\r\n--=_transit_Q1_1111111111111111\r\n"
				   "=_transit_Q1_2222222222222222--\r\n";
	struct report r;

	write_file(fx->content, orig, sizeof(orig) - 1);
	info.content_off = 0;
	info.content_len = sizeof(orig) - 1;
	info.ret = 1;
	fake_bytes = "\x11\x22\x33";
	build_ok(fx, &info);
	fake_bytes = NULL;
	parse_report(&fx->out, &r);
	assert_string_equal(r.boundary, "=_transit_Q1_3333333333333333");
	assert_string_equal(r.body[2], orig);
	assert_python_ok(&fx->out, 2, "message/rfc822", false);
	free_report(&r);

	/* never a boundary that is not in the content: give up */
	fake_bytes = "\x11";
	buf_reset(&fx->out);
	assert_int_equal(dsn_build(&info, &fx->out, fx->err, sizeof(fx->err)), -1);
	fake_bytes = NULL;
	assert_non_null(strstr(fx->err, "boundary"));
	assert_int_equal(fx->out.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failure_headers_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_ret_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_full_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_reason_not_attributed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_and_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_peer_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_original_normalised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtputf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_content_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boundary_collision, setup, teardown),
	};

	setenv("TZ", "UTC", 1); /* dates in the expected text are +0000 */
	tzset();
	return cmocka_run_group_tests_name("dsn", tests, NULL, NULL);
}
