/* queue_cmd.c - see queue_cmd.h. */
#include "ctl/queue_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/client.h"
#include "ctl/queue_view.h"
#include "queue/queue.h"
#include "util/clock.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define QCMD_CHUNK 10000	   /* ids per control request */
#define QCMD_HEADERS_MAX 65536	   /* bytes of header shown by queue show */
#define EXIT_USAGE 2

static bool contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

int queue_filter_option(struct queue_filter *f, int argc, char **argv, int *i)
{
	const char *o = argv[*i];
	static const char *const states[] = {"active", "deferred", "frozen", "done", NULL};

	if (strcmp(o, "--sender") && strcmp(o, "--recipient") && strcmp(o, "--state") &&
	    strcmp(o, "--older-than"))
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "transitctl: %s needs a value\n", o);
		return -1;
	}
	const char *v = argv[++*i];
	f->any = true;
	if (strcmp(o, "--sender") == 0)
		f->sender = v;
	else if (strcmp(o, "--recipient") == 0)
		f->recipient = v;
	else if (strcmp(o, "--state") == 0) {
		size_t k;
		for (k = 0; states[k] && strcmp(states[k], v) != 0; k++)
			;
		if (states[k] == NULL) {
			fprintf(stderr, "transitctl: --state %s: one of active, deferred, frozen, done\n", v);
			return -1;
		}
		f->state = v;
	} else {
		if (!parse_duration(v, &f->older_than)) {
			fprintf(stderr, "transitctl: --older-than %s: not a duration (30s, 5m, 2h, 1d)\n", v);
			return -1;
		}
		f->has_older = true;
	}
	return 1;
}

const char *queue_state_of(const char *spool, const struct envelope *e)
{
	struct defer_note dn;
	char path[4200];

	if (envelope_pending(e) == 0)
		return "done";
	snprintf(path, sizeof(path), "%s/frozen/%s", spool, e->qid);
	if (access(path, F_OK) == 0)
		return "frozen";
	queue_view_defer_note(spool, e->qid, &dn);
	return dn.present ? "deferred" : "active";
}

bool queue_filter_match(const struct queue_filter *f, const char *spool, const struct envelope *e,
			time_t now)
{
	size_t i;

	if (f->sender && !contains(e->sender, f->sender))
		return false;
	if (f->recipient) {
		for (i = 0; i < e->nrcpt; i++)
			if (e->rcpt[i].state == RCPT_QUEUED && contains(e->rcpt[i].addr, f->recipient))
				break;
		if (i == e->nrcpt)
			return false;
	}
	if (f->has_older && age_seconds(now, e->arrival) < f->older_than)
		return false;
	if (f->state && strcmp(queue_state_of(spool, e), f->state) != 0)
		return false;
	return true;
}

/* ---- reading one message ------------------------------------------------------ */

static bool qid_ok(const char *qid)
{
	size_t n = strlen(qid), i;

	if (n == 0 || n >= QID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((qid[i] >= 'A' && qid[i] <= 'Z') || (qid[i] >= '0' && qid[i] <= '9')))
			return false;
	return true;
}

static int load_one(const struct config *c, const char *qid, struct envelope *e, char *path,
		    size_t pathsz)
{
	char err[512];

	if (!qid_ok(qid)) {
		fprintf(stderr, "transitctl: %s: not a queue id\n", qid);
		return -1;
	}
	snprintf(path, pathsz, "%s/queue/%s", c->server.spool, qid);
	envelope_init(e);
	if (queue_load(path, e, err, sizeof(err)) != 0) {
		fprintf(stderr, "transitctl: %s: %s\n", qid,
			access(path, F_OK) != 0 ? "no such message in the queue" : err);
		envelope_free(e);
		return -1;
	}
	return 0;
}

