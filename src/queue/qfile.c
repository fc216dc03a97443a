/*
 * qfile.c - the queue file format, version 2 (byte by byte in
 * docs/queue.md; version 1 files are still read): writing one message
 * file, reading and validating one, queue ids, the in-place recipient
 * state byte, removal.
 *
 * A file is <spool>/queue/<qid>:
 *     TRANSIT-QUEUE 2\n
 *     qid/arrival/sender/body/smtputf8/ret/envid/connector/client/helo/auth
 *     records, one line each, in that order
 *     rcpt <state> <notify> <addr> <orcpt>\n   (one per recipient)
 *     data\n
 *     <content bytes, exactly as given>
 *     trailer <content length, 20 digits> <crc32, 8 hex>\nend\n
 * Strings are "-" (NULL) or "=" + the bytes with everything outside
 * 0x21..0x7e and '%' written %HH, so a peer-controlled value can never
 * contain a space or a newline of the format. The CRC32 (zlib) covers
 * every byte before the trailer with each recipient state byte counted
 * as 'Q', so the state can be overwritten in place (Postfix-style)
 * without rewriting the file. Version 2 adds the state 'N' (still queued,
 * a DELAY DSN reported it), so a restart does not send that notice
 * again. A file is valid only with the right magic,
 * version, every record, a trailer exactly at the end whose length and
 * CRC match. Anything else is torn (a prefix of a valid file: removed at
 * recovery) or corrupt (moved aside for the admin).
 *
 * Writers are buffered (QF_WBUF, one write(2) per flush) and their
 * errors are sticky; durability is commit.c's job.
 */
#include "queue/qfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/evp.h>

#include "mail/envelope.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define QF_MAGIC_LINE "TRANSIT-QUEUE 2\n"	/* what is written */
#define QF_MAGIC_LINE_V1 "TRANSIT-QUEUE 1\n" /* still read: no state N */
#define QF_STATE_DELAY_NOTIFIED QUEUE_STATE_DELAY_NOTIFIED
#define QF_RCPT_PREFIX "rcpt " /* the state byte follows at once */
#define QF_READ_FIRST (128u << 10) /* first pread: a whole small message */
#define QF_READ_BULK (1u << 20)	   /* later preads of a large content */
#define QID_TIME_DIGITS 11	   /* 55 bits of microseconds: until year 3111 */

/* ---- small helpers ------------------------------------------------- */

static uint32_t crc_update(uint32_t crc, const void *p, uint64_t n)
{
	const unsigned char *c = p;

	while (n > 0) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;

		crc = (uint32_t)crc32(crc, c, chunk);
		c += chunk;
		n -= chunk;
	}
	return crc;
}

