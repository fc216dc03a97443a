/*
 * sched.h - the delivery scheduler: which queued recipient is tried when.
 *
 * Every committed (or recovered) message is handed to sched_add(). The
 * scheduler routes each pending recipient (a mailbox of an authoritative
 * accepted domain goes to the Maildir agent; anything else waits for a
 * send connector), collects the ready deliveries of one loop iteration
 * into batches for the worker threads (one sync round per batch), records
 * each outcome in the queue file, retries temporary failures on the
 * queue.retry schedule, and expires recipients after queue.expire.
 * Runs on the event loop thread only.
 */
#ifndef TRANSIT_QUEUE_SCHED_H
#define TRANSIT_QUEUE_SCHED_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "conf/gen.h"
#include "mail/envelope.h"

struct event_base;
struct queue;
struct sched;
struct dns;
struct passwd_db;
typedef struct ssl_ctx_st SSL_CTX;

/* What the daemon prepared for outbound delivery (conf_gen->sc): per send
 * connector (same index as conf->scs) a TLS client context and the AUTH
 * credentials read from its auth-secret file. */
struct sc_runtime {
	SSL_CTX *tls;
	char *auth_user; /* NULL: no AUTH */
	char *auth_pass;
};
struct sched_runtime {
	struct dns *dns;
	bool (*is_local_ip)(int family, const void *ip); /* MX loop detection */
	struct passwd_db *users; /* the directory: local mailboxes that exist */
};

struct sched *sched_new(struct conf_gen *gen, const struct sched_runtime *rt,
			struct event_base *base, struct queue *q);
/* A reload: recipients routed from now on use gen (a reference is taken),
 * and so do retry, expiry and the connection limits; a Maildir batch or a
 * next-hop queue already made keeps its own generation until it drains. */
void sched_set_generation(struct sched *s, struct conf_gen *gen);
/* Take ownership of a committed message (malloc'ed envelope). */
void sched_add(struct sched *s, struct envelope *env);
/* A message just committed (from SMTP, or a DSN of ours): the tracking
 * event SUBMIT, then sched_add(). Messages found in the queue at start go
 * to sched_add() alone (a million-message queue would flood tracking). */
void sched_submit(struct sched *s, struct envelope *env);
/* Messages the scheduler holds (queued, deferred or in flight). */
size_t sched_count(const struct sched *s);
/* Shutdown, first step: start no new delivery from now on (queued and
 * deferred recipients stay in the queue for the next start; deliveries
 * already running go on and their outcomes are recorded). */
void sched_stop(struct sched *s);
/* true when no worker thread runs or holds a job of the scheduler (Maildir
 * batches, file removals): then sched_free() waits for nothing. Outbound
 * SMTP connections run on the loop and are abandoned by sched_free(). */
bool sched_idle(const struct sched *s);
/* Stop the workers (running deliveries finish), free everything. */
void sched_free(struct sched *s);

#endif