/* The header section of the message (up to the empty line), bounded. */
static char *read_headers(const char *path, const struct envelope *e)
{
	size_t want = e->content_len < QCMD_HEADERS_MAX ? (size_t)e->content_len : QCMD_HEADERS_MAX;
	char *h = xmalloc(want + 1), *end;
	ssize_t r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		r = pread(fd, h, want, (off_t)e->content_off);
		close(fd);
	}
	h[r > 0 ? r : 0] = '\0';
	if ((end = strstr(h, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	return h;
}

static const char *rcpt_state(char s)
{
	return s == RCPT_DELIVERED ? "delivered" : s == RCPT_FAILED ? "failed" : "queued";
}

/* "rcpt N error" lines of the deferral note */
static void rcpt_error(const char *spool, const char *qid, size_t idx, char *out, size_t outsz)
{
	char path[4200], line[800], want[32];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/defer/%s", spool, qid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	snprintf(want, sizeof(want), "rcpt %zu ", idx);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, want, strlen(want)) == 0)
			str_copy(out, line + strlen(want), outsz);
	}
	fclose(f);
}

static int cmd_show(const struct config *c, const char *qid, bool json)
{
	struct envelope e;
	struct defer_note dn;
	char path[4200], err[600];
	time_t now = time(NULL);
	const char *state;
	char *headers;
	size_t i;
	json_t *o, *rcpts;

	if (load_one(c, qid, &e, path, sizeof(path)) != 0)
		return 1;
	state = queue_state_of(c->server.spool, &e);
	queue_view_defer_note(c->server.spool, qid, &dn);
	headers = read_headers(path, &e);
	o = json_object();
	json_object_set_new(o, "id", json_string(e.qid));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "arrival_epoch", json_integer((json_int_t)e.arrival));
	json_object_set_new(o, "age_seconds", json_integer((json_int_t)age_seconds(now, e.arrival)));
	json_object_set_new(o, "size", json_integer((json_int_t)e.content_len));
	json_object_set_new(o, "sender", json_string(e.sender ? e.sender : ""));
	json_object_set_new(o, "connector", e.connector ? json_string(e.connector) : json_null());
	json_object_set_new(o, "client_addr", e.client_addr ? json_string(e.client_addr) : json_null());
	json_object_set_new(o, "client_helo", e.client_helo ? json_string(e.client_helo) : json_null());
	json_object_set_new(o, "auth_user", e.auth_user ? json_string(e.auth_user) : json_null());
	json_object_set_new(o, "envid", e.envid ? json_string(e.envid) : json_null());
	json_object_set_new(o, "attempts", json_integer((json_int_t)dn.attempts));
	json_object_set_new(o, "next_attempt_epoch",
			    dn.present ? json_integer((json_int_t)dn.next_try) : json_null());
	json_object_set_new(o, "last_error", dn.present && dn.error[0] ? json_string(dn.error)
								       : json_null());
	rcpts = json_array();
	for (i = 0; i < e.nrcpt; i++) {
		rcpt_error(c->server.spool, qid, i, err, sizeof(err));
		json_array_append_new(rcpts, json_pack("{s:s, s:s?, s:s, s:s?}", "address",
						       e.rcpt[i].addr, "orcpt", e.rcpt[i].orcpt,
						       "state", rcpt_state(e.rcpt[i].state),
						       "last_error", err[0] ? err : NULL));
	}
	json_object_set_new(o, "recipients", rcpts);
	json_object_set_new(o, "headers", json_stringn_nocheck(headers, strlen(headers)));
	if (json) {
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
		if (s)
			puts(s);
		free(s);
	} else {
		char age[24];
		queue_view_age((long long)age_seconds(now, e.arrival), age, sizeof(age));
		printf("id:          %s\nstate:       %s\nage:         %s\nsize:        %llu\n"
		       "sender:      <%s>\nreceived:    connector=%s client=%s helo=%s auth=%s\n"
		       "attempts:    %u\n",
		       e.qid, state, age, (unsigned long long)e.content_len, e.sender ? e.sender : "",
		       e.connector ? e.connector : "-", e.client_addr ? e.client_addr : "-",
		       e.client_helo ? e.client_helo : "-", e.auth_user ? e.auth_user : "-",
		       dn.attempts);
		if (dn.present)
			printf("next try:    in %llds\nlast error:  %s\n",
			       (long long)(dn.next_try - now), dn.error[0] ? dn.error : "-");
		for (i = 0; i < e.nrcpt; i++) {
			rcpt_error(c->server.spool, qid, i, err, sizeof(err));
			printf("recipient:   <%s> %s%s%s\n", e.rcpt[i].addr, rcpt_state(e.rcpt[i].state),
			       err[0] ? " last error: " : "", err);
		}
		printf("headers:\n");
		for (char *p = headers; *p; p++)
			if (*p != '\r')
				putchar((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t' ? '?' : *p);
	}
	json_decref(o);
	free(headers);
	envelope_free(&e);
	return 0;
}

static int cmd_export(const struct config *c, const char *qid)
{
	struct envelope e;
	char path[4200], chunk[65536];
	uint64_t left;
	off_t off;
	int fd;

	if (load_one(c, qid, &e, path, sizeof(path)) != 0)
		return 1;
	left = e.content_len;
	off = (off_t)e.content_off;
	envelope_free(&e);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "transitctl: %s: %s\n", qid, strerror(errno));
		return 1;
	}
	while (left > 0) {
		ssize_t r = pread(fd, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk), off);
		if (r <= 0 || fwrite(chunk, 1, (size_t)r, stdout) != (size_t)r) {
			fprintf(stderr, "transitctl: %s: cannot export: %s\n", qid,
				r < 0 ? strerror(errno) : "short read or write");
			close(fd);
			return 1;
		}
		left -= (uint64_t)r;
		off += r;
	}
	close(fd);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- changes, through the daemon ------------------------------------------------ */

