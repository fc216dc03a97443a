/*
 * reload.c - see reload.h.
 */
#include "daemon/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl/reload_status.h"
#include "daemon/gen_build.h"
#include "log/protolog.h"
#include "log/tracking.h"
#include "net/listener.h"
#include "net/tls_runtime.h"
#include "policy/backpressure.h"
#include "queue/sched.h"
#include "smtp/server.h"
#include "util/log.h"
#include "util/xmalloc.h"

extern char **environ;

#define RELOAD_CHECK_TIMEOUT 30 /* s for the -n child (a sanitizer build starts slowly) */
#define CHECK_OUTPUT_MAX 1000	/* octets of its error lines kept */

/* The `transitd -n` child and what it said. */
struct reload_check {
	struct daemon *d;
	pid_t pid;
	int fd;			/* its stderr, non-blocking */
	struct event *ev;	/* fd readable */
	struct event *timer;	/* RELOAD_CHECK_TIMEOUT */
	bool timed_out;
	size_t n;
	char text[CHECK_OUTPUT_MAX];
};

/* Lines joined with "; ", other control octets and non-ASCII as '?'. */
static void one_line(char *out, size_t outsz, const char *text, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 < outsz; i++) {
		char ch = text[i];
		if (ch == '\n') {
			if (i + 1 < n && o > 0) {
				out[o++] = ';';
				out[o++] = ' ';
			}
			continue;
		}
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	out[o] = '\0';
}

void daemon_reload_record(struct daemon *d, bool ok, const char *message)
{
	struct reload_status st;
	char err[300];

	memset(&st, 0, sizeof(st));
	st.pid = (long)getpid();
	st.attempt = d->attempts;
	st.generation = d->gen->number;
	st.time = (int64_t)time(NULL);
	st.ok = ok;
	one_line(st.message, sizeof(st.message), message, strlen(message));
	if (reload_status_write(d->spool, &st, err, sizeof(err)) != 0)
		log_warn("reload status: %s", err);
}

/* The end of an attempt: log, record, tell the caller; then the reload a
 * SIGHUP asked for meanwhile. */
static void finish(struct daemon *d, bool ok, const char *message)
{
	daemon_reload_done done = d->done;
	void *arg = d->done_arg;

	d->attempts++;
	if (!ok)
		log_warn("reload refused, generation=%" PRIu64 " stays: %s", d->gen->number,
			 message);
	daemon_reload_record(d, ok, message);
	d->done = NULL;
	d->done_arg = NULL;
	if (done)
		done(arg, ok, message);
	if (d->again && d->check == NULL) {
		d->again = false;
		daemon_reload_signal(d);
	}
}

/* Message tracking (on unless logs.tracking.enabled = false) and the
 * protocol logs of the sides that have a verbose connector. After the
 * privilege drop: the files belong to server.user. Again at each reload:
 * a side whose first verbose connector comes with it opens its log then
 * (what is open stays open; logs.path and the limits are restart-only). */
void daemon_logs_start(const struct config *c)
{
	bool recv = false, send = false;
	size_t i;

	if (c->logs.tracking)
		(void)tracking_open(c->logs.path, c->server.node, &c->logs.tracking_limits);
	for (i = 0; i < c->nrcs; i++)
		recv = recv || c->rcs[i].protocol_log;
	for (i = 0; i < c->nscs; i++)
		send = send || c->scs[i].protocol_log;
	if (recv)
		(void)protolog_open(PROTOLOG_RECEIVE, c->logs.path, &c->logs.protocol_limits);
	if (send)
		(void)protolog_open(PROTOLOG_SEND, c->logs.path, &c->logs.protocol_limits);
}

/* The file passed the check: load it and make it current. */
static int apply(struct daemon *d, char *err, size_t errlen)
{
	struct config *c;
	struct conf_gen *g;
	unsigned restart;

	if (d->ls == NULL) {
		snprintf(err, errlen, "transitd is stopping");
		return -1;
	}
	if ((c = conf_load(d->conf_path)) == NULL) { /* changed since the check */
		snprintf(err, errlen, "%s: changed while it was checked, and does not load now "
				      "(see the log)", d->conf_path);
		return -1;
	}
	if ((g = gen_build(c, d->gen, err, errlen)) == NULL)
		return -1;
	restart = conf_gen_restart_only_changes(d->gen->conf, g->conf);
	restart += listeners_reconfigure(d->ls, g->conf);
	smtp_server_set_generation(d->srv, g);
	sched_set_generation(d->sched, g);
	backpressure_set_limits(g->conf);
	daemon_logs_start(g->conf);
	tls_runtime_stop(d->gen->tls); /* the bindings are watched by the current one */
	tls_runtime_start(g->tls, d->base);
	conf_gen_unref(d->gen);
	d->gen = g; /* the reference gen_build() gave us */
	log_info("reload generation=%" PRIu64 " applied%s (older generations still in use: %u)",
		 g->number, restart ? "; some changes need a restart, see above" : "",
		 conf_gen_alive() - 1);
	return 0;
}

