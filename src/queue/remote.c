/*
 * remote.c - delivery through send connectors: next-hop queues and the
 * SMTP connections that drain them.
 *
 * A next hop is (send connector, recipient domain). Its queue holds jobs:
 * the recipients of one message for that hop. Connections are opened per
 * next hop, up to the connector's max-connections-per-destination and
 * queue.max-connections in total; each connection takes jobs one after
 * the other (connection reuse) until the queue is empty.
 *
 * Fairness under queue.max-connections: a next hop that wants a
 * connection while every slot is taken joins a FIFO of waiting hops
 * (sched->nh_waiting); each slot that frees goes to the hop at its head.
 * A connection that has sent REMOTE_TURN_JOBS messages while others wait
 * ends after the current one and its hop, if it still has work, goes to
 * the back of the line. Without this a waiting hop started again only
 * when a new message arrived for it, so its mail never moved.
 *
 * Where a connection goes (RFC 5321 5.1):
 *  - DNS routing: the domain's MX hosts in preference order (equal
 *    preferences shuffled by net/dns.c), each of their addresses in turn,
 *    A/AAAA when there is no MX; null MX → failed 5.1.10; a domain that
 *    does not exist → failed 5.1.2; an MX list that leads back to us →
 *    only the hosts more preferred than ourselves, none → failed 5.4.6.
 *  - smart hosts: in configured order, "[host]" by A/AAAA only, "host" by
 *    its MX. The next host is tried when one cannot be reached or does not
 *    greet, or fails TLS: a failure of the transaction itself is reported.
 * TLS "require" never sends in clear (smtp_client.c enforces it).
 */
#include "queue/sched_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/smtp_client.h"
#include "net/dns.h"
#include "queue/queue.h"
#include "smtp/cmd.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

struct nh_job {
	TAILQ_ENTRY(nh_job) link;
	struct qentry *e;
	size_t n;
	size_t idx[];
};

struct nexthop {
	char key[600];
	TAILQ_ENTRY(nexthop) wait_link; /* in sched->nh_waiting when waiting */
	bool waiting;
	struct conf_gen *gen; /* the generation sc and scrt belong to (a reference) */
	const struct send_connector *sc;
	const struct sc_runtime *scrt;
	char domain[256];
	TAILQ_HEAD(, nh_job) jobs;
	size_t njobs;
	unsigned nconn;
};

struct rconn {
	struct sched *s;
	struct nexthop *nh;
	size_t target;		 /* DNS routing: 0; smart hosts: index of the host */
	struct dns_result *res;	 /* candidates of the current target */
	size_t host_i, addr_i;	 /* next candidate to try */
	uint16_t port;
	struct smtpc *c;
	struct nh_job *job;	 /* in flight */
	unsigned sent;		 /* jobs taken by this connection (its turn) */
	struct smtpc_rcpt *rcpts;
	int content_fd;
	char last_error[600];	 /* "421 4.4.1 connect to ...: refused" */
	char last_status[16];
	bool last_perm;		 /* the last failure was permanent (5xx, DNS) */
	bool plain_retry;	 /* opportunistic TLS failed: this address again in clear */
	char peer[340];	 /* "host[ip]:port" */
};

#define REMOTE_TURN_JOBS 16 /* messages per connection while other hops wait */

static void rconn_next_target(struct rconn *rc);
static void rconn_try_next(struct rconn *rc);
static void rconn_pump(struct rconn *rc);
static void nexthop_kick(struct sched *s, struct nexthop *nh);
static void nexthop_hand_back(struct nexthop *nh);
static bool nexthop_suspended(const struct sched *s, const struct nexthop *nh);

static size_t nh_capacity(const struct nexthop *nh, const struct sched *s)
{
	(void)s;
	return nh->sc->max_connections_per_destination;
}

void remote_init(struct sched *s)
{
	s->nexthops = htable_new();
	TAILQ_INIT(&s->nh_waiting);
}

/* ---- waiting for a connection slot ------------------------------------------ */

static bool nexthop_wants_conn(const struct nexthop *nh)
{
	return nh->njobs > nh->nconn * 4 && nh->nconn < nh_capacity(nh, NULL);
}

