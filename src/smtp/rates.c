/*
 * rates.c - the session's side of the message and recipient rates
 * (issue 7; policy/ratelimit.h holds the buckets). Who is counted:
 * an authenticated session by its login (lower-cased), wherever it
 * connects from, so that one application cannot flood from many
 * addresses; any other session by its source prefix (net/source.h, the
 * key of max-connections-per-source). Both per receive connector.
 *
 * A MAIL over max-messages-per-minute-* and an RCPT over
 * max-recipients-per-minute-* get "450 4.7.0". Why these codes: the
 * condition is temporary (a 4yz, RFC 5321 4.2.5), and it is the
 * server's policy, RFC 3463's X.7 "security or policy status"; X.7.1
 * is "useful only as a permanent error" (RFC 3463 3.8) and no code of
 * the IANA enhanced-status registry names a rate, so X.7.0 ("other or
 * undefined security status"), as Postfix's anvil rates answer 4.7.x.
 * Not 452 4.5.3 for RCPT: RFC 5321 4.5.3.1.10 has a client that gets
 * 452 "too many recipients" send the rest in a new transaction at
 * once, which the rate would refuse again; 450 says "later".
 * Every RCPT that gets this far counts, accepted or not (a harvest is
 * slowed as much as a mass mailing). Not counted as errors.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/ratelimit.h"
#include "smtp/session.h"
#include "util/clock.h"
#include "util/log.h"

/* The counting key of s for kind ('m' messages, 'r' recipients), and the
 * limit that applies. */
static unsigned rate_key(const struct smtp_session *s, char kind, char *key, size_t keysz)
{
	const struct receive_connector *rc = s->rc;
	size_t n;

	if (s->auth_user != NULL) {
		n = (size_t)snprintf(key, keysz, "%c|%zu|login|", kind, s->rc_index);
		for (const char *p = s->auth_user; *p && n + 1 < keysz; p++)
			key[n++] = (char)tolower((unsigned char)*p);
		key[n < keysz ? n : keysz - 1] = '\0';
		return kind == 'm' ? rc->messages_per_minute_per_login
				   : rc->recipients_per_minute_per_login;
	}
	snprintf(key, keysz, "%c|%s", kind, s->source_key);
	return kind == 'm' ? rc->messages_per_minute_per_source
			   : rc->recipients_per_minute_per_source;
}

/* The source prefix part of s->source_key ("rc_index|prefix"). */
static const char *source_of(const struct smtp_session *s)
{
	const char *bar = strchr(s->source_key, '|');
	return bar ? bar + 1 : s->addr;
}

static bool rate_refuses(struct smtp_session *s, char kind, const char *cmd)
{
	char key[sizeof(s->source_key) + 300], q[600];
	unsigned limit = rate_key(s, kind, key, sizeof(key));

	if (limit == 0 || s->srv->rates == NULL ||
	    ratelimit_take(s->srv->rates, key, limit, 1, clock_mono_ms()))
		return false;
	log_info("%s smtp reject cmd=%s reply=\"450 4.7.0\" reason=rate-limit kind=%s address=%s "
		 "source=%s login=%s limit=%u/min",
		 s->id, cmd, kind == 'm' ? "messages" : "recipients", s->addr, source_of(s),
		 s->auth_user ? log_quote(s->auth_user, q, sizeof(q)) : "-", limit);
	session_reply(s, 450, "4.7.0", "Too many %s from %s; limit is %u a minute, try again later",
		      kind == 'm' ? "messages" : "recipients",
		      s->auth_user ? "this login" : "your address", limit);
	return true;
}

bool session_rate_refuses_mail(struct smtp_session *s) { return rate_refuses(s, 'm', "MAIL"); }

bool session_rate_refuses_rcpt(struct smtp_session *s) { return rate_refuses(s, 'r', "RCPT"); }