struct id_list {
	char **v;
	size_t n, cap;
	const struct queue_filter *f;
	const char *spool;
	time_t now;
};

static void add_id(struct id_list *l, const char *qid)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrdup(qid);
}

static void select_cb(const char *path, struct envelope *e, void *arg)
{
	struct id_list *l = arg;

	(void)path;
	if (queue_filter_match(l->f, l->spool, e, l->now))
		add_id(l, e->qid);
	envelope_free(e);
	free(e);
}

static int per_id_verb(const struct config *c, const char *verb, const char *done_word,
		       struct id_list *ids, bool ndr, bool json)
{
	json_t *all_done = json_array(), *all_failed = json_array();
	size_t i, k;
	int rc = 0;
	char err[1024];

	for (i = 0; i < ids->n; i += QCMD_CHUNK) {
		json_t *args = json_object(), *a = json_array(), *reply;
		enum ctl_result r;
		for (k = i; k < ids->n && k < i + QCMD_CHUNK; k++)
			json_array_append_new(a, json_string(ids->v[k]));
		json_object_set_new(args, "ids", a);
		if (ndr)
			json_object_set_new(args, "ndr", json_true());
		r = ctl_request(c, verb, args, &reply, err, sizeof(err));
		json_decref(args);
		if (r != CTL_OK) {
			fprintf(stderr, "transitctl: %s\n", err);
			json_decref(all_done);
			json_decref(all_failed);
			return 1;
		}
		json_array_extend(all_done, json_object_get(reply, "done"));
		json_array_extend(all_failed, json_object_get(reply, "failed"));
		json_decref(reply);
	}
	if (json) {
		json_t *o = json_pack("{s:o, s:o}", "done", all_done, "failed", all_failed);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		rc = json_array_size(json_object_get(o, "failed")) ? 1 : 0;
		json_decref(o);
		return rc;
	}
	{
		json_t *v;
		json_array_foreach(all_done, k, v)
			printf("%s %s\n", json_string_value(v), done_word);
		json_array_foreach(all_failed, k, v) {
			const char *id = json_string_value(json_object_get(v, "id"));
			const char *why = json_string_value(json_object_get(v, "error"));
			fprintf(stderr, "transitctl: %s: %s\n", id ? id : "?", why ? why : "?");
			rc = 1;
		}
	}
	json_decref(all_done);
	json_decref(all_failed);
	return rc;
}

static int hop_verb(const struct config *c, const char *verb, const char *hop, bool json)
{
	json_t *args = json_pack("{s:s}", "hop", hop), *reply;
	char err[1024];
	enum ctl_result r = ctl_request(c, verb, args, &reply, err, sizeof(err));

	json_decref(args);
	if (r != CTL_OK) {
		fprintf(stderr, "transitctl: %s\n", err);
		return 1;
	}
	if (json) {
		char *s = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
	} else {
		printf("%s %s\n", hop, strcmp(verb, "queue.suspend") == 0 ? "suspended" : "resumed");
	}
	json_decref(reply);
	return 0;
}