static void nexthop_wait(struct sched *s, struct nexthop *nh)
{
	if (nh->waiting)
		return;
	TAILQ_INSERT_TAIL(&s->nh_waiting, nh, wait_link);
	nh->waiting = true;
}

static void nexthop_unwait(struct sched *s, struct nexthop *nh)
{
	if (!nh->waiting)
		return;
	TAILQ_REMOVE(&s->nh_waiting, nh, wait_link);
	nh->waiting = false;
}

/* Is a hop other than nh waiting for a slot? */
static bool others_waiting(const struct sched *s, const struct nexthop *nh)
{
	const struct nexthop *w = TAILQ_FIRST(&s->nh_waiting);

	return w != NULL && (w != nh || TAILQ_NEXT(w, wait_link) != NULL);
}

/* Free slots go to the waiting hops, oldest first. */
static void remote_start_waiting(struct sched *s)
{
	struct nexthop *nh;

	while (s->remote_conns < s->conf->queue.max_connections &&
	       (nh = TAILQ_FIRST(&s->nh_waiting)) != NULL) {
		nexthop_unwait(s, nh);
		nexthop_kick(s, nh); /* waits again if it wants more than it got */
	}
}

static void nexthop_free(void *p)
{
	struct nexthop *nh = p;
	struct nh_job *j;

	while ((j = TAILQ_FIRST(&nh->jobs)) != NULL) {
		TAILQ_REMOVE(&nh->jobs, j, link);
		free(j);
	}
	conf_gen_unref(nh->gen);
	free(nh);
}

void remote_free(struct sched *s)
{
	/* Open connections are abandoned with the loop; their entries are
	 * freed by sched_free and retried at the next start. */
	TAILQ_INIT(&s->nh_waiting);
	htable_free(s->nexthops, nexthop_free);
	s->nexthops = NULL;
}

/* ---- outcomes ---------------------------------------------------------------- */

static void fail_or_defer_job(struct rconn *rc, struct nh_job *j, bool perm, const char *status,
			      const char *diag)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		sched_rcpt_result(j->e, j->idx[i], perm ? OUT_FAILED : OUT_DEFERRED, status, diag,
				  rc->peer[0] ? rc->peer : NULL, rc->nh->sc->name);
	sched_part_done(j->e);
	free(j);
}

/* Every queued job of the next hop gets the same fate (the destination
 * could not be reached at all). */
static void nexthop_drain(struct rconn *rc, bool perm, const char *status, const char *diag)
{
	struct nexthop *nh = rc->nh;
	struct nh_job *j;

	while ((j = TAILQ_FIRST(&nh->jobs)) != NULL) {
		TAILQ_REMOVE(&nh->jobs, j, link);
		nh->njobs--;
		fail_or_defer_job(rc, j, perm, status, diag);
	}
}

static void rconn_free(struct rconn *rc)
{
	struct sched *s = rc->s;
	struct nexthop *nh = rc->nh;

	if (rc->c)
		smtpc_close(rc->c);
	if (rc->content_fd >= 0)
		close(rc->content_fd);
	free(rc->res);
	free(rc->rcpts);
	free(rc);
	nh->nconn--;
	s->remote_conns--;
	if (nh->njobs == 0 && nh->nconn == 0) {
		nexthop_unwait(s, nh);
		htable_del(s->nexthops, nh->key);
		nexthop_free(nh);
	} else if (nexthop_wants_conn(nh)) {
		/* jobs left (a connection that was not reusable, or its turn
		 * ended): back of the line, behind the hops already waiting,
		 * even if it was waiting already for one more connection */
		nexthop_unwait(s, nh);
		nexthop_wait(s, nh);
	}
	remote_start_waiting(s);
}

/* Give up on this connection attempt: every host and address of the next
 * hop failed, so the jobs still queued for it share the last error and
 * wait for their retry time (Postfix's dead destination). Connections of
 * the hop that are already open finish what they hold. Leaving the jobs
 * queued would start the next attempt at once: with several connections
 * per destination that was a busy loop of connects to a dead host. */
