/*
 * transitd.c - the transit daemon's main: read the configuration, bind
 * the listeners and read the TLS keys while still root, drop privileges,
 * recover the queue, then run the event loop until SIGTERM/SIGINT.
 *
 * Stopping (SIGTERM/SIGINT) is graceful and bounded (struct stopping):
 * close the listeners, stop starting deliveries, let the SMTP server say
 * 421 4.3.2 to every session (a commit in flight gets its 250 first), and
 * leave the loop only when no session is left, no commit is in flight and
 * no worker thread holds a job; only then is anything freed (workers are
 * joined before the queue they use is closed). After STOP_HARD_LIMIT
 * seconds, or at a second signal, transitd exits at once WITHOUT freeing
 * anything a thread may still use: mail is safe either way (a 250 is only
 * sent after the commit; an unrecorded delivery is done again at the
 * next start, and Maildir deliveries are not duplicated).
 *
 * SIGHUP reloads the configuration (daemon/reload.h): the next
 * configuration generation applies to new sessions and deliveries, those
 * in progress finish on theirs (conf/gen.h).
 *
 *   transitd -c FILE [-d]     run in the foreground, log to stderr
 *   transitd -c FILE -n       check the configuration, print the effective one
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conf/conf.h"
#include "conf/gen.h"
#include "daemon/gen_build.h"
#include "daemon/reload.h"
#include "ctl/http.h"
#include "daemon/status.h"
#include "ctl/control.h"
#include "dir/aliases.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"
#include "log/protolog.h"
#include "log/tracking.h"
#include "net/dns.h"
#include "net/listener.h"
#include "net/tls.h"
#include "net/tls_runtime.h"
#include "policy/backpressure.h"
#include "policy/recipient.h"
#include "queue/queue.h"
#include "queue/sched.h"
#include "queue/stats.h"
#include "smtp/server.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/pidlock.h"
#include "util/xmalloc.h"

#include "util/version.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: transitd [-d] [-n] -c FILE\n"
		   "  -c FILE  configuration file (transit.conf(5))\n"
		   "  -n       check the configuration, print the effective one, exit\n"
		   "  -d       debug logging (protocol lines and state changes)\n"
		   "  -V       print the version\n");
}

/* mkdir -p with mode for the directories it creates. */
static int mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	char *p;

	if (strlen(path) >= sizeof(tmp))
		return -1;
	strcpy(tmp, path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void drop_privileges(const struct config *c)
{
	struct passwd *pw;

	if (getuid() != 0) {
		if (c->server.user)
			log_info("not root: server.user=%s ignored, running as uid %ld", c->server.user,
				 (long)getuid());
		return;
	}
	if (c->server.user == NULL) {
		log_warn("running as root: set server.user to drop privileges");
		return;
	}
	if ((pw = getpwnam(c->server.user)) == NULL)
		log_fatal("server.user \"%s\": no such user", c->server.user);
	if (chown(c->server.spool, pw->pw_uid, pw->pw_gid) != 0)
		log_fatal("chown %s: %s", c->server.spool, strerror(errno));
	if (setgroups(1, &pw->pw_gid) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
		log_fatal("cannot drop privileges to %s: %s", c->server.user, strerror(errno));
	if (setuid(0) == 0)
		log_fatal("privileges were not dropped (setuid(0) succeeded)");
	log_info("privileges dropped user=%s uid=%ld gid=%ld", c->server.user, (long)pw->pw_uid,
		 (long)pw->pw_gid);
}

/* One daemon per spool: two would recover, deliver and remove each
 * other's queue files. The lock is taken before anything reads or writes
 * the spool and held (fd kept open across the privilege drop) until exit;
 * `transitd -n` never gets here. */
static int lock_spool(const char *spool)
{
	char path[4200], err[4400];
	pid_t holder;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/transitd.lock", spool) >= sizeof(path))
		log_fatal("spool %s: path too long", spool);
	fd = pidlock_acquire(path, &holder, err, sizeof(err));
	if (fd >= 0)
		return fd;
	if (holder > 0)
		log_fatal("spool %s is in use by another transitd (pid %ld)", spool, (long)holder);
	if (errno == EWOULDBLOCK)
		log_fatal("spool %s is in use by another transitd (pid unknown)", spool);
	log_fatal("spool %s: cannot lock: %s", spool, err);
}

#define STOP_SESSION_GRACE 5 /* s: sessions that do not take their 421 are dropped */
#define STOP_HARD_LIMIT 10   /* s: then exit whatever is still running */
#define STOP_POLL_MS 50

struct stopping {
	struct event_base *base;
	struct listeners *ls; /* NULL once closed */
	struct daemon *dmn;
	struct smtp_server *srv;
	struct sched *sched;
	struct queue *q;
	struct event *poll, *hard;
	bool started;	  /* the first signal came */
	bool server_done; /* no session left */
	bool forced;	  /* a second signal or the hard limit */
};

/* Nothing left that a callback or a worker thread could still touch. */
static bool stop_quiet(const struct stopping *st)
{
	return st->server_done && queue_inflight(st->q) == 0 && sched_idle(st->sched);
}

static void stop_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stopping *st = arg;
	(void)fd;
	(void)what;
	if (stop_quiet(st))
		event_base_loopbreak(st->base); /* now: nothing may start after the check */
}

static void stop_server_done(void *arg) { ((struct stopping *)arg)->server_done = true; }

static void stop_hard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stopping *st = arg;
	(void)fd;
	(void)what;
	log_warn("shutdown not finished after %ds (sessions=%u commits=%lu workers-busy=%s): "
		 "stopping now",
		 STOP_HARD_LIMIT, smtp_server_sessions(st->srv), queue_inflight(st->q),
		 sched_idle(st->sched) ? "no" : "yes");
	st->forced = true;
	event_base_loopbreak(st->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct stopping *st = arg;
	const struct timeval poll = {0, STOP_POLL_MS * 1000}, hard = {STOP_HARD_LIMIT, 0};
	(void)what;

	if (st->started) {
		log_warn("signal=%d received again: stopping now", (int)sig);
		st->forced = true;
		event_base_loopbreak(st->base);
		return;
	}
	st->started = true;
	log_info("signal=%d received, shutting down", (int)sig);
	listeners_free(st->ls);
	st->ls = NULL;
	st->dmn->ls = NULL; /* a reload now is refused */
	sched_stop(st->sched);
	smtp_server_shutdown(st->srv, STOP_SESSION_GRACE, stop_server_done, st);
	st->poll = event_new(st->base, -1, EV_PERSIST, stop_poll_cb, st);
	st->hard = evtimer_new(st->base, stop_hard_cb, st);
	if (st->poll == NULL || st->hard == NULL)
		log_fatal("shutdown: event_new failed");
	event_add(st->poll, &poll);
	evtimer_add(st->hard, &hard);
}

/* SIGHUP: reload the configuration (daemon/reload.h); the result is
 * logged and recorded for `transitctl reload`. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;

	log_info("signal=HUP received");
	daemon_reload_signal(arg);
}

/* transitctl reload, through the control socket: as SIGHUP. */
static void reload_asked(void *arg)
{
	log_info("reload asked on the control socket");
	daemon_reload_signal(arg);
}

static void on_message(void *arg, struct envelope *env) { sched_submit(arg, env); }

static void recovered(struct envelope *env, void *arg) { sched_add(arg, env); }

static size_t queue_length(void *arg) { return sched_count(arg); }

/* The users directory: the passwd-file, or with users { ldap { } } the
 * LDAP directory in its place (*ldap, to free after the users). */
static struct passwd_db *open_users(const struct config *c, struct ldapdir **ldap)
{
	struct passwd_db *users;

	if (c->ldap.uri == NULL)
		return passwd_db_open(c->passwd_file);
	*ldap = ldapdir_new(&c->ldap);
	users = passwd_db_open(NULL);
	passwd_db_set_ldap(users, *ldap);
	return users;
}

int main(int argc, char **argv)
{
	const char *conf_path = NULL;
	int check_only = 0, debug = 0, ch, spool_lock;
	struct config *c;
	struct listeners *ls;
	struct event_base *base;
	struct queue *q;
	struct sched *sched;
	struct passwd_db *users;
	struct ldapdir *ldap = NULL;
	struct alias_db *aliases = NULL;
	struct smtp_server *srv;
	struct smtp_server_params sp;
	struct event *ev_term, *ev_int, *ev_hup;
	struct stopping st;
	struct daemon dmn;
	struct conf_gen *gen;
	struct sched_runtime srt;
	struct http_server *http = NULL;
	struct control *ctl;
	struct control_env cenv;
	char err[512];
	long n;

	while ((ch = getopt(argc, argv, "c:dnhV")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'd': debug = 1; break;
		case 'n': check_only = 1; break;
		case 'V': printf("transitd %s\n", TRANSIT_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (conf_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("transitd", debug);
	if ((c = conf_load(conf_path)) == NULL)
		return 1;
	if (check_only) {
		/* warnings (stderr) about what the configuration makes of mail
		 * to postmaster; they do not fail the check */
		users = open_users(c, &ldap);
		recipient_check_postmaster(c, users);
		passwd_db_free(users);
		ldapdir_free(ldap);
		conf_print(c, stdout);
		conf_free(c);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0)
		log_fatal("libevent without thread support");
	if (mkdirs(c->server.spool, 0700) != 0)
		log_fatal("spool %s: %s", c->server.spool, strerror(errno));
	spool_lock = lock_spool(c->server.spool);

	/* generation 1: TLS keys and send secrets read while still root */
	if ((gen = gen_build(c, NULL, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	srt.is_local_ip = listeners_is_local_ip;
	if ((ls = listeners_bind(c, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	users = open_users(c, &ldap);
	aliases = alias_db_open(c->aliases_file);
	passwd_db_set_aliases(users, aliases);
	srt.users = users;
	if ((ctl = control_open(c, err, sizeof(err))) == NULL) /* as root: owner root */
		log_fatal("%s", err);
	drop_privileges(c);
	daemon_logs_start(c);

	if ((base = event_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	q = queue_open(c->server.spool, c->server.node, (enum queue_sync_mode)c->queue.sync_mode, base,
		       err, sizeof(err));
	if (q == NULL)
		log_fatal("queue: %s", err);
	srt.dns = dns_new(base, c->dns_servers, c->ndns_servers, err, sizeof(err));
	if (srt.dns == NULL)
		log_fatal("dns: %s", err);
	if (ldap)
		ldapdir_start(ldap, base); /* its workers answer the sessions' lookups */
	sched = sched_new(gen, &srt, base, q);
	n = queue_scan(q, recovered, sched);
	if (n < 0)
		log_fatal("queue: cannot read %s/queue", c->server.spool);

	memset(&sp, 0, sizeof(sp));
	sp.gen = gen;
	sp.base = base;
	sp.queue = q;
	sp.users = users;
	sp.dns = srt.dns;
	sp.is_local_ip = listeners_is_local_ip;
	sp.on_message = on_message;
	sp.on_message_arg = sched;
	srv = smtp_server_new(&sp);
	backpressure_start(c, base, queue_length, sched);
	listeners_start(ls, base, srv);
	tls_runtime_start(gen->tls, base); /* certificate bindings and expiry */
	for (size_t i = 0; i < c->nrcs; i++) /* every connector on /metrics, even at 0 */
		metrics_add(&metric_received, c->rcs[i].name, NULL, 0);

	memset(&st, 0, sizeof(st));
	st.base = base;
	st.ls = ls;
	st.dmn = &dmn;
	st.srv = srv;
	st.sched = sched;
	st.q = q;
	memset(&dmn, 0, sizeof(dmn));
	dmn.conf_path = conf_path;
	dmn.self = "/proc/self/exe";
	dmn.base = base;
	dmn.gen = gen; /* the daemon's reference, from gen_build() */
	dmn.ls = ls;
	dmn.srv = srv;
	dmn.sched = sched;
	snprintf(dmn.spool, sizeof(dmn.spool), "%s", c->server.spool);
	dmn.started = time(NULL);
	memset(&cenv, 0, sizeof(cenv));
	cenv.gen = &dmn.gen; /* the current generation, replaced by reloads */
	cenv.reload = reload_asked;
	cenv.reload_arg = &dmn;
	cenv.base = base;
	cenv.sched = sched;
	cenv.srv = srv;
	cenv.version = TRANSIT_VERSION;
	cenv.started = time(NULL);
	cenv.started_mono_ms = clock_mono_ms();
	control_start(ctl, base, &cenv);
	daemon_reload_record(&dmn, true, "");
	/* /metrics and /status: its thread asks the loop for a snapshot of the
	 * daemon's current generation (daemon/status.c) */
	if (c->control.http_enabled &&
	    (http = http_start(c, base, daemon_status_fill, &dmn, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	ev_term = evsignal_new(base, SIGTERM, on_signal, &st);
	ev_int = evsignal_new(base, SIGINT, on_signal, &st);
	ev_hup = evsignal_new(base, SIGHUP, on_hup, &dmn);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL)
		log_fatal("cannot create the signal events");
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	log_info("transitd %s started fqdn=%s node=%s users=%zu aliases=%zu",
		 TRANSIT_VERSION, c->server.fqdn, c->server.node, passwd_db_count(users),
		 alias_db_count(aliases));
	recipient_check_postmaster(c, users);

	event_base_dispatch(base);

	if (st.forced || !stop_quiet(&st)) {
		/* Threads may still be syncing, delivering or removing: free
		 * nothing they could use, just go (see the header comment). */
		log_info("transitd stopped without cleanup");
		tracking_flush(2000);
		protolog_flush(2000);
		log_flush(2000); /* _exit skips the atexit drain */
		_exit(0);
	}
	/* Order matters: nothing is in flight (stop_quiet), so the workers
	 * are joined (sched_free) before the queue they used is closed, and
	 * no commit callback is left to need a session or the scheduler. */
	daemon_reload_cancel(&dmn);
	http_stop(http); /* its thread no longer asks the loop for anything */
	listeners_free(st.ls);
	control_free(ctl);
	smtp_server_free(srv);
	backpressure_stop();
	sched_free(sched);
	queue_close(q);
	dns_free(srt.dns);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	if (st.poll)
		event_free(st.poll);
	if (st.hard)
		event_free(st.hard);
	passwd_db_free(users);
	ldapdir_free(ldap); /* after every worker that could ask it is joined */
	alias_db_free(aliases);
	event_base_free(base);
	tracking_close();
	protolog_close();
	log_info("transitd stopped");
	conf_gen_unref(dmn.gen); /* the last reference: sessions and deliveries are gone */
	metrics_reset();
	close(spool_lock);
	return 0;
}
