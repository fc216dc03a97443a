/*
 * smtp_client_int.h - private to smtp_client.c (the connection: connect,
 * replies, EHLO, STARTTLS, AUTH, QUIT, lifetime), smtp_client_sec.c (TLS,
 * AUTH), smtp_client_tx.c (one message: MAIL/RCPT/DATA, pipelining, the
 * content stream, the result) and smtp_client_conv.c (SMTPUTF8 and
 * 8BITMIME when the peer lacks them).
 * Nothing outside src/deliver/smtp_client*.c includes this.
 *
 * Lifetime rule: every libevent callback brackets its work with
 * smtpc_enter()/smtpc_leave(). A close or free asked for inside (by the
 * user's callback or by a failure) is only recorded and carried out by the
 * outermost smtpc_leave(), so no code ever touches a freed struct smtpc.
 */
#ifndef TRANSIT_DELIVER_SMTP_CLIENT_INT_H
#define TRANSIT_DELIVER_SMTP_CLIENT_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deliver/smtp_client.h"
#include "mail/mime7bit.h"
#include "util/buf.h"
#include "util/log.h"

#define SMTPC_LINE_MAX 2048	      /* longest reply line we read (octets, without CRLF) */
#define SMTPC_REPLY_LINES_MAX 100     /* most lines in one multi-line reply */
#define SMTPC_BLOCK (64 * 1024)	      /* pread block for the content */
#define SMTPC_OUT_HIWAT (256 * 1024)  /* fill the output buffer up to this */
#define SMTPC_OUT_LOWAT (64 * 1024)   /* and refill when it drains below this */
#define SMTPC_QUIT_WAIT 5	      /* seconds to wait for the 221 to QUIT */

enum smtpc_state {
	SC_CONNECTING = 0,
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_HANDSHAKE,
	SC_AUTH,
	SC_IDLE,      /* ready for smtpc_send (or for QUIT) */
	SC_TX,	      /* waiting for RSET/MAIL/RCPT/DATA replies */
	SC_DATA_BODY, /* streaming the content */
	SC_DATA_DOT,  /* "." sent, waiting for the final reply */
	SC_QUIT,      /* QUIT sent after smtpc_close: free on the reply */
	SC_DEAD,      /* the connection is unusable */
};

/* Service extensions from the last EHLO reply (RFC 5321 4.1.1.1). */
struct smtpc_ext {
	bool esmtp;
	bool pipelining;   /* RFC 2920 */
	bool has_size;	   /* RFC 1870 */
	uint64_t size;	   /* 0: no limit announced */
	bool eightbitmime; /* RFC 6152 */
	bool smtputf8;	   /* RFC 6531 */
	bool dsn;	   /* RFC 3461 */
	bool starttls;	   /* RFC 3207 */
	bool auth_plain;   /* RFC 4954 + RFC 4616 */
	bool auth_login;
	bool chunking;	   /* RFC 3030 (noted, not used) */
	bool enhanced;	   /* RFC 2034 */
};

/* The reply being read (RFC 5321 4.2.1). */
struct smtpc_rd {
	int code;	/* 0: no line yet */
	unsigned lines;
	char enh[16];
	struct buf text;
};

enum smtpc_exp_kind { EXP_RSET, EXP_MAIL, EXP_RCPT, EXP_DATA };

struct smtpc_exp {
	enum smtpc_exp_kind kind;
	size_t idx;	 /* recipient index for EXP_RCPT */
	size_t off, len; /* the command line (with CRLF) inside tx->cmds */
};

enum smtpc_rcpt_state { RS_PENDING = 0, RS_ACCEPTED, RS_REFUSED };

struct smtpc_stuff {
	bool bol;	 /* at the beginning of a line */
	bool cr_pending; /* the last byte seen was a CR */
};

struct smtpc_tx {
	smtpc_send_cb cb;
	void *arg;
	struct buf cmds;
	struct smtpc_exp *exp;
	size_t nexp, next_send, next_reply;
	size_t nrcpt, naccepted;
	struct smtpc_reply *rcpt;
	unsigned char *rstate; /* enum smtpc_rcpt_state per recipient */
	bool mail_failed;
	struct smtpc_reply mail_reply;
	bool have_data_reply;
	struct smtpc_reply data_reply;
	bool preset;	     /* the outcome is already decided (status + msg_reply) */
	enum smtpc_status preset_status;
	struct smtpc_reply preset_reply;
	bool lone_dot;	     /* sent "." alone after an unexpected 354 */
	bool utf8;	     /* send the SMTPUTF8 parameter */
	bool utf8_missing;   /* the message has it, the peer does not */
	struct mime7 *mime;  /* scanning, then converting the content to 7 bit, or NULL */
	bool scanning;	     /* the content is being scanned before MAIL */
	uint64_t scan_pos;
	struct event *ev_scan;
	struct buf conv;     /* converted octets of the current block */
	struct buf stuffed;  /* ... and their dot-stuffed form */
	/* content */
	int fd;
	uint64_t pos, end, len;
	char *blk;
	struct smtpc_stuff st;
};

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev; /* owns the socket (and SSL) once connected */
	int fd;			 /* the socket until bev owns it */
	SSL *ssl;		 /* owned by bev */
	struct event *ev_conn, *ev_timer, *ev_later;
	enum smtpc_state state;

	/* options (copied) */
	char *helo_name, *tls_name, *peer_name, *auth_user, *auth_pass;
	enum smtpc_tls tls;
	SSL_CTX *tls_ctx;
	struct sockaddr_storage dst, src;
	socklen_t dstlen, srclen;
	unsigned t_connect, t_command, t_data;

	struct smtpc_info info;
	bool plog;		 /* protocol log (log/protolog.h) under plog_id */
	char plog_id[24];
	struct smtpc_ext ext;
	struct smtpc_rd rd;
	bool tls_tried;	 /* STARTTLS attempted (or refused) on this connection */
	int auth_step;
	bool need_rset;	 /* a transaction may still be open at the peer */
	bool dead;	 /* no further commands can be sent */

	smtpc_open_cb open_cb;
	void *open_arg;
	struct smtpc_tx *tx;

	/* lifetime */
	int busy;
	bool user_gone;	    /* smtpc_close called or open failed: no more user callbacks */
	bool close_pending; /* close (QUIT or free) at the outermost leave */
	bool free_pending;  /* free at the outermost leave */
	bool later_open_fail;
	struct smtpc_reply later_reply;
};

