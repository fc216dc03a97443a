/*
 * dsn.c - builds delivery status notifications; contract in dsn.h.
 *
 * Standards:
 *   RFC 3464 2.1-2.3  message/delivery-status: per-message fields, then one
 *                     block per recipient, blocks separated by empty lines;
 *                     fields in the order of the ABNF (so Original-Envelope-Id
 *                     comes before Reporting-MTA)
 *   RFC 3461 4.3, 4.4, 6.3  RET (the whole original only in failure reports),
 *                     ENVID and ORCPT echoed back decoded
 *   RFC 3463          status codes (checked for shape, a default by kind)
 *   RFC 6522 3        multipart/report; report-type is the subtype of part 2
 *   RFC 6533 3, 6     SMTPUTF8 originals: message/global-delivery-status with
 *                     "utf-8" address types, message/global-headers,
 *                     message/global
 *   RFC 5322 3.3, 2.1.1, 2.2.3  dates, 998-octet lines, folding
 *   RFC 3834 5        Auto-Submitted: auto-replied
 *
 * Everything that came from a peer or the original message is cleaned
 * before it is written: in header fields and report fields no control
 * character survives (CR/LF become spaces, so a reply cannot add a field),
 * non-ASCII is kept only where the report is a global one (and only as
 * valid UTF-8), long values are folded at spaces and hard-broken past 998
 * octets. The original is copied with its line ends made CRLF and lines
 * longer than 998 octets broken (a folded header line inside its header
 * section). The MIME boundary is checked against every part's content and
 * drawn again on a hit. The output is appended to `out` only on success.
 * Template placeholders: %{sender} %{qid} %{reporting_mta} %{recipients}
 * %{kind} ("failure", "delay", "success") %{arrival} %{retry_until}.
 * A NULL content_path leaves the third part out (a two-part report).
 */
#include "mail/dsn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define LINE_MAX_OCTETS 998	 /* RFC 5322 2.1.1 */
#define FOLD_AT 78		 /* preferred header line length */
#define HDRS_MAX (64u * 1024)	 /* text/rfc822-headers bound */
#define READ_BLOCK (64u * 1024)	 /* pread size */
#define TEMPLATE_MAX (64u * 1024)
#define VALUE_MAX 8192		 /* any one cleaned field value */
#define BOUNDARY_TRIES 8

static const char *const builtin_text[] = {
	[DSN_FAILURE] =
		"This is the mail delivery system at %{reporting_mta}.\n\n"
		"Your message could not be delivered to one or more of its recipients.\n"
		"It was received on %{arrival} and has queue id %{qid}.\n"
		"Each recipient that failed is listed below with the reason,\n"
		"as the receiving server gave it.\n\n%{recipients}",
	[DSN_DELAY] =
		"This is the mail delivery system at %{reporting_mta}.\n\n"
		"Your message has not yet been delivered to one or more of its recipients.\n"
		"It was received on %{arrival} and has queue id %{qid}.\n"
		"Delivery is still being retried until %{retry_until};\n"
		"you do not need to send it again. If it still cannot be delivered\n"
		"by then, you will receive a failure notice.\n\n%{recipients}",
	[DSN_SUCCESS] =
		"This is the mail delivery system at %{reporting_mta}.\n\n"
		"Your message was delivered to the recipients listed below.\n"
		"It was received on %{arrival} and has queue id %{qid}.\n\n%{recipients}",
};

static const struct {
	const char *subject, *word, *action, *status;
} kinds[] = {
	[DSN_FAILURE] = {"Undelivered Mail Returned to Sender", "failure", "failed", "5.0.0"},
	[DSN_DELAY] = {"Delayed Mail (still being retried)", "delay", "delayed", "4.0.0"},
	[DSN_SUCCESS] = {"Successful Mail Delivery Report", "success", "delivered", "2.0.0"},
};

/* What goes into part 3. */
struct original {
	bool present;	   /* content_path given */
	bool headers_only; /* RET=HDRS/unspecified, not a failure, or too big */
	bool downgraded;   /* RET=FULL asked but only headers sent (size) */
	struct buf body;
};

static bool has_8bit(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] >= 0x80)
			return true;
	return false;
}

