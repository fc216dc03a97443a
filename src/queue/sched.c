/*
 * sched.c - see sched.h. The life of a queue entry:
 *
 *   sched_add ──> ready list ──(kick: once per loop iteration)──> dispatch
 *   dispatch: route each pending recipient (route/route.h)
 *       mailbox    ──> a Maildir batch on a worker thread (one sync round per batch)
 *       connector  ──> its next-hop queue (remote.c: DNS, SMTP connections)
 *       no route / restriction broken ──> failed with the reason
 *   every outcome ──> sched_rcpt_result(): delivered | deferred | failed
 *   last part done ──> settle: DSNs owed (notify.c), final states written,
 *       removed when nothing is pending, else the retry timer (queue.retry)
 *
 * An entry is on the ready list, has parts in flight, or waits on its
 * retry timer: never two at once, so a recipient is never delivered twice
 * concurrently. Deferral details (attempts, next try, last error) are
 * kept in <spool>/defer/<qid> for transitctl and for the next start.
 */
#include "queue/sched_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/maildir.h"
#include "log/tracking.h"
#include "policy/recipient.h"
#include "queue/queue.h"
#include "queue/stats.h"
#include "route/route.h"
#include "smtp/cmd.h"
#include "util/clock.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct batch {
	struct sched *s;
	struct conf_gen *gen;	 /* routed with it; the workers read its conf */
	size_t n;
	struct maildir_job *jobs;
	struct qentry **owner;	 /* per job */
	char (*maildir)[512];	 /* per job */
	char (*qpath)[512];	 /* per job */
	struct batch *next;	 /* in-flight list, for shutdown */
};

static struct batch *batches_in_flight_list;

static void sched_dispatch(evutil_socket_t fd, short what, void *arg);

struct sched *sched_new(struct conf_gen *gen, const struct sched_runtime *rt,
			struct event_base *base, struct queue *q)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	const struct config *conf = gen->conf;

	sched_set_generation(s, gen);
	s->rt = rt;
	s->base = base;
	s->q = q;
	s->wq = workq_new(base, (int)conf->queue.delivery_threads);
	s->io = workq_new(base, 1);
	s->kick = event_new(base, -1, 0, sched_dispatch, s);
	if (s->kick == NULL)
		log_fatal("sched: cannot create the dispatch event");
	TAILQ_INIT(&s->ready_list);
	LIST_INIT(&s->all_list);
	str_copy(s->spool, conf->server.spool, sizeof(s->spool));
	{
		char d[4200];
		snprintf(d, sizeof(d), "%s/defer", s->spool);
		if (mkdir(d, 0700) != 0 && errno != EEXIST)
			log_warn("cannot create %s: %s", d, strerror(errno));
	}
	remote_init(s);
	admin_init(s);
	return s;
}

void sched_set_generation(struct sched *s, struct conf_gen *gen)
{
	conf_gen_ref(gen);
	conf_gen_unref(s->gen);
	s->gen = gen;
	s->conf = gen->conf;
}

size_t sched_count(const struct sched *s) { return s->count; }

void sched_make_ready(struct qentry *e)
{
	if (e->on_ready || e->parts || e->dsns)
		return;
	e->parked = false;
	TAILQ_INSERT_TAIL(&e->s->ready_list, e, ready);
	e->on_ready = true;
	event_active(e->s->kick, 0, 0);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_make_ready(arg);
}

/* ---- deferral file: <spool>/defer/<qid> ------------------------------------ */

static void defer_path(const struct sched *s, const char *qid, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/defer/%s", s->spool, qid);
}

static void defer_write(struct qentry *e)
{
	char path[4200], tmp[4300];
	FILE *f;
	size_t i;

	defer_path(e->s, e->env->qid, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "attempts %u\nnext %lld\nerror %s\n", e->attempts, (long long)e->next_try,
		e->last_error);
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->env->rcpt[i].state == RCPT_QUEUED && e->rt[i].diag[0])
			fprintf(f, "rcpt %zu %s\n", i, e->rt[i].diag);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

static void defer_read(struct qentry *e)
{
	char path[4200], line[800];
	FILE *f;

	defer_path(e->s, e->env->qid, path, sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		long long v;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "attempts %lld", &v) == 1 && v >= 0)
			e->attempts = (unsigned)v;
		else if (sscanf(line, "next %lld", &v) == 1)
			e->next_try = (time_t)v;
		else if (strncmp(line, "error ", 6) == 0)
			str_copy(e->last_error, line + 6, sizeof(e->last_error));
	}
	fclose(f);
}

