/*
 * notify.c - the DSNs the scheduler owes senders (RFC 3461 semantics; the
 * message itself is built by mail/dsn.c per RFC 3464).
 *
 * Never to the null sender (RFC 5321 6.1 / RFC 3461 6.2: no DSN about a
 * DSN), only for recipients whose NOTIFY asks (FAILURE by default,
 * SUCCESS when asked, DELAY by default or when asked). A DSN is a queued
 * message like any other: it is committed through the queue before the
 * recipients it reports are marked final, so a crash repeats an attempt
 * rather than losing a bounce. A bounce that cannot be written or synced
 * (a full spool) leaves its recipients queued for the next try; the
 * queue's DSNs are never refused by back pressure (they do not come
 * through SMTP), which keeps disk-free-high free for them.
 *
 * Building a DSN reads the original from its queue file (the headers, or
 * with RET=FULL up to DSN_MAX_FULL of content): that runs on the worker
 * pool (util/workq.c), never on the event loop. The job owns a deep copy
 * of everything dsn_build() reads and hands the finished message back in
 * its done() callback on the loop, which queues it. While a FAILURE or
 * SUCCESS DSN is being built or committed the entry is held (e->dsns); a
 * DELAY notice holds nothing (its job carries what it needs). Jobs in
 * flight are listed in the scheduler so sched_free() frees them after the
 * workers are joined.
 */
#include "queue/sched_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/tracking.h"
#include "mail/dsn.h"
#include "policy/recipient.h"
#include "queue/queue.h"
#include "smtp/cmd.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define DSN_MAX_FULL (10u << 20) /* RET=FULL above this returns the headers only */

/* One DSN from the moment it is decided until it is committed. */
struct dsn_job {
	struct sched *s;
	struct qentry *e;    /* FAILURE/SUCCESS: held by e->dsns; DELAY: NULL */
	char state;	     /* RCPT_FAILED, RCPT_DELIVERED; 0 for DELAY */
	char qid[QID_MAX];   /* the original's */
	struct dsn_info info; /* every string in it is owned by the job (strs) */
	struct dsn_rcpt *r;
	char **strs;
	size_t nstrs;
	struct buf out;	     /* worker: the message; loop: queued from it */
	int rc;
	char err[256];
	struct dsn_job *prev, *next; /* s->dsn_jobs: in flight, for shutdown */
	size_t n;
	size_t *idx;	     /* [n] recipient indexes in the original */
	uint64_t *state_off; /* [n] their state bytes (DELAY: marked N after commit) */
};

/* Where a DSN about a message from sender goes: the sender, unless that
 * names a local mailbox the directory does not know (anyone can write such
 * a MAIL FROM); then, like any DSN that cannot be delivered, to
 * server.postmaster, never to a new mailbox. */
static const char *dsn_recipient(struct sched *s, const char *qid, const char *sender)
{
	if (!recipient_is_local(s->conf, sender) ||
	    recipient_mailbox_possible(s->conf, s->rt->users, sender))
		return sender;
	log_info("%s dsn to=<%s> reason=unknown-local-sender sender=<%s>", qid,
		 s->conf->server.postmaster, sender);
	return s->conf->server.postmaster;
}

static const char *job_own(struct dsn_job *j, const char *v)
{
	if (v == NULL)
		return NULL;
	j->strs = xrealloc(j->strs, (j->nstrs + 1) * sizeof(*j->strs));
	return j->strs[j->nstrs++] = xstrdup(v);
}

static void job_free(struct dsn_job *j)
{
	size_t i;

	for (i = 0; i < j->nstrs; i++)
		free(j->strs[i]);
	free(j->strs);
	free(j->r);
	free(j->idx);
	free(j->state_off);
	buf_free(&j->out);
	free(j);
}

