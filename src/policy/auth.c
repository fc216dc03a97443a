/*
 * auth.c - asynchronous credential checks for AUTH (see auth.h).
 *
 * A check goes: worker thread (passwd_db_verify: the yescrypt hash, or
 * with users { dovecot-auth } a question to Dovecot's auth socket,
 * dir/dovecot_auth.c, bounded by dovecot-auth-timeout; with users { ldap }
 * the LDAP bind/compare of dir/ldapdir.c) ->
 * event loop (count success or failure in the authlimit tables, log a
 * failure) -> on failure a timer for the brute-force delay -> the answer.
 * A check that is cancelled while on the worker is marked and freed when
 * it comes back; while on its timer it is freed at once. A Dovecot that
 * cannot answer (down, hung, temp_fail) is a temporary failure, 454 4.7.0,
 * not counted against the client. Every check is
 * on pa's list so policy_auth_free() can free those whose worker result
 * will never be delivered (workq_free runs no done callbacks).
 */
#include "policy/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "dir/dovecot_auth.h"
#include "dir/passwd.h"
#include "policy/authlimit.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

#define AUTH_WORKERS 2

struct policy_auth {
	struct event_base *base;
	struct passwd_db *users;
	struct workq *wq;
	struct authlimit *limits;
	struct auth_check *checks; /* every check not yet freed */
	char *dovecot_socket;	   /* users { dovecot-auth }, or NULL: the passwd-file */
	unsigned dovecot_timeout_ms;
};

struct auth_check {
	struct auth_check *next, *prev;
	struct policy_auth *pa;
	void (*answer)(void *arg, enum auth_outcome o); /* NULL once cancelled */
	void *arg;
	bool on_worker;	   /* the worker still owns the job */
	struct event *delay; /* the failure's wait */
	char sid[32], address[64], source[64], mechanism[16], login[256];
	char password[256]; /* wiped once verified */
	const char *reason; /* a failure decided before the directory */
	int verified;	    /* the worker's result: 1 ok, 0 bad, -1 temporary failure */
	const char *why;    /* the worker's reason when not ok (static) */
};

struct policy_auth *policy_auth_new(struct event_base *base, struct passwd_db *users,
				    const struct config *c)
{
	struct policy_auth *pa = xcalloc(1, sizeof(*pa));
	struct authlimit_params p = {
		.delay_ms = c->auth_failures.delay * 1000,
		.delay_max_ms = c->auth_failures.delay_max * 1000,
		.window_ms = c->auth_failures.window * 1000,
		.max_per_source = c->auth_failures.max_per_source,
		.max_per_login = c->auth_failures.max_per_login,
		.lockout_ms = c->auth_failures.lockout * 1000,
		.table_size = c->auth_failures.table_size,
	};

	pa->base = base;
	pa->users = users;
	pa->wq = workq_new(base, AUTH_WORKERS);
	pa->limits = authlimit_new(&p);
	if (c->dovecot_auth) {
		pa->dovecot_socket = xstrdup(c->dovecot_auth);
		pa->dovecot_timeout_ms = (unsigned)c->dovecot_auth_timeout * 1000;
	}
	return pa;
}

static void check_free(struct auth_check *ck)
{
	struct policy_auth *pa = ck->pa;

	if (ck->prev)
		ck->prev->next = ck->next;
	else
		pa->checks = ck->next;
	if (ck->next)
		ck->next->prev = ck->prev;
	if (ck->delay)
		event_free(ck->delay);
	OPENSSL_cleanse(ck->password, sizeof(ck->password));
	free(ck);
}

void policy_auth_free(struct policy_auth *pa)
{
	if (pa == NULL)
		return;
	workq_free(pa->wq); /* joined: no worker holds a check any more */
	while (pa->checks)
		check_free(pa->checks);
	authlimit_free(pa->limits);
	free(pa->dovecot_socket);
	free(pa);
}

static struct auth_check *check_new(struct policy_auth *pa, const struct auth_request *rq,
				    void (*answer)(void *arg, enum auth_outcome o), void *arg)
{
	struct auth_check *ck = xcalloc(1, sizeof(*ck));

	ck->pa = pa;
	ck->answer = answer;
	ck->arg = arg;
	str_copy(ck->sid, rq->session_id, sizeof(ck->sid));
	str_copy(ck->address, rq->address, sizeof(ck->address));
	str_copy(ck->source, rq->source_key, sizeof(ck->source));
	str_copy(ck->mechanism, rq->mechanism, sizeof(ck->mechanism));
	str_copy(ck->login, rq->login ? rq->login : "", sizeof(ck->login));
	ck->next = pa->checks;
	if (pa->checks)
		pa->checks->prev = ck;
	pa->checks = ck;
	return ck;
}