/* ---- entries ----------------------------------------------------------------- */

uint64_t sched_entry_age(const struct qentry *e)
{
	uint64_t s = mono_elapsed_ms(e->mono_base, clock_mono_ms()) / 1000u;

	return e->age_base > UINT64_MAX - s ? UINT64_MAX : e->age_base + s;
}

/* The longest retry interval: no wait read back from a deferral note may
 * be longer (a note written before the clock stepped back says "in two
 * days" for what was "in 5 minutes"). */
static uint64_t longest_retry(const struct sched *s)
{
	uint64_t m = 0;
	size_t i;

	for (i = 0; i < s->conf->queue.nretry; i++)
		if (s->conf->queue.retry[i] > m)
			m = s->conf->queue.retry[i];
	return m;
}

/* Message tracking for one recipient of e: remote is the peer as the
 * SMTP client names it, "mx.example[192.0.2.1]:25", split into host and
 * address. */
static void track_rcpt(const struct qentry *e, size_t idx, const char *event, const char *via,
		       const char *remote, const char *status, const char *reply, const char *reason)
{
	const struct envelope *env = e->env;
	char host[256] = "", ip[64] = "";
	const char *lb = remote ? strchr(remote, '[') : NULL, *rb = lb ? strchr(lb, ']') : NULL;
	struct track_event ev = {
		.event = event,
		.qid = env->qid,
		.sender = env->sender,
		.recipient = env->rcpt[idx].addr,
		.connector = via,
		.status = status,
		.reply = reply,
		.reason = reason,
		.has_size = true,
		.size = env->content_len,
	};

	if (strncmp(via, "maildir", 7) == 0) { /* "maildir path=FILE": the file is the note */
		ev.connector = "mailbox";
		ev.reason = reason ? reason : via;
	}
	if (lb != NULL && rb != NULL && (size_t)(rb - lb) < sizeof(ip)) {
		snprintf(host, sizeof(host), "%.*s", (int)(lb - remote), remote);
		snprintf(ip, sizeof(ip), "%.*s", (int)(rb - lb - 1), lb + 1);
		ev.remote_host = host;
		ev.remote_ip = ip;
		ev.tls = e->rt[idx].tls[0] ? e->rt[idx].tls : NULL;
	} else if (remote != NULL && remote[0]) {
		ev.remote_host = remote;
	}
	if (strcmp(event, "DEFER") == 0)
		ev.attempt = (int)e->attempts + 1;
	tracking_event(&ev);
}

void sched_add(struct sched *s, struct envelope *env)
{
	struct qentry *e = xcalloc(1, sizeof(*e));
	time_t now = time(NULL);

	e->s = s;
	e->env = env;
	e->rt = xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(*e->rt));
	e->retry_timer = evtimer_new(s->base, retry_cb, e);
	if (e->retry_timer == NULL) /* out of memory, as xmalloc: the message is safe on disk */
		log_fatal("%s sched: cannot create the retry timer", env->qid);
	e->age_base = age_seconds(now, env->arrival);
	e->mono_base = clock_mono_ms();
	LIST_INSERT_HEAD(&s->all_list, e, all);
	s->count++;
	htable_put(s->byqid, env->qid, e);
	admin_note_added(e);
	defer_read(e);
	if (e->next_try > now) {
		struct timeval tv = {(time_t)wait_seconds(now, e->next_try, longest_retry(s)), 0};
		evtimer_add(e->retry_timer, &tv);
		return;
	}
	sched_make_ready(e);
}

void sched_submit(struct sched *s, struct envelope *env)
{
	tracking_event(&(struct track_event){.event = "SUBMIT",
					     .qid = env->qid,
					     .sender = env->sender,
					     .has_size = true,
					     .size = env->content_len,
					     .connector = env->connector});
	sched_add(s, env);
}

static void entry_free(struct qentry *e)
{
	LIST_REMOVE(e, all);
	htable_del(e->s->byqid, e->env->qid);
	if (e->on_ready)
		TAILQ_REMOVE(&e->s->ready_list, e, ready);
	e->s->count--;
	event_free(e->retry_timer);
	envelope_free(e->env);
	free(e->env);
	free(e->rt);
	free(e);
}

