/*
 * control.c - see control.h: the socket, the peer check, the line
 * protocol. What each verb does is in control_verbs.c.
 */
#include "ctl/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "ctl/control_verbs.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

struct conn {
	struct control *ctl;
	struct bufferevent *bev;
	struct conn *next, *prev;
	bool closing; /* close once the reply is flushed */
	char who[64]; /* "uid=1000 pid=42" */
};

struct control {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uid_t uid; /* server.user (or our own uid when there is none) */
	gid_t gid;
	struct event *ev;
	struct event *pause; /* EMFILE: the listener rests for a second */
	const struct control_env *env;
	struct conn *conns;
	unsigned nconns;
};

/* ---- creating the socket ------------------------------------------------------ */

static int mkparent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	str_copy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Is a transitd answering there? (then we must not take its socket) */
static bool socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return used;
}

struct control *control_open(const struct config *c, char *err, size_t errsz)
{
	struct control *ctl;
	struct sockaddr_un sa;
	struct passwd *pw = NULL;
	struct stat st;
	mode_t old;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (c->control.socket == NULL || c->control.socket[0] != '/' ||
	    strlen(c->control.socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "control socket \"%s\": not an absolute path of at most %zu bytes",
			 c->control.socket ? c->control.socket : "", sizeof(sa.sun_path) - 1);
		return NULL;
	}
	str_copy(sa.sun_path, c->control.socket, sizeof(sa.sun_path));
	ctl = xcalloc(1, sizeof(*ctl));
	str_copy(ctl->path, c->control.socket, sizeof(ctl->path));
	ctl->uid = geteuid();
	ctl->gid = getegid();
	if (c->server.user && geteuid() == 0) {
		if ((pw = getpwnam(c->server.user)) == NULL) {
			snprintf(err, errsz, "server.user \"%s\": no such user", c->server.user);
			free(ctl);
			return NULL;
		}
		ctl->uid = pw->pw_uid;
		ctl->gid = pw->pw_gid;
	}
	if (mkparent(ctl->path) != 0) {
		snprintf(err, errsz, "control socket %s: cannot create its directory: %s", ctl->path,
			 strerror(errno));
		free(ctl);
		return NULL;
	}
	if (lstat(ctl->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "control socket %s: exists and is not a socket", ctl->path);
			free(ctl);
			return NULL;
		}
		if (socket_in_use(&sa)) {
			snprintf(err, errsz, "control socket %s: another transitd answers on it",
				 ctl->path);
			free(ctl);
			return NULL;
		}
		unlink(ctl->path); /* left by a transitd that is gone */
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	old = umask(0177); /* no moment with a wider mode than 0600 */
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errsz, "control socket %s: %s", ctl->path, strerror(errno));
		umask(old);
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		return NULL;
	}
	umask(old);
	if ((geteuid() == 0 && chown(ctl->path, 0, ctl->gid) != 0) || chmod(ctl->path, 0660) != 0 ||
	    listen(ctl->fd, CONTROL_MAX_CONNS) != 0) {
		snprintf(err, errsz, "control socket %s: %s", ctl->path, strerror(errno));
		close(ctl->fd);
		unlink(ctl->path);
		free(ctl);
		return NULL;
	}
	return ctl;
}

/* ---- who may talk ------------------------------------------------------------------ */

/* Root, the server user, or a member of its group (primary or
 * supplementary, as the peer's process had them when it connected). */
static bool peer_allowed(const struct control *ctl, int fd, char *who, size_t whosz)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];
	socklen_t glen = sizeof(groups);
	size_t i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
		snprintf(who, whosz, "unknown");
		return false;
	}
	snprintf(who, whosz, "uid=%ld pid=%ld", (long)cr.uid, (long)cr.pid);
	if (cr.uid == 0 || cr.uid == ctl->uid || cr.gid == ctl->gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
		for (i = 0; i < glen / sizeof(gid_t); i++)
			if (groups[i] == ctl->gid)
				return true;
	return false;
}

/* ---- connections ---------------------------------------------------------------------- */

static void conn_free(struct conn *k)
{
	struct control *ctl = k->ctl;

	if (k->prev)
		k->prev->next = k->next;
	else
		ctl->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	ctl->nconns--;
	bufferevent_free(k->bev);
	free(k);
}

static void send_json(struct conn *k, json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s == NULL) {
		static const char oom[] = "{\"ok\":false,\"error\":\"cannot encode the reply\"}\n";
		bufferevent_write(k->bev, oom, sizeof(oom) - 1);
		return;
	}
	bufferevent_write(k->bev, s, strlen(s));
	bufferevent_write(k->bev, "\n", 1);
	free(s);
}

static void send_error(struct conn *k, const char *why)
{
	json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", why);

	send_json(k, r);
	json_decref(r);
}