/* Append s as one field value: control characters (CR and LF too) become
 * spaces, runs of spaces collapse to one, leading/trailing space goes;
 * non-ASCII stays only if utf8 and valid, else '?'. At most VALUE_MAX. */
static void clean_value(struct buf *out, const char *s, bool utf8)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), start = out->len, i = 0, k;
	bool pend = false;

	while (i < n) {
		if (p[i] <= 0x20 || p[i] == 0x7F) {
			pend = out->len > start;
			i++;
			continue;
		}
		k = p[i] < 0x80 ? 1 : (utf8 ? utf8_seq_len(p + i, n - i) : 0);
		if (out->len - start + (pend ? 1 : 0) + (k ? k : 1) > VALUE_MAX)
			break;
		if (pend)
			buf_putc(out, ' ');
		pend = false;
		if (k)
			buf_append(out, p + i, k);
		else
			buf_putc(out, '?');
		i += k ? k : 1;
	}
}

/* "Name: value" with value cleaned, folded before a space once a line
 * passes FOLD_AT, and hard-broken ("CRLF SP") where one word would carry a
 * line past LINE_MAX_OCTETS. */
static void put_field(struct buf *b, const char *name, const char *value, bool utf8)
{
	struct buf v = BUF_INIT;
	const char *p;
	size_t col = strlen(name) + 2;

	clean_value(&v, value, utf8);
	buf_printf(b, "%s: ", name);
	p = v.data ? v.data : "";
	while (*p) {
		size_t sp = (*p == ' '), tok = sp + strcspn(p + sp, " ");

		if (sp && col + tok > FOLD_AT) {
			buf_append(b, "\r\n", 2);
			col = 0;
		}
		while (col + tok > LINE_MAX_OCTETS) {
			size_t k = LINE_MAX_OCTETS - col;

			while (k > 1 && ((unsigned char)p[k] & 0xC0) == 0x80)
				k--; /* keep UTF-8 sequences whole */
			buf_append(b, p, k);
			buf_append(b, "\r\n ", 3);
			col = 1;
			p += k;
			tok -= k;
		}
		buf_append(b, p, tok);
		col += tok;
		p += tok;
	}
	buf_append(b, "\r\n", 2);
	buf_free(&v);
}