/* Read up to n bytes at off; returns the count (short only at EOF) or -1. */
static ssize_t pread_full(int fd, char *p, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static bool valid_state(char c) { return c == RCPT_QUEUED || c == RCPT_DELIVERED || c == RCPT_FAILED; }
/* A state byte as it may be found in a version 2 file. */
static bool valid_disk_state(char c) { return valid_state(c) || c == QF_STATE_DELAY_NOTIFIED; }
/* The byte written for a recipient. */
static char disk_state(const struct env_rcpt *r)
{
	return r->state == RCPT_QUEUED && r->delay_notified ? QF_STATE_DELAY_NOTIFIED : r->state;
}

bool qf_valid_qid(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (n >= QID_MAX - 1 || !((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9')))
			return false;
	return n > 0;
}

/* ---- queue ids ----------------------------------------------------- */

/* Crockford's base-32 alphabet is in ASCII order, so fixed-width numbers
 * sort lexically in numeric order. */
static const char qid_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static _Atomic uint64_t qid_last; /* process-wide: several queues may share a node tag */

static uint64_t qid_stamp(void)
{
	struct timespec ts;
	uint64_t now, last, next;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	last = atomic_load(&qid_last);
	do
		next = now > last ? now : last + 1;
	while (!atomic_compare_exchange_weak(&qid_last, &last, next));
	return next;
}

void qf_node_tag(const char *node, char out[QF_NODE_MAX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char *folded = xstrdup(node ? node : "");
	uint64_t bits = 0;
	size_t i;

	str_lower(folded); /* ASCII only: "MX1.Example" is "mx1.example" */
	if (EVP_Digest(folded, strlen(folded), md, NULL, EVP_sha256(), NULL) != 1)
		log_fatal("queue: SHA-256 unavailable for the node tag");
	free(folded);
	for (i = 0; i < 5; i++) /* 40 bits = 8 base-32 digits */
		bits = bits << 8 | md[i];
	for (i = QF_NODE_MAX; i-- > 0;) {
		out[i] = qid_b32[bits & 31];
		bits >>= 5;
	}
	out[QF_NODE_MAX] = '\0';
}

void queue_new_qid(struct queue *q, char out[QID_MAX])
{
	uint64_t t = qid_stamp();
	int i;

	for (i = QID_TIME_DIGITS - 1; i >= 0; i--) {
		out[i] = qid_b32[t & 31];
		t >>= 5;
	}
	str_copy(out + QID_TIME_DIGITS, q->node, QID_MAX - QID_TIME_DIGITS);
}

void queue_path(const struct queue *q, const char *qid, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/%s", q->qdir, qid);

	if (n < 0 || (size_t)n >= outsz)
		out[0] = '\0'; /* never a truncated, wrong path; opening "" fails */
}

/* ---- writing ------------------------------------------------------- */

static void put_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!s) {
		buf_putc(b, '-');
		return;
	}
	buf_putc(b, '=');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c > 0x20 && c < 0x7f && c != '%') {
			buf_putc(b, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			buf_append(b, e, sizeof(e));
		}
	}
}

static bool field_ok(const char *s) { return !s || strlen(s) <= QF_FIELD_MAX; }

static bool envelope_writable(const struct envelope *e)
{
	size_t i;

	if (!qf_valid_qid(e->qid) || !field_ok(e->sender) || !field_ok(e->envid) ||
	    !field_ok(e->connector) || !field_ok(e->client_addr) || !field_ok(e->client_helo) ||
	    !field_ok(e->auth_user))
		return false;
	for (i = 0; i < e->nrcpt; i++)
		if (!e->rcpt[i].addr || !field_ok(e->rcpt[i].addr) || !field_ok(e->rcpt[i].orcpt) ||
		    !valid_state(e->rcpt[i].state) ||
		    (e->rcpt[i].delay_notified && e->rcpt[i].state != RCPT_QUEUED))
			return false;
	return true;
}

static void envelope_copy(struct envelope *dst, const struct envelope *src)
{
	size_t i;

	envelope_init(dst);
	memcpy(dst->qid, src->qid, QID_MAX);
	dst->arrival = src->arrival;
	envelope_set_str(&dst->sender, src->sender);
	dst->body = src->body;
	dst->smtputf8 = src->smtputf8;
	dst->ret = src->ret;
	envelope_set_str(&dst->envid, src->envid);
	envelope_set_str(&dst->connector, src->connector);
	envelope_set_str(&dst->client_addr, src->client_addr);
	envelope_set_str(&dst->client_helo, src->client_helo);
	envelope_set_str(&dst->auth_user, src->auth_user);
	for (i = 0; i < src->nrcpt; i++) {
		struct env_rcpt *r = envelope_add_rcpt(dst, src->rcpt[i].addr, NULL, src->rcpt[i].notify);

		envelope_set_str(&r->orcpt, src->rcpt[i].orcpt);
		r->state = src->rcpt[i].state;
		r->delay_notified = src->rcpt[i].delay_notified;
	}
}

/* The header (magic .. "data\n") into b; fills e's state_off and
 * content_off and returns the CRC of the header with states as 'Q'. */
static uint32_t build_header(struct buf *b, struct envelope *e)
{
	uint32_t crc;
	size_t i;

	buf_puts(b, QF_MAGIC_LINE);
	buf_printf(b, "qid %s\narrival %lld\nsender ", e->qid, (long long)e->arrival);
	put_str(b, e->sender);
	buf_printf(b, "\nbody %d\nsmtputf8 %d\nret %d\nenvid ", e->body, e->smtputf8 ? 1 : 0, e->ret);
	put_str(b, e->envid);
	buf_puts(b, "\nconnector ");
	put_str(b, e->connector);
	buf_puts(b, "\nclient ");
	put_str(b, e->client_addr);
	buf_puts(b, "\nhelo ");
	put_str(b, e->client_helo);
	buf_puts(b, "\nauth ");
	put_str(b, e->auth_user);
	buf_putc(b, '\n');
	for (i = 0; i < e->nrcpt; i++) {
		e->rcpt[i].state_off = b->len + strlen(QF_RCPT_PREFIX);
		buf_printf(b, QF_RCPT_PREFIX "Q %u ", e->rcpt[i].notify);
		put_str(b, e->rcpt[i].addr);
		buf_putc(b, ' ');
		put_str(b, e->rcpt[i].orcpt);
		buf_putc(b, '\n');
	}
	buf_puts(b, "data\n");
	e->content_off = b->len;
	e->content_len = 0;
	crc = crc_update((uint32_t)crc32(0, NULL, 0), b->data, b->len);
	for (i = 0; i < e->nrcpt; i++)
		b->data[e->rcpt[i].state_off] = disk_state(&e->rcpt[i]);
	return crc;
}

/* Count the buffered content bytes not yet in the CRC. */
static void wr_crc_pending(struct queue_writer *w)
{
	if (w->crc_active && w->len > w->crc_from)
		w->crc = crc_update(w->crc, w->buf + w->crc_from, w->len - w->crc_from);
	w->crc_from = w->len;
}

static int wr_flush(struct queue_writer *w)
{
	if (w->err) {
		errno = w->err;
		return -1;
	}
	wr_crc_pending(w);
	if (w->len > 0 && write_full(w->fd, w->buf, w->len) < 0) {
		w->err = errno ? errno : EIO;
		return -1;
	}
	w->len = 0;
	w->crc_from = 0;
	return 0;
}

static int wr_raw(struct queue_writer *w, const void *p, size_t n)
{
	if (w->err) {
		errno = w->err;
		return -1;
	}
	if (w->len + n > QF_WBUF && wr_flush(w) < 0)
		return -1;
	if (n >= QF_WBUF) {
		/* the buffer is empty here (flushed above): write straight through */
		if (w->crc_active)
			w->crc = crc_update(w->crc, p, n);
		if (write_full(w->fd, p, n) < 0) {
			w->err = errno ? errno : EIO;
			return -1;
		}
	} else {
		memcpy(w->buf + w->len, p, n);
		w->len += n;
	}
	w->off += n;
	return 0;
}

struct queue_writer *queue_writer_new(struct queue *q, const struct envelope *env)
{
	struct queue_writer *w;
	struct buf hdr = BUF_INIT;

	if (!q || !env || !envelope_writable(env)) {
		errno = EINVAL;
		return NULL;
	}
	if (!q->thread_started) {
		errno = EROFS; /* opened read-only: nothing could commit it */
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->q = q;
	queue_path(q, env->qid, w->path, sizeof(w->path));
	w->fd = open(w->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = errno;

		free(w);
		errno = e;
		return NULL;
	}
	envelope_copy(&w->env, env);
	w->buf = xmalloc(QF_WBUF);
	w->crc = build_header(&hdr, &w->env);
	if (hdr.len > QF_ENV_MAX) {
		w->err = EINVAL; /* a reader would refuse it */
	} else {
		(void)wr_raw(w, hdr.data, hdr.len);
	}
	w->crc_from = w->len; /* the header is in w->crc already */
	w->crc_active = true;
	buf_free(&hdr);
	if (w->err) {
		int e = w->err;

		queue_writer_abort(w);
		errno = e;
		return NULL;
	}
	return w;
}

int queue_writer_write(struct queue_writer *w, const void *p, size_t n)
{
	if (wr_raw(w, p, n) < 0)
		return -1;
	w->env.content_len += n;
	return 0;
}

uint64_t queue_writer_size(const struct queue_writer *w) { return w->env.content_len; }

int qf_writer_finish(struct queue_writer *w)
{
	char t[QF_TRAILER_LEN + 1];

	wr_crc_pending(w);
	w->crc_active = false; /* the trailer is not part of what it checks */
	snprintf(t, sizeof(t), "trailer %020" PRIu64 " %08" PRIx32 "\nend\n", w->env.content_len,
		 w->crc);
	if (wr_raw(w, t, QF_TRAILER_LEN) < 0 || wr_flush(w) < 0)
		return -1;
	free(w->buf);
	w->buf = NULL;
	return 0;
}

void qf_writer_release(struct queue_writer *w, bool unlink_file)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (unlink_file && unlink(w->path) < 0 && errno != ENOENT)
		log_warn("%s queue unlink failed error=\"%s\"", w->env.qid, strerror(errno));
	free(w->buf);
	w->buf = NULL;
}

void queue_writer_abort(struct queue_writer *w)
{
	if (!w)
		return;
	qf_writer_release(w, true);
	envelope_free(&w->env);
	free(w);
}

/* ---- reading ------------------------------------------------------- */

/* A parse in progress over the header bytes buf[0, avail). */
struct qf_parse {
	struct qf_reader *r;
	int fd;
	uint64_t size;	 /* file size (shrinks if reads come up short) */
	size_t avail;	 /* bytes of the file in r->buf */
	size_t pos;	 /* start of the next line */
	int version;	 /* of the file: 1 or 2 (QF_VERSION) */
	char *err;
	size_t errsz;
};

static enum qf_status fail(struct qf_parse *p, enum qf_status st, const char *fmt, const char *arg)
{
	snprintf(p->err, p->errsz, fmt, arg);
	return st;
}

static void reader_reserve(struct qf_reader *r, size_t cap)
{
	if (r->cap < cap) {
		free(r->buf);
		r->buf = xmalloc(cap);
		r->cap = cap;
	}
}

/* Read more of the file into the buffer (growing it). */
static enum qf_status read_more(struct qf_parse *p)
{
	struct qf_reader *r = p->r;
	size_t want;
	ssize_t got;

	if (r->cap - p->avail < QF_READ_FIRST) {
		size_t cap = r->cap * 2;

		if (cap > QF_ENV_MAX + QF_LINE_MAX)
			cap = QF_ENV_MAX + QF_LINE_MAX;
		r->buf = xrealloc(r->buf, cap);
		r->cap = cap;
	}
	want = r->cap - p->avail;
	if (want > p->size - p->avail)
		want = (size_t)(p->size - p->avail);
	got = pread_full(p->fd, r->buf + p->avail, want, p->avail);
	if (got < 0)
		return fail(p, QF_IOERR, "read: %s", strerror(errno));
	p->avail += (size_t)got;
	if ((size_t)got < want)
		p->size = p->avail; /* the file shrank under us */
	return QF_OK;
}

/* The next header line (without '\n') in *line and *len. */
static enum qf_status next_line(struct qf_parse *p, const char **line, size_t *len)
{
	for (;;) {
		const char *s = p->r->buf + p->pos;
		const char *nl = memchr(s, '\n', p->avail - p->pos);
		enum qf_status st;

		if (nl) {
			*line = s;
			*len = (size_t)(nl - s);
			if (*len > QF_LINE_MAX)
				return fail(p, QF_CORRUPT, "%s", "record too long");
			p->pos += *len + 1;
			return QF_OK;
		}
		if (p->avail - p->pos > QF_LINE_MAX)
			return fail(p, QF_CORRUPT, "%s", "record too long");
		if (p->avail >= QF_ENV_MAX)
			return fail(p, QF_CORRUPT, "%s", "envelope too long");
		if (p->avail >= p->size)
			return fail(p, QF_TORN, "%s", "file ends inside the envelope");
		if ((st = read_more(p)) != QF_OK)
			return st;
	}
}

/* One hex digit of the given case only: the format has one spelling of
 * every value (upper case in %HH escapes, lower case in the trailer's
 * CRC, which the CRC itself does not cover). */
static int hexval(char c, char a)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= a && c <= a + 5)
		return c - a + 10;
	return -1;
}