static void check_free(struct reload_check *ck)
{
	if (ck->ev)
		event_free(ck->ev);
	if (ck->timer)
		event_free(ck->timer);
	if (ck->fd >= 0)
		close(ck->fd);
	free(ck);
}

/* The child closed its stderr: it has exited (or is about to). */
static void check_ended(struct reload_check *ck)
{
	struct daemon *d = ck->d;
	char err[1024];
	int status = 0;
	bool ok;

	while (waitpid(ck->pid, &status, 0) < 0 && errno == EINTR)
		;
	ok = !ck->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (ck->timed_out)
		snprintf(err, sizeof(err), "%s: the check (transitd -n) did not finish within %ds",
			 d->conf_path, RELOAD_CHECK_TIMEOUT);
	else if (!ok && ck->n > 0)
		one_line(err, sizeof(err), ck->text, ck->n);
	else if (!ok)
		snprintf(err, sizeof(err), "%s: refused by transitd -n (status %d)", d->conf_path,
			 status);
	d->check = NULL;
	check_free(ck);
	if (ok && apply(d, err, sizeof(err)) == 0)
		finish(d, true, "");
	else
		finish(d, false, err);
}

static void check_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reload_check *ck = arg;
	char chunk[512];
	ssize_t r;
	(void)what;

	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* more later */
		if (r <= 0)
			break; /* end of file (or an error): the child is done */
		if (ck->n < sizeof(ck->text)) {
			size_t take = (size_t)r < sizeof(ck->text) - ck->n ? (size_t)r
									  : sizeof(ck->text) - ck->n;
			memcpy(ck->text + ck->n, chunk, take);
			ck->n += take;
		}
	}
	check_ended(ck);
}

static void check_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reload_check *ck = arg;
	(void)fd;
	(void)what;

	ck->timed_out = true;
	kill(ck->pid, SIGKILL); /* its stderr closes: check_read_cb ends it */
}

/* Run `transitd -n -c FILE` with its stderr on a pipe watched by the loop. */
static struct reload_check *check_start(struct daemon *d, char *err, size_t errlen)
{
	char *argv[] = {(char *)d->self, "-n", "-c", (char *)d->conf_path, NULL};
	const struct timeval limit = {RELOAD_CHECK_TIMEOUT, 0};
	posix_spawn_file_actions_t fa;
	struct reload_check *ck;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot check %s: pipe: %s", d->conf_path, strerror(errno));
		return NULL;
	}
	ck = xcalloc(1, sizeof(*ck));
	ck->d = d;
	ck->fd = p[0];
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	rc = posix_spawn(&ck->pid, d->self, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		snprintf(err, errlen, "cannot check %s: cannot run %s -n: %s", d->conf_path, d->self,
			 strerror(rc));
		check_free(ck);
		return NULL;
	}
	(void)fcntl(ck->fd, F_SETFL, fcntl(ck->fd, F_GETFL) | O_NONBLOCK);
	ck->ev = event_new(d->base, ck->fd, EV_READ | EV_PERSIST, check_read_cb, ck);
	ck->timer = evtimer_new(d->base, check_timeout_cb, ck);
	if (ck->ev == NULL || ck->timer == NULL || event_add(ck->ev, NULL) != 0 ||
	    evtimer_add(ck->timer, &limit) != 0) {
		snprintf(err, errlen, "cannot check %s: out of memory", d->conf_path);
		kill(ck->pid, SIGKILL);
		while (waitpid(ck->pid, NULL, 0) < 0 && errno == EINTR)
			;
		check_free(ck);
		return NULL;
	}
	return ck;
}

int daemon_reload(struct daemon *d, daemon_reload_done done, void *arg, char *err,
		  size_t errlen)
{
	struct reload_check *ck = NULL;

	err[0] = '\0';
	if (d->check) {
		/* not an attempt: the one under way goes on and is recorded */
		snprintf(err, errlen, "a reload is already under way");
		return -1;
	}
	if (d->ls == NULL)
		snprintf(err, errlen, "transitd is stopping");
	else
		ck = check_start(d, err, errlen);
	if (ck == NULL) {
		d->attempts++;
		log_warn("reload refused, generation=%" PRIu64 " stays: %s", d->gen->number, err);
		daemon_reload_record(d, false, err);
		return -1;
	}
	d->check = ck;
	d->done = done;
	d->done_arg = arg;
	return 0;
}

void daemon_reload_signal(struct daemon *d)
{
	char err[512];

	if (d->check) {
		log_info("reload already under way: another one follows it");
		d->again = true;
		return;
	}
	log_info("reloading %s", d->conf_path);
	(void)daemon_reload(d, NULL, NULL, err, sizeof(err));
}

void daemon_reload_cancel(struct daemon *d)
{
	struct reload_check *ck = d->check;

	if (ck == NULL)
		return;
	kill(ck->pid, SIGKILL);
	while (waitpid(ck->pid, NULL, 0) < 0 && errno == EINTR)
		;
	d->check = NULL;
	check_free(ck);
}