/* RFC 5322 3.3 date-time in local time, e.g. "Tue, 01 Jul 2025 09:05:00 +0200". */
static void format_date(time_t t, char *out, size_t sz)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	time_t zero = 0;
	long off;

	if (!localtime_r(&t, &tm) || tm.tm_year > 9999 - 1900 || tm.tm_year < 0)
		gmtime_r(&zero, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(out, sz, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60 % 100, labs(off) % 60);
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* r->status if "2.1.5"-shaped (RFC 3463 2: class 2/4/5, 1-3 digits, 1-3
 * digits), else the kind's default. */
/* Whether the diagnostic is a reply a remote server sent (RFC 3464 2.3.5:
 * Remote-MTA only when the status came from a remote MTA; 2.3.6: type
 * "smtp" for an SMTP reply): the caller names the server that answered
 * and the text starts with the reply code ("550 5.1.1 ...", "421-..."),
 * the contract in dsn.h. Anything else is a reason transit gave itself. */
static bool diag_from_remote(const struct dsn_rcpt *r)
{
	const char *d = r->diagnostic;

	return r->remote_mta != NULL && *r->remote_mta != '\0' && d != NULL && d[0] >= '2' &&
	       d[0] <= '5' && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' && d[2] <= '9' &&
	       (d[3] == ' ' || d[3] == '-' || d[3] == '\0');
}

static const char *status_of(const struct dsn_info *info, const struct dsn_rcpt *r)
{
	const char *s = r->status;
	size_t a, b;

	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return kinds[info->kind].status;
	a = strspn(s + 2, "0123456789");
	if (a < 1 || a > 3 || s[2 + a] != '.')
		return kinds[info->kind].status;
	b = strspn(s + 3 + a, "0123456789");
	return b >= 1 && b <= 3 && s[3 + a + b] == '\0' ? s : kinds[info->kind].status;
}

static const char *action_of(const struct dsn_info *info, const struct dsn_rcpt *r)
{
	static const char *const ok[] = {"failed", "delayed", "delivered", "relayed", "expanded"};

	for (size_t i = 0; r->action && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(r->action, ok[i]) == 0)
			return ok[i];
	return kinds[info->kind].action;
}

/* "type; address" for Original-/Final-Recipient, from "type;addr" when
 * typed (an ORCPT; without ';' it is taken as a bare address) or a bare
 * address. RFC 6533 3: a non-ASCII address in a global report has type
 * utf-8. */
static void put_address_field(struct buf *b, const char *name, bool typed, const char *addr,
			      bool global)
{
	struct buf v = BUF_INIT;
	const char *semi = typed ? strchr(addr, ';') : NULL;

	if (semi) {
		buf_append(&v, addr, (size_t)(semi - addr));
		addr = semi + 1;
	} else {
		buf_puts(&v, global && !is_ascii(addr) ? "utf-8" : "rfc822");
	}
	buf_puts(&v, "; ");
	buf_puts(&v, addr);
	put_field(b, name, v.data, global);
	buf_free(&v);
}

static void put_date_field(struct buf *b, const char *name, time_t t)
{
	char date[64];

	format_date(t, date, sizeof(date));
	put_field(b, name, date, false);
}

static void put_typed_field(struct buf *b, const char *name, const char *type,
			    const char *value, bool global)
{
	struct buf v = BUF_INIT;

	buf_printf(&v, "%s; %s", type, value);
	put_field(b, name, v.data, global);
	buf_free(&v);
}

/* Part 2 content: RFC 3464 2.2 per-message fields, 2.3 per-recipient blocks. */
static void build_status(const struct dsn_info *info, struct buf *b)
{
	bool g = info->smtputf8;

	if (info->envid && *info->envid)
		put_field(b, "Original-Envelope-Id", info->envid, g);
	put_typed_field(b, "Reporting-MTA", "dns", info->reporting_mta, g);
	if (info->qid && *info->qid)
		put_field(b, "X-Transit-Queue-ID", info->qid, false);
	if (info->arrival)
		put_date_field(b, "Arrival-Date", info->arrival);
	for (size_t i = 0; i < info->nrcpt; i++) {
		const struct dsn_rcpt *r = &info->rcpt[i];

		buf_append(b, "\r\n", 2);
		if (r->orcpt && *r->orcpt)
			put_address_field(b, "Original-Recipient", true, r->orcpt, g);
		put_address_field(b, "Final-Recipient", false, r->addr ? r->addr : "", g);
		put_field(b, "Action", action_of(info, r), false);
		put_field(b, "Status", status_of(info, r), false);
		if (diag_from_remote(r))
			put_typed_field(b, "Remote-MTA", "dns", r->remote_mta, g);
		if (r->diagnostic && *r->diagnostic)
			put_typed_field(b, "Diagnostic-Code", diag_from_remote(r) ? "smtp" : "X-Transit",
					r->diagnostic, g);
		if (r->last_attempt)
			put_date_field(b, "Last-Attempt-Date", r->last_attempt);
		if (info->kind == DSN_DELAY && info->retry_until)
			put_date_field(b, "Will-Retry-Until", info->retry_until);
	}
}

/* One recipient for part 1: the address, what happened, and the remote
 * reply quoted line by line as the server sent it (lines are split at its
 * CR/LF; other control characters are handled by text_to_crlf), or our
 * own reason, which is never attributed to a server. */
static void text_recipient(struct buf *t, const struct dsn_info *info, const struct dsn_rcpt *r)
{
	const char *d = r->diagnostic;
	size_t used = 0;

	buf_putc(t, '<');
	clean_value(t, r->addr, true);
	buf_printf(t, ">: %s, status %s\n", action_of(info, r), status_of(info, r));
	if (r->orcpt && *r->orcpt) {
		const char *semi = strchr(r->orcpt, ';');

		buf_puts(t, "    (original recipient: ");
		clean_value(t, semi ? semi + 1 : r->orcpt, true);
		buf_puts(t, ")\n");
	}
	if (!d || !*d)
		return;
	if (diag_from_remote(r)) {
		buf_puts(t, "    The server ");
		clean_value(t, r->remote_mta, true);
		buf_puts(t, " said:\n");
	} else {
		buf_puts(t, "    Reason:\n");
	}
	while (*d && used < VALUE_MAX) {
		size_t n = strcspn(d, "\r\n");

		if (n > VALUE_MAX - used)
			n = VALUE_MAX - used;
		if (n) {
			buf_puts(t, "      ");
			buf_append(t, d, n);
			buf_putc(t, '\n');
		}
		used += n + 1;
		d += n;
		d += strspn(d, "\r\n");
	}
}

/* Append text with lines ending in LF (or CRLF) to out as CRLF lines: lone
 * CR is a line end too, other control characters except TAB become '?',
 * invalid UTF-8 octets '?', lines are broken before LINE_MAX_OCTETS. */
static void text_to_crlf(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, col = 0, k;

	while (i < n) {
		if (p[i] == '\r' || p[i] == '\n') {
			i += (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
			buf_append(out, "\r\n", 2);
			col = 0;
			continue;
		}
		k = p[i] >= 0x80 ? utf8_seq_len(p + i, n - i) : 1;
		if (col + (k ? k : 1) > LINE_MAX_OCTETS) {
			buf_append(out, "\r\n", 2);
			col = 0;
		}
		if (k == 0 || (p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7F)
			buf_putc(out, '?');
		else
			buf_append(out, p + i, k);
		col += k ? k : 1;
		i += k ? k : 1;
	}
	if (col)
		buf_append(out, "\r\n", 2);
}

/* The admin's template, or NULL (then the built-in text is used). */
static char *load_template(const char *path)
{
	struct buf t = BUF_INIT;
	char chunk[4096];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_warn("dsn template unreadable path=%s error=\"%s\", using the built-in text",
			 path, strerror(errno));
		return NULL;
	}
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || t.len + (size_t)r > TEMPLATE_MAX) {
			log_warn("dsn template unusable path=%s error=\"%s\", using the built-in text",
				 path, r < 0 ? strerror(errno) : "larger than 64 KiB");
			close(fd);
			buf_free(&t);
			return NULL;
		}
		buf_append(&t, chunk, (size_t)r);
	}
	close(fd);
	if (!t.data)
		buf_append(&t, "", 0);
	return buf_steal(&t);
}