/* ---- queue file updates, off the loop ------------------------------------------ */

/* One update of state bytes in a queue file, run on the scheduler's file
 * thread (s->io: one thread, so updates of one file land in the order
 * they were made: a DELAY mark N never overtakes the D or F after it).
 * The job owns all it needs (the path, not the queue or the entry), logs
 * its own failure and frees itself. */
struct file_update {
	char path[PATH_MAX];
	char qid[QID_MAX];
	char state;
	size_t n;
	uint64_t state_off[];
};

static void file_update_work(void *arg)
{
	struct file_update *u = arg;

	/* ENOENT: removed meanwhile (every recipient was final);
	 * ENOTSUP: a version 1 file cannot record a DELAY notice */
	if (queue_file_set_states(u->path, u->state_off, u->n, u->state) != 0 && errno != ENOENT &&
	    !(errno == ENOTSUP && u->state == QUEUE_STATE_DELAY_NOTIFIED))
		log_warn("%s cannot record recipient state %c: %s", u->qid, u->state,
			 strerror(errno));
	free(u);
}

void sched_file_update(struct sched *s, const char *qid, const uint64_t *state_off, size_t n,
		       char state)
{
	struct file_update *u = xcalloc(1, sizeof(*u) + n * sizeof(uint64_t));

	queue_path(s->q, qid, u->path, sizeof(u->path));
	str_copy(u->qid, qid, sizeof(u->qid));
	u->state = state;
	u->n = n;
	memcpy(u->state_off, state_off, n * sizeof(uint64_t));
	workq_submit(s->io, file_update_work, NULL, u);
}

void sched_write_state(struct qentry *e, size_t idx, char state)
{
	sched_file_update(e->s, e->env->qid, &e->env->rcpt[idx].state_off, 1, state);
	e->env->rcpt[idx].state = state;
	e->env->rcpt[idx].delay_notified = false;
	e->rt[idx].outcome = 0;
	e->rt[idx].dsn_due = false;
}

static bool notify_wants(const struct envelope *env, size_t i, unsigned what)
{
	unsigned n = env->rcpt[i].notify;

	if (env->sender[0] == '\0' || (n & DSN_NOTIFY_NEVER))
		return false;
	if (n == DSN_NOTIFY_UNSPEC)
		return what != DSN_NOTIFY_SUCCESS; /* RFC 3461 4.1: FAILURE (and DELAY) */
	return (n & what) != 0;
}

/* The metrics label of where an outcome came from: the send connector's
 * name, "local" for the mailbox store, or the scheduler step that decided
 * ("route", "expire"). */
static const char *outcome_connector(const char *via)
{
	if (via == NULL)
		return "none";
	if (strncmp(via, "maildir", 7) == 0)
		return "local";
	return via;
}

/* /metrics counters and the status page's recent failures. */
static void sched_count_outcome(const struct qentry *e, size_t idx, enum rcpt_outcome o,
				const char *via)
{
	const char *conn = outcome_connector(via);
	const struct rcpt_rt *rt = &e->rt[idx];

	if (o == OUT_DELIVERED || o == OUT_RELAYED) {
		metrics_add(&metric_delivered, conn, NULL, 1);
		return;
	}
	metrics_add(o == OUT_DEFERRED ? &metric_deferred : &metric_failed, conn, NULL, 1);
	sched_recent_note(o == OUT_DEFERRED ? "deferred" : "failed", e->env->qid, e->env->sender,
			  e->env->rcpt[idx].addr, conn, rt->status, rt->diag);
}