static void rconn_give_up(struct rconn *rc)
{
	nexthop_drain(rc, rc->last_perm, rc->last_status[0] ? rc->last_status : "4.4.1",
		       rc->last_error[0] ? rc->last_error : "no reachable host");
	rconn_free(rc);
}

/* ---- sending ------------------------------------------------------------------ */

static void reply_text(const struct smtpc_reply *r, char *out, size_t outsz)
{
	if (r->local)
		snprintf(out, outsz, "%s", r->text);
	else
		snprintf(out, outsz, "%d%s%s %s", r->code, r->enh[0] ? " " : "", r->enh, r->text);
}

static void reply_status(const struct smtpc_reply *r, char *out, size_t outsz)
{
	if (r->enh[0])
		str_copy(out, r->enh, outsz);
	else
		snprintf(out, outsz, "%d.0.0", r->code >= 500 ? 5 : r->code >= 400 ? 4 : 2);
}

static void send_done(struct smtpc *c, void *arg, const struct smtpc_result *r)
{
	struct rconn *rc = arg;
	struct nh_job *j = rc->job;
	char diag[700], status[16];
	size_t i;

	rc->job = NULL;
	close(rc->content_fd);
	rc->content_fd = -1;
	for (i = 0; i < j->n; i++) /* for the tracking events */
		str_copy(j->e->rt[j->idx[i]].tls, smtpc_info(c)->tls ? smtpc_info(c)->tls_info : "",
			 sizeof(j->e->rt[j->idx[i]].tls));
	if (r->status != SMTPC_DONE) {
		/* the whole message failed; a recipient the peer had already
		 * refused for good at RCPT keeps its own 5xx */
		for (i = 0; i < j->n; i++) {
			const struct smtpc_reply *rr =
				i < r->nrcpt && r->rcpt[i].code >= 500 ? &r->rcpt[i] : &r->msg_reply;
			bool perm = rr != &r->msg_reply || r->status == SMTPC_PERM;
			reply_text(rr, diag, sizeof(diag));
			reply_status(rr, status, sizeof(status));
			sched_rcpt_result(j->e, j->idx[i], perm ? OUT_FAILED : OUT_DEFERRED, status, diag,
					  rc->peer[0] ? rc->peer : NULL, rc->nh->sc->name);
		}
		sched_part_done(j->e);
		free(j);
	} else {
		for (i = 0; i < j->n && i < r->nrcpt; i++) {
			const struct smtpc_reply *rr = &r->rcpt[i];
			enum rcpt_outcome o = rr->code >= 200 && rr->code < 300 ? OUT_RELAYED
					      : rr->code >= 500		    ? OUT_FAILED
									    : OUT_DEFERRED;
			reply_text(rr, diag, sizeof(diag));
			reply_status(rr, status, sizeof(status));
			/* the next hop reports success itself when it speaks DSN */
			if (o == OUT_RELAYED && r->peer_dsn)
				j->e->env->rcpt[j->idx[i]].notify &= ~(unsigned)DSN_NOTIFY_SUCCESS;
			sched_rcpt_result(j->e, j->idx[i], o, status, diag, rc->peer, rc->nh->sc->name);
		}
		for (; i < j->n; i++)
			sched_rcpt_result(j->e, j->idx[i], OUT_DEFERRED, "4.4.0",
					  "no reply for this recipient", rc->peer, rc->nh->sc->name);
		sched_part_done(j->e);
		free(j);
	}
	if (!r->reusable) {
		smtpc_close(rc->c);
		rc->c = NULL;
		rconn_free(rc);
		return;
	}
	rconn_pump(rc);
}