/* Copy tmpl to out, replacing the known %{name} placeholders once (the
 * values are not scanned again); an unknown one is copied as it is. */
static void expand(struct buf *out, const char *tmpl, const struct dsn_info *info)
{
	char arrival[64] = "an unknown time", until[64] = "an unknown time";
	const char *p = tmpl, *q;

	if (info->arrival)
		format_date(info->arrival, arrival, sizeof(arrival));
	if (info->retry_until)
		format_date(info->retry_until, until, sizeof(until));
	while ((q = strstr(p, "%{")) != NULL) {
		const char *end = strchr(q + 2, '}');
		size_t len = end ? (size_t)(end - q - 2) : 0;
		const char *name = q + 2;

		buf_append(out, p, (size_t)(q - p));
		p = end ? end + 1 : q + 2;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
		if (IS("sender"))
			clean_value(out, info->sender, true);
		else if (IS("qid"))
			clean_value(out, info->qid, true);
		else if (IS("reporting_mta"))
			clean_value(out, info->reporting_mta, true);
		else if (IS("kind"))
			buf_puts(out, kinds[info->kind].word);
		else if (IS("arrival"))
			buf_puts(out, arrival);
		else if (IS("retry_until"))
			buf_puts(out, until);
		else if (IS("recipients"))
			for (size_t i = 0; i < info->nrcpt; i++)
				text_recipient(out, info, &info->rcpt[i]);
		else {
			buf_append(out, "%{", 2);
			p = q + 2;
		}
#undef IS
	}
	buf_puts(out, p);
}

/* Part 1 content. */
static void build_text(const struct dsn_info *info, const struct original *o, struct buf *b)
{
	struct buf raw = BUF_INIT;
	char *tmpl = info->template_path ? load_template(info->template_path) : NULL;

	expand(&raw, tmpl ? tmpl : builtin_text[info->kind], info);
	if (o->downgraded)
		buf_printf(&raw,
			   "\nYour message is larger than %llu bytes, so only its headers are\n"
			   "attached below, not the whole message.\n",
			   (unsigned long long)info->max_full_size);
	text_to_crlf(b, raw.data ? raw.data : "", raw.len);
	free(tmpl);
	buf_free(&raw);
}