void sched_rcpt_result(struct qentry *e, size_t idx, enum rcpt_outcome o, const char *status,
		       const char *diag, const char *remote_mta, const char *via)
{
	struct envelope *env = e->env;
	struct rcpt_rt *rt = &e->rt[idx];
	unsigned long long delay = (unsigned long long)sched_entry_age(e);
	char q[700];

	rt->busy = false;
	rt->last_attempt = time(NULL);
	str_copy(rt->status, status ? status : "", sizeof(rt->status));
	str_copy(rt->diag, diag ? diag : "", sizeof(rt->diag));
	str_copy(rt->remote_mta, remote_mta ? remote_mta : "", sizeof(rt->remote_mta));
	log_quote(diag ? diag : "", q, sizeof(q));
	sched_count_outcome(e, idx, o, via);

	switch (o) {
	case OUT_DELIVERED:
	case OUT_RELAYED:
		log_info("%s %s to=<%s> from=<%s> via=%s%s%s delay=%llus status=%s reply=%s", env->qid,
			 o == OUT_DELIVERED ? "deliver" : "send", env->rcpt[idx].addr, env->sender,
			 via, remote_mta ? " relay=" : "", remote_mta ? remote_mta : "", delay,
			 rt->status, q);
		track_rcpt(e, idx, o == OUT_DELIVERED ? "DELIVER" : "SEND", via, remote_mta, rt->status,
			   diag, NULL);
		rt->action = o == OUT_DELIVERED ? "delivered" : "relayed";
		if (notify_wants(env, idx, DSN_NOTIFY_SUCCESS)) {
			rt->outcome = RCPT_DELIVERED;
			rt->dsn_due = true;
		} else {
			sched_write_state(e, idx, RCPT_DELIVERED);
		}
		break;
	case OUT_DEFERRED:
		e->deferred = true;
		str_copy(e->last_error, diag ? diag : "", sizeof(e->last_error));
		log_info("%s defer to=<%s> from=<%s> via=%s%s%s attempt=%u delay=%llus status=%s reason=%s",
			 env->qid, env->rcpt[idx].addr, env->sender, via, remote_mta ? " relay=" : "",
			 remote_mta ? remote_mta : "", e->attempts + 1, delay, rt->status, q);
		track_rcpt(e, idx, "DEFER", via, remote_mta, rt->status, diag, NULL);
		break;
	case OUT_FAILED:
		log_info("%s fail to=<%s> from=<%s> via=%s%s%s delay=%llus status=%s reason=%s", env->qid,
			 env->rcpt[idx].addr, env->sender, via, remote_mta ? " relay=" : "",
			 remote_mta ? remote_mta : "", delay, rt->status, q);
		/* expire_entry() gives up with via "expire" */
		track_rcpt(e, idx, strcmp(via, "expire") == 0 ? "EXPIRE" : "FAIL", via, remote_mta,
			   rt->status, diag, NULL);
		rt->action = "failed";
		if (notify_wants(env, idx, DSN_NOTIFY_FAILURE)) {
			rt->outcome = RCPT_FAILED;
			rt->dsn_due = true;
		} else {
			sched_write_state(e, idx, RCPT_FAILED);
		}
		break;
	}
	rt->tls[0] = '\0'; /* this attempt's: told by remote.c before each result */
}

static bool pending_work(const struct qentry *e)
{
	size_t i;
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->env->rcpt[i].state == RCPT_QUEUED && e->rt[i].outcome == 0)
			return true;
	return false;
}

/* Removing a file makes the kernel free its blocks, which on ext4 waits
 * for a journal commit already in progress (our own group sync): that
 * must never stall the event loop, so unlinks run on a worker. A crash
 * before it leaves a file whose recipients are all final; recovery
 * removes it. */
struct removal {
	char path[PATH_MAX]; /* the job's own: it needs no struct queue */
	char qid[QID_MAX];
	char defer[4200];
	char frozen[4200];
};

static void removal_work(void *arg)
{
	struct removal *r = arg;

	if (unlink(r->path) != 0 && errno != ENOENT)
		log_warn("%s cannot remove queue file: %s", r->qid, strerror(errno));
	unlink(r->defer);
	unlink(r->frozen);
	free(r);
}

void sched_entry_remove(struct qentry *e)
{
	struct sched *s = e->s;
	struct removal *r = xmalloc(sizeof(*r));

	queue_path(s->q, e->env->qid, r->path, sizeof(r->path));
	memcpy(r->qid, e->env->qid, sizeof(r->qid));
	defer_path(s, e->env->qid, r->defer, sizeof(r->defer));
	admin_frozen_path(s->spool, e->env->qid, r->frozen, sizeof(r->frozen));
	workq_submit(s->wq, removal_work, NULL, r);
	log_info("%s removed", e->env->qid);
	entry_free(e);
}