static const struct {
	const char *sub, *verb, *done_word;
} per_id_subs[] = {
	{"freeze", "queue.freeze", "frozen"},
	{"thaw", "queue.thaw", "thawed"},
	{"retry", "queue.retry", "retry now"},
	{"delete", "queue.delete", "deleted"},
};

int queue_admin_main(const struct config *c, int argc, char **argv)
{
	const char *sub = argv[1];
	struct queue_filter f = {0};
	struct id_list ids = {0};
	bool json = false, ndr = false, all = false;
	const char *one = NULL;
	int i, rc;
	size_t k;

	for (i = 2; i < argc; i++) {
		int r = queue_filter_option(&f, argc, argv, &i);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--ndr") == 0)
			ndr = true;
		else if (strcmp(argv[i], "--all") == 0)
			all = true;
		else if (argv[i][0] == '-') {
			fprintf(stderr, "transitctl: queue %s: unknown option '%s'\n", sub, argv[i]);
			return EXIT_USAGE;
		} else {
			add_id(&ids, argv[i]);
			one = argv[i];
		}
	}
	if (strcmp(sub, "show") == 0 || strcmp(sub, "export") == 0) {
		if (ids.n != 1 || f.any) {
			fprintf(stderr, "transitctl: usage: transitctl queue %s ID%s\n", sub,
				sub[0] == 's' ? " [--json]" : "");
			return EXIT_USAGE;
		}
		rc = sub[0] == 's' ? cmd_show(c, one, json) : cmd_export(c, one);
		goto out;
	}
	if (strcmp(sub, "suspend") == 0 || strcmp(sub, "resume") == 0) {
		if ((all ? ids.n != 0 : ids.n != 1) || f.any) {
			fprintf(stderr, "transitctl: usage: transitctl queue %s NEXT-HOP|--all [--json]\n",
				sub);
			return EXIT_USAGE;
		}
		rc = hop_verb(c, sub[0] == 's' ? "queue.suspend" : "queue.resume", all ? "*" : one,
			      json);
		goto out;
	}
	for (k = 0; k < sizeof(per_id_subs) / sizeof(per_id_subs[0]); k++)
		if (strcmp(sub, per_id_subs[k].sub) == 0)
			break;
	if (k == sizeof(per_id_subs) / sizeof(per_id_subs[0])) {
		fprintf(stderr, "transitctl: queue: unknown subcommand '%s'\n"
				"Try 'transitctl -h' for help.\n", sub);
		return EXIT_USAGE;
	}
	if ((ids.n == 0) == !f.any || (ndr && k != 3)) {
		fprintf(stderr, "transitctl: usage: transitctl queue %s ID... | FILTERS "
				"(--sender S --recipient R --state ST --older-than T)%s [--json]\n",
			sub, k == 3 ? " [--ndr]" : "");
		return EXIT_USAGE;
	}
	if (f.any) {
		json_t *pong;
		char err[1024];
		/* a change needs the daemon: say so before walking the queue */
		if (ctl_request(c, "ping", NULL, &pong, err, sizeof(err)) != CTL_OK) {
			fprintf(stderr, "transitctl: %s\n", err);
			return 1;
		}
		json_decref(pong);
		ids.f = &f;
		ids.spool = c->server.spool;
		ids.now = time(NULL);
		if (queue_walk(c->server.spool, select_cb, &ids) < 0) {
			fprintf(stderr, "transitctl: cannot read the queue in %s/queue: %s\n",
				c->server.spool, strerror(errno));
			return 1;
		}
		if (ids.n == 0) {
			if (json)
				puts("{\"done\": [], \"failed\": []}");
			else
				puts("no message matches");
			return 0;
		}
	}
	rc = per_id_verb(c, per_id_subs[k].verb, per_id_subs[k].done_word, &ids, ndr, json);
out:
	for (k = 0; k < ids.n; k++)
		free(ids.v[k]);
	free(ids.v);
	return rc;
}
