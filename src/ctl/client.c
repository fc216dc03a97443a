/* client.c - see client.h. */
#include "ctl/client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/str.h"

static enum ctl_result not_running(const struct config *c, const char *why, char *err,
				   size_t errsz)
{
	snprintf(err, errsz, "%s (control socket %s: %s)",
		 errno == EACCES || errno == EPERM ? "cannot talk to transitd"
						   : "transitd is not running",
		 c->control.socket, why);
	return CTL_NOT_RUNNING;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One line (without its LF) within the deadline; -1 + err on failure. */
static int read_line(int fd, struct buf *b, uint64_t deadline_ms, char *err, size_t errsz)
{
	char chunk[65536];

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		uint64_t now = clock_mono_ms();
		ssize_t r;
		char *nl;

		if ((nl = b->len ? memchr(b->data, '\n', b->len) : NULL) != NULL) {
			b->len = (size_t)(nl - b->data);
			buf_putc(b, '\0');
			return 0;
		}
		if (b->len > CTL_REPLY_MAX) {
			snprintf(err, errsz, "the reply of transitd is too long");
			return -1;
		}
		if (now >= deadline_ms || poll(&p, 1, (int)(deadline_ms - now)) == 0) {
			snprintf(err, errsz, "no reply from transitd within %ds", CTL_REPLY_TIMEOUT);
			return -1;
		}
		r = recv(fd, chunk, sizeof(chunk), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errsz, "transitd closed the control connection%s%s",
				 r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			return -1;
		}
		buf_append(b, chunk, (size_t)r);
	}
}

enum ctl_result ctl_request(const struct config *c, const char *verb, json_t *args, json_t **reply,
			    char *err, size_t errsz)
{
	struct sockaddr_un sa;
	struct buf b = BUF_INIT;
	json_t *req, *r;
	json_error_t jerr;
	char *line;
	bool sent;
	int fd, send_errno;

	*reply = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(c->control.socket) >= sizeof(sa.sun_path))
		return not_running(c, "path too long", err, errsz);
	str_copy(sa.sun_path, c->control.socket, sizeof(sa.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return not_running(c, strerror(errno), err, errsz);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		enum ctl_result res = not_running(c, strerror(errno), err, errsz);
		close(fd);
		return res;
	}
	req = json_pack("{s:s, s:O?}", "verb", verb, "args", args);
	line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	sent = line != NULL && write_all(fd, line, strlen(line)) == 0 && write_all(fd, "\n", 1) == 0;
	send_errno = errno;
	free(line);
	/* even when the send failed: transitd may have answered (a refused
	 * peer gets its reason, then the connection is closed) */
	if (read_line(fd, &b, clock_mono_ms() + CTL_REPLY_TIMEOUT * 1000u, err, errsz) != 0) {
		if (!sent)
			snprintf(err, errsz, "cannot send the request to transitd: %s",
				 strerror(send_errno));
		buf_free(&b);
		close(fd);
		return CTL_REFUSED;
	}
	close(fd);
	r = json_loads(b.data, 0, &jerr);
	buf_free(&b);
	if (!json_is_object(r)) {
		snprintf(err, errsz, "the reply of transitd is not a JSON object");
		json_decref(r);
		return CTL_REFUSED;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		const char *why = json_string_value(json_object_get(r, "error"));
		snprintf(err, errsz, "transitd refused: %s", why ? why : "no reason given");
		json_decref(r);
		return CTL_REFUSED;
	}
	*reply = r;
	return CTL_OK;
}