/* All parts are back: DSNs, removal, or the next try. */
void sched_settle(struct qentry *e)
{
	struct sched *s = e->s;
	uint64_t wait, age, expire = s->conf->queue.expire;

	if (e->parts || e->dsns)
		return;
	if (notify_send_due(e))
		return; /* comes back here when the DSNs are committed */
	if (envelope_pending(e->env) == 0) {
		sched_entry_remove(e);
		return;
	}
	if (!e->deferred) {
		/* recipients left over (a full batch): go again, unless what is
		 * left waits for a suspended next hop (admin.c: resume wakes it) */
		if (pending_work(e) && e->held)
			e->parked = true;
		else if (pending_work(e))
			sched_make_ready(e);
		else
			log_warn("%s nothing to do but recipients pending", e->env->qid);
		return;
	}
	e->deferred = false;
	wait = s->conf->queue.retry[e->attempts < s->conf->queue.nretry ? e->attempts
									 : s->conf->queue.nretry - 1];
	e->attempts++;
	age = sched_entry_age(e);
	if (age >= expire || wait > expire - age) {
		/* the next try would be past expiry: wake up at expiry to give up */
		wait = (age < expire ? expire - age : 0) + 1;
	}
	e->next_try = time(NULL) + (time_t)wait;
	defer_write(e);
	notify_delay_if_due(e);
	{
		struct timeval tv = {(time_t)wait, 0};
		evtimer_add(e->retry_timer, &tv);
	}
}

void sched_part_done(struct qentry *e)
{
	if (e->parts > 0)
		e->parts--;
	sched_settle(e);
}

static void expire_entry(struct qentry *e)
{
	size_t i;
	char diag[700];

	snprintf(diag, sizeof(diag), "message expired after %llus in queue; last error: %s",
		 (unsigned long long)e->s->conf->queue.expire,
		 e->last_error[0] ? e->last_error : "none");
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->env->rcpt[i].state == RCPT_QUEUED && e->rt[i].outcome == 0) {
			const char *keep = e->rt[i].diag[0] ? e->rt[i].diag : diag;
			char d[sizeof(e->rt[i].diag)];
			str_copy(d, keep, sizeof(d));
			sched_rcpt_result(e, i, OUT_FAILED, "4.4.7", d,
					  e->rt[i].remote_mta[0] ? e->rt[i].remote_mta : NULL, "expire");
		}
}

/* ---- local batches ------------------------------------------------------------ */