/* "-" (NULL) or "=" + %-encoded bytes. */
static bool parse_str(const char *v, size_t n, char **out)
{
	char *s, *o;
	size_t i;

	*out = NULL;
	if (n == 1 && v[0] == '-')
		return true;
	if (n == 0 || v[0] != '=' || n - 1 > 3 * QF_FIELD_MAX)
		return false;
	s = o = xmalloc(n);
	for (i = 1; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(v[i + 1], 'A') : -1;
			int lo = hi >= 0 ? hexval(v[i + 2], 'A') : -1;

			if (lo < 0 || (hi | lo) == 0)
				goto bad; /* bad escape or NUL */
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (c > 0x20 && c < 0x7f) {
			*o++ = (char)c;
		} else {
			goto bad;
		}
	}
	*o = '\0';
	if ((size_t)(o - s) > QF_FIELD_MAX)
		goto bad;
	*out = s;
	return true;
bad:
	free(s);
	return false;
}

static bool parse_i64(const char *v, size_t n, int64_t min, int64_t max, int64_t *out)
{
	bool neg = n > 0 && v[0] == '-';
	uint64_t x = 0;
	size_t i = neg ? 1 : 0;

	if (n == i || n - i > 20)
		return false;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > (uint64_t)INT64_MAX / 10)
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? -(int64_t)x : (int64_t)x;
	return *out >= min && *out <= max;
}

