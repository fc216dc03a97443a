/*
 * control_verbs.c - the verb table of the control socket (see
 * control_verbs.h).
 *
 * How to add a verb:
 *   1. write its handler, a control_verb_fn, in the src/ctl/ file of its
 *      concern (e.g. verbs_reload.c), and declare it in control_verbs.h;
 *   2. add ONE line {"name", handler} at the end of control_verbs[] below;
 *   3. on the client side, transitctl sends {"verb": "name", "args": {...}}
 *      with ctl_request() (ctl/client.h) and prints the reply (and --json).
 * Names are "noun" or "noun.action" ("status", "queue.freeze").
 */
#include "ctl/control_verbs.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	control_verb_fn *run;
} control_verbs[] = {
	{"ping", verb_ping},
	{"status", verb_status},
	{"queue.freeze", verb_queue_freeze},
	{"queue.thaw", verb_queue_thaw},
	{"queue.retry", verb_queue_retry},
	{"queue.delete", verb_queue_delete},
	{"queue.suspend", verb_queue_suspend},
	{"queue.resume", verb_queue_resume},
	{"reload", verb_reload},
};

json_t *verb_ping(const struct control_env *env, const json_t *args, char *err, size_t errsz)
{
	(void)args;
	(void)err;
	(void)errsz;
	return json_pack("{s:s}", "version", env->version);
}

/* Start a reload (daemon/reload.h, through env->reload); the outcome is
 * recorded in spool/reload.status, which transitctl reload waits for
 * (ctl/reload_cmd.c). One already under way makes another follow it. */
json_t *verb_reload(const struct control_env *env, const json_t *args, char *err, size_t errsz)
{
	(void)args;
	if (env->reload == NULL) {
		snprintf(err, errsz, "this transitd cannot reload");
		return NULL;
	}
	env->reload(env->reload_arg);
	return json_pack("{s:I}", "pid", (json_int_t)getpid());
}

json_t *control_verb_run(const struct control_env *env, const char *verb, const json_t *args,
			 char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < sizeof(control_verbs) / sizeof(control_verbs[0]); i++)
		if (strcmp(control_verbs[i].name, verb) == 0)
			return control_verbs[i].run(env, args, err, errsz);
	snprintf(err, errsz, "unknown verb");
	return NULL;
}
