/*
 * verbs_queue.c - the queue verbs of the control socket: freeze, thaw,
 * retry, delete (silent or with a DSN), suspend, resume. Thin: the
 * scheduler does the work (queue/sched_admin.h).
 *
 *   queue.freeze|thaw|retry  {"ids": ["QID", ...]}
 *   queue.delete             {"ids": [...], "ndr": true|false}
 *   queue.suspend|resume     {"hop": "CONNECTOR:DOMAIN" | "CONNECTOR" | "mailbox:DOMAIN" | "*"}
 * Reply for ids: {"done": [QID...], "failed": [{"id": QID, "error": why}...]}.
 */
#include "ctl/control_verbs.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "queue/sched_admin.h"

#define VERB_MAX_IDS 100000 /* per request; transitctl sends larger sets in parts */

typedef const char *per_id_fn(struct sched *s, const char *qid, bool flag);

static const char *do_freeze(struct sched *s, const char *qid, bool unused)
{
	(void)unused;
	return sched_freeze(s, qid);
}

static const char *do_thaw(struct sched *s, const char *qid, bool unused)
{
	(void)unused;
	return sched_thaw(s, qid);
}

static const char *do_retry(struct sched *s, const char *qid, bool unused)
{
	(void)unused;
	return sched_retry(s, qid);
}

static const char *do_delete(struct sched *s, const char *qid, bool ndr)
{
	return sched_delete(s, qid, ndr);
}

static json_t *per_id(const struct control_env *env, const json_t *args, per_id_fn *fn, bool flag,
		      char *err, size_t errsz)
{
	const json_t *ids = args ? json_object_get(args, "ids") : NULL;
	json_t *done, *failed, *v;
	size_t i;

	if (!json_is_array(ids) || json_array_size(ids) == 0) {
		snprintf(err, errsz, "\"ids\": a list of queue ids is needed");
		return NULL;
	}
	if (json_array_size(ids) > VERB_MAX_IDS) {
		snprintf(err, errsz, "more than %d ids in one request", VERB_MAX_IDS);
		return NULL;
	}
	done = json_array();
	failed = json_array();
	json_array_foreach(ids, i, v) {
		const char *qid = json_string_value(v), *why;
		if (qid == NULL || strlen(qid) >= 64) {
			json_array_append_new(failed, json_pack("{s:s?, s:s}", "id", qid, "error",
							       "not a queue id"));
			continue;
		}
		if ((why = fn(env->sched, qid, flag)) == NULL)
			json_array_append_new(done, json_string(qid));
		else
			json_array_append_new(failed, json_pack("{s:s, s:s}", "id", qid, "error", why));
	}
	return json_pack("{s:o, s:o}", "done", done, "failed", failed);
}

json_t *verb_queue_freeze(const struct control_env *env, const json_t *args, char *err,
			  size_t errsz)
{
	return per_id(env, args, do_freeze, false, err, errsz);
}

json_t *verb_queue_thaw(const struct control_env *env, const json_t *args, char *err, size_t errsz)
{
	return per_id(env, args, do_thaw, false, err, errsz);
}

json_t *verb_queue_retry(const struct control_env *env, const json_t *args, char *err,
			 size_t errsz)
{
	return per_id(env, args, do_retry, false, err, errsz);
}

json_t *verb_queue_delete(const struct control_env *env, const json_t *args, char *err,
			  size_t errsz)
{
	return per_id(env, args, do_delete, json_is_true(json_object_get(args, "ndr")), err, errsz);
}

static json_t *hop_verb(const struct control_env *env, const json_t *args, bool suspend, char *err,
			size_t errsz)
{
	const char *hop = json_string_value(args ? json_object_get(args, "hop") : NULL), *why;

	if (hop == NULL) {
		snprintf(err, errsz, "\"hop\": a next hop is needed");
		return NULL;
	}
	why = suspend ? sched_suspend(env->sched, hop) : sched_resume(env->sched, hop);
	if (why) {
		snprintf(err, errsz, "%s: %s", hop, why);
		return NULL;
	}
	return json_pack("{s:s}", "hop", hop);
}

json_t *verb_queue_suspend(const struct control_env *env, const json_t *args, char *err,
			   size_t errsz)
{
	return hop_verb(env, args, true, err, errsz);
}

json_t *verb_queue_resume(const struct control_env *env, const json_t *args, char *err,
			  size_t errsz)
{
	return hop_verb(env, args, false, err, errsz);
}
