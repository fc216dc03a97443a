/*
 * smtp_client_sec.c - the security steps of opening an outbound SMTP
 * connection (the rest is in smtp_client.c): STARTTLS (RFC 3207) by
 * policy, with certificate and host name verification under "require"
 * (SSL_set1_host, SNI), and AUTH PLAIN (RFC 4616) or LOGIN (RFC 4954)
 * only over TLS. Failures are local 4.7.x replies: a misconfiguration
 * must defer mail, never bounce it. A session that ends with QUIT ends
 * with close_notify (RFC 8446 6.1): libevent's OpenSSL bufferevent frees
 * the SSL without one, which peers log as a truncated session.
 */
#include "deliver/smtp_client.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include "deliver/smtp_client_int.h"
#include "net/tls.h"
#include "util/str.h"
#include "util/xmalloc.h"
#include "util/metrics.h"

#define SMTPC_SECRET_MAX 512 /* longest AUTH user name or password we send */

/* ---- AUTH (RFC 4954) ---------------------------------------------------- */

static size_t smtpc_b64(char *out, const void *in, size_t n)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void smtpc_auth_plain(struct smtpc *c)
{
	unsigned char raw[2 * SMTPC_SECRET_MAX + 2];
	char line[16 + 4 * ((sizeof(raw) + 2) / 3) + 1];
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass), n;

	raw[0] = '\0'; /* no authorization identity (RFC 4616 2) */
	memcpy(raw + 1, c->auth_user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, c->auth_pass, pl);
	memcpy(line, "AUTH PLAIN ", 11);
	n = 11 + smtpc_b64(line + 11, raw, 2 + ul + pl);
	OPENSSL_cleanse(raw, sizeof(raw));
	c->auth_step = AUTH_PLAIN;
	smtpc_secret(c, "AUTH PLAIN", line, n);
}

void smtpc_auth_start(struct smtpc *c)
{
	if (!c->info.tls) {
		smtpc_refuse(c, "4.7.0", "refusing AUTH without TLS to %s", c->info.peer);
		return;
	}
	if (strlen(c->auth_user) > SMTPC_SECRET_MAX || strlen(c->auth_pass) > SMTPC_SECRET_MAX) {
		smtpc_refuse(c, "4.7.0", "AUTH user name or password too long");
		return;
	}
	if (c->ext.auth_plain) {
		smtpc_auth_plain(c);
	} else if (c->ext.auth_login) {
		c->auth_step = AUTH_LOGIN_START;
		smtpc_command(c, "AUTH LOGIN", 10);
	} else {
		smtpc_refuse(c, "4.7.0", "%s offers no AUTH PLAIN or LOGIN", c->info.peer);
		return;
	}
	c->state = SC_AUTH;
	smtpc_arm(c, c->t_command);
}

static void smtpc_auth_failed(struct smtpc *c, const struct smtpc_reply *r)
{
	char enh[16] = "4.7.0";

	if (r->code == 421)
		smtpc_kill(c);
	if ((r->enh[0] == '4' || r->enh[0] == '5') && strncmp(r->enh + 1, ".7.", 3) == 0)
		snprintf(enh, sizeof(enh), "4%s", r->enh + 1);
	if (c->dead) {
		struct smtpc_reply l;
		smtpc_set_reply(&l, 421, enh, true, "AUTH to %s failed: %d %s", c->info.peer,
				r->code, r->text);
		smtpc_open_failed(c, &l);
		return;
	}
	smtpc_refuse(c, enh, "AUTH to %s failed: %d %s%s%s", c->info.peer, r->code, r->enh,
		     r->enh[0] != '\0' ? " " : "", r->text);
}

void smtpc_on_auth(struct smtpc *c, const struct smtpc_reply *r)
{
	char line[4 * ((SMTPC_SECRET_MAX + 2) / 3) + 1];
	size_t n;

	if (r->code == 334 && (c->auth_step == AUTH_LOGIN_START || c->auth_step == AUTH_LOGIN_USER)) {
		bool user = c->auth_step == AUTH_LOGIN_START;
		const char *s = user ? c->auth_user : c->auth_pass;
		n = smtpc_b64(line, s, strlen(s));
		c->auth_step = user ? AUTH_LOGIN_USER : AUTH_LOGIN_PASS;
		smtpc_secret(c, user ? "(user)" : "(password)", line, n);
		smtpc_arm(c, c->t_command);
		return;
	}
	if (r->code == 334) {
		smtpc_fail(c, "4.7.0", "unexpected AUTH challenge from %s", c->info.peer);
		return;
	}
	if (r->code / 100 == 2 && (c->auth_step == AUTH_PLAIN || c->auth_step == AUTH_LOGIN_PASS)) {
		log_debug("smtpc peer=%s authenticated user=%s", c->info.peer, c->auth_user);
		smtpc_ready(c);
		return;
	}
	smtpc_auth_failed(c, r);
}

/* ---- STARTTLS (RFC 3207) -------------------------------------------------- */

