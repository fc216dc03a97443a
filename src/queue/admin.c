/*
 * admin.c - see sched_admin.h: freeze, thaw, retry, delete, suspend and
 * resume on the live scheduler, and the files that make freeze and
 * suspend survive a restart (<spool>/frozen/<qid>, <spool>/suspended).
 *
 * A frozen entry or one whose pending recipients wait for a suspended hop
 * is "parked" by sched.c's dispatch: off the ready list, no retry timer.
 * thaw and resume make parked entries ready again; dispatch decides anew.
 */
#include "queue/sched_int.h"
#include "queue/sched_admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log/tracking.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define ADMIN_MAX_SUSPENDED 1000 /* next hops in <spool>/suspended */
#define ADMIN_HOP_MAX 600

void admin_frozen_path(const char *spool, const char *qid, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/frozen/%s", spool, qid);
}

static void suspended_path(const struct sched *s, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/suspended", s->spool);
}

/* ---- start and end --------------------------------------------------------- */

static void load_frozen(struct sched *s)
{
	char dir[4200];
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/frozen", s->spool);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		log_warn("cannot create %s: %s", dir, strerror(errno));
	if ((dp = opendir(dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL)
		if (d->d_name[0] != '.')
			htable_put(s->frozen_init, d->d_name, (void *)1);
	closedir(dp);
}

static void load_suspended(struct sched *s)
{
	char path[4200], line[ADMIN_HOP_MAX + 2];
	FILE *f;

	suspended_path(s, path, sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) &&
	       htable_count(s->suspended) < ADMIN_MAX_SUSPENDED) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (strcmp(line, "*") == 0)
			s->suspend_all = true;
		else
			htable_put(s->suspended, line, xstrdup(line));
		log_info("queue next-hop=%s suspended (from %s)", line, path);
	}
	fclose(f);
}

void admin_init(struct sched *s)
{
	s->byqid = htable_new();
	s->frozen_init = htable_new();
	s->suspended = htable_new();
	load_frozen(s);
	load_suspended(s);
}

void admin_free(struct sched *s)
{
	htable_free(s->byqid, NULL);
	htable_free(s->frozen_init, NULL);
	htable_free(s->suspended, free);
}

void admin_note_added(struct qentry *e)
{
	if (htable_del(e->s->frozen_init, e->env->qid) != NULL) {
		e->frozen = true;
		log_info("%s frozen (from its marker)", e->env->qid);
	}
}

/* ---- the marker and the suspended file, on the file thread ------------------- */

struct marker_job {
	bool create;
	char qid[QID_MAX];
	char path[4200];
};