/* A "tag value" line: value of the expected tag in *v and *vn. */
static bool tagged(const char *line, size_t len, const char *tag, const char **v, size_t *vn)
{
	size_t t = strlen(tag);

	if (len <= t || memcmp(line, tag, t) != 0 || line[t] != ' ')
		return false;
	*v = line + t + 1;
	*vn = len - t - 1;
	return true;
}

/* Split v at the first space. */
static bool split(const char **v, size_t *vn, const char **tok, size_t *tn)
{
	const char *sp = memchr(*v, ' ', *vn);

	if (!sp)
		return false;
	*tok = *v;
	*tn = (size_t)(sp - *v);
	*vn -= *tn + 1;
	*v = sp + 1;
	return true;
}

/* "<state> <notify> <addr> <orcpt>" of a rcpt record at line_off. */
static bool parse_rcpt(const char *v, size_t n, uint64_t line_off, int version, struct envelope *e)
{
	const char *tok;
	size_t tn;
	char state = n > 0 ? v[0] : 0;
	int64_t notify;
	char *addr, *orcpt;
	struct env_rcpt *r;

	if (n < 2 || v[1] != ' ' ||
	    !(valid_state(state) || (version >= 2 && state == QF_STATE_DELAY_NOTIFIED)))
		return false;
	v += 2;
	n -= 2;
	if (!split(&v, &n, &tok, &tn) || !parse_i64(tok, tn, 0, UINT32_MAX, &notify))
		return false;
	if (!split(&v, &n, &tok, &tn) || !parse_str(tok, tn, &addr) || !addr)
		return false;
	if (!parse_str(v, n, &orcpt)) {
		free(addr);
		return false;
	}
	r = envelope_add_rcpt(e, addr, NULL, (unsigned)notify);
	free(addr);
	r->orcpt = orcpt;
	r->delay_notified = state == QF_STATE_DELAY_NOTIFIED;
	r->state = r->delay_notified ? RCPT_QUEUED : state;
	r->state_off = line_off + strlen(QF_RCPT_PREFIX);
	return true;
}

