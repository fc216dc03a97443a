/*
 * notify.c - the DSNs the scheduler owes senders (RFC 3461 semantics; the
 * message itself is built by mail/dsn.c per RFC 3464).
 *
 * Never to the null sender (RFC 5321 6.1 / RFC 3461 6.2: no DSN about a
 * DSN), only for recipients whose NOTIFY asks (FAILURE by default,
 * SUCCESS when asked, DELAY by default or when asked). A DSN is a queued
 * message like any other: it is committed through the queue before the
 * recipients it reports are marked final, so a crash repeats an attempt
 * rather than losing a bounce.
 */
#include "queue/sched_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"
#include "queue/queue.h"
#include "smtp/cmd.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define DSN_MAX_FULL (10u << 20) /* RET=FULL above this returns the headers only */

struct dsn_commit {
	struct qentry *e; /* NULL for a DELAY notice (nothing to mark) */
	struct sched *s;
	char state;
	size_t n;
	size_t idx[];
};

/* Queue msg (a whole RFC 5322 message) from <> to the original sender. */
static int enqueue_dsn(struct sched *s, const struct envelope *orig, const struct buf *msg,
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
	env.smtputf8 = orig->smtputf8;
	env.body = BODY_8BITMIME;
	envelope_add_rcpt(&env, orig->sender, NULL, DSN_NOTIFY_NEVER);
	memcpy(qid_out, env.qid, QID_MAX);
	w = queue_writer_new(s->q, &env);
	envelope_free(&env);
	if (w == NULL)
		return -1;
	if (queue_writer_write(w, msg->data, msg->len) != 0) {
		queue_writer_abort(w);
		return -1;
	}
	queue_writer_commit(w, cb, arg);
	return 0;
}

static int build(struct qentry *e, enum dsn_kind kind, const size_t *idx, size_t n,
		 struct buf *out)
{
	struct sched *s = e->s;
	struct dsn_rcpt *r = xcalloc(n, sizeof(*r));
	struct dsn_info info;
	char path[4200], msgid[QID_MAX + 300], err[256];
	char (*hosts)[256];
	size_t i;
	int rc;

	hosts = xcalloc(n, sizeof(*hosts));
	for (i = 0; i < n; i++) {
		const struct rcpt_rt *rt = &e->rt[idx[i]];
		/* "mx1.partner.test[192.0.2.1]:25" in logs; RFC 3464 2.3.5 wants the name */
		str_copy(hosts[i], rt->remote_mta, sizeof(hosts[i]));
		hosts[i][strcspn(hosts[i], "[")] = '\0';
		r[i].addr = e->env->rcpt[idx[i]].addr;
		r[i].orcpt = e->env->rcpt[idx[i]].orcpt;
		r[i].action = kind == DSN_DELAY ? "delayed" : rt->action;
		r[i].status = rt->status[0] ? rt->status : (kind == DSN_DELAY ? "4.0.0" : "5.0.0");
		r[i].remote_mta = hosts[i][0] ? hosts[i] : NULL;
		r[i].diagnostic = rt->diag[0] ? rt->diag : (kind == DSN_DELAY ? e->last_error : NULL);
		r[i].last_attempt = rt->last_attempt;
	}
	queue_path(s->q, e->env->qid, path, sizeof(path));
	snprintf(msgid, sizeof(msgid), "<%s.dsn@%s>", e->env->qid, s->conf->server.fqdn);
	memset(&info, 0, sizeof(info));
	info.kind = kind;
	info.reporting_mta = s->conf->server.fqdn;
	info.qid = e->env->qid;
	info.envid = e->env->envid;
	info.sender = e->env->sender;
	info.arrival = e->env->arrival;
	info.retry_until = e->env->arrival + (time_t)s->conf->queue.expire;
	info.ret = e->env->ret;
	info.rcpt = r;
	info.nrcpt = n;
	info.content_path = path;
	info.content_off = e->env->content_off;
	info.content_len = e->env->content_len;
	info.max_full_size = DSN_MAX_FULL;
	info.template_path = s->conf->dsn_template;
	info.message_id = msgid;
	info.smtputf8 = e->env->smtputf8;
	rc = dsn_build(&info, out, err, sizeof(err));
	if (rc != 0)
		log_warn("%s cannot build DSN: %s", e->env->qid, err);
	free(r);
	free(hosts);
	return rc;
}