static void rconn_pump(struct rconn *rc)
{
	struct nexthop *nh = rc->nh;
	struct nh_job *j = TAILQ_FIRST(&nh->jobs);
	struct envelope *env;
	struct smtpc_msg m;
	char path[4200];
	size_t i;

	if (j != NULL && nexthop_suspended(rc->s, nh)) {
		nexthop_hand_back(nh);
		j = NULL;
	}
	if (j == NULL || (rc->sent >= REMOTE_TURN_JOBS && others_waiting(rc->s, nh))) {
		rconn_free(rc); /* done, or its turn is over: the slot goes on */
		return;
	}
	rc->sent++;
	TAILQ_REMOVE(&nh->jobs, j, link);
	nh->njobs--;
	env = j->e->env;
	queue_path(rc->s->q, env->qid, path, sizeof(path));
	rc->content_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rc->content_fd < 0) {
		char diag[600];
		snprintf(diag, sizeof(diag), "cannot open queue file: %s", strerror(errno));
		fail_or_defer_job(rc, j, false, "4.3.0", diag);
		rconn_pump(rc);
		return;
	}
	rc->job = j;
	rc->rcpts = xrealloc(rc->rcpts, j->n * sizeof(*rc->rcpts));
	for (i = 0; i < j->n; i++) {
		rc->rcpts[i].addr = env->rcpt[j->idx[i]].addr;
		rc->rcpts[i].notify = env->rcpt[j->idx[i]].notify;
		rc->rcpts[i].orcpt = env->rcpt[j->idx[i]].orcpt;
	}
	memset(&m, 0, sizeof(m));
	m.sender = env->sender;
	m.envid = env->envid;
	m.ret = env->ret;
	m.body = env->body;
	m.smtputf8 = env->smtputf8;
	m.nrcpt = j->n;
	m.rcpt = rc->rcpts;
	m.content_fd = rc->content_fd;
	m.content_off = env->content_off;
	m.content_len = env->content_len;
	smtpc_send(rc->c, &m, send_done, rc);
}

/* ---- connecting ---------------------------------------------------------------- */

static void open_done(struct smtpc *c, void *arg, const struct smtpc_reply *err)
{
	struct rconn *rc = arg;

	if (err) {
		/* c is already freed by the client */
		rc->c = NULL;
		reply_text(err, rc->last_error, sizeof(rc->last_error));
		reply_status(err, rc->last_status, sizeof(rc->last_status));
		rc->last_perm = false; /* another host, or later, may do better */
		log_info("smtp connect-failed connector=%s nexthop=%s peer=%s reason=\"%s\"",
			 rc->nh->sc->name, rc->nh->domain, rc->peer, rc->last_error);
		/* Opportunistic TLS (RFC 7435) must not make mail undeliverable:
		 * after a failed handshake the same address is tried once in
		 * clear, as Postfix does at security level "may". */
		if (err->local && strcmp(err->enh, "4.7.5") == 0 && !rc->plain_retry &&
		    rc->nh->sc->tls == SC_TLS_OPPORTUNISTIC && rc->addr_i > 0) {
			rc->plain_retry = true;
			rc->addr_i--;
			log_info("smtp tls-fallback connector=%s peer=%s retrying without TLS",
				 rc->nh->sc->name, rc->peer);
		} else {
			rc->plain_retry = false;
		}
		rconn_try_next(rc);
		return;
	}
	log_info("smtp connected connector=%s nexthop=%s peer=%s tls=%s", rc->nh->sc->name,
		 rc->nh->domain, rc->peer, smtpc_info(c)->tls ? smtpc_info(c)->tls_info : "no");
	rconn_pump(rc);
}