/* The fixed header records, in file order. */
enum hdr_field { H_QID, H_ARRIVAL, H_SENDER, H_BODY, H_UTF8, H_RET, H_ENVID, H_CONNECTOR,
		 H_CLIENT, H_HELO, H_AUTH, H_NFIELDS };
static const char *const hdr_tag[H_NFIELDS] = {"qid",	   "arrival", "sender", "body",
					       "smtputf8", "ret",     "envid",	"connector",
					       "client",   "helo",    "auth"};

static bool parse_field(enum hdr_field f, const char *v, size_t n, struct envelope *e)
{
	int64_t x;

	switch (f) {
	case H_QID:
		if (n >= QID_MAX)
			return false;
		memcpy(e->qid, v, n);
		e->qid[n] = '\0';
		return qf_valid_qid(e->qid);
	case H_ARRIVAL:
		if (!parse_i64(v, n, INT64_MIN + 1, INT64_MAX, &x))
			return false;
		e->arrival = (time_t)x;
		return true;
	case H_SENDER:
		return parse_str(v, n, &e->sender);
	case H_BODY:
		if (!parse_i64(v, n, INT32_MIN, INT32_MAX, &x))
			return false;
		e->body = (int)x;
		return true;
	case H_UTF8:
		if (!parse_i64(v, n, 0, 1, &x))
			return false;
		e->smtputf8 = x == 1;
		return true;
	case H_RET:
		if (!parse_i64(v, n, INT32_MIN, INT32_MAX, &x))
			return false;
		e->ret = (int)x;
		return true;
	case H_ENVID:
		return parse_str(v, n, &e->envid);
	case H_CONNECTOR:
		return parse_str(v, n, &e->connector);
	case H_CLIENT:
		return parse_str(v, n, &e->client_addr);
	case H_HELO:
		return parse_str(v, n, &e->client_helo);
	case H_AUTH:
		return parse_str(v, n, &e->auth_user);
	default:
		return false;
	}
}