static void marker_work(void *arg)
{
	struct marker_job *m = arg;
	int fd;

	if (m->create) {
		char dir[4200], *slash;
		fd = open(m->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || fsync(fd) != 0)
			log_warn("%s cannot write the freeze marker %s: %s", m->qid, m->path,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
		/* the new name must be durable too */
		str_copy(dir, m->path, sizeof(dir));
		if ((slash = strrchr(dir, '/')) != NULL)
			*slash = '\0';
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	} else if (unlink(m->path) != 0 && errno != ENOENT) {
		log_warn("%s cannot remove the freeze marker %s: %s", m->qid, m->path,
			 strerror(errno));
	}
	free(m);
}

static void marker_set(struct sched *s, const char *qid, bool create)
{
	struct marker_job *m = xcalloc(1, sizeof(*m));

	m->create = create;
	str_copy(m->qid, qid, sizeof(m->qid));
	admin_frozen_path(s->spool, qid, m->path, sizeof(m->path));
	workq_submit(s->io, marker_work, NULL, m);
}

struct list_job {
	char path[4200];
	struct {
		char *data; /* the whole new file; empty: remove it */
		size_t len;
	} text;
};

static void list_work(void *arg)
{
	struct list_job *j = arg;
	char tmp[4300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
	if (j->text.len == 0) {
		if (unlink(j->path) != 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", j->path, strerror(errno));
	} else if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("cannot write %s: %s", tmp, strerror(errno));
	} else if (fwrite(j->text.data, 1, j->text.len, f) != j->text.len || fflush(f) != 0 ||
		   fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, j->path) != 0) {
		log_warn("cannot write %s: %s", j->path, strerror(errno));
		unlink(tmp);
	}
	free(j->text.data);
	free(j);
}

struct collect {
	char *data;
	size_t len, cap;
};

static void collect_hop(const char *hop, void *arg)
{
	struct collect *c = arg;
	size_t n = strlen(hop);

	if (c->len + n + 2 > c->cap) {
		c->cap = (c->len + n + 2) * 2;
		c->data = xrealloc(c->data, c->cap);
	}
	memcpy(c->data + c->len, hop, n);
	c->len += n;
	c->data[c->len++] = '\n';
}

/* Rewrite <spool>/suspended from the table (removed when empty). */
static void save_suspended(struct sched *s)
{
	struct list_job *j = xcalloc(1, sizeof(*j));
	struct collect c = {0};

	sched_suspended_each(s, collect_hop, &c);
	suspended_path(s, j->path, sizeof(j->path));
	j->text.data = c.data;
	j->text.len = c.len;
	workq_submit(s->io, list_work, NULL, j);
}

/* ---- operations on one message -------------------------------------------------- */

static struct qentry *find(struct sched *s, const char *qid)
{
	return htable_get(s->byqid, qid);
}

/* FREEZE, THAW, DELETE in the tracking log (log/tracking.h). */
static void track_admin(const struct qentry *e, const char *event, const char *reason)
{
	tracking_event(&(struct track_event){.event = event,
					     .qid = e->env->qid,
					     .sender = e->env->sender,
					     .reason = reason});
}

const char *sched_freeze(struct sched *s, const char *qid)
{
	struct qentry *e = find(s, qid);

	if (e == NULL)
		return "no such message in the queue";
	if (e->frozen)
		return "already frozen";
	e->frozen = true;
	marker_set(s, qid, true);
	log_info("%s frozen by the administrator", qid);
	track_admin(e, "FREEZE", "administrator");
	return NULL;
}

const char *sched_thaw(struct sched *s, const char *qid)
{
	struct qentry *e = find(s, qid);

	if (e == NULL)
		return "no such message in the queue";
	if (!e->frozen)
		return "not frozen";
	e->frozen = false;
	marker_set(s, qid, false);
	log_info("%s thawed by the administrator", qid);
	track_admin(e, "THAW", "administrator");
	if (e->parked)
		sched_make_ready(e);
	return NULL;
}

const char *sched_retry(struct sched *s, const char *qid)
{
	struct qentry *e = find(s, qid);

	if (e == NULL)
		return "no such message in the queue";
	if (e->frozen)
		return "frozen (thaw it first)";
	if (e->parts || e->dsns)
		return "a delivery is in progress";
	if (e->on_ready)
		return NULL; /* about to be tried anyway */
	evtimer_del(e->retry_timer);
	e->next_try = time(NULL);
	log_info("%s retry now, asked by the administrator", qid);
	sched_make_ready(e);
	return NULL;
}

const char *sched_delete(struct sched *s, const char *qid, bool ndr)
{
	struct qentry *e = find(s, qid);
	size_t i;

	if (e == NULL)
		return "no such message in the queue";
	if (e->parts || e->dsns)
		return "a delivery is in progress (try again in a moment)";
	evtimer_del(e->retry_timer);
	if (e->on_ready) {
		TAILQ_REMOVE(&s->ready_list, e, ready);
		e->on_ready = false;
	}
	e->parked = false;
	log_info("%s deleted by the administrator%s", qid, ndr ? " (with a DSN to the sender)" : "");
	track_admin(e, "DELETE", ndr ? "administrator, with a DSN to the sender" : "administrator");
	if (!ndr) {
		sched_entry_remove(e);
		return NULL;
	}
	e->frozen = false; /* the DSN must go; the marker goes with the file */
	e->deferred = false;
	for (i = 0; i < e->env->nrcpt; i++)
		if (e->env->rcpt[i].state == RCPT_QUEUED && e->rt[i].outcome == 0)
			sched_rcpt_result(e, i, OUT_FAILED, "5.0.0",
					  "message deleted from the queue by the administrator",
					  NULL, "admin");
	sched_settle(e); /* DSNs, then the removal */
	return NULL;
}

/* ---- next hops ---------------------------------------------------------------------- */

bool admin_hop_suspended(const struct sched *s, const char *connector, const char *domain)
{
	char key[ADMIN_HOP_MAX];

	if (s->suspend_all)
		return true;
	if (htable_count(s->suspended) == 0)
		return false;
	if (htable_get(s->suspended, connector))
		return true;
	snprintf(key, sizeof(key), "%s:%s", connector, domain);
	return htable_get(s->suspended, key) != NULL;
}

/* "CONNECTOR", "CONNECTOR:DOMAIN", "mailbox:DOMAIN", "*": printable,
 * no spaces, bounded. Lower-cased after the colon (domains are). */
static bool hop_ok(const char *hop)
{
	size_t n = strlen(hop), i;

	if (n == 0 || n >= ADMIN_HOP_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)hop[i] <= 0x20 || (unsigned char)hop[i] >= 0x7f)
			return false;
	return true;
}