static void rconn_try_next(struct rconn *rc)
{
	const struct send_connector *sc = rc->nh->sc;
	const struct sc_runtime *rt = rc->nh->scrt;
	struct smtpc_opts o;
	struct sockaddr_storage dst;
	const struct dns_host *h;
	char ip[INET6_ADDRSTRLEN];
	socklen_t dlen;

	while (rc->res && rc->host_i < rc->res->nhosts &&
	       rc->addr_i >= rc->res->hosts[rc->host_i].naddr) {
		rc->host_i++;
		rc->addr_i = 0;
	}
	if (rc->res == NULL || rc->host_i >= rc->res->nhosts) {
		rconn_next_target(rc);
		return;
	}
	h = &rc->res->hosts[rc->host_i];
	memcpy(&dst, &h->addr[rc->addr_i++], sizeof(dst));
	if (dst.ss_family == AF_INET) {
		((struct sockaddr_in *)&dst)->sin_port = htons(rc->port);
		inet_ntop(AF_INET, &((struct sockaddr_in *)&dst)->sin_addr, ip, sizeof(ip));
		dlen = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&dst)->sin6_port = htons(rc->port);
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&dst)->sin6_addr, ip, sizeof(ip));
		dlen = sizeof(struct sockaddr_in6);
	}
	snprintf(rc->peer, sizeof(rc->peer), "%s[%s]:%u", h->name, ip, (unsigned)rc->port);

	memset(&o, 0, sizeof(o));
	o.helo_name = sc->fqdn;
	o.tls = sc->tls == SC_TLS_REQUIRE			  ? SMTPC_TLS_REQUIRE
		: sc->tls == SC_TLS_OPPORTUNISTIC && !rc->plain_retry ? SMTPC_TLS_OPPORTUNISTIC
									  : SMTPC_TLS_NONE;
	o.tls_ctx = rt->tls;
	o.tls_name = h->name;
	o.auth_user = rt->auth_user;
	o.auth_pass = rt->auth_pass;
	if (dst.ss_family == AF_INET && sc->has_source4) {
		o.source = (const struct sockaddr *)&sc->source4;
		o.sourcelen = sizeof(sc->source4);
	} else if (dst.ss_family == AF_INET6 && sc->has_source6) {
		o.source = (const struct sockaddr *)&sc->source6;
		o.sourcelen = sizeof(sc->source6);
	}
	o.connect_timeout = (unsigned)sc->connect_timeout;
	o.command_timeout = (unsigned)sc->command_timeout;
	o.data_timeout = (unsigned)sc->data_timeout;
	o.protocol_log = sc->protocol_log;
	rc->c = smtpc_open(rc->s->base, (const struct sockaddr *)&dst, dlen, h->name, &o, open_done,
			   rc);
}

/* Drop MX hosts at or below our own preference (RFC 5321 5.1). Returns
 * false when nothing is left: mail for the domain loops back to us. */
static bool remove_self(struct rconn *rc, struct dns_result *res)
{
	bool (*is_local)(int, const void *) = rc->s->rt->is_local_ip;
	unsigned self = ~0u;
	size_t i, j, k = 0;

	if (is_local == NULL)
		return true;
	for (i = 0; i < res->nhosts; i++)
		for (j = 0; j < res->hosts[i].naddr; j++) {
			const struct sockaddr_storage *a = &res->hosts[i].addr[j];
			const void *ip = a->ss_family == AF_INET
						 ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
			if (is_local(a->ss_family, ip) && res->hosts[i].pref < self)
				self = res->hosts[i].pref;
		}
	if (self == ~0u)
		return true;
	for (i = 0; i < res->nhosts; i++)
		if (res->hosts[i].pref < self)
			res->hosts[k++] = res->hosts[i];
	res->nhosts = k;
	return k > 0;
}

static void resolved(void *arg, const struct dns_result *res)
{
	struct rconn *rc = arg;
	bool dns_routing = rc->nh->sc->nhosts == 0;

	free(rc->res);
	rc->res = NULL;
	if (res->status != DNS_OK) {
		bool perm = res->status != DNS_TEMPFAIL;
		const char *status = res->status == DNS_NULL_MX	    ? "5.1.10"
				     : res->status == DNS_TEMPFAIL ? "4.4.3"
								   : "5.1.2";
		snprintf(rc->last_error, sizeof(rc->last_error), "%s%s: %s",
			 res->status == DNS_NULL_MX ? "domain does not accept mail (null MX): " : "",
			 dns_routing ? rc->nh->domain : rc->nh->sc->hosts[rc->target - 1].host,
			 res->error);
		str_copy(rc->last_status, status, sizeof(rc->last_status));
		/* for a smart host, a DNS failure is the smart host's problem: defer */
		rc->last_perm = dns_routing && perm;
		if (dns_routing) {
			rconn_give_up(rc);
			return;
		}
		rconn_next_target(rc);
		return;
	}
	rc->res = xmalloc(sizeof(*rc->res));
	memcpy(rc->res, res, sizeof(*rc->res));
	if (dns_routing && !remove_self(rc, rc->res)) {
		snprintf(rc->last_error, sizeof(rc->last_error),
			 "mail for %s loops back to myself (MX points here)", rc->nh->domain);
		str_copy(rc->last_status, "5.4.6", sizeof(rc->last_status));
		rc->last_perm = true;
		rconn_give_up(rc);
		return;
	}
	rc->host_i = rc->addr_i = 0;
	rconn_try_next(rc);
}