static enum qf_status parse_magic(struct qf_parse *p)
{
	static const char magic[] = QF_MAGIC_LINE, magic1[] = QF_MAGIC_LINE_V1;
	size_t n = p->avail < sizeof(magic) - 1 ? p->avail : sizeof(magic) - 1;
	bool v2 = memcmp(p->r->buf, magic, n) == 0;

	_Static_assert(sizeof(magic) == sizeof(magic1), "one magic length");
	if (v2 || memcmp(p->r->buf, magic1, n) == 0) {
		if (n < sizeof(magic) - 1)
			return fail(p, QF_TORN, "%s", "file ends inside the magic");
		p->version = v2 ? 2 : 1;
		p->pos = n;
		return QF_OK;
	}
	if (p->avail > strlen(QF_MAGIC) && memcmp(p->r->buf, QF_MAGIC, strlen(QF_MAGIC)) == 0)
		return fail(p, QF_CORRUPT, "%s", "unsupported format version");
	return fail(p, QF_CORRUPT, "%s", "not a transit queue file");
}

/* Magic and envelope records up to and including "data\n". */
static enum qf_status parse_header(struct qf_parse *p, struct envelope *e)
{
	enum qf_status st;
	const char *line, *v;
	size_t len, vn;
	int f;

	if ((st = parse_magic(p)) != QF_OK)
		return st;
	for (f = 0; f < H_NFIELDS; f++) {
		if ((st = next_line(p, &line, &len)) != QF_OK)
			return st;
		if (!tagged(line, len, hdr_tag[f], &v, &vn) || !parse_field(f, v, vn, e))
			return fail(p, QF_CORRUPT, "bad or missing record %s", hdr_tag[f]);
	}
	for (;;) {
		uint64_t line_off = p->pos;

		if ((st = next_line(p, &line, &len)) != QF_OK)
			return st;
		if (len == 4 && memcmp(line, "data", 4) == 0)
			break;
		if (!tagged(line, len, "rcpt", &v, &vn) || !parse_rcpt(v, vn, line_off, p->version, e))
			return fail(p, QF_CORRUPT, "%s", "bad rcpt record");
	}
	e->content_off = p->pos;
	return QF_OK;
}