/* Line-end normaliser for the original: CRLF, lone CR and lone LF all
 * become CRLF; lines longer than LINE_MAX_OCTETS are broken (with a leading
 * space inside the header section, so they stay header lines). With
 * headers_only it stops at the empty line or once HDRS_MAX is passed. */
struct norm {
	bool headers_only, in_hdr, pending_cr, stop;
	size_t col, line_len;
};

static void norm_eol(struct norm *n, struct buf *b)
{
	if (n->in_hdr && n->line_len == 0) {
		n->in_hdr = false;
		if (n->headers_only) {
			n->stop = true;
			return;
		}
	}
	buf_append(b, "\r\n", 2);
	n->col = n->line_len = 0;
	if (n->headers_only && b->len >= HDRS_MAX)
		n->stop = true;
}

static void norm_text(struct norm *n, struct buf *b, const char *p, size_t len)
{
	while (len > 0) {
		size_t k;

		if (n->col >= LINE_MAX_OCTETS) {
			buf_append(b, n->in_hdr ? "\r\n " : "\r\n", n->in_hdr ? 3 : 2);
			n->col = n->in_hdr ? 1 : 0;
		}
		k = LINE_MAX_OCTETS - n->col;
		if (k > len)
			k = len;
		buf_append(b, p, k);
		n->col += k;
		n->line_len += k;
		p += k;
		len -= k;
	}
}

static void norm_feed(struct norm *n, struct buf *b, const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && !n->stop) {
		size_t run;

		if (n->pending_cr) {
			n->pending_cr = false;
			norm_eol(n, b);
			if (p[i] == '\n')
				i++;
			continue;
		}
		if (p[i] == '\r' || p[i] == '\n') {
			n->pending_cr = p[i] == '\r';
			if (p[i++] == '\n')
				norm_eol(n, b);
			continue;
		}
		for (run = i; run < len && p[run] != '\r' && p[run] != '\n'; run++)
			;
		norm_text(n, b, p + i, run - i);
		i = run;
	}
}

/* Part 3 content: the original (or its header section) read with pread
 * from [content_off, content_off + content_len). */
