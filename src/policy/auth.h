/*
 * auth.h - the credential check behind AUTH (RFC 4954), asynchronous: the
 * password hash (yescrypt, tens of milliseconds) is verified against the
 * directory (dir/passwd.c) on a worker thread (util/workq.c), never on
 * the event loop; a failure's answer is then held for the brute-force
 * delay (policy/authlimit.c) on a timer, and logged as one line fail2ban
 * can read:
 *     <session> auth failed address=IP login=NAME mechanism=PLAIN reason=bad-credentials
 * Passwords are copied into the job, wiped after use, never logged.
 *
 * The asker (the SMTP session's policy step) gets exactly one answer
 * callback, on the event loop, unless it cancels first: after
 * policy_auth_cancel() no callback comes and the asker may be freed at
 * once (the job, still on a worker, is freed when it comes back).
 */
#ifndef TRANSIT_POLICY_AUTH_H
#define TRANSIT_POLICY_AUTH_H

#include <stdbool.h>

#include "conf/conf.h"

struct event_base;
struct passwd_db;
struct policy_auth;
struct auth_check;

enum auth_outcome {
	AUTH_OUTCOME_OK,	  /* 235 2.7.0 */
	AUTH_OUTCOME_BAD,	  /* 535 5.7.8 (after the delay) */
	AUTH_OUTCOME_LOCKED,	  /* 454 4.7.0: too many failures, try later */
	AUTH_OUTCOME_TEMPFAIL,	  /* 454 4.7.0: the directory could not be asked */
};

/* Who asks: for the log line and the counters. */
struct auth_request {
	const char *session_id;
	const char *address;	/* client IP, as logged */
	const char *source_key; /* net/source.h prefix key of the client */
	const char *mechanism;	/* "PLAIN", "LOGIN" */
	const char *login;	/* the authcid */
};

struct policy_auth *policy_auth_new(struct event_base *base, struct passwd_db *users,
				    const struct config *c);
/* Joins the workers; checks still pending are dropped without callback. */
void policy_auth_free(struct policy_auth *pa);

/* Before the exchange or the check: is AUTH locked out for this source
 * (login NULL) or this login? If so, logs the refusal and returns true. */
bool policy_auth_locked(struct policy_auth *pa, const struct auth_request *rq);

/* A failure decided without the directory (PLAIN authzid that is not the
 * login): counted, logged, and answered AUTH_OUTCOME_BAD after the delay. */
struct auth_check *policy_auth_fail(struct policy_auth *pa, const struct auth_request *rq,
				    const char *reason,
				    void (*answer)(void *arg, enum auth_outcome o), void *arg);

/* Verify login/password; answer(arg, outcome) later on the loop. */
struct auth_check *policy_auth_verify(struct policy_auth *pa, const struct auth_request *rq,
				      const char *password,
				      void (*answer)(void *arg, enum auth_outcome o), void *arg);

/* No answer will come; the check is freed when its worker is done. */
void policy_auth_cancel(struct auth_check *ck);

#endif
