/*
 * session.h - state shared by the files of the SMTP server (private to
 * src/smtp/): server.c (connections, I/O, TLS, limits), commands.c (the
 * command table and handlers) and content.c (DATA/BDAT content intake).
 *
 * Session state and transaction state are kept apart: a struct smtp_tx
 * lives from MAIL to the end of the message (or RSET), and freeing it is
 * the whole of RSET.
 *
 * enum session_state says what the session expects next (a command, DATA
 * lines, BDAT octets, the commit, ...). Two waits are flags beside it,
 * because they pause whatever state the session is in: input_held (the
 * peer has not read our replies; server.c bounds them) and reply_delayed
 * (a reply held a second after the soft error limit).
 *
 * The policy step (DESIGN.md "The policy step"; OpenSMTPD's check/proceed
 * split): a handler checks syntax and state (replying 5xx at once), then
 * asks policy/ and parks the session in SS_POLICY with
 * session_policy_wait(); while it waits, nothing is read (input already
 * buffered stays there, below the high-water mark) and no command runs.
 * The answer builds the reply and calls session_policy_done() with the
 * state to go on in; a wait longer than rc->command_timeout is ended by
 * the wait's own timeout reply. Closing or freeing the session cancels
 * the request through the wait's cancel(), so no answer ever reaches a
 * freed session. AUTH is the first user; CONNECT, HELO, MAIL, RCPT and
 * end-of-data checks (tarpit, DNSBL, milters) park the same way.
 */
#ifndef TRANSIT_SMTP_SESSION_H
#define TRANSIT_SMTP_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mail/envelope.h"
#include "mail/msgdata.h"
#include "smtp/cmd.h"
#include "smtp/server.h"
#include "util/buf.h"

struct bufferevent;
struct event;
struct queue_writer;
struct htable;
struct fromhdr;

enum session_state {
	SS_GREETING,	 /* implicit TLS handshake or banner not yet sent */
	SS_CONNECTED,	 /* banner sent, no EHLO/HELO yet */
	SS_READY,	 /* after EHLO/HELO, no transaction */
	SS_MAIL,	 /* MAIL accepted, no recipient yet */
	SS_RCPT,	 /* at least one recipient */
	SS_DATA,	 /* reading DATA content */
	SS_BDAT,	 /* reading a BDAT chunk */
	SS_CHUNKING,	 /* between BDAT chunks: the envelope is committed to the
			    queue file, so MAIL/RCPT/DATA are refused (503 5.5.1) */
	SS_COMMIT,	 /* waiting for the queue's group commit */
	SS_POLICY,	 /* waiting for a policy answer (session_policy_wait) */
	SS_AUTH,	 /* AUTH: waiting for the client's SASL response line */
	SS_STARTTLS,	 /* 220 sent, waiting for it to flush before the handshake */
	SS_CLOSING,	 /* final reply queued, closing when flushed */
	SS_PROXY,	 /* from a trusted proxy: reading its PROXY header, before
			    the banner (proxy_wait.c); no bufferevent yet */
};

struct policy_auth;
struct smtp_session;
struct auth_check;
struct ldapdir_fetch;

/* One kind of policy wait: how to drop its request, what to answer when
 * it takes too long. */
struct session_wait_ops {
	const char *what;			  /* for the log: "auth" */
	void (*cancel)(struct smtp_session *s);	  /* no answer may come after this */
	void (*timeout)(struct smtp_session *s);  /* build the reply; cancel() was called */
};

struct smtp_server {
	struct smtp_server_params p;
	struct policy_auth *auth; /* credential checks; NULL when no connector has auth */
	unsigned nsessions;
	struct htable *per_source; /* "rc_index|source prefix" -> count (uintptr_t) */
	struct ratelimit *rates;   /* message and recipient rates (rates.c) */
	uint64_t next_id;
	struct smtp_session *sessions; /* list, for shutdown */
	/* smtp_server_shutdown() */
	bool shutting_down;
	struct event *shutdown_tick;	  /* sweeps the sessions while shutting down */
	struct timespec shutdown_deadline; /* CLOCK_MONOTONIC: then close what is left */
	void (*shutdown_done)(void *arg);
	void *shutdown_arg;
};

/* The transaction: from MAIL to the end of the message. */
struct smtp_tx {
	struct envelope env;
	struct mail_params mail;
	struct queue_writer *writer; /* open once DATA/BDAT started */
	struct hdrscan hdr;
	uint64_t size;		     /* content octets received (after unstuffing) */
	bool message_id_added;
	/* the first failure while reading the content; replied at its end */
	int fail_code;
	const char *fail_reason;     /* log key: "bare-lf", "nul", "line-too-long", ... */
	const char *fail_enh;
	const char *fail_text;
	char fail_buf[256];	     /* fail_text when it is built at run time */
	bool skipping_long_line;     /* discarding the rest of an over-long line */
	bool skipped_cr;	     /* ... whose last octet so far was a CR */
	bool after_bare_lf;	     /* the previous DATA line (or the DATA command)
					ended in a bare LF: a "." line is no end */
	bool bdat;		     /* content came by BDAT */
	struct buf partial;	     /* BDAT: a line not yet complete */
	struct fromhdr *from;	     /* From: collected for from_binding.c, or NULL */
};

