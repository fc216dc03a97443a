/*
 * stats.c - see stats.h. sched_stats() walks every entry once (counted by
 * state from the fields the scheduler keeps: on the ready list, parts in
 * flight, waiting on its retry timer); the next hop of a queued recipient
 * is found as transitctl's queue viewer does (route_domain on its domain),
 * remembered per domain so a large queue costs one lookup per recipient.
 */
#include "queue/stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "queue/sched_int.h"
#include "route/route.h"
#include "util/htable.h"
#include "util/str.h"
#include "util/xmalloc.h"

struct hop_acc {
	struct sched_hop_stats st;
	const struct qentry *last; /* counts a message once per hop */
};

static int by_recipients(const void *a, const void *b)
{
	const struct hop_acc *x = *(struct hop_acc *const *)a, *y = *(struct hop_acc *const *)b;
	if (x->st.recipients != y->st.recipients)
		return x->st.recipients < y->st.recipients ? 1 : -1;
	return strcmp(x->st.key, y->st.key);
}

static void count_hops(const struct sched *s, const struct qentry *e, struct htable *t,
		       struct hop_acc ***v, size_t *nv)
{
	size_t i;

	for (i = 0; i < e->env->nrcpt; i++) {
		char key[300];
		struct hop_acc *h;

		if (e->env->rcpt[i].state != RCPT_QUEUED)
			continue;
		route_hop_key(s->conf, e->env->rcpt[i].addr, key, sizeof(key));
		if ((h = htable_get(t, key)) == NULL) {
			if (*nv >= SCHED_STATS_HOPS_MAX)
				continue;
			h = xcalloc(1, sizeof(*h));
			str_copy(h->st.key, key, sizeof(h->st.key));
			h->st.oldest = e->env->arrival;
			htable_put(t, key, h);
			*v = xrealloc(*v, (*nv + 1) * sizeof(**v));
			(*v)[(*nv)++] = h;
		}
		h->st.recipients++;
		if (h->last != e) {
			h->st.messages++;
			h->last = e;
		}
		if (e->env->arrival < h->st.oldest)
			h->st.oldest = e->env->arrival;
	}
}

void sched_stats(const struct sched *s, bool by_hop, struct sched_stats *out)
{
	struct htable *t = htable_new();
	struct hop_acc **v = NULL;
	const struct qentry *e;
	size_t nv = 0, i;

	memset(out, 0, sizeof(*out));
	LIST_FOREACH(e, &s->all_list, all) {
		if (e->on_ready)
			out->ready++;
		else if (e->parts > 0 || e->dsns > 0 || e->retry_timer == NULL ||
			 !evtimer_pending(e->retry_timer, NULL))
			out->active++;
		else
			out->deferred++;
		if (by_hop)
			count_hops(s, e, t, &v, &nv);
	}
	if (nv > 1)
		qsort(v, nv, sizeof(*v), by_recipients);
	out->nhops = nv;
	for (i = 0; i < nv; i++) {
		if (i < SCHED_STATS_HOPS)
			out->hops[out->nshown++] = v[i]->st;
		free(v[i]);
	}
	free(v);
	htable_free(t, NULL);
}

/* ---- recent failures ---------------------------------------------------- */

static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sched_recent recent[SCHED_RECENT];
static size_t recent_next, recent_count;

void sched_recent_note(const char *kind, const char *qid, const char *sender, const char *rcpt,
		       const char *via, const char *status, const char *diag)
{
	struct sched_recent *r;

	pthread_mutex_lock(&recent_lock);
	r = &recent[recent_next];
	recent_next = (recent_next + 1) % SCHED_RECENT;
	if (recent_count < SCHED_RECENT)
		recent_count++;
	r->when = time(NULL);
	str_copy(r->kind, kind, sizeof(r->kind));
	str_copy(r->qid, qid ? qid : "", sizeof(r->qid));
	str_copy(r->sender, sender ? sender : "", sizeof(r->sender));
	str_copy(r->rcpt, rcpt ? rcpt : "", sizeof(r->rcpt));
	str_copy(r->via, via ? via : "", sizeof(r->via));
	str_copy(r->status, status ? status : "", sizeof(r->status));
	str_copy(r->diag, diag ? diag : "", sizeof(r->diag));
	pthread_mutex_unlock(&recent_lock);
}

size_t sched_recent_copy(struct sched_recent *out, size_t max)
{
	size_t n, i;

	pthread_mutex_lock(&recent_lock);
	n = recent_count < max ? recent_count : max;
	for (i = 0; i < n; i++)
		out[i] = recent[(recent_next + SCHED_RECENT - 1 - i) % SCHED_RECENT];
	pthread_mutex_unlock(&recent_lock);
	return n;
}