static void handle_line(struct conn *k, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *args, *reply;
	const char *verb;
	char err[512] = "";
	char q[160];

	if (req == NULL || !json_is_object(req)) {
		send_error(k, "the request is not a JSON object");
		json_decref(req);
		return;
	}
	verb = json_string_value(json_object_get(req, "verb"));
	args = json_object_get(req, "args");
	if (json_is_null(args))
		args = NULL;
	if (verb == NULL || (args != NULL && !json_is_object(args))) {
		send_error(k, "the request needs \"verb\" (a string) and \"args\" (an object)");
		json_decref(req);
		return;
	}
	log_quote(verb, q, sizeof(q));
	log_info("control request verb=%s peer=%s", q, k->who);
	reply = control_verb_run(k->ctl->env, verb, args, err, sizeof(err));
	if (reply == NULL) {
		send_error(k, err[0] ? err : "failed");
	} else {
		json_object_set_new(reply, "ok", json_true());
		send_json(k, reply);
		json_decref(reply);
	}
	json_decref(req);
}

static void conn_read(struct bufferevent *bev, void *arg);

/* The replies are flushed: close, or read again if reading was paused. */
static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *k = arg;

	if (k->closing) {
		conn_free(k);
		return;
	}
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		conn_read(bev, k);
	}
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while (!k->closing) {
		/* a peer that sends requests without reading the replies makes
		 * us hold them: stop reading until they are flushed */
		if (evbuffer_get_length(bufferevent_get_output(bev)) > CONTROL_MAX_OUTPUT) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL)
			break;
		if (len > CONTROL_MAX_REQUEST) {
			free(line);
			goto too_long;
		}
		handle_line(k, line, len);
		free(line);
	}
	if (!k->closing && evbuffer_get_length(in) > CONTROL_MAX_REQUEST)
		goto too_long;
	return;
too_long:
	log_warn("control request refused peer=%s: longer than %d bytes", k->who,
		 CONTROL_MAX_REQUEST);
	send_error(k, "request too long");
	k->closing = true;
	bufferevent_disable(bev, EV_READ);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *k = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_info("control connection peer=%s closed: idle for %ds", k->who, CONTROL_TIMEOUT);
	conn_free(k);
}

static void refuse(int fd, const char *why)
{
	char line[200];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);

	/* non-blocking and tiny: it fits in an empty socket buffer or is lost */
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct control *ctl = arg;
	const struct timeval tmo = {CONTROL_TIMEOUT, 0};
	struct conn *k;
	char who[64];
	int fd;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* the pending connection stays ready: without a pause the
			 * level-triggered listener would spin the loop */
			const struct timeval rest = {1, 0};
			log_warn("control socket accept: %s: pausing for 1s", strerror(errno));
			event_del(ctl->ev);
			evtimer_add(ctl->pause, &rest);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			   errno != ECONNABORTED) {
			log_warn("control socket accept: %s", strerror(errno));
		}
		return;
	}
	if (!peer_allowed(ctl, fd, who, sizeof(who))) {
		log_warn("control connection refused peer=%s: not root, the server user or its group",
			 who);
		refuse(fd, "permission denied");
		return;
	}
	if (ctl->nconns >= CONTROL_MAX_CONNS) {
		log_warn("control connection refused peer=%s: %d connections already", who,
			 CONTROL_MAX_CONNS);
		refuse(fd, "too many control connections");
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->ctl = ctl;
	str_copy(k->who, who, sizeof(k->who));
	k->bev = bufferevent_socket_new(ctl->env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (k->bev == NULL) {
		close(fd);
		free(k);
		return;
	}
	k->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->prev = k;
	ctl->conns = k;
	ctl->nconns++;
	bufferevent_setcb(k->bev, conn_read, conn_write, conn_event, k);
	bufferevent_set_timeouts(k->bev, &tmo, &tmo);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
}

static void on_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct control *ctl = arg;

	(void)fd;
	(void)what;
	event_add(ctl->ev, NULL);
}

void control_start(struct control *ctl, struct event_base *base, const struct control_env *env)
{
	ctl->env = env;
	ctl->ev = event_new(base, ctl->fd, EV_READ | EV_PERSIST, on_accept, ctl);
	ctl->pause = evtimer_new(base, on_pause_end, ctl);
	if (ctl->ev == NULL || ctl->pause == NULL || event_add(ctl->ev, NULL) != 0)
		log_fatal("control socket: cannot add the listener event");
	log_info("control socket listening path=%s group=%ld", ctl->path, (long)ctl->gid);
}

void control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	while (ctl->conns)
		conn_free(ctl->conns);
	if (ctl->ev)
		event_free(ctl->ev);
	if (ctl->pause)
		event_free(ctl->pause);
	close(ctl->fd);
	unlink(ctl->path); /* fails once privileges are dropped: the next start removes it */
	free(ctl);
}