/* Name checks and SNI. Returns false when the name cannot be set. */
static bool smtpc_tls_names(SSL *ssl, const char *name)
{
	char host[256];
	unsigned char ipbuf[16];
	size_t n;

	if (name == NULL || name[0] == '\0')
		return true;
	if (!str_copy(host, name, sizeof(host)))
		return false;
	n = strlen(host);
	if (n > 1 && host[n - 1] == '.')
		host[n - 1] = '\0'; /* an absolute DNS name */
	if (inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	return SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
}

void smtpc_start_tls(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *tb;
	SSL *ssl;

	c->tls_tried = true;
	if (evbuffer_get_length(in) > 0) {
		log_debug("smtpc peer=%s dropping %zu octets sent after the 220 to STARTTLS",
			  c->info.peer, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	if (c->tls_ctx == NULL || (ssl = SSL_new(c->tls_ctx)) == NULL) {
		ERR_clear_error();
		smtpc_fail(c, "4.7.5", "TLS setup for %s failed", c->info.peer);
		return;
	}
	SSL_set_verify(ssl, c->tls == SMTPC_TLS_REQUIRE ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (!smtpc_tls_names(ssl, c->tls_name != NULL ? c->tls_name : c->peer_name)) {
		SSL_free(ssl);
		ERR_clear_error();
		smtpc_fail(c, "4.7.5", "cannot check the TLS name of %s", c->info.peer);
		return;
	}
	/* The filter moves data into the plain bufferevent only up to that
	 * one's write high-water mark: without it, the whole content would
	 * sit there encrypted whenever the peer reads slowly. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, SMTPC_OUT_HIWAT);
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) { /* the SSL was freed by libevent */
		smtpc_fail(c, "4.7.5", "TLS setup for %s failed", c->info.peer);
		return;
	}
	c->bev = tb; /* owns the plain bufferevent, the socket and the SSL now */
	c->ssl = ssl;
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	smtpc_watch(c, tb);
	c->state = SC_HANDSHAKE;
	smtpc_arm(c, c->t_command);
}

void smtpc_tls_close(struct smtpc *c)
{
	struct bufferevent *plain;
	struct evbuffer *out;
	evutil_socket_t fd;
	int n;

	if (c->ssl == NULL || !c->info.tls || c->bev == NULL || c->dead)
		return;
	plain = bufferevent_get_underlying(c->bev);
	if (plain == NULL || (fd = bufferevent_getfd(plain)) < 0)
		return;
	/* The alert goes through the filter's BIO into the plain
	 * bufferevent's output (empty after the 221), and from there to the
	 * socket at once: a few dozen octets, non-blocking, nothing to wait
	 * for (RFC 8446 6.1 does not require waiting for the peer's alert).
	 * libevent keeps a socket bufferevent's output frozen at the start
	 * (only libevent drains it): unfreeze it for this one write. */
	if (SSL_shutdown(c->ssl) < 0) {
		ERR_clear_error();
		return;
	}
	out = bufferevent_get_output(plain);
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
	log_debug("smtpc peer=%s tls close_notify %s", c->info.peer, n > 0 ? "sent" : "not sent");
}

void smtpc_ssl_error(struct smtpc *c, char *out, size_t outsz)
{
	unsigned long e, first = 0;

	while (c->bev != NULL && (e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	if (first == 0)
		first = ERR_peek_error();
	if (first != 0)
		ERR_error_string_n(first, out, outsz);
	else
		str_copy(out, "connection closed", outsz);
	ERR_clear_error();
}

void smtpc_tls_done(struct smtpc *c)
{
	long vr = SSL_get_verify_result(c->ssl);
	char desc[128];

	c->info.tls = true;
	c->info.verified = vr == X509_V_OK && SSL_get0_peer_certificate(c->ssl) != NULL;
	tls_describe(c->ssl, desc, sizeof(desc));
	metrics_add(&metric_tls, "outbound", SSL_get_version(c->ssl), 1);
	snprintf(c->info.tls_info, sizeof(c->info.tls_info), "%s verified=%s", desc,
		 c->info.verified ? "yes" : "no");
	log_debug("smtpc peer=%s tls %s%s%s", c->info.peer, c->info.tls_info,
		  c->info.verified ? "" : " verify_error=",
		  c->info.verified ? "" : X509_verify_cert_error_string(vr));
	smtpc_plog_note(c, "tls %s", c->info.tls_info);
	smtpc_send_hello(c, "EHLO");
}

void smtpc_tls_failed(struct smtpc *c)
{
	long vr = SSL_get_verify_result(c->ssl);
	char why[256];

	smtpc_ssl_error(c, why, sizeof(why));
	if (c->tls == SMTPC_TLS_REQUIRE && vr != X509_V_OK)
		smtpc_fail(c, "4.7.5", "certificate verification failed: %s (%s)",
			   X509_verify_cert_error_string(vr), c->info.peer);
	else
		smtpc_fail(c, "4.7.5", "TLS handshake with %s failed: %s", c->info.peer, why);
}