/* The fixed-size trailer at the very end; fills e->content_len. */
static enum qf_status check_trailer(struct qf_parse *p, struct envelope *e, uint32_t *crc)
{
	char t[QF_TRAILER_LEN + 1];
	uint64_t toff, len;
	int64_t x;
	size_t i;

	if (p->size < e->content_off + QF_TRAILER_LEN)
		return fail(p, QF_TORN, "%s", "no trailer");
	toff = p->size - QF_TRAILER_LEN;
	if (toff + QF_TRAILER_LEN <= p->avail)
		memcpy(t, p->r->buf + toff, QF_TRAILER_LEN);
	else if (pread_full(p->fd, t, QF_TRAILER_LEN, toff) != QF_TRAILER_LEN)
		return fail(p, QF_TORN, "%s", "no trailer");
	t[QF_TRAILER_LEN] = '\0';
	if (memcmp(t, "trailer ", 8) != 0)
		return fail(p, QF_TORN, "%s", "no trailer");
	if (t[28] != ' ' || memcmp(t + 37, "\nend\n", 5) != 0 || !parse_i64(t + 8, 20, 0, INT64_MAX, &x))
		return fail(p, QF_CORRUPT, "%s", "bad trailer");
	len = (uint64_t)x;
	*crc = 0;
	for (i = 29; i < 37; i++) {
		int h = hexval(t[i], 'a');

		if (h < 0)
			return fail(p, QF_CORRUPT, "%s", "bad trailer");
		*crc = *crc << 4 | (uint32_t)h;
	}
	if (len != toff - e->content_off)
		return fail(p, QF_CORRUPT, "%s", "content length does not match the trailer");
	e->content_len = len;
	return QF_OK;
}

/* CRC of [0, content_off + content_len) with state bytes read as 'Q'. */
static enum qf_status check_crc(struct qf_parse *p, const struct envelope *e, uint32_t want)
{
	struct qf_reader *r = p->r;
	uint64_t end = e->content_off + e->content_len, off = 0;
	uint32_t crc = (uint32_t)crc32(0, NULL, 0);
	size_t i, have = p->avail < end ? p->avail : (size_t)end;

	for (i = 0; i < e->nrcpt; i++) {
		uint64_t s = e->rcpt[i].state_off;

		crc = crc_update(crc, r->buf + off, s - off);
		crc = crc_update(crc, "Q", 1);
		off = s + 1;
	}
	crc = crc_update(crc, r->buf + off, have - off);
	off = have;
	if (off < end)
		reader_reserve(r, QF_READ_BULK);
	while (off < end) {
		size_t want_n = end - off < r->cap ? (size_t)(end - off) : r->cap;
		ssize_t got = pread_full(p->fd, r->buf, want_n, off);

		if (got < 0)
			return fail(p, QF_IOERR, "read: %s", strerror(errno));
		if ((size_t)got < want_n)
			return fail(p, QF_TORN, "%s", "file shrank while reading");
		crc = crc_update(crc, r->buf, (size_t)got);
		off += (size_t)got;
	}
	if (crc != want)
		return fail(p, QF_CORRUPT, "%s", "CRC mismatch");
	return QF_OK;
}

static enum qf_status load_fd(struct qf_parse *p, struct envelope *e)
{
	enum qf_status st;
	struct stat sb;
	ssize_t got;
	uint32_t crc;

