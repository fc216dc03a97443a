/*
 * control_verbs.h - the verbs of the control socket (control.h): one
 * table in control_verbs.c maps a verb name to its handler.
 *
 * A handler runs on the event loop and must not block: it asks the
 * daemon's parts in env and returns a JSON object for the reply (control.c
 * adds "ok": true), or NULL with a reason in err (the reply is then
 * {"ok": false, "error": err}). args is the request's "args" object, or
 * NULL when the request had none.
 */
#ifndef TRANSIT_CTL_CONTROL_VERBS_H
#define TRANSIT_CTL_CONTROL_VERBS_H

#include <stddef.h>

#include <jansson.h>

#include "ctl/control.h"

typedef json_t *control_verb_fn(const struct control_env *env, const json_t *args, char *err,
				size_t errsz);

/* Find and run a verb; NULL + err for an unknown verb or a failure. */
json_t *control_verb_run(const struct control_env *env, const char *verb, const json_t *args,
			 char *err, size_t errsz);

/* The verbs (each in the file of its concern). */
control_verb_fn verb_ping;	   /* control_verbs.c */
control_verb_fn verb_reload;	   /* control_verbs.c */
control_verb_fn verb_status;	   /* verbs_status.c */
control_verb_fn verb_queue_freeze; /* verbs_queue.c, and the five below */
control_verb_fn verb_queue_thaw;
control_verb_fn verb_queue_retry;
control_verb_fn verb_queue_delete;
control_verb_fn verb_queue_suspend;
control_verb_fn verb_queue_resume;

#endif