/* Resolve the next place to go: the domain (DNS routing, once) or the
 * next smart host. */
static void rconn_next_target(struct rconn *rc)
{
	const struct send_connector *sc = rc->nh->sc;
	struct dns *dns = rc->s->rt->dns;

	free(rc->res);
	rc->res = NULL;
	if (sc->nhosts == 0) {
		if (rc->target > 0) {
			rconn_give_up(rc);
			return;
		}
		rc->target = 1;
		rc->port = sc->port;
		dns_resolve_mx(dns, rc->nh->domain, resolved, rc);
		return;
	}
	if (rc->target >= sc->nhosts) {
		rconn_give_up(rc);
		return;
	}
	/* rc->target counts the smart hosts started, so it is one past the current */
	rc->port = sc->hosts[rc->target].port;
	if (sc->hosts[rc->target++].no_mx)
		dns_resolve_host(dns, sc->hosts[rc->target - 1].host, resolved, rc);
	else
		dns_resolve_mx(dns, sc->hosts[rc->target - 1].host, resolved, rc);
}

/* The hop was suspended (transitctl queue suspend) after these jobs were
 * queued: give them back to their entries, unsent; the entries go through
 * dispatch again, which holds them until the hop is resumed. */
static void nexthop_hand_back(struct nexthop *nh)
{
	struct nh_job *j;
	size_t i;

	while ((j = TAILQ_FIRST(&nh->jobs)) != NULL) {
		TAILQ_REMOVE(&nh->jobs, j, link);
		nh->njobs--;
		for (i = 0; i < j->n; i++)
			j->e->rt[j->idx[i]].busy = false;
		sched_part_done(j->e);
		free(j);
	}
}

static bool nexthop_suspended(const struct sched *s, const struct nexthop *nh)
{
	return admin_hop_suspended(s, nh->sc->name, nh->domain);
}

/* Open connections while the hop has work for more, within its own limit
 * and queue.max-connections; when the total is reached, wait in line. */
static void nexthop_kick(struct sched *s, struct nexthop *nh)
{
	if (nexthop_suspended(s, nh)) {
		nexthop_hand_back(nh);
		return;
	}
	while (nexthop_wants_conn(nh)) {
		struct rconn *rc;

		if (s->remote_conns >= s->conf->queue.max_connections) {
			nexthop_wait(s, nh);
			return;
		}
		rc = xcalloc(1, sizeof(*rc));
		rc->s = s;
		rc->nh = nh;
		rc->content_fd = -1;
		nh->nconn++;
		s->remote_conns++;
		rconn_next_target(rc);
	}
}

void remote_enqueue(struct sched *s, struct qentry *e, const struct send_connector *sc,
		    const char *domain, const size_t *idx, size_t n)
{
	char key[600];
	struct nexthop *nh;
	struct nh_job *j;

	/* a next hop of an older generation drains on its own rules; mail
	 * routed after a reload queues behind a hop of the new one */
	snprintf(key, sizeof(key), "%" PRIu64 "|%s|%s", s->gen->number, sc->name, domain);
	nh = htable_get(s->nexthops, key);
	if (nh == NULL) {
		nh = xcalloc(1, sizeof(*nh));
		str_copy(nh->key, key, sizeof(nh->key));
		nh->gen = conf_gen_ref(s->gen);
		nh->sc = sc;
		nh->scrt = &s->gen->sc[sc - s->conf->scs];
		str_copy(nh->domain, domain, sizeof(nh->domain));
		TAILQ_INIT(&nh->jobs);
		htable_put(s->nexthops, key, nh);
	}
	j = xmalloc(sizeof(*j) + n * sizeof(size_t));
	j->e = e;
	j->n = n;
	memcpy(j->idx, idx, n * sizeof(size_t));
	TAILQ_INSERT_TAIL(&nh->jobs, j, link);
	nh->njobs++;
	nexthop_kick(s, nh);
}
