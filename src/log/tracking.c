/*
 * tracking.c - see tracking.h. The JSON is built with jansson and dumped
 * compact into a stack buffer (TRACK_LINE_MAX, room for the usual event);
 * a larger one (a RECEIVE with hundreds of recipients) gets a buffer of
 * its size, up to TRACK_BIG_MAX, beyond which it is counted as dropped
 * rather than cut into invalid JSON.
 */
#include "log/tracking.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/log.h"
#include "util/xmalloc.h"

#define TRACK_LINE_MAX 8192
#define TRACK_RING_SIZE (4u << 20)
#define TRACK_BIG_MAX (TRACK_RING_SIZE / 4) /* the largest record the ring takes */

static struct logdir *track_dir;
static char *track_node;
static unsigned long track_too_long; /* __atomic */

/* A string value; one that is not UTF-8 is kept with '?' for each octet
 * above 0x7f (a peer's reply, a header), so the key is never lost. */
static json_t *jstr(const char *v)
{
	json_t *j = json_string(v);

	if (j == NULL) {
		char *c = xstrdup(v);
		for (char *p = c; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		j = json_string(c);
		free(c);
	}
	return j;
}

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new_nocheck(o, key, jstr(v));
}

/* The event as a JSON object (NULL: out of memory). */
static json_t *tracking_json(const struct track_event *ev, const char *node, int64_t time_ms)
{
	json_t *o = json_object();
	char ts[40];
	struct tm tm;
	time_t sec = (time_t)(time_ms / 1000);
	size_t n;

	if (o == NULL)
		return NULL;
	gmtime_r(&sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(time_ms % 1000));
	set_str(o, "time", ts);
	set_str(o, "node", node);
	set_str(o, "event", ev->event);
	set_str(o, "qid", ev->qid);
	set_str(o, "message_id", ev->message_id);
	set_str(o, "sender", ev->sender);
	set_str(o, "recipient", ev->recipient);
	if (ev->recipients != NULL) {
		json_t *a = json_array();
		for (size_t i = 0; i < ev->nrecipients; i++)
			json_array_append_new(a, jstr(ev->recipients[i]));
		json_object_set_new_nocheck(o, "recipients", a);
	}
	set_str(o, "connector", ev->connector);
	set_str(o, "remote_host", ev->remote_host);
	set_str(o, "remote_ip", ev->remote_ip);
	if (ev->tls != NULL || ev->remote_ip != NULL)
		set_str(o, "tls", ev->tls ? ev->tls : "no");
	if (ev->has_size)
		json_object_set_new_nocheck(o, "size", json_integer((json_int_t)ev->size));
	set_str(o, "status", ev->status);
	set_str(o, "reply", ev->reply);
	set_str(o, "reason", ev->reason);
	set_str(o, "related_qid", ev->related_qid);
	set_str(o, "session", ev->session);
	if (ev->attempt > 0)
		json_object_set_new_nocheck(o, "attempt", json_integer(ev->attempt));
	return o;
}

/* o as one line into out: the length with the LF; or, when it does not
 * fit, the size it needs (> outsz); 0 on an error. */
static size_t tracking_dump(const json_t *o, char *out, size_t outsz)
{
	size_t n = json_dumpb(o, out, outsz > 0 ? outsz - 1 : 0, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (n == 0 || n + 1 > outsz)
		return n == 0 ? 0 : n + 1;
	out[n++] = '\n';
	return n;
}

size_t tracking_format(const struct track_event *ev, const char *node, int64_t time_ms,
		       char *out, size_t outsz)
{
	json_t *o = tracking_json(ev, node, time_ms);
	size_t n = o ? tracking_dump(o, out, outsz) : 0;

	json_decref(o);
	return n <= outsz ? n : 0;
}

bool tracking_open(const char *path, const char *node, const struct logdir_limits *lim)
{
	char dir[4200];

	if (track_dir != NULL)
		return true; /* already open (a reload): the path is restart-only */
	snprintf(dir, sizeof(dir), "%s/tracking", path);
	track_node = xstrdup(node);
	track_dir = logdir_open(dir, "tracking", ".jsonl", lim, TRACK_RING_SIZE);
	return track_dir != NULL;
}

void tracking_event(const struct track_event *ev)
{
	char line[TRACK_LINE_MAX], *big = NULL;
	struct timeval tv;
	json_t *o;
	size_t n = 0;

	if (track_dir == NULL)
		return;
	gettimeofday(&tv, NULL);
	o = tracking_json(ev, track_node, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
	if (o != NULL)
		n = tracking_dump(o, line, sizeof(line));
	if (n > sizeof(line) && n <= TRACK_BIG_MAX && (big = malloc(n)) != NULL) {
		/* a RECEIVE with many long recipients */
		size_t need = n;
		n = tracking_dump(o, big, need);
		if (n > need)
			n = 0;
	}
	json_decref(o);
	if (n == 0 || (n > sizeof(line) && big == NULL))
		__atomic_add_fetch(&track_too_long, 1, __ATOMIC_RELAXED);
	else
		(void)logdir_put(track_dir, big ? big : line, n);
	free(big);
}

unsigned long tracking_write_errors(void)
{
	return track_dir ? logdir_write_errors(track_dir) : 0;
}

unsigned long tracking_dropped(void)
{
	return (track_dir ? logdir_dropped(track_dir) : 0) +
	       __atomic_load_n(&track_too_long, __ATOMIC_RELAXED);
}

void tracking_flush(int ms) { logdir_flush(track_dir, ms); }

void tracking_close(void)
{
	logdir_close(track_dir);
	track_dir = NULL;
	free(track_node);
	track_node = NULL;
}