static void batch_free(struct batch *b)
{
	struct batch **pp;

	for (pp = &batches_in_flight_list; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	free(b->jobs);
	free(b->owner);
	free(b->maildir);
	free(b->qpath);
	conf_gen_unref(b->gen);
	free(b);
}

static void batch_work(void *arg)
{
	struct batch *b = arg;
	maildir_deliver_batch(b->jobs, b->n);
}

static void batch_done(void *arg)
{
	struct batch *b = arg;
	struct sched *s = b->s;
	size_t i;
	char via[600];

	for (i = 0; i < b->n; i++) {
		struct maildir_job *j = &b->jobs[i];
		struct qentry *e = b->owner[i];
		char status[16] = "";

		sscanf(j->error, "%15[0-9.]", status);
		if (j->status == 0) {
			snprintf(via, sizeof(via), "maildir path=%s", j->path);
			sched_rcpt_result(e, j->rcpt_index, OUT_DELIVERED, "2.0.0", "delivered to maildir",
					  NULL, via);
		} else {
			sched_rcpt_result(e, j->rcpt_index, j->status > 0 ? OUT_DEFERRED : OUT_FAILED,
					  status[0] ? status : (j->status > 0 ? "4.3.0" : "5.3.0"),
					  j->error, NULL, "maildir");
		}
	}
	/* one part per distinct entry */
	for (i = 0; i < b->n; i++) {
		size_t k;
		bool first = true;
		for (k = 0; k < i; k++)
			if (b->owner[k] == b->owner[i])
				first = false;
		if (first)
			sched_part_done(b->owner[i]);
	}
	s->batches_in_flight--;
	batch_free(b);
	if (!TAILQ_EMPTY(&s->ready_list))
		event_active(s->kick, 0, 0);
}

static struct batch *batch_new(struct sched *s, size_t cap)
{
	struct batch *b = xcalloc(1, sizeof(*b));
	b->s = s;
	b->gen = conf_gen_ref(s->gen);
	b->jobs = xcalloc(cap, sizeof(*b->jobs));
	b->owner = xcalloc(cap, sizeof(*b->owner));
	b->maildir = xcalloc(cap, sizeof(*b->maildir));
	b->qpath = xcalloc(cap, sizeof(*b->qpath));
	return b;
}

/* For the Maildir agent, on a worker thread: conf is read-only and the
 * passwd table has its own lock. */
static int mailbox_known(void *arg, const char *rcpt)
{
	const struct batch *b = arg;
	return recipient_mailbox_lookup(b->gen->conf, b->s->rt->users, rcpt); /* may ask LDAP */
}

static void batch_add(struct batch *b, struct qentry *e, size_t i, const char *local,
		      const char *domain)
{
	struct envelope *env = e->env;
	struct maildir_job *j = &b->jobs[b->n];

	memset(j, 0, sizeof(*j));
	if (!recipient_mailbox_possible(b->gen->conf, b->s->rt->users, env->rcpt[i].addr)) {
		/* never a path, let alone a directory, for an unknown address */
		sched_rcpt_result(e, i, OUT_FAILED, "5.1.1",
				  "550 5.1.1 no such mailbox: the directory does not know this address",
				  NULL, "maildir");
		return;
	}
	if (maildir_expand(b->gen->conf->maildir, local, domain, b->maildir[b->n],
			   sizeof(b->maildir[b->n])) != 0) {
		sched_rcpt_result(e, i, OUT_FAILED, "5.3.5", "mailbox path does not fit", NULL,
				  "maildir");
		return;
	}
	queue_path(b->s->q, env->qid, b->qpath[b->n], sizeof(b->qpath[b->n]));
	j->queue_path = b->qpath[b->n];
	j->maildir = b->maildir[b->n];
	j->content_off = env->content_off;
	j->content_len = env->content_len;
	j->return_path = env->sender;
	j->rcpt = env->rcpt[i].addr;
	j->qid = env->qid;
	j->rcpt_index = (unsigned)i;
	j->arrival = env->arrival;
	j->mailbox_known = mailbox_known;
	j->known_arg = b;
	for (size_t k = 0; k < b->n; k++)
		if (b->owner[k] == e)
			goto counted;
	e->parts++; /* one part per entry per batch; batch_done releases it */
counted:
	b->owner[b->n] = e;
	b->n++;
	e->rt[i].busy = true;
}

/* ---- dispatch ------------------------------------------------------------------- */

/* Split "local@domain" at the last '@'. */
static bool split_addr(const char *addr, char *local, size_t lsz, const char **domain)
{
	const char *at = strrchr(addr, '@');
	size_t n;

	if (at == NULL)
		return false;
	n = (size_t)(at - addr);
	if (n >= lsz)
		return false;
	memcpy(local, addr, n);
	local[n] = '\0';
	*domain = at + 1;
	return true;
}

/* Route every pending recipient of e. Local ones go into *bp (a new
 * batch is submitted when it fills); remote ones into next-hop queues
 * grouped per (connector, domain). */
static void dispatch_entry(struct sched *s, struct qentry *e, struct batch **bp, size_t cap)
{
	struct envelope *env = e->env;
	size_t i, k, *idx = xcalloc(env->nrcpt, sizeof(size_t));
	bool *done = xcalloc(env->nrcpt, sizeof(bool));

	e->parts++; /* hold the entry while dispatching */
	e->held = false;
	for (i = 0; i < env->nrcpt; i++) {
		char local[256], ldom[256];
		const char *domain;
		struct route r;
		struct route_verdict v;
		size_t n = 0;

		if (done[i] || env->rcpt[i].state != RCPT_QUEUED || e->rt[i].outcome || e->rt[i].busy)
			continue;
		if (!split_addr(env->rcpt[i].addr, local, sizeof(local), &domain)) {
			sched_rcpt_result(e, i, OUT_FAILED, "5.1.3",
					  "550 5.1.3 recipient address has no domain", NULL, "route");
			continue;
		}
		str_copy(ldom, domain, sizeof(ldom));
		str_lower(ldom);
		route_domain(s->conf, ldom, &r);
		if ((r.kind == ROUTE_MAILBOX && admin_hop_suspended(s, "mailbox", ldom)) ||
		    (r.kind == ROUTE_CONNECTOR && admin_hop_suspended(s, r.sc->name, ldom))) {
			e->held = true; /* stays queued: transitctl queue resume */
			continue;
		}
		if (e->attempts == 0 && r.kind != ROUTE_CONNECTOR) {
			log_info("%s route to=<%s> next-hop=%s", env->qid, env->rcpt[i].addr,
				 r.kind == ROUTE_MAILBOX ? "mailbox" : "none");
			track_rcpt(e, i, "ROUTE", r.kind == ROUTE_MAILBOX ? "mailbox" : "none", NULL,
				   NULL, NULL, r.kind == ROUTE_MAILBOX ? "mailbox" : "no route");
		}
		if (r.kind == ROUTE_MAILBOX) {
			if (*bp == NULL)
				*bp = batch_new(s, cap);
			batch_add(*bp, e, i, local, ldom);
			if ((*bp)->n >= cap) {
				/* full: submit now, keep going with a fresh one */
				(*bp)->next = batches_in_flight_list;
				batches_in_flight_list = *bp;
				s->batches_in_flight++;
				workq_submit(s->wq, batch_work, batch_done, *bp);
				*bp = NULL;
			}
			continue;
		}
		if (r.kind == ROUTE_NONE) {
			sched_rcpt_result(e, i, OUT_FAILED, "5.4.4",
					  "550 5.4.4 unable to route: no send connector for this domain",
					  NULL, "route");
			continue;
		}
		if (!route_check(r.sc, env->sender, env->content_len, &v)) {
			char diag[320];
			snprintf(diag, sizeof(diag), "%d %s %s", v.code, v.enh, v.text);
			sched_rcpt_result(e, i, OUT_FAILED, v.enh, diag, NULL, r.sc->name);
			continue;
		}
		/* all recipients of this message for the same connector and domain */
		for (k = i; k < env->nrcpt; k++) {
			const char *d2 = strrchr(env->rcpt[k].addr, '@');
			if (done[k] || env->rcpt[k].state != RCPT_QUEUED || e->rt[k].outcome ||
			    e->rt[k].busy || d2 == NULL || str_casecmp(d2 + 1, ldom) != 0)
				continue;
			idx[n++] = k;
			done[k] = true;
			e->rt[k].busy = true;
			if (e->attempts == 0) {
				char nh[600];
				log_info("%s route to=<%s> next-hop=%s:%s connector=%s", env->qid,
					 env->rcpt[k].addr, r.sc->name, ldom, r.sc->name);
				snprintf(nh, sizeof(nh), "next-hop %s:%s", r.sc->name, ldom);
				track_rcpt(e, k, "ROUTE", r.sc->name, NULL, NULL, NULL, nh);
			}
		}
		e->parts++;
		remote_enqueue(s, e, r.sc, ldom, idx, n);
	}
	free(idx);
	free(done);
	sched_part_done(e); /* release the dispatch hold */
}

static void sched_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	size_t cap = s->conf->queue.max_batch;
	struct batch *b = NULL;
	(void)fd;
	(void)what;

	if (s->stopped)
		return; /* shutting down: the ready entries wait for the next start */
	while (!TAILQ_EMPTY(&s->ready_list) &&
	       s->batches_in_flight < s->conf->queue.delivery_threads * 2) {
		struct qentry *e = TAILQ_FIRST(&s->ready_list);

		TAILQ_REMOVE(&s->ready_list, e, ready);
		e->on_ready = false;
		if (e->frozen) {
			e->parked = true; /* transitctl queue thaw makes it ready again */
			continue;
		}
		if (sched_entry_age(e) >= s->conf->queue.expire) {
			e->parts++;
			expire_entry(e);
			sched_part_done(e);
			continue;
		}
		dispatch_entry(s, e, &b, cap);
	}
	if (b != NULL) {
		b->next = batches_in_flight_list;
		batches_in_flight_list = b;
		s->batches_in_flight++;
		workq_submit(s->wq, batch_work, batch_done, b);
	}
}

/* ---- shutdown ----------------------------------------------------------------- */

void sched_stop(struct sched *s) { s->stopped = true; }

bool sched_idle(const struct sched *s)
{
	return s->batches_in_flight == 0 && workq_pending(s->wq) == 0;
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	/* Workers finish what they run; their results are not recorded, so
	 * those recipients are tried again at the next start (and Maildir's
	 * deterministic names make that a no-op). */
	workq_free(s->wq);
	workq_free(s->io); /* the state updates still queued are written */
	notify_free(s);
	while (batches_in_flight_list)
		batch_free(batches_in_flight_list);
	remote_free(s);
	while (!LIST_EMPTY(&s->all_list))
		entry_free(LIST_FIRST(&s->all_list));
	admin_free(s);
	event_free(s->kick);
	conf_gen_unref(s->gen);
	free(s);
}