static int read_original(const struct dsn_info *info, struct original *o, char *err, size_t errsz)
{
	struct norm n = {.headers_only = o->headers_only, .in_hdr = true};
	uint64_t done = 0, len = info->content_len;
	char *blk;
	int fd, rc = 0;

	if (info->content_off > (uint64_t)INT64_MAX - len) {
		str_errf(err, errsz, "content range out of bounds");
		return -1;
	}
	fd = open(info->content_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		str_errf(err, errsz, "cannot open %s: %s", info->content_path, strerror(errno));
		return -1;
	}
	blk = xmalloc(READ_BLOCK);
	while (done < len && !n.stop) {
		size_t want = len - done < READ_BLOCK ? (size_t)(len - done) : READ_BLOCK;
		ssize_t r = pread(fd, blk, want, (off_t)(info->content_off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			str_errf(err, errsz, "cannot read %s: %s", info->content_path,
				r < 0 ? strerror(errno) : "file shorter than its content");
			rc = -1;
			break;
		}
		norm_feed(&n, &o->body, blk, (size_t)r);
		done += (uint64_t)r;
	}
	if (rc == 0 && !n.stop && (n.pending_cr || n.line_len > 0))
		norm_eol(&n, &o->body); /* a last line without its CRLF */
	free(blk);
	close(fd);
	return rc;
}

/* "=_transit_<qid letters and digits>_<64 random bits in hex>" */
static void make_boundary(const char *qid, char *out, size_t sz)
{
	static unsigned long counter; /* only when getrandom fails */
	unsigned long long rnd = 0;
	char id[25];
	size_t n = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid() ^
		      (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15ull);
	for (; qid && *qid && n < sizeof(id) - 1; qid++)
		if ((*qid >= '0' && *qid <= '9') || (*qid >= 'A' && *qid <= 'Z') ||
		    (*qid >= 'a' && *qid <= 'z'))
			id[n++] = *qid;
	id[n] = '\0';
	snprintf(out, sz, "=_transit_%s_%016llx", id, rnd);
}

static bool occurs_in(const struct buf *b, const char *s)
{
	return b->len && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static void put_part(struct buf *out, const char *boundary, const char *type,
		     const struct buf *body)
{
	buf_printf(out, "\r\n--%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n",
		   boundary, type, has_8bit(body) ? "8bit" : "7bit");
	if (body->len)
		buf_append(out, body->data, body->len);
}

static void put_headers(const struct dsn_info *info, struct buf *out, const char *boundary,
			bool eight)
{
	struct buf v = BUF_INIT;
	char date[64];
	bool g = info->smtputf8;

	buf_printf(&v, "Mail Delivery System <MAILER-DAEMON@%s>", info->reporting_mta);
	put_field(out, "From", v.data, g);
	buf_reset(&v);
	buf_printf(&v, "<%s>", info->sender);
	put_field(out, "To", v.data, g);
	put_field(out, "Subject", kinds[info->kind].subject, false);
	format_date(time(NULL), date, sizeof(date));
	put_field(out, "Date", date, false);
	buf_reset(&v);
	if (info->message_id && info->message_id[0] == '<' && strchr(info->message_id, '@') &&
	    info->message_id[strlen(info->message_id) - 1] == '>')
		buf_puts(&v, info->message_id);
	else
		buf_printf(&v, "<%s@%s>", boundary + 2, info->reporting_mta);
	put_field(out, "Message-ID", v.data, g);
	put_field(out, "Auto-Submitted", "auto-replied", false);
	put_field(out, "MIME-Version", "1.0", false);
	buf_printf(out, "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n",
		   g ? "global-delivery-status" : "delivery-status", boundary);
	if (eight)
		put_field(out, "Content-Transfer-Encoding", "8bit", false);
	buf_puts(out, "\r\nThis is a MIME-encapsulated message.\r\n");
	buf_free(&v);
}

static const char *part3_type(const struct dsn_info *info, const struct original *o)
{
	if (info->smtputf8)
		return o->headers_only ? "message/global-headers" : "message/global";
	return o->headers_only ? "text/rfc822-headers" : "message/rfc822";
}

int dsn_build(const struct dsn_info *info, struct buf *out, char *err, size_t errsz)
{
	struct original o = {.body = BUF_INIT};
	struct buf text = BUF_INIT, status = BUF_INIT;
	char boundary[80];
	int tries, rc = -1;

	if (!info || !out || (unsigned)info->kind > DSN_SUCCESS || !info->reporting_mta ||
	    !*info->reporting_mta || !info->sender || !*info->sender || !info->rcpt ||
	    info->nrcpt == 0) {
		str_errf(err, errsz, "dsn: missing kind, reporting MTA, sender or recipients");
		return -1;
	}
	o.present = info->content_path != NULL;
	o.headers_only = info->kind != DSN_FAILURE || info->ret != 1;
	if (o.present && !o.headers_only && info->max_full_size &&
	    info->content_len > info->max_full_size)
		o.headers_only = o.downgraded = true;
	if (o.present && read_original(info, &o, err, errsz) < 0)
		goto done;
	build_status(info, &status);
	build_text(info, &o, &text);
	for (tries = 0; tries < BOUNDARY_TRIES; tries++) {
		make_boundary(info->qid, boundary, sizeof(boundary));
		if (!occurs_in(&text, boundary) && !occurs_in(&status, boundary) &&
		    !occurs_in(&o.body, boundary))
			break;
	}
	if (tries == BOUNDARY_TRIES) {
		str_errf(err, errsz, "dsn: no MIME boundary found outside the content");
		goto done;
	}
	put_headers(info, out, boundary, has_8bit(&text) || has_8bit(&status) || has_8bit(&o.body));
	put_part(out, boundary, "text/plain; charset=utf-8", &text);
	put_part(out, boundary,
		 info->smtputf8 ? "message/global-delivery-status" : "message/delivery-status",
		 &status);
	if (o.present)
		put_part(out, boundary, part3_type(info, &o), &o.body);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	rc = 0;
done:
	buf_free(&text);
	buf_free(&status);
	buf_free(&o.body);
	return rc;
}