static void normalise_hop(const char *hop, char *out, size_t outsz)
{
	char *colon;

	str_copy(out, hop, outsz);
	if ((colon = strchr(out, ':')) != NULL)
		str_lower(colon + 1);
}

/* Every parked entry goes through dispatch again (it parks again if it is
 * still frozen or its hop still suspended). */
static void wake_parked(struct sched *s)
{
	struct qentry *e;

	LIST_FOREACH(e, &s->all_list, all)
		if (e->parked && !e->frozen)
			sched_make_ready(e);
}

const char *sched_suspend(struct sched *s, const char *hop)
{
	char key[ADMIN_HOP_MAX];

	if (!hop_ok(hop))
		return "not a next hop (CONNECTOR, CONNECTOR:DOMAIN, mailbox:DOMAIN or *)";
	if (strcmp(hop, "*") == 0) {
		if (s->suspend_all)
			return "already suspended";
		s->suspend_all = true;
	} else {
		normalise_hop(hop, key, sizeof(key));
		if (htable_get(s->suspended, key))
			return "already suspended";
		if (htable_count(s->suspended) >= ADMIN_MAX_SUSPENDED)
			return "too many suspended next hops";
		htable_put(s->suspended, key, xstrdup(key));
	}
	log_info("queue next-hop=%s suspended by the administrator", hop);
	save_suspended(s);
	return NULL;
}

const char *sched_resume(struct sched *s, const char *hop)
{
	char key[ADMIN_HOP_MAX];

	if (!hop_ok(hop))
		return "not a next hop (CONNECTOR, CONNECTOR:DOMAIN, mailbox:DOMAIN or *)";
	if (strcmp(hop, "*") == 0) {
		if (!s->suspend_all)
			return "not suspended";
		s->suspend_all = false;
	} else {
		char *was;
		normalise_hop(hop, key, sizeof(key));
		if ((was = htable_del(s->suspended, key)) == NULL)
			return "not suspended";
		free(was);
	}
	log_info("queue next-hop=%s resumed by the administrator", hop);
	save_suspended(s);
	wake_parked(s);
	return NULL;
}

struct each_ctx {
	void (*cb)(const char *hop, void *arg);
	void *arg;
};

static void each_hop(const char *key, void *value, void *arg)
{
	struct each_ctx *c = arg;

	(void)value;
	c->cb(key, c->arg);
}

void sched_suspended_each(const struct sched *s, void (*cb)(const char *hop, void *arg), void *arg)
{
	struct each_ctx c = {cb, arg};

	if (s->suspend_all)
		cb("*", arg);
	htable_each(s->suspended, each_hop, &c);
}

/* ---- counts ------------------------------------------------------------------------ */

void sched_counts(const struct sched *s, struct sched_counts *out)
{
	const struct qentry *e;

	memset(out, 0, sizeof(*out));
	LIST_FOREACH(e, &s->all_list, all) {
		out->total++;
		if (e->frozen)
			out->frozen++;
		else if (e->parked)
			out->held++;
		else if (e->on_ready || e->parts || e->dsns)
			out->active++;
		else
			out->deferred++;
	}
}