bool policy_auth_locked(struct policy_auth *pa, const struct auth_request *rq)
{
	const char *which = NULL;
	char q[300];

	if (!authlimit_locked(pa->limits, rq->source_key, rq->login, clock_mono_ms(), &which))
		return false;
	log_info("%s auth refused address=%s login=%s mechanism=%s reason=locked-out-%s",
		 rq->session_id, rq->address, log_quote(rq->login ? rq->login : "", q, sizeof(q)),
		 rq->mechanism, which);
	return true;
}

static void deliver(struct auth_check *ck, enum auth_outcome o)
{
	void (*answer)(void *arg, enum auth_outcome o) = ck->answer;
	void *arg = ck->arg;

	check_free(ck);
	if (answer)
		answer(arg, o);
}

static void delay_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver(arg, AUTH_OUTCOME_BAD);
}

/* Count, log and delay a failure (on the loop). */
static void failed(struct auth_check *ck, const char *reason)
{
	struct policy_auth *pa = ck->pa;
	bool locked = false;
	uint64_t delay = authlimit_failure(pa->limits, ck->source, ck->login, clock_mono_ms(), &locked);
	struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
	char q[300];

	log_info("%s auth failed address=%s login=%s mechanism=%s reason=%s", ck->sid, ck->address,
		 log_quote(ck->login, q, sizeof(q)), ck->mechanism, reason);
	if (locked)
		log_info("%s auth lockout address=%s source=%s login=%s", ck->sid, ck->address,
			 ck->source, q);
	ck->delay = evtimer_new(pa->base, delay_done, ck);
	if (ck->delay == NULL) {
		deliver(ck, AUTH_OUTCOME_BAD);
		return;
	}
	evtimer_add(ck->delay, &tv);
}

static void verify_work(void *arg)
{
	struct auth_check *ck = arg;

	if (ck->pa->dovecot_socket) {
		struct dovecot_auth_request rq = {
			.socket_path = ck->pa->dovecot_socket,
			.timeout_ms = ck->pa->dovecot_timeout_ms,
			.remote_ip = ck->address,
			.login = ck->login,
			.password = ck->password,
		};
		enum dovecot_result r = dovecot_auth_verify(&rq, &ck->why);
		ck->verified = r == DOVECOT_AUTH_OK ? 1 : r == DOVECOT_AUTH_BAD ? 0 : -1;
	} else {
		ck->verified = passwd_db_verify(ck->pa->users, ck->login, ck->password);
		if (ck->verified < 0)
			ck->why = "directory-unavailable"; /* LDAP down or timing out */
	}
	OPENSSL_cleanse(ck->password, sizeof(ck->password));
}

static void verify_done(void *arg)
{
	struct auth_check *ck = arg;

	ck->on_worker = false;
	if (ck->answer == NULL) {
		check_free(ck); /* cancelled meanwhile */
		return;
	}
	if (ck->verified == 1) {
		authlimit_success(ck->pa->limits, ck->source, ck->login);
		deliver(ck, AUTH_OUTCOME_OK);
		return;
	}
	if (ck->verified < 0) {
		/* the password store could not answer: not the client's
		 * failure, so neither counted nor delayed */
		char q[300];
		log_warn("%s auth tempfail address=%s login=%s mechanism=%s reason=%s", ck->sid,
			 ck->address, log_quote(ck->login, q, sizeof(q)), ck->mechanism, ck->why);
		deliver(ck, AUTH_OUTCOME_TEMPFAIL);
		return;
	}
	failed(ck, "bad-credentials");
}

struct auth_check *policy_auth_fail(struct policy_auth *pa, const struct auth_request *rq,
				    const char *reason,
				    void (*answer)(void *arg, enum auth_outcome o), void *arg)
{
	struct auth_check *ck = check_new(pa, rq, answer, arg);

	failed(ck, reason);
	return ck;
}

struct auth_check *policy_auth_verify(struct policy_auth *pa, const struct auth_request *rq,
				      const char *password,
				      void (*answer)(void *arg, enum auth_outcome o), void *arg)
{
	struct auth_check *ck = check_new(pa, rq, answer, arg);

	if (strlen(password) >= sizeof(ck->password)) {
		failed(ck, "bad-credentials");
		return ck;
	}
	str_copy(ck->password, password, sizeof(ck->password));
	ck->on_worker = true;
	workq_submit(pa->wq, verify_work, verify_done, ck);
	return ck;
}

void policy_auth_cancel(struct auth_check *ck)
{
	if (ck == NULL)
		return;
	ck->answer = NULL;
	if (!ck->on_worker)
		check_free(ck); /* on its delay timer (or done): nothing else holds it */
}
