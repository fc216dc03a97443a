/*
 * sched.c - see sched.h.
 *
 * Life of a queue entry:
 *   sched_add ──> ready list ──(kick: once per loop iteration)──> batch
 *   batch ──workq──> maildir_deliver_batch() on a worker thread
 *   done ──> per recipient: 'D' delivered | deferred (retry timer) | 'F' failed
 *   no recipient left ──> queue_remove()
 * An entry is on the ready list, in flight, or waiting on its retry
 * timer: never two of these at once, so one recipient is never being
 * delivered twice concurrently.
 */
#include "queue/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "deliver/maildir.h"
#include "queue/queue.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct qentry {
	struct sched *s;
	struct envelope *env;
	unsigned attempts;
	bool in_flight;
	bool deferred;		/* some recipient got a temporary failure this round */
	struct event *retry_timer;
	char last_error[256];
	TAILQ_ENTRY(qentry) ready;
	bool on_ready;
	LIST_ENTRY(qentry) all;
};

struct batch {
	struct sched *s;
	size_t n;
	struct maildir_job *jobs;
	struct qentry **owner;	/* per job */
	char (*maildir)[512];	/* per job */
	char (*qpath)[512];	/* per job */
	struct qentry **entries; /* distinct entries in this batch */
	size_t nentries;
};

struct sched {
	const struct config *conf;
	struct event_base *base;
	struct queue *q;
	struct workq *wq;
	struct event *kick;
	TAILQ_HEAD(, qentry) ready_list;
	LIST_HEAD(, qentry) all_list;
	size_t count;
	unsigned batches_in_flight;
};

static void sched_dispatch(evutil_socket_t fd, short what, void *arg);

struct sched *sched_new(const struct config *conf, struct event_base *base, struct queue *q)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->conf = conf;
	s->base = base;
	s->q = q;
	s->wq = workq_new(base, (int)conf->queue.delivery_threads);
	s->kick = event_new(base, -1, 0, sched_dispatch, s);
	TAILQ_INIT(&s->ready_list);
	LIST_INIT(&s->all_list);
	return s;
}

size_t sched_count(const struct sched *s) { return s->count; }

static void make_ready(struct qentry *e)
{
	if (e->on_ready || e->in_flight)
		return;
	TAILQ_INSERT_TAIL(&e->s->ready_list, e, ready);
	e->on_ready = true;
	event_active(e->s->kick, 0, 0);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	make_ready(arg);
}

void sched_add(struct sched *s, struct envelope *env)
{
	struct qentry *e = xcalloc(1, sizeof(*e));

	e->s = s;
	e->env = env;
	e->retry_timer = evtimer_new(s->base, retry_cb, e);
	LIST_INSERT_HEAD(&s->all_list, e, all);
	s->count++;
	make_ready(e);
}

static void entry_free(struct qentry *e)
{
	LIST_REMOVE(e, all);
	e->s->count--;
	event_free(e->retry_timer);
	envelope_free(e->env);
	free(e->env);
	free(e);
}

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

static void rcpt_final(struct qentry *e, size_t i, char state, const char *what,
		       const char *detail)
{
	struct envelope *env = e->env;
	long delay = (long)(time(NULL) - env->arrival);

	if (queue_set_rcpt_state(e->s->q, env, i, state) != 0)
		log_warn("%s cannot record recipient state to=<%s>", env->qid, env->rcpt[i].addr);
	env->rcpt[i].state = state;
	log_info("%s %s to=<%s> from=<%s> delay=%lds %s", env->qid, what, env->rcpt[i].addr,
		 env->sender, delay, detail);
}

static void entry_settle(struct qentry *e)
{
	struct sched *s = e->s;
	struct timeval tv;
	uint64_t wait;

	if (envelope_pending(e->env) == 0) {
		if (queue_remove(s->q, e->env->qid) != 0)
			log_warn("%s cannot remove queue file", e->env->qid);
		log_info("%s removed", e->env->qid);
		entry_free(e);
		return;
	}
	if (!e->deferred) {
		/* recipients left over from a full batch: go again */
		make_ready(e);
		return;
	}
	e->deferred = false;
	wait = s->conf->queue.retry[e->attempts < s->conf->queue.nretry ? e->attempts
									 : s->conf->queue.nretry - 1];
	e->attempts++;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = 0;
	evtimer_add(e->retry_timer, &tv);
}

static void expire_entry(struct qentry *e)
{
	size_t i;
	char detail[320];

	snprintf(detail, sizeof(detail), "reason=\"4.4.7 message expired in queue; last error: %s\"",
		 e->last_error[0] ? e->last_error : "none");
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->env->rcpt[i].state == RCPT_QUEUED)
			rcpt_final(e, i, RCPT_FAILED, "expire", detail);
}