struct smtp_session {
	struct smtp_session *next, *prev;
	struct smtp_server *srv;
	/* the configuration generation the session started on (a reference,
	 * dropped in session_free): rc, its limits, TLS context, accepted
	 * domains and routes all come from it, whatever reloads happen */
	struct conf_gen *gen;
	const struct receive_connector *rc;
	size_t rc_index;
	char id[20];
	char addr[INET6_ADDRSTRLEN];	   /* the client (the real one behind a proxy) */
	struct sockaddr_storage ss;
	char proxy_addr[INET6_ADDRSTRLEN]; /* the trusted proxy it came through, or "" */
	struct proxy_wait *proxy;	   /* SS_PROXY: the header being read */
	char source_key[128];
	int fd;
	struct bufferevent *bev;
	SSL *ssl;
	struct event *deadline;
	enum session_state state;
	bool tls;
	char tls_info[160];
	bool esmtp;
	char helo[256];
	unsigned errors;
	unsigned messages;
	struct smtp_tx *tx;
	uint64_t bdat_left;   /* octets of the current chunk still to read */
	bool bdat_last;
	bool bdat_discard;    /* chunk refused: read and drop it */
	bool skip_cmd_line;   /* discarding the rest of an over-long command line */
	bool cmd_bare_lf;     /* the command being run ended in a bare LF (normalize) */
	bool commit_pending;  /* a commit callback will still arrive */
	bool dead;	      /* connection gone; free when the commit returns */
	bool input_held;      /* reading stopped until the peer takes our replies */
	bool deadline_passed; /* the session deadline fired while waiting (SS_COMMIT) */
	bool reply_delayed;   /* past the soft error limit: s->out waits for reply_delay */
	struct event *reply_delay;
	struct event *tls_switch; /* STARTTLS: to the TLS bufferevent once 220 is out */
	unsigned rcpts_refused; /* recipients refused by policy (not counted in errors) */
	uint64_t tarpit_spent;	/* seconds of tarpit delay so far (tarpit-max-per-session) */
	/* the policy step */
	const struct session_wait_ops *wait; /* non-NULL while in SS_POLICY */
	struct event *wait_timer;
	/* AUTH (auth.c) */
	char *auth_user;	   /* the authenticated login, or NULL */
	struct auth_check *auth_ck; /* the credential check in flight */
	int auth_step;		   /* enum auth_step in auth.c */
	char auth_login[256];	   /* LOGIN: the user name, between its two lines */
	struct dnsbl_check *dnsbl; /* DNSBL lookups (client_checks.c), NULL: none */
	struct fcrdns_check *fcrdns; /* require-ptr: reverse DNS check, NULL: none */
	struct buf out;	      /* reply being built */
	struct ldapdir_fetch *dir_fetch; /* dir_wait.c: the LDAP question in flight */
	char dir_asked[320];		 /* ... and its address, until the line is read again */
};

/* server.c */
void session_send(struct smtp_session *s); /* flush s->out to the peer */
void session_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
/* Count an error; true if the session was closed for too many. From the
 * soft limit on, each reply is held a second (server.c). */
bool session_error(struct smtp_session *s);
/* A recipient refused by policy: not an error (see server.c). */
void session_rcpt_refused(struct smtp_session *s);
void session_close(struct smtp_session *s, const char *reason);
void session_set_state(struct smtp_session *s, enum session_state st);
void session_start_tls(struct smtp_session *s);
void session_data_timeouts(struct smtp_session *s, bool data);
/* After an asynchronous step (the commit): send what is built and read
 * on, or close with 421 4.4.2 if the session deadline passed meanwhile. */
void session_resume(struct smtp_session *s);

/* The PROXY header named the client (or, LOCAL/UNKNOWN, the proxy
 * itself) and connector rc_index serves it: per-source limit, banner. */
void session_proxied(struct smtp_session *s, const struct sockaddr *client, socklen_t clientlen,
		     size_t rc_index);

/* proxy_wait.c: the PROXY header of a connection from a trusted proxy */
void proxy_wait_start(struct smtp_session *s, const struct binding *b);
void proxy_wait_free(struct smtp_session *s);
/* Best effort, straight to the socket (no bufferevent in SS_PROXY). */
void proxy_say(struct smtp_session *s, const char *text);

/* Park the session in SS_POLICY until session_policy_done(); false (out
 * of memory: not parked, nothing asked yet) means answer 4xx at once. */
