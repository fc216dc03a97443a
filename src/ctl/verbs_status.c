/*
 * verbs_status.c - the "status" verb: what "transitctl status" shows.
 *
 *   {"version", "node", "fqdn", "started" (RFC 3339), "uptime_seconds",
 *    "receive_connectors": [{"name", "bindings", "connections"}],
 *    "send_connectors": [{"name", "enabled"}], "sessions",
 *    "queue": {"total", "active", "deferred", "frozen", "held"},
 *    "suspended": [next hop...], "back_pressure": "normal|medium|high",
 *    "certificate": {"thumbprint", "subject", "connector", "not_after",
 *                    "days_left", "in_use", "expiring"},
 *    "last_check": what `transitctl check` saved, ...whatever other hooks add}
 *
 * Hooks: other parts of the daemon add their own keys (certificate expiry,
 * the last `check` result) with one function each in status_hooks[]
 * below; transitctl prints keys it does not know as "key: value".
 */
#include "ctl/control_verbs.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/gen.h"
#include "ctl/check.h"
#include "net/tls_runtime.h"
#include "policy/backpressure.h"
#include "queue/sched_admin.h"
#include "smtp/server.h"
#include "util/clock.h"

typedef void status_hook_fn(const struct control_env *env, json_t *status);

/* "certificate": the certificate in use that expires first
 * (net/tls_runtime.h), with how many are within 30 days of it. */
static void status_add_certificates(const struct control_env *env, json_t *st)
{
	struct tls_cert_status cs;
	char when[40];
	struct tm tm;

	(void)env;
	if (!tls_cert_status(&cs))
		return;
	if (!gmtime_r(&cs.not_after, &tm) ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		when[0] = '\0';
	json_object_set_new(st, "certificate",
			    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "thumbprint",
				      cs.thumbprint, "subject", cs.subject, "connector",
				      cs.connector, "not_after", when, "days_left",
				      (json_int_t)cs.days_left, "in_use", (json_int_t)cs.ncerts,
				      "expiring", (json_int_t)cs.expiring));
}

/* "last_check": the result `transitctl check` saved in the spool
 * (ctl/check.h), as it is; absent when none was run. */
static void status_add_last_check(const struct control_env *env, json_t *st)
{
	char path[4200];
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", (*env->gen)->conf->server.spool, CHECK_RESULT_FILE);
	if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	if (json_is_object(j))
		json_object_set_new(st, "last_check", j);
	else
		json_decref(j);
}

/* One line per hook: each sets its own key(s) in the status object. */
static status_hook_fn *const status_hooks[] = {
	status_add_certificates,
	status_add_last_check,
	NULL, /* end */
};

static void add_suspended(const char *hop, void *arg)
{
	json_array_append_new(arg, json_string(hop));
}

static json_t *receive_connectors(const struct control_env *env)
{
	const struct config *c = (*env->gen)->conf;
	json_t *a = json_array();
	size_t i, k;

	for (i = 0; i < c->nrcs; i++) {
		const struct receive_connector *rc = &c->rcs[i];
		json_t *b = json_array();
		for (k = 0; k < rc->nbindings; k++)
			json_array_append_new(b, json_string(rc->bindings[k].text));
		json_array_append_new(a, json_pack("{s:s, s:o, s:I}", "name", rc->name, "bindings", b,
						   "connections",
						   (json_int_t)smtp_server_sessions_on(env->srv, rc->name)));
	}
	return a;
}

json_t *verb_status(const struct control_env *env, const json_t *args, char *err, size_t errsz)
{
	const struct config *c = (*env->gen)->conf;
	struct sched_counts qc;
	json_t *st, *scs = json_array(), *susp = json_array();
	char started[40];
	struct tm tm;
	size_t i;

	(void)args;
	(void)err;
	(void)errsz;
	if (!gmtime_r(&env->started, &tm) ||
	    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		started[0] = '\0';
	sched_counts(env->sched, &qc);
	sched_suspended_each(env->sched, add_suspended, susp);
	for (i = 0; i < c->nscs; i++)
		json_array_append_new(scs, json_pack("{s:s, s:b}", "name", c->scs[i].name,
						     "enabled", c->scs[i].enabled));
	st = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:o, "
		       "s:s}",
		       "version", env->version, "node", c->server.node, "fqdn",
		       c->server.fqdn, "started", started, "uptime_seconds",
		       (json_int_t)(mono_elapsed_ms(env->started_mono_ms, clock_mono_ms()) / 1000u),
		       "sessions", (json_int_t)smtp_server_sessions(env->srv), "receive_connectors",
		       receive_connectors(env), "send_connectors", scs, "queue", "total",
		       (json_int_t)qc.total, "active", (json_int_t)qc.active, "deferred",
		       (json_int_t)qc.deferred, "frozen", (json_int_t)qc.frozen, "held",
		       (json_int_t)qc.held, "suspended", susp, "back_pressure",
		       bp_level_name(backpressure_level()));
	for (i = 0; status_hooks[i] != NULL; i++)
		status_hooks[i](env, st);
	return st;
}