static void dsn_committed(void *arg, int error, struct envelope *env)
{
	struct dsn_commit *dc = arg;
	struct qentry *e = dc->e;
	size_t i;

	e->dsns--;
	if (error) {
		/* no bounce could be queued: try the recipients again later */
		log_warn("%s DSN commit failed: %s", e->env->qid, strerror(error));
		for (i = 0; i < dc->n; i++) {
			e->rt[dc->idx[i]].outcome = 0;
			e->rt[dc->idx[i]].dsn_due = false;
		}
		e->deferred = true;
	} else {
		log_info("%s dsn kind=%s dsn-id=%s to=<%s> recipients=%zu", e->env->qid,
			 dc->state == RCPT_FAILED ? "failure" : "success", env->qid, e->env->sender,
			 dc->n);
		for (i = 0; i < dc->n; i++)
			sched_write_state(e, dc->idx[i], dc->state);
		sched_add(dc->s, env);
	}
	free(dc);
	sched_settle(e);
}

static bool send_kind(struct qentry *e, char state, enum dsn_kind kind)
{
	struct dsn_commit *dc;
	struct buf msg = BUF_INIT;
	char qid[QID_MAX];
	size_t i, n = 0;

	dc = xcalloc(1, sizeof(*dc) + e->env->nrcpt * sizeof(size_t));
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->rt[i].dsn_due && e->rt[i].outcome == state)
			dc->idx[n++] = i;
	if (n == 0) {
		free(dc);
		return false;
	}
	dc->e = e;
	dc->s = e->s;
	dc->state = state;
	dc->n = n;
	if (build(e, kind, dc->idx, n, &msg) != 0 ||
	    enqueue_dsn(e->s, e->env, &msg, qid, dsn_committed, dc) != 0) {
		/* cannot notify: record the outcome anyway, loudly */
		log_warn("%s DSN not sent (%s); recording final states", e->env->qid, strerror(errno));
		for (i = 0; i < n; i++)
			sched_write_state(e, dc->idx[i], state);
		free(dc);
		buf_free(&msg);
		return false;
	}
	buf_free(&msg);
	e->dsns++;
	return true;
}

bool notify_send_due(struct qentry *e)
{
	bool a = send_kind(e, RCPT_FAILED, DSN_FAILURE);
	bool b = send_kind(e, RCPT_DELIVERED, DSN_SUCCESS);
	return a || b;
}

/* A DELAY notice in commit: what to mark in the original's queue file
 * once it is durable. A copy, not the entry: the entry may be gone by
 * then (delivered and removed meanwhile: the marks then find no file). */
struct delay_commit {
	struct sched *s;
	char qid[QID_MAX];
	size_t n;
	uint64_t state_off[];
};

static void delay_committed(void *arg, int error, struct envelope *env)
{
	struct delay_commit *dc = arg;

	if (error) {
		log_warn("%s delay DSN commit failed: %s", dc->qid, strerror(error));
	} else {
		/* A crash before this line sends the notice once more at the
		 * next start (at least once, like every DSN). */
		if (queue_mark_delay_notified(dc->s->q, dc->qid, dc->state_off, dc->n) != 0 &&
		    errno != ENOENT && errno != ENOTSUP) /* gone; a version 1 file */
			log_warn("%s cannot record the delay notice: %s", dc->qid, strerror(errno));
		sched_add(dc->s, env);
	}
	free(dc);
}

void notify_delay_if_due(struct qentry *e)
{
	struct sched *s = e->s;
	struct buf msg = BUF_INIT;
	struct delay_commit *dc;
	char qid[QID_MAX];
	size_t i, n = 0, *idx;

	if (e->env->sender[0] == '\0' || s->conf->queue.delay_notice == 0 ||
	    sched_entry_age(e) < s->conf->queue.delay_notice)
		return;
	idx = xcalloc(e->env->nrcpt, sizeof(*idx));
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
	}
	if (n == 0) {
		free(idx);
		return;
	}
	dc = xcalloc(1, sizeof(*dc) + n * sizeof(uint64_t));
	dc->s = s;
	memcpy(dc->qid, e->env->qid, QID_MAX);
	dc->n = n;
	for (i = 0; i < n; i++) {
		/* once per recipient, whatever happens to this notice */
		e->env->rcpt[idx[i]].delay_notified = true;
		dc->state_off[i] = e->env->rcpt[idx[i]].state_off;
	}
	if (build(e, DSN_DELAY, idx, n, &msg) == 0 &&
	    enqueue_dsn(s, e->env, &msg, qid, delay_committed, dc) == 0)
		log_info("%s dsn kind=delay dsn-id=%s to=<%s> recipients=%zu", e->env->qid, qid,
			 e->env->sender, n);
	else
		free(dc);
	buf_free(&msg);
	free(idx);
}
