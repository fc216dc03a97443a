/*
 * dovecot_auth.c - the client side of Dovecot's authentication protocol
 * 1.x (contract and the exchange in dovecot_auth.h).
 *
 * One short-lived connection per check: the worker thread owns it for the
 * length of one check, so nothing is shared between threads and a broken
 * connection never outlives its check. The cost is a connect on a local
 * socket per AUTH, which is small next to the password hash Dovecot runs.
 *
 * Flags of the request: "nologin" (a credentials check, no login
 * follows, as Postfix sends), "secured" (transit takes AUTH only under
 * TLS or from loopback, smtp/auth.c), "no-penalty": transit applies its
 * own growing delay and lockout per real client address and per login
 * (policy/authlimit.c); Dovecot's per-IP penalty on top would stretch a
 * third wrong password past the timeout and turn it into a 454.
 *
 * Bounds: one deadline (CLOCK_MONOTONIC) for connect, handshake and
 * answer; lines up to DOVECOT_LINE_MAX (longer: protocol error); at most
 * DOVECOT_LINES_MAX lines read. The base64 response holding the password
 * is built in a stack buffer wiped after the write.
 */
#include "dir/dovecot_auth.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/clock.h"

#define DOVECOT_FIELD_MAX 256 /* login and password, each, as policy/auth.c holds them */

/* ---- the reply-line parser -------------------------------------------------- */

/* The next TAB-separated field of line[*pos..len): start and length. */
static bool next_field(const char *line, size_t len, size_t *pos, const char **f, size_t *flen)
{
	const char *tab;

	if (*pos > len)
		return false;
	*f = line + *pos;
	tab = memchr(*f, '\t', len - *pos);
	*flen = tab ? (size_t)(tab - *f) : len - *pos;
	*pos += *flen + 1; /* past the TAB (or past the end: no more fields) */
	return true;
}

static bool field_is(const char *f, size_t flen, const char *word)
{
	return flen == strlen(word) && memcmp(f, word, flen) == 0;
}

/* A decimal number of 1 to 9 digits (ids and versions are small). */
static bool field_number(const char *f, size_t flen, unsigned long *out)
{
	unsigned long v = 0;

	if (flen == 0 || flen > 9)
		return false;
	for (size_t i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(f[i] - '0');
	}
	*out = v;
	return true;
}

bool dovecot_auth_parse_line(const char *line, size_t len, struct dovecot_line *out)
{
	size_t pos = 0, flen;
	const char *f;

	memset(out, 0, sizeof(*out));
	out->kind = DOVECOT_LINE_OTHER;
	if (!next_field(line, len, &pos, &f, &flen))
		return true;
	if (field_is(f, flen, "DONE")) {
		out->kind = DOVECOT_LINE_DONE;
		return true;
	}
	if (field_is(f, flen, "MECH")) {
		out->kind = DOVECOT_LINE_MECH;
		out->plain = next_field(line, len, &pos, &f, &flen) && field_is(f, flen, "PLAIN");
		return true;
	}
	if (field_is(f, flen, "VERSION")) {
		out->kind = DOVECOT_LINE_VERSION;
		return next_field(line, len, &pos, &f, &flen) && field_number(f, flen, &out->major);
	}
	if (field_is(f, flen, "OK"))
		out->kind = DOVECOT_LINE_OK;
	else if (field_is(f, flen, "FAIL"))
		out->kind = DOVECOT_LINE_FAIL;
	else if (field_is(f, flen, "CONT"))
		out->kind = DOVECOT_LINE_CONT;
	else
		return true; /* SPID, CUID, COOKIE, or new: ignored */
	if (!next_field(line, len, &pos, &f, &flen) || !field_number(f, flen, &out->id))
		return false;
	while (out->kind == DOVECOT_LINE_FAIL && next_field(line, len, &pos, &f, &flen))
		if (field_is(f, flen, "temp") || field_is(f, flen, "code=temp_fail"))
			out->temp = true;
	return true;
}

/* ---- the connection --------------------------------------------------------- */

struct conn {
	int fd;
	uint64_t deadline; /* clock_mono_ms() */
	char buf[DOVECOT_LINE_MAX + 1];
	size_t len;	  /* bytes in buf */
	size_t consumed; /* the previous line, to drop before the next read */
	unsigned lines;
};

/* Milliseconds left, or -1 when the deadline has passed. */
static int time_left(const struct conn *c)
{
	uint64_t now = clock_mono_ms();

	if (now >= c->deadline)
		return -1;
	return c->deadline - now > 60000 ? 60000 : (int)(c->deadline - now);
}

static bool wait_for(const struct conn *c, short events, const char **why)
{
	struct pollfd p = {.fd = c->fd, .events = events};

	for (;;) {
		int ms = time_left(c), r;

		if (ms < 0) {
			*why = "dovecot-timeout";
			return false;
		}
		r = poll(&p, 1, ms);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR) {
			*why = "dovecot-io-error";
			return false;
		}
	}
}

static bool send_all(struct conn *c, const char *data, size_t len, const char **why)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!wait_for(c, POLLOUT, why))
				return false;
			continue;
		}
		*why = "dovecot-io-error";
		return false;
	}
	return true;
}