static void job_unlink(struct dsn_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		j->s->dsn_jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

void notify_free(struct sched *s)
{
	/* the workers are joined: nobody else holds these */
	while (s->dsn_jobs) {
		struct dsn_job *j = s->dsn_jobs;
		job_unlink(j);
		job_free(j);
	}
}

/* Queue msg (a whole RFC 5322 message) from <> to the original sender. */
static int enqueue_dsn(struct sched *s, const char *to, bool smtputf8, const struct buf *msg,
		       char qid_out[QID_MAX], queue_commit_cb cb, void *arg)
{
	struct envelope env;
	struct queue_writer *w;

	envelope_init(&env);
	queue_new_qid(s->q, env.qid);
	env.arrival = time(NULL);
	envelope_set_str(&env.sender, "");
	envelope_set_str(&env.connector, "dsn");
	envelope_set_str(&env.client_addr, "127.0.0.1");
	env.smtputf8 = smtputf8;
	env.body = BODY_8BITMIME;
	envelope_add_rcpt(&env, to, NULL, DSN_NOTIFY_NEVER);
	memcpy(qid_out, env.qid, QID_MAX);
	w = queue_writer_new(s->q, &env);
	envelope_free(&env);
	if (w == NULL)
		return -1;
	if (queue_writer_write(w, msg->data, msg->len) != 0) {
		int e = errno;

		queue_writer_abort(w);
		errno = e;
		return -1;
	}
	queue_writer_commit(w, cb, arg);
	return 0;
}

/* A job with its own copy of what dsn_build() will read. */
static struct dsn_job *job_new(struct qentry *e, enum dsn_kind kind, char state, const size_t *idx,
			       size_t n)
{
	struct sched *s = e->s;
	struct dsn_job *j = xcalloc(1, sizeof(*j));
	struct dsn_info *info = &j->info;
	char path[4200], msgid[QID_MAX + 300], host[256];
	size_t i;

	j->s = s;
	j->state = state;
	j->n = n;
	j->out = (struct buf)BUF_INIT;
	memcpy(j->qid, e->env->qid, QID_MAX);
	j->idx = xcalloc(n, sizeof(*j->idx));
	j->state_off = xcalloc(n, sizeof(*j->state_off));
	j->r = xcalloc(n, sizeof(*j->r));
	for (i = 0; i < n; i++) {
		const struct rcpt_rt *rt = &e->rt[idx[i]];
		struct dsn_rcpt *r = &j->r[i];

		j->idx[i] = idx[i];
		j->state_off[i] = e->env->rcpt[idx[i]].state_off;
		/* "mx1.partner.test[192.0.2.1]:25" in logs; RFC 3464 2.3.5 wants the name */
		str_copy(host, rt->remote_mta, sizeof(host));
		host[strcspn(host, "[")] = '\0';
		r->addr = job_own(j, e->env->rcpt[idx[i]].addr);
		r->orcpt = job_own(j, e->env->rcpt[idx[i]].orcpt);
		r->action = job_own(j, kind == DSN_DELAY ? "delayed" : rt->action);
		r->status = job_own(j, rt->status[0] ? rt->status
					 : (kind == DSN_DELAY ? "4.0.0" : "5.0.0"));
		r->remote_mta = host[0] ? job_own(j, host) : NULL;
		r->diagnostic = job_own(j, rt->diag[0] ? rt->diag
					    : (kind == DSN_DELAY ? e->last_error : NULL));
		r->last_attempt = rt->last_attempt;
	}
	queue_path(s->q, e->env->qid, path, sizeof(path));
	snprintf(msgid, sizeof(msgid), "<%s.dsn@%s>", e->env->qid, s->conf->server.fqdn);
	info->kind = kind;
	info->reporting_mta = job_own(j, s->conf->server.fqdn);
	info->qid = j->qid;
	info->envid = job_own(j, e->env->envid);
	info->sender = job_own(j, e->env->sender);
	info->arrival = e->env->arrival;
	info->retry_until = e->env->arrival + (time_t)s->conf->queue.expire;
	info->ret = e->env->ret;
	info->rcpt = j->r;
	info->nrcpt = n;
	info->content_path = job_own(j, path);
	info->content_off = e->env->content_off;
	info->content_len = e->env->content_len;
	info->max_full_size = DSN_MAX_FULL;
	info->template_path = job_own(j, s->conf->dsn_template);
	info->message_id = job_own(j, msgid);
	info->smtputf8 = e->env->smtputf8;
	return j;
}

/* On a worker: only the job's own memory and the files it names. */
static void job_build(void *arg)
{
	struct dsn_job *j = arg;

	j->rc = dsn_build(&j->info, &j->out, j->err, sizeof(j->err));
}

static void job_start(struct dsn_job *j, void (*done)(void *arg))
{
	struct sched *s = j->s;

	j->next = s->dsn_jobs;
	if (j->next)
		j->next->prev = j;
	s->dsn_jobs = j;
	workq_submit(s->wq, job_build, done, j);
}

/* ---- FAILURE and SUCCESS ------------------------------------------------------ */

/* No DSN could be queued (the spool is full, or out of descriptors). A
 * bounce: the recipients stay queued, undecided, and are tried again
 * later, so the DSN is written then; a full disk never loses a bounce. A
 * success notice is not worth delivering the message twice: the
 * deliveries are recorded without it. */
static void dsn_retry_later(struct qentry *e, const struct dsn_job *j)
{
	size_t i;

	if (j->state == RCPT_DELIVERED) {
		log_warn("%s success DSN not sent; recording the deliveries", e->env->qid);
		for (i = 0; i < j->n; i++)
			sched_write_state(e, j->idx[i], j->state);
		return;
	}
	for (i = 0; i < j->n; i++) {
		e->rt[j->idx[i]].outcome = 0;
		e->rt[j->idx[i]].dsn_due = false;
	}
	e->deferred = true;
}

/* Message tracking: DSN of kind about the recipients idx[0..n) of orig,
 * queued as dsn (to orig's sender). */
static void track_dsn(const struct envelope *orig, const char *kind, const struct envelope *dsn,
		      const size_t *idx, size_t n)
{
	const char **rcpts = xcalloc(n ? n : 1, sizeof(char *));

	for (size_t i = 0; i < n; i++)
		rcpts[i] = orig->rcpt[idx[i]].addr;
	tracking_event(&(struct track_event){.event = "DSN",
					     .qid = orig->qid,
					     .sender = orig->sender,
					     .recipients = rcpts,
					     .nrecipients = n,
					     .reason = kind,
					     .related_qid = dsn->qid});
	free(rcpts);
}

static void dsn_committed(void *arg, int error, struct envelope *env)
{
	struct dsn_job *j = arg;
	struct qentry *e = j->e;
	size_t i;

	e->dsns--;
	if (error) {
		log_warn("%s DSN commit failed: %s", e->env->qid, strerror(error));
		dsn_retry_later(e, j);
	} else {
		log_info("%s dsn kind=%s dsn-id=%s to=<%s> recipients=%zu", e->env->qid,
			 j->state == RCPT_FAILED ? "failure" : "success", env->qid, env->rcpt[0].addr,
			 j->n);
		track_dsn(e->env, j->state == RCPT_FAILED ? "failure" : "success", env, j->idx, j->n);
		for (i = 0; i < j->n; i++)
			sched_write_state(e, j->idx[i], j->state);
		sched_submit(j->s, env);
	}
	job_free(j);
	sched_settle(e);
}

/* Built (on the loop again): queue it, or record the outcome without it. */
static void dsn_built(void *arg)
{
	struct dsn_job *j = arg;
	struct qentry *e = j->e;
	char qid[QID_MAX];
	size_t i;

	job_unlink(j);
	if (j->rc != 0) {
		/* the DSN cannot be made (the original is unreadable): record
		 * the outcome anyway, loudly */
		log_warn("%s cannot build DSN: %s", e->env->qid, j->err);
		log_warn("%s DSN not sent (%s); recording final states", e->env->qid, j->err);
		for (i = 0; i < j->n; i++)
			sched_write_state(e, j->idx[i], j->state);
		e->dsns--;
		job_free(j);
		sched_settle(e);
		return;
	}
	if (enqueue_dsn(j->s, dsn_recipient(j->s, e->env->qid, e->env->sender), e->env->smtputf8,
			&j->out, qid, dsn_committed, j) != 0) {
		/* it cannot be written now (a full spool): try again later */
		log_warn("%s DSN write failed: %s%s", e->env->qid, strerror(errno),
			 j->state == RCPT_FAILED ? "; the recipients stay queued" : "");
		dsn_retry_later(e, j);
		e->dsns--;
		job_free(j);
		sched_settle(e);
		return;
	}
	buf_free(&j->out); /* the writer has it */
}

static bool send_kind(struct qentry *e, char state, enum dsn_kind kind)
{
	struct dsn_job *j;
	size_t i, n = 0, *idx = xcalloc(e->env->nrcpt ? e->env->nrcpt : 1, sizeof(*idx));

	for (i = 0; i < e->env->nrcpt; i++)
		if (e->rt[i].dsn_due && e->rt[i].outcome == state)
			idx[n++] = i;
	if (n == 0) {
		free(idx);
		return false;
	}
	j = job_new(e, kind, state, idx, n);
	free(idx);
	j->e = e;
	e->dsns++; /* until dsn_committed, or dsn_built gives up */
	job_start(j, dsn_built);
	return true;
}

bool notify_send_due(struct qentry *e)
{
	bool a = send_kind(e, RCPT_FAILED, DSN_FAILURE);
	bool b = send_kind(e, RCPT_DELIVERED, DSN_SUCCESS);
	return a || b;
}

/* ---- DELAY ---------------------------------------------------------------------- */

/* Committed: mark the reported recipients in the original's file. The
 * entry may be gone by now (delivered and removed meanwhile: the file is
 * gone too and nothing is marked). */
static void delay_committed(void *arg, int error, struct envelope *env)
{
	struct dsn_job *j = arg;

	if (error) {
		log_warn("%s delay DSN commit failed: %s", j->qid, strerror(error));
	} else {
		/* A crash before this is written sends the notice once more
		 * at the next start (at least once, like every DSN). */
		sched_file_update(j->s, j->qid, j->state_off, j->n, QUEUE_STATE_DELAY_NOTIFIED);
		sched_submit(j->s, env);
	}
	job_free(j);
}

static void delay_built(void *arg)
{
	struct dsn_job *j = arg;
	char qid[QID_MAX];
	const char *to;

	job_unlink(j);
	if (j->rc != 0) {
		log_warn("%s cannot build DSN: %s", j->qid, j->err);
	} else if (enqueue_dsn(j->s, (to = dsn_recipient(j->s, j->qid, j->info.sender)),
			       j->info.smtputf8, &j->out, qid, delay_committed, j) == 0) {
		log_info("%s dsn kind=delay dsn-id=%s to=<%s> recipients=%zu", j->qid, qid, to,
			 j->n);
		tracking_event(&(struct track_event){.event = "DSN",
						     .qid = j->qid,
						     .sender = j->info.sender,
						     .reason = "delay",
						     .related_qid = qid});
		buf_free(&j->out);
		return;
	}
	job_free(j);
}

void notify_delay_if_due(struct qentry *e)
{
	struct sched *s = e->s;
	size_t i, n = 0, *idx;

	if (e->env->sender[0] == '\0' || s->conf->queue.delay_notice == 0 ||
	    sched_entry_age(e) < s->conf->queue.delay_notice)
		return;
	idx = xcalloc(e->env->nrcpt ? e->env->nrcpt : 1, sizeof(*idx));
	for (i = 0; i < e->env->nrcpt; i++) {
		unsigned notify = e->env->rcpt[i].notify;
		if (e->env->rcpt[i].state != RCPT_QUEUED || e->rt[i].outcome ||
		    e->env->rcpt[i].delay_notified)
			continue;
		if (notify & DSN_NOTIFY_NEVER)
			continue;
		if (notify != DSN_NOTIFY_UNSPEC && !(notify & DSN_NOTIFY_DELAY))
			continue;
		idx[n++] = i;
		/* once per recipient, whatever happens to this notice */
		e->env->rcpt[i].delay_notified = true;
	}
	if (n > 0)
		job_start(job_new(e, DSN_DELAY, 0, idx, n), delay_built);
	free(idx);
}