	if (fstat(p->fd, &sb) < 0)
		return fail(p, QF_IOERR, "stat: %s", strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return fail(p, QF_CORRUPT, "%s", "not a regular file");
	p->size = (uint64_t)sb.st_size;
	reader_reserve(p->r, QF_READ_FIRST);
	got = pread_full(p->fd, p->r->buf, p->size < p->r->cap ? (size_t)p->size : p->r->cap, 0);
	if (got < 0)
		return fail(p, QF_IOERR, "read: %s", strerror(errno));
	p->avail = (size_t)got;
	if (p->avail < p->r->cap && p->avail < p->size)
		p->size = p->avail;
	if ((st = parse_header(p, e)) != QF_OK || (st = check_trailer(p, e, &crc)) != QF_OK)
		return st;
	return check_crc(p, e, crc);
}

enum qf_status qf_load(struct qf_reader *r, const char *path, struct envelope *env, char *err,
		       size_t errsz)
{
	struct qf_parse p = {.r = r, .err = err, .errsz = errsz};
	enum qf_status st;

	envelope_init(env);
	p.fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (p.fd < 0)
		return fail(&p, errno == ELOOP ? QF_CORRUPT : QF_IOERR, "open: %s", strerror(errno));
	st = load_fd(&p, env);
	close(p.fd);
	if (st != QF_OK)
		envelope_free(env);
	return st;
}

void qf_reader_free(struct qf_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

int queue_load(const char *path, struct envelope *env, char *err, size_t errsz)
{
	struct qf_reader r = {NULL, 0};
	enum qf_status st = qf_load(&r, path, env, err, errsz);

	qf_reader_free(&r);
	return st == QF_OK ? 0 : -1;
}

/* ---- after commit -------------------------------------------------- */

int queue_file_set_states(const char *path, const uint64_t *state_off, size_t n, char state)
{
	static const char magic[] = QF_MAGIC_LINE;
	const size_t plen = strlen(QF_RCPT_PREFIX);
	int fd, e = 0;
	size_t i;

	if (!valid_disk_state(state) || path == NULL || path[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (state == QF_STATE_DELAY_NOTIFIED) {
		/* a version 1 file has no such state: its readers would refuse it */
		char head[sizeof(magic) - 1];

		if (pread_full(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
		    memcmp(head, magic, sizeof(head)) != 0)
			e = ENOTSUP;
	}
	for (i = 0; i < n && e == 0; i++) {
		char b[sizeof(QF_RCPT_PREFIX)];

		/* Before writing, check that the byte at state_off is a state
		 * byte after "rcpt " in this very file. */
		if (state_off[i] < plen ||
		    pread_full(fd, b, plen + 1, state_off[i] - plen) != (ssize_t)(plen + 1) ||
		    memcmp(b, QF_RCPT_PREFIX, plen) != 0 || !valid_disk_state(b[plen]))
			e = EINVAL;
		/* N only ever replaces Q: a final state is never overwritten */
		else if (state == QF_STATE_DELAY_NOTIFIED && b[plen] != RCPT_QUEUED)
			continue;
		else {
			ssize_t r = pwrite(fd, &state, 1, (off_t)state_off[i]);

			if (r != 1)
				e = r < 0 ? errno : EIO;
		}
	}
	close(fd);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

int queue_set_rcpt_state(struct queue *q, struct envelope *env, size_t idx, char state)
{
	char path[PATH_MAX];

	if (!env || idx >= env->nrcpt || !valid_state(state) || !qf_valid_qid(env->qid)) {
		errno = EINVAL;
		return -1;
	}
	queue_path(q, env->qid, path, sizeof(path));
	if (queue_file_set_states(path, &env->rcpt[idx].state_off, 1, state) != 0)
		return -1;
	env->rcpt[idx].state = state;
	env->rcpt[idx].delay_notified = false; /* 'N' was overwritten */
	return 0;
}

int queue_remove(struct queue *q, const char *qid)
{
	char path[PATH_MAX];

	if (!qf_valid_qid(qid)) {
		errno = EINVAL;
		return -1;
	}
	queue_path(q, qid, path, sizeof(path));
	return unlink(path);
}