/* The next line (LF stripped, NUL-terminated in place) or NULL. */
static char *read_line(struct conn *c, size_t *len, const char **why)
{
	if (c->consumed) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	if (++c->lines > DOVECOT_LINES_MAX) {
		*why = "dovecot-protocol-error";
		return NULL;
	}
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (lf) {
			*lf = '\0';
			*len = (size_t)(lf - c->buf);
			c->consumed = *len + 1;
			return c->buf;
		}
		if (c->len >= DOVECOT_LINE_MAX) {
			*why = "dovecot-protocol-error"; /* a line too long */
			return NULL;
		}
		n = recv(c->fd, c->buf + c->len, DOVECOT_LINE_MAX - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			*why = "dovecot-closed";
			return NULL;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*why = "dovecot-io-error";
			return NULL;
		}
		if (!wait_for(c, POLLIN, why))
			return NULL;
	}
}

static bool connect_socket(struct conn *c, const char *path, const char **why)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*why = "dovecot-unreachable"; /* refused by transitd -n already */
		return false;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		*why = "dovecot-io-error";
		return false;
	}
	/* A local stream socket connects at once or fails (EAGAIN: the
	 * listener's backlog is full, a busy Dovecot: try later). */
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		*why = "dovecot-unreachable";
		return false;
	}
	return true;
}

/* The handshake: our VERSION and CPID, then the server's lines up to DONE. */
static bool handshake(struct conn *c, const char **why)
{
	char hello[64];
	bool version_ok = false, plain = false;
	int n = snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid());

	if (!send_all(c, hello, (size_t)n, why))
		return false;
	for (;;) {
		struct dovecot_line l;
		size_t len;
		char *line = read_line(c, &len, why);

		if (line == NULL)
			return false;
		if (!dovecot_auth_parse_line(line, len, &l)) {
			*why = "dovecot-protocol-error";
			return false;
		}
		if (l.kind == DOVECOT_LINE_VERSION) {
			if (l.major != 1) {
				*why = "dovecot-protocol-version";
				return false;
			}
			version_ok = true;
		} else if (l.kind == DOVECOT_LINE_MECH && l.plain) {
			plain = true;
		} else if (l.kind == DOVECOT_LINE_DONE) {
			break;
		}
	}
	if (!version_ok)
		*why = "dovecot-protocol-error";
	else if (!plain)
		*why = "dovecot-no-plain-mechanism";
	return version_ok && plain;
}

static bool send_auth(struct conn *c, const struct dovecot_auth_request *rq, const char **why)
{
	/* authzid NUL authcid NUL password (RFC 4616), empty authzid */
	unsigned char plain[2 * DOVECOT_FIELD_MAX + 2];
	char line[128 + 4 * ((sizeof(plain) + 2) / 3) + 2]; /* head, base64, LF */
	size_t ul = strlen(rq->login), pl = strlen(rq->password);
	int head;
	bool ok;

	if (ul == 0 || ul >= DOVECOT_FIELD_MAX || pl >= DOVECOT_FIELD_MAX) {
		*why = "bad-credentials-length";
		return false;
	}
	plain[0] = '\0';
	memcpy(plain + 1, rq->login, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, rq->password, pl);
	head = snprintf(line, sizeof(line),
			"AUTH\t1\tPLAIN\tservice=smtp\tnologin\tno-penalty\tsecured\trip=%s\tresp=",
			rq->remote_ip);
	if (head < 0 || (size_t)head >= 128) {
		OPENSSL_cleanse(plain, sizeof(plain));
		*why = "dovecot-io-error"; /* cannot happen: rip is an IP address */
		return false;
	}
	head += EVP_EncodeBlock((unsigned char *)line + head, plain, (int)(2 + ul + pl));
	line[head++] = '\n';
	ok = send_all(c, line, (size_t)head, why);
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(line, sizeof(line));
	return ok;
}

static enum dovecot_result read_answer(struct conn *c, const char **why)
{
	for (;;) {
		struct dovecot_line l;
		size_t len;
		char *line = read_line(c, &len, why);

		if (line == NULL)
			return DOVECOT_AUTH_TEMP;
		if (!dovecot_auth_parse_line(line, len, &l)) {
			*why = "dovecot-protocol-error";
			return DOVECOT_AUTH_TEMP;
		}
		if (l.id != 1)
			continue; /* not an answer to our request */
		switch (l.kind) {
		case DOVECOT_LINE_OK:
			return DOVECOT_AUTH_OK;
		case DOVECOT_LINE_FAIL:
			*why = l.temp ? "dovecot-temporary-failure" : "bad-credentials";
			return l.temp ? DOVECOT_AUTH_TEMP : DOVECOT_AUTH_BAD;
		case DOVECOT_LINE_CONT: /* PLAIN sent everything: nothing to continue */
			*why = "dovecot-protocol-error";
			return DOVECOT_AUTH_TEMP;
		default:
			continue;
		}
	}
}

enum dovecot_result dovecot_auth_verify(const struct dovecot_auth_request *rq, const char **why)
{
	struct conn *c = &(struct conn){.fd = -1}; /* 16 KiB: a worker's stack holds it */
	enum dovecot_result r = DOVECOT_AUTH_TEMP;

	*why = "dovecot-unreachable";
	c->deadline = clock_mono_ms() + rq->timeout_ms;
	if (connect_socket(c, rq->socket_path, why) && handshake(c, why)) {
		if (send_auth(c, rq, why))
			r = read_answer(c, why);
		else if (strcmp(*why, "bad-credentials-length") == 0)
			r = DOVECOT_AUTH_BAD; /* longer than any password we hold */
	}
	if (c->fd >= 0)
		close(c->fd);
	return r;
}