bool session_policy_wait(struct smtp_session *s, const struct session_wait_ops *ops);
/* The answer: its reply is built; go on in state next and read again. */
void session_policy_done(struct smtp_session *s, enum session_state next);

/* client_checks.c: DNSBL (policy/dnsbl.h) and require-ptr (policy/fcrdns.h) */
struct mail_addr;
void session_checks_start(struct smtp_session *s);
void session_checks_free(struct smtp_session *s); /* safe with lookups in flight */
/* true: line is an RCPT that must wait for the answers; the session is
 * parked (SS_POLICY) and reads the line again when they are in. */
bool session_checks_hold(struct smtp_session *s, const char *line, size_t len);
/* true: the client is refused for to (not postmaster/abuse): no
 * confirmed name under require-ptr (450 4.7.25) or listed (554 5.7.1). */
bool session_checks_refused(struct smtp_session *s, const struct mail_addr *to, const char *shown);

/* dir_wait.c: LDAP lookups at RCPT and MAIL (dir/ldapdir.h) */
/* true: the line waits for the directory (parked, read again after). */
bool session_dir_hold(struct smtp_session *s, const char *line, size_t len);
void session_dir_free(struct smtp_session *s); /* safe with a lookup in flight */

/* auth.c: AUTH (RFC 4954) and what it changes at MAIL */
void cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd);
void auth_response_line(struct smtp_session *s, const char *line, size_t len);
/* The SASL exchange ends without an answer (a refused or over-long line). */
void auth_abort(struct smtp_session *s);
void auth_ehlo_line(struct smtp_session *s); /* "250-AUTH PLAIN LOGIN" when usable now */
/* Forget the authentication (STARTTLS, RFC 3207 4.2) and any check in flight. */
void auth_reset(struct smtp_session *s);
/* MAIL: authentication required here? sender bound to the login? AUTH=
 * parameter (RFC 4954 5). false: the reply is built. */
bool auth_mail_check(struct smtp_session *s, const char *sender, struct mail_params *mp);
/* MAIL accepted: the envelope records who submitted. */
void auth_mail_proceed(struct smtp_session *s);
/* The debug log and protocol log line for a command, credentials masked. */
void auth_log_command(const struct smtp_session *s, const char *line, size_t len);

/* session_plog.c: the protocol log (protocol-log = "verbose"); each does
 * nothing on other connectors. in: a command as shown (masked); out: a
 * block of replies; note: our own event (connect, TLS, data size). */
bool plog_on(const struct smtp_session *s);
void plog_in(const struct smtp_session *s, const char *text, size_t len);
void plog_out(const struct smtp_session *s, const char *p, size_t n);
void plog_note(const struct smtp_session *s, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* commands.c */
void commands_dispatch(struct smtp_session *s, const char *line, size_t len);
void tx_free(struct smtp_tx *tx);
void session_reset_tx(struct smtp_session *s);
/* The state between commands that the session and its transaction imply:
 * connected (no EHLO), ready, mail, rcpt or chunking (a BDAT chunk taken). */
enum session_state session_command_state(const struct smtp_session *s);

/* content.c */
bool content_begin(struct smtp_session *s); /* open the queue file, write Received */
void content_data_line(struct smtp_session *s, const char *line, size_t len);
/* Remember the first failure of the content (reason: a log key); replied
 * at the end of the content. */
void content_fail(struct smtp_tx *tx, const char *reason, int code, const char *enh,
		  const char *text);
void content_fail_long_line(struct smtp_session *s); /* 554 5.6.0 with the limit */
/* A content line (no line end) has no bare CR and no NUL; else content_fail. */
bool content_line_ok(struct smtp_session *s, const char *p, size_t len);
void content_bdat_bytes(struct smtp_session *s, const char *p, size_t n);
void content_end(struct smtp_session *s); /* end of DATA or BDAT LAST: check, commit, reply */

/* from_binding.c: sender-binding-header. A header line of the content;
 * at its end, content_fail() when a From: address is not the login's. */
void from_binding_line(struct smtp_session *s, const char *line, size_t len);
void from_binding_check(struct smtp_session *s);

/* rates.c: max-messages-/max-recipients-per-minute-* (policy/ratelimit.h).
 * true: over the rate, "450 4.7.0" is built and logged. */
bool session_rate_refuses_mail(struct smtp_session *s);
bool session_rate_refuses_rcpt(struct smtp_session *s);

/* Between server.c, shutdown.c and content.c. */
const char *session_state_name(enum session_state st);
/* Free s now; with a commit pending it is detached (dead) and freed by
 * the commit's callback through session_release_dead(). */
void session_free(struct smtp_session *s);
void session_release_dead(struct smtp_session *s);
/* What a graceful stop does with s now (shutdown.c): on every tick, and
 * when a commit comes back (session_resume). force: the grace is over. */
void session_shutdown_step(struct smtp_session *s, bool force);

#endif
