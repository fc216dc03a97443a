/*
 * trackfilter.c - see trackfilter.h.
 */
#include "log/trackfilter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/htable.h"
#include "util/str.h"

void track_filter_init(struct track_filter *f) { memset(f, 0, sizeof(*f)); }

void track_filter_free(struct track_filter *f)
{
	if (f->joined)
		htable_free(f->joined, NULL);
	f->joined = NULL;
	free(f->scratch);
	f->scratch = NULL;
}

static void format_time(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

bool track_filter_time(const char *s, long long now, char out[32])
{
	struct tm tm;
	const char *end;
	char *e;
	long long n;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL ||
	    (end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm)) != NULL ||
	    (end = strptime(s, "%Y-%m-%d %H:%M", &tm)) != NULL ||
	    (end = strptime(s, "%Y-%m-%d", &tm)) != NULL) {
		if (*end == 'Z')
			end++;
		if (*end != '\0')
			return false;
		format_time(timegm(&tm), out);
		return true;
	}
	n = strtoll(s, &e, 10);
	if (e == s || n < 0 || n > 100000000LL)
		return false;
	if (strcmp(e, "s") == 0)
		;
	else if (strcmp(e, "m") == 0)
		n *= 60;
	else if (strcmp(e, "h") == 0)
		n *= 3600;
	else if (strcmp(e, "d") == 0)
		n *= 86400;
	else
		return false;
	format_time((time_t)(now - n), out);
	return true;
}

/* The value must appear in the line (ASCII case ignored) when it is
 * written there as is: printable ASCII with nothing JSON escapes. */
static bool may_contain(const char *line, const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"' ||
		    *p == '\\' || *p == '/')
			return true; /* escaped in JSON: decide after parsing */
	return strcasestr(line, v) != NULL;
}

static const char *get(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool same_ci(const char *a, const char *b) { return a && b && str_casecmp(a, b) == 0; }

static bool recipient_matches(json_t *o, const char *want)
{
	json_t *a = json_object_get(o, "recipients");
	size_t i;

	if (same_ci(get(o, "recipient"), want))
		return true;
	for (i = 0; json_is_array(a) && i < json_array_size(a); i++)
		if (same_ci(json_string_value(json_array_get(a, i)), want))
			return true;
	return false;
}

/* --message-id: the RECEIVE that names it, then everything about its
 * queue id (and the DSN it caused). */
static bool message_id_matches(struct track_filter *f, json_t *o)
{
	const char *qid = get(o, "qid"), *mid = get(o, "message_id");

	if (qid == NULL)
		return false;
	if (mid != NULL && strcmp(mid, f->message_id) == 0) {
		if (f->joined == NULL)
			f->joined = htable_new();
		htable_put(f->joined, qid, (void *)1);
		return true;
	}
	if (f->joined == NULL)
		return false;
	if (htable_get(f->joined, qid) != NULL) {
		const char *rel = get(o, "related_qid");
		if (rel != NULL)
			htable_put(f->joined, rel, (void *)1);
		return true;
	}
	return false;
}

/* tracking writes "time" first: {"time":"2026-12-04T10:00:00.000Z",...
 * so the time bounds are checked before parsing; a line of another shape
 * is left to the parser (and the check after it). */
static bool time_may_match(const struct track_filter *f, const char *line, size_t len)
{
	static const char key[] = "{\"time\":\"";
	const size_t k = sizeof(key) - 1, tlen = 24;
	const char *t = line + k;

	if ((!f->since[0] && !f->until[0]) || len < k + tlen + 1 || memcmp(line, key, k) != 0 ||
	    t[tlen] != '"')
		return true;
	if (f->since[0] && strncmp(t, f->since, tlen) < 0)
		return false;
	if (f->until[0] && strncmp(t, f->until, tlen) >= 0)
		return false;
	return true;
}

/* The line's queue id is one found through --message-id. The key
 * "qid" cannot occur inside a JSON string (its quotes would be escaped),
 * and queue ids need no escaping; a line where this finds nothing is
 * not about a joined message (or is parsed because it names the id). */
static bool joined_qid(const struct track_filter *f, const char *z)
{
	const char *q = f->joined ? strstr(z, "\"qid\":\"") : NULL, *e;
	char qid[64];

	if (q == NULL)
		return false;
	q += 7;
	if ((e = strchr(q, '"')) == NULL || (size_t)(e - q) >= sizeof(qid))
		return false;
	memcpy(qid, q, (size_t)(e - q));
	qid[e - q] = '\0';
	return htable_get(f->joined, qid) != NULL;
}

bool track_filter_line(struct track_filter *f, const char *line, size_t len, json_t **obj)
{
	char *z;
	json_t *o;
	const char *t;
	bool ok;

	if (obj)
		*obj = NULL;
	if (len == 0 || line[0] != '{')
		return false;
	if (!time_may_match(f, line, len))
		return false;
	/* the cheap test needs a NUL-terminated copy only when it is used */
	if (f->message_id != NULL || f->sender || f->recipient || f->qid || f->event) {
		if (f->scratchsz < len + 1) {
			z = realloc(f->scratch, len + 1);
			if (z == NULL)
				return false;
			f->scratch = z;
			f->scratchsz = len + 1;
		}
		z = f->scratch;
		memcpy(z, line, len);
		z[len] = '\0';
		ok = (!f->sender || may_contain(z, f->sender)) &&
		     (!f->recipient || may_contain(z, f->recipient)) &&
		     (!f->qid || may_contain(z, f->qid)) && (!f->event || may_contain(z, f->event)) &&
		     (!f->message_id || may_contain(z, f->message_id) || joined_qid(f, z));
		if (!ok)
			return false;
	}
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return false;
	}
	t = get(o, "time");
	ok = (f->since[0] == '\0' || (t && strcmp(t, f->since) >= 0)) &&
	     (f->until[0] == '\0' || (t && strcmp(t, f->until) < 0)) &&
	     (!f->sender || same_ci(get(o, "sender"), f->sender)) &&
	     (!f->recipient || recipient_matches(o, f->recipient)) &&
	     (!f->qid || (get(o, "qid") && strcmp(get(o, "qid"), f->qid) == 0)) &&
	     (!f->event || same_ci(get(o, "event"), f->event)) &&
	     (!f->message_id || message_id_matches(f, o));
	if (ok && obj)
		*obj = o;
	else
		json_decref(o);
	return ok;
}
