/* queue_view.c - see queue_view.h. */
#include "ctl/queue_view.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "route/route.h"
#include "util/clock.h"
#include "util/htable.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* The last error of a hop comes from the deferral notes of its newest
 * messages: only HOP_CANDIDATES of them per hop are read, newest first,
 * so a list of a million messages opens a few hundred notes, not a
 * million (bench/queue_list.sh). */
#define HOP_CANDIDATES 8

struct hop_candidate {
	const struct envelope *env;
	size_t idx;
};

struct hop {
	char key[600];
	size_t messages, recipients;
	time_t oldest;
	char last_error[600];
	const char *last_qid; /* to count messages once */
	struct hop_candidate cand[HOP_CANDIDATES]; /* newest arrival first */
	size_t ncand;
};

/* Keep the HOP_CANDIDATES newest recipients of the hop. */
static void hop_candidate(struct hop *h, const struct envelope *e, size_t idx)
{
	size_t i, pos;

	for (pos = 0; pos < h->ncand && h->cand[pos].env->arrival >= e->arrival; pos++)
		;
	if (pos == HOP_CANDIDATES)
		return;
	if (h->ncand < HOP_CANDIDATES)
		h->ncand++;
	for (i = h->ncand - 1; i > pos; i--)
		h->cand[i] = h->cand[i - 1];
	h->cand[pos].env = e;
	h->cand[pos].idx = idx;
}

static void last_error(const struct config *c, const char *qid, size_t idx, char *out,
		       size_t outsz)
{
	char path[4200], line[800], want[32];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/defer/%s", c->server.spool, qid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	snprintf(want, sizeof(want), "rcpt %zu ", idx);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, want, strlen(want)) == 0)
			str_copy(out, line + strlen(want), outsz);
		else if (out[0] == '\0' && strncmp(line, "error ", 6) == 0)
			str_copy(out, line + 6, outsz);
	}
	fclose(f);
}

void queue_view_defer_note(const char *spool, const char *qid, struct defer_note *out)
{
	char path[4200], line[800];
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/defer/%s", spool, qid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	out->present = true;
	while (fgets(line, sizeof(line), f)) {
		long long v;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "attempts %lld", &v) == 1 && v >= 0)
			out->attempts = (unsigned)v;
		else if (sscanf(line, "next %lld", &v) == 1)
			out->next_try = v;
		else if (strncmp(line, "error ", 6) == 0)
			str_copy(out->error, line + 6, sizeof(out->error));
	}
	fclose(f);
}

static int by_key(const void *a, const void *b)
{
	return strcmp((*(struct hop *const *)a)->key, (*(struct hop *const *)b)->key);
}

void queue_view_age(long long secs, char *out, size_t outsz)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(out, outsz, "%llds", secs);
	else if (secs < 3600)
		snprintf(out, outsz, "%lldm", secs / 60);
	else if (secs < 86400)
		snprintf(out, outsz, "%lldh", secs / 3600);
	else
		snprintf(out, outsz, "%lldd", secs / 86400);
}

void queue_view_by_next_hop(const struct config *c, struct envelope **env, size_t n, time_t now,
			    bool json, FILE *out)
{
	struct htable *t = htable_new();
	struct hop **v = NULL;
	size_t nv = 0, i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < env[i]->nrcpt; k++) {
			char key[600];
			struct hop *h;

			if (env[i]->rcpt[k].state != RCPT_QUEUED)
				continue;
			route_hop_key(c, env[i]->rcpt[k].addr, key, sizeof(key));
			if ((h = htable_get(t, key)) == NULL) {
				h = xcalloc(1, sizeof(*h));
				str_copy(h->key, key, sizeof(h->key));
				h->oldest = env[i]->arrival;
				htable_put(t, key, h);
				v = xrealloc(v, (nv + 1) * sizeof(*v));
				v[nv++] = h;
			}
			h->recipients++;
			if (h->last_qid != env[i]->qid) {
				h->messages++;
				h->last_qid = env[i]->qid;
			}
			if (env[i]->arrival < h->oldest)
				h->oldest = env[i]->arrival;
			hop_candidate(h, env[i], k);
		}
	}
	for (i = 0; i < nv; i++)
		for (k = 0; k < v[i]->ncand && !v[i]->last_error[0]; k++)
			last_error(c, v[i]->cand[k].env->qid, v[i]->cand[k].idx, v[i]->last_error,
				   sizeof(v[i]->last_error));
	if (nv > 1)
		qsort(v, nv, sizeof(*v), by_key);
	if (json) {
		json_t *a = json_array();
		char *s;
		for (i = 0; i < nv; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "next_hop", json_string(v[i]->key));
			json_object_set_new(o, "messages", json_integer((json_int_t)v[i]->messages));
			json_object_set_new(o, "recipients", json_integer((json_int_t)v[i]->recipients));
			json_object_set_new(o, "oldest_age_seconds",
					    json_integer((json_int_t)age_seconds(now, v[i]->oldest)));
			json_object_set_new(o, "last_error",
					    v[i]->last_error[0] ? json_stringn(v[i]->last_error,
									       strlen(v[i]->last_error))
								: json_null());
			json_array_append_new(a, o);
		}
		s = json_dumps(a, JSON_INDENT(2));
		if (s)
			fprintf(out, "%s\n", s);
		free(s);
		json_decref(a);
	} else if (nv == 0) {
		fprintf(out, "queue is empty\n");
	} else {
		fprintf(out, "%-40s %8s %10s %7s  %s\n", "NEXT-HOP", "MESSAGES", "RECIPIENTS", "OLDEST",
			"LAST-ERROR");
		for (i = 0; i < nv; i++) {
			char a[32];
			queue_view_age((long long)age_seconds(now, v[i]->oldest), a, sizeof(a));
			fprintf(out, "%-40s %8zu %10zu %7s  %s\n", v[i]->key, v[i]->messages,
				v[i]->recipients, a, v[i]->last_error[0] ? v[i]->last_error : "-");
		}
	}
	htable_free(t, free);
	free(v);
}