/* AUTH steps (c->auth_step), shared by smtp_client.c and smtp_client_sec.c */
enum { AUTH_PLAIN = 1, AUTH_LOGIN_START, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

/* smtp_client.c */
void smtpc_enter(struct smtpc *c);
void smtpc_leave(struct smtpc *c);
void smtpc_arm(struct smtpc *c, unsigned seconds);
void smtpc_disarm(struct smtpc *c);
/* Queue raw bytes for the peer / one command line (CRLF added; logged
 * unless secret, then shown as "<verb> <secret>"). */
void smtpc_write(struct smtpc *c, const void *p, size_t n);
void smtpc_command(struct smtpc *c, const char *line, size_t len);
void smtpc_log_command(const struct smtpc *c, const char *line, size_t len);
/* A note of ours in the protocol log ('*' lines). */
void smtpc_plog_note(const struct smtpc *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
void smtpc_set_reply(struct smtpc_reply *r, int code, const char *enh, bool local,
		     const char *fmt, ...) PRINTF_LIKE(5, 6);
/* The connection is broken: stop reading and writing, never reuse. */
void smtpc_kill(struct smtpc *c);
/* Run smtpc_tx_finish from the event loop (never inside smtpc_send). */
void smtpc_later(struct smtpc *c);
/* Opening outcomes: the connection is ready / failed with a local reply
 * (enh + text) / failed and the peer is told why (QUIT) / failed as r. */
void smtpc_ready(struct smtpc *c);
void smtpc_fail(struct smtpc *c, const char *enh, const char *fmt, ...) PRINTF_LIKE(3, 4);
void smtpc_refuse(struct smtpc *c, const char *enh, const char *fmt, ...) PRINTF_LIKE(3, 4);
void smtpc_open_failed(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_send_hello(struct smtpc *c, const char *verb);
/* Send a command whose argument is secret (AUTH): logged as "shown". */
void smtpc_secret(struct smtpc *c, const char *shown, char *line, size_t len);

/* The reply and EHLO parsers (also driven by tests/fuzz/fuzz_smtpc_reply.c).
 * One reply line "250-text", "250 text" or "250" (n octets, no CRLF):
 * its code, whether it is the last line, its text. */
bool smtpc_parse_line(const char *l, size_t n, int *code, bool *last, const char **text);
/* Length of an enhanced status code "c.sss.ddd" (RFC 3463) at the start of
 * t whose class matches code, with one following space; 0 when none. */
size_t smtpc_enh_len(const char *t, int code);
/* One EHLO reply line after the first (its text): note the extension. */
void smtpc_ext_line(struct smtpc_ext *x, const char *t);

/* Route bev's events to the client (read, write, event callbacks) and enable it. */
void smtpc_watch(struct smtpc *c, struct bufferevent *bev);

/* smtp_client_sec.c */
void smtpc_start_tls(struct smtpc *c);
void smtpc_tls_done(struct smtpc *c);
void smtpc_tls_failed(struct smtpc *c);
void smtpc_ssl_error(struct smtpc *c, char *out, size_t outsz);
/* Send close_notify now (after the reply to QUIT, before the socket closes). */
void smtpc_tls_close(struct smtpc *c);
void smtpc_auth_start(struct smtpc *c);
void smtpc_on_auth(struct smtpc *c, const struct smtpc_reply *r);

/* smtp_client_conv.c */
#define SMTPC_SCAN_SLICE (1024 * 1024) /* content scanned per turn of the loop */
bool smtpc_is_ascii(const char *s);
/* Before MAIL: SMTPUTF8 and 8BITMIME for m. Sets tx->utf8; false when the
 * message is refused (tx->preset set); tx->scanning when the content must
 * be scanned first: then smtpc_conv_scan() does it from the loop and ends
 * with smtpc_tx_start() or smtpc_tx_finish(). */
bool smtpc_conv_check(struct smtpc *c, const struct smtpc_msg *m);
void smtpc_conv_scan(struct smtpc *c);

/* smtp_client_tx.c */
void smtpc_tx_reply(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_tx_writable(struct smtpc *c);
/* The connection failed during the transaction (timeout, loss, protocol). */
void smtpc_tx_fail(struct smtpc *c, const struct smtpc_reply *local);
void smtpc_tx_finish(struct smtpc *c);
/* Decide the outcome without the peer: a local reply (code, enh, text). */
void smtpc_preset(struct smtpc_tx *tx, enum smtpc_status st, int code, const char *enh,
		  const char *text);
/* Send the built commands (MAIL, RCPT..., DATA) and wait for the replies. */
void smtpc_tx_start(struct smtpc *c);
void smtpc_tx_free(struct smtpc_tx *tx);
const char *smtpc_tx_waiting_for(const struct smtpc *c);

#endif
