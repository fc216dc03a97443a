/*
 * sched_int.h - state shared by the scheduler's files (private to
 * src/queue/): sched.c (entries, routing, retries, local batches),
 * remote.c (next-hop queues and SMTP connections) and notify.c (DSNs).
 *
 * A recipient's outcome goes through sched_rcpt_result(). A final
 * outcome that the sender must hear about (NOTIFY) is written to the
 * queue file only after the DSN reporting it has been committed, so a
 * crash can repeat a delivery attempt but never lose a bounce.
 */
#ifndef TRANSIT_QUEUE_SCHED_INT_H
#define TRANSIT_QUEUE_SCHED_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <openssl/ssl.h>

#include "queue/sched.h"

struct workq;
struct dns;
struct nexthop;
struct dsn_job;

/* What the scheduler remembers about one recipient between attempts. */
struct rcpt_rt {
	bool busy;	      /* in a delivery now */
	char outcome;	      /* 0, or RCPT_DELIVERED / RCPT_FAILED waiting for its DSN */
	bool dsn_due;	      /* a DSN must report this recipient */
	const char *action;   /* "failed", "delivered", "relayed", "delayed" */
	char status[16];      /* RFC 3463 code, e.g. "5.1.1" */
	char diag[600];	      /* "smtp; 550 5.1.1 ..." or our reason */
	char remote_mta[256]; /* host that answered, or "" */
	time_t last_attempt;
	char tls[160];	      /* the delivery's TLS ("version=... cipher=..."), "" none;
				 set by remote.c before the result, for tracking */
};

struct qentry {
	struct sched *s;
	struct envelope *env;
	struct rcpt_rt *rt;   /* [env->nrcpt] */
	unsigned attempts;
	unsigned parts;	      /* deliveries in flight (batches, next-hop jobs) */
	unsigned dsns;	      /* DSNs being committed for this entry */
	bool deferred;	      /* a recipient got a temporary failure this round */
	struct event *retry_timer;
	time_t next_try;      /* wall clock, for the deferral note and transitctl */
	uint64_t age_base;    /* age in seconds when the entry was added (wall clock, clamped) */
	uint64_t mono_base;   /* clock_mono_ms() then: the age grows by the monotonic clock */
	char last_error[600];
	bool frozen;	      /* transitctl queue freeze: never dispatched (admin.c) */
	bool held;	      /* this dispatch skipped a recipient of a suspended next hop */
	bool parked;	      /* frozen or held: off every list until thaw/resume (admin.c) */
	TAILQ_ENTRY(qentry) ready;
	bool on_ready;
	LIST_ENTRY(qentry) all;
};

struct sched {
	/* the current generation (a reference): new routing decisions, retry
	 * and expiry use it; a batch or next hop keeps the one it began with */
	struct conf_gen *gen;
	const struct config *conf; /* gen->conf */
	const struct sched_runtime *rt;
	struct event_base *base;
	struct queue *q;
	struct workq *wq;	 /* delivery workers: Maildir batches, DSN builds, removals */
	struct workq *io;	 /* one thread: queue file state updates, in order */
	struct event *kick;
	TAILQ_HEAD(, qentry) ready_list;
	LIST_HEAD(, qentry) all_list;
	size_t count;
	unsigned batches_in_flight;
	struct htable *nexthops; /* key -> struct nexthop */
	unsigned remote_conns;	 /* outbound connections open */
	bool stopped;		 /* sched_stop(): dispatch nothing more */
	/* next hops with work that wait for a slot under queue.max-connections,
	 * oldest first: a freed slot goes to the head (remote.c) */
	TAILQ_HEAD(nh_wait_list, nexthop) nh_waiting;
	struct dsn_job *dsn_jobs; /* DSNs being built on a worker (notify.c) */
	char spool[4096];
	/* admin.c: transitctl's freeze and suspend */
	struct htable *byqid;	     /* qid -> struct qentry */
	struct htable *frozen_init;  /* qids with a <spool>/frozen/ marker, until sched_add */
	struct htable *suspended;    /* next hop or connector name -> (void *)1 */
	bool suspend_all;	     /* queue suspend --all */
};

enum rcpt_outcome { OUT_DELIVERED, OUT_RELAYED, OUT_DEFERRED, OUT_FAILED };

/* sched.c */
void sched_rcpt_result(struct qentry *e, size_t idx, enum rcpt_outcome o, const char *status,
		       const char *diag, const char *remote_mta, const char *via);
void sched_part_done(struct qentry *e); /* a delivery part finished: settle when last */
void sched_settle(struct qentry *e);	/* nothing in flight: DSNs, removal or retry */
/* Record a final state: in memory now, in the queue file on s->io. */
void sched_write_state(struct qentry *e, size_t idx, char state);
/* Write state bytes of a queue file on s->io (queue_file_set_states). */
void sched_file_update(struct sched *s, const char *qid, const uint64_t *state_off, size_t n,
		       char state);
/* Seconds the message has been queued: its age from the wall clock when
 * it was added (clamped at 0), then counted on the monotonic clock, so a
 * clock step while transitd runs changes nothing (util/clock.h). */
uint64_t sched_entry_age(const struct qentry *e);

/* Put an entry on the ready list (no-op when it is there, in flight or
 * waiting for DSNs). */
void sched_make_ready(struct qentry *e);
/* Remove an entry's file (on a worker) and free the entry. */
void sched_entry_remove(struct qentry *e);

/* admin.c */
void admin_init(struct sched *s);
void admin_free(struct sched *s);
/* Is delivery to this next hop suspended? connector: the send connector's
 * name, or "mailbox" for local delivery; domain: lower-case. */
bool admin_hop_suspended(const struct sched *s, const char *connector, const char *domain);
/* sched_add: mark an entry frozen if a marker was found at start. */
void admin_note_added(struct qentry *e);
/* <spool>/frozen/<qid>, the marker that makes a freeze survive a restart. */
void admin_frozen_path(const char *spool, const char *qid, char *out, size_t outsz);

/* remote.c */
void remote_init(struct sched *s);
void remote_enqueue(struct sched *s, struct qentry *e, const struct send_connector *sc,
		    const char *domain, const size_t *idx, size_t n);
void remote_free(struct sched *s);
/* For "queue list --by-next-hop" style reporting in logs. */

/* notify.c: queue the DSNs an entry owes; true if any were started
 * (then sched_part_done runs again when they are committed). */
bool notify_send_due(struct qentry *e);
/* A DELAY DSN when queue.delay-notice has passed and NOTIFY allows. */
void notify_delay_if_due(struct qentry *e);
/* After the workers are joined: free the DSN jobs still in flight. */
void notify_free(struct sched *s);

#endif