static void batch_free(struct batch *b)
{
	free(b->jobs);
	free(b->owner);
	free(b->maildir);
	free(b->qpath);
	free(b->entries);
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
	char detail[900];

	for (i = 0; i < b->n; i++) {
		struct maildir_job *j = &b->jobs[i];
		struct qentry *e = b->owner[i];
		if (j->status == 0) {
			snprintf(detail, sizeof(detail), "via=maildir path=%s", j->path);
			rcpt_final(e, j->rcpt_index, RCPT_DELIVERED, "deliver", detail);
		} else if (j->status > 0) {
			e->deferred = true;
			str_copy(e->last_error, j->error, sizeof(e->last_error));
			log_info("%s defer to=<%s> via=maildir attempt=%u reason=\"%s\"", e->env->qid,
				 e->env->rcpt[j->rcpt_index].addr, e->attempts + 1, j->error);
		} else {
			snprintf(detail, sizeof(detail), "via=maildir reason=\"%s\"", j->error);
			rcpt_final(e, j->rcpt_index, RCPT_FAILED, "fail", detail);
		}
	}
	for (i = 0; i < b->nentries; i++) {
		b->entries[i]->in_flight = false;
		entry_settle(b->entries[i]);
	}
	s->batches_in_flight--;
	batch_free(b);
	if (!TAILQ_EMPTY(&s->ready_list))
		event_active(s->kick, 0, 0);
}

/* Add e's local recipients to b; other recipients are deferred (they
 * need a send connector). Returns the number of jobs added. */
static size_t batch_add_entry(struct batch *b, struct qentry *e, size_t cap)
{
	const struct config *c = b->s->conf;
	struct envelope *env = e->env;
	size_t i, added = 0;

	for (i = 0; i < env->nrcpt && b->n < cap; i++) {
		struct env_rcpt *r = &env->rcpt[i];
		const struct accepted_domain *dom;
		char local[256];
		const char *domain;
		struct maildir_job *j;

		if (r->state != RCPT_QUEUED)
			continue;
		if (!split_addr(r->addr, local, sizeof(local), &domain) ||
		    (dom = conf_find_domain(c, domain)) == NULL ||
		    dom->type != DOMAIN_AUTHORITATIVE) {
			e->deferred = true;
			str_copy(e->last_error, "4.4.0 no send connector for this destination",
				 sizeof(e->last_error));
			log_info("%s defer to=<%s> attempt=%u reason=\"%s\"", env->qid, r->addr,
				 e->attempts + 1, e->last_error);
			continue;
		}
		j = &b->jobs[b->n];
		memset(j, 0, sizeof(*j));
		if (maildir_expand(c->maildir, local, domain, b->maildir[b->n],
				   sizeof(b->maildir[b->n])) != 0) {
			rcpt_final(e, i, RCPT_FAILED, "fail",
				   "via=maildir reason=\"5.3.5 mailbox path does not fit\"");
			continue;
		}
		queue_path(b->s->q, env->qid, b->qpath[b->n], sizeof(b->qpath[b->n]));
		j->queue_path = b->qpath[b->n];
		j->maildir = b->maildir[b->n];
		j->content_off = env->content_off;
		j->content_len = env->content_len;
		j->return_path = env->sender;
		j->rcpt = r->addr;
		j->qid = env->qid;
		j->rcpt_index = (unsigned)i;
		j->arrival = env->arrival;
		b->owner[b->n] = e;
		b->n++;
		added++;
	}
	return added;
}

static void sched_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	size_t cap = s->conf->queue.max_batch;
	time_t now = time(NULL);
	(void)fd;
	(void)what;

	while (!TAILQ_EMPTY(&s->ready_list) &&
	       s->batches_in_flight < s->conf->queue.delivery_threads) {
		struct batch *b = xcalloc(1, sizeof(*b));
		b->s = s;
		b->jobs = xcalloc(cap, sizeof(*b->jobs));
		b->owner = xcalloc(cap, sizeof(*b->owner));
		b->maildir = xcalloc(cap, sizeof(*b->maildir));
		b->qpath = xcalloc(cap, sizeof(*b->qpath));
		b->entries = xcalloc(cap, sizeof(*b->entries));

		while (!TAILQ_EMPTY(&s->ready_list) && b->n < cap && b->nentries < cap) {
			struct qentry *e = TAILQ_FIRST(&s->ready_list);
			size_t pending = envelope_pending(e->env);

			/* keep a message's recipients in one batch when it can be done */
			if (b->n > 0 && b->n + pending > cap)
				break;
			TAILQ_REMOVE(&s->ready_list, e, ready);
			e->on_ready = false;
			if ((uint64_t)(now - e->env->arrival) > s->conf->queue.expire) {
				expire_entry(e);
				entry_settle(e);
				continue;
			}
			if (batch_add_entry(b, e, cap) > 0) {
				e->in_flight = true;
				b->entries[b->nentries++] = e;
			} else {
				entry_settle(e);
			}
		}
		if (b->n == 0) {
			batch_free(b);
			continue;
		}
		s->batches_in_flight++;
		workq_submit(s->wq, batch_work, batch_done, b);
	}
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	/* Workers finish what they run; their results are not recorded, so
	 * those recipients are tried again at the next start (and Maildir's
	 * deterministic names make that a no-op). */
	workq_free(s->wq);
	while (!LIST_EMPTY(&s->all_list))
		entry_free(LIST_FIRST(&s->all_list));
	event_free(s->kick);
	free(s);
}
