/*
 * server.h - the SMTP server side: one session per accepted connection on
 * a receive connector (RFC 5321; extensions PIPELINING RFC 2920, SIZE RFC
 * 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461, CHUNKING RFC
 * 3030, ENHANCEDSTATUSCODES RFC 2034, STARTTLS RFC 3207, implicit TLS RFC
 * 8314).
 *
 * The server owns the sessions and their limits; it knows nothing about
 * sockets being bound (net/listener.c hands it accepted fds) nor about
 * delivery (a committed message is handed to the on_message callback).
 */
#ifndef TRANSIT_SMTP_SERVER_H
#define TRANSIT_SMTP_SERVER_H

#include <stdbool.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "conf/gen.h"
#include "mail/envelope.h"

struct event_base;
struct queue;
struct passwd_db;
struct smtp_server;

struct dns;
struct smtp_server_params {
	/* the configuration generation new sessions start on (the server
	 * takes a reference; smtp_server_set_generation() replaces it); its
	 * rc_tls holds the TLS context per receive connector */
	struct conf_gen *gen;
	struct event_base *base;
	struct queue *queue;
	struct passwd_db *users;
	struct dns *dns; /* DNSBL and PTR lookups (client_checks.c); NULL: none */
	/* true when ip (family AF_INET/AF_INET6, 4/16 bytes) is one of ours:
	 * user@[ip] is then a local address. */
	bool (*is_local_ip)(int family, const void *ip);
	/* A committed message; the callee takes ownership of env. */
	void (*on_message)(void *arg, struct envelope *env);
	void *on_message_arg;
};

struct smtp_server *smtp_server_new(const struct smtp_server_params *p);
/* A reload: sessions accepted from now on start on gen (a reference is
 * taken); each session in progress keeps the generation it started with
 * until it ends. */
void smtp_server_set_generation(struct smtp_server *srv, struct conf_gen *gen);
/* Serve an accepted connection on connector rc (index into the current
 * generation's conf->rcs).
 * Takes ownership of fd. Applies the total and per-source connection
 * limits (421 4.7.0). */
void smtp_server_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t salen,
			size_t rc_index);
/* A connection from a trusted proxy on binding b: its PROXY header is
 * read first (bounded, with a timeout), then the connector is picked and
 * the per-source limit applied for the real client (net/listener.h
 * listeners_pick_proxied). Takes ownership of fd. */
void smtp_server_accept_proxied(struct smtp_server *srv, int fd, const struct sockaddr *sa,
				socklen_t salen, const struct binding *b);
/* The listener ran out of descriptors and accepted fd only to say so:
 * 421 4.3.2 (rc: the connector for the client, NULL if none), close. */
void smtp_server_refuse_busy(struct smtp_server *srv, int fd, const struct receive_connector *rc);
unsigned smtp_server_sessions(const struct smtp_server *srv);
/* Sessions served now by the receive connector of that name (transitctl
 * status), whatever configuration generation they started on. */
unsigned smtp_server_sessions_on(const struct smtp_server *srv, const char *connector);


/* Graceful stop (the listeners are already closed). Every session is told
 * "421 4.3.2 <fqdn> Service shutting down" and closed once that is sent:
 * idle ones and those in the middle of a transaction (the transaction is
 * dropped) at once; a session whose message is being committed first gets
 * its 250 (or 451), then the 421. After grace_seconds whatever is left is
 * closed without waiting for the peer (a commit still in flight keeps its
 * session until the queue calls back). done(arg) runs on the loop once no
 * session is left; then smtp_server_free() has nothing to wait for. */
void smtp_server_shutdown(struct smtp_server *srv, unsigned grace_seconds, void (*done)(void *arg),
			  void *arg);
/* Free the server. Sessions still open (no smtp_server_shutdown(), or
 * it did not finish) are dropped: best effort 421, nothing waits. */
void smtp_server_free(struct smtp_server *srv);

#endif
