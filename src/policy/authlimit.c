/*
 * authlimit.c - AUTH failure counters and lockouts (see authlimit.h).
 *
 * Each table is a util/htable (key -> struct counter) plus a list in the
 * order of the last failure, so the oldest entry is evicted in O(1) when
 * the table is full: an attacker who spreads failures over many
 * addresses or login names evicts old counters, never grows memory.
 * Postfix anvil and Exchange's lockout both count per client; the
 * per-login table is what stops one login being guessed from many
 * addresses (at the price, documented, that such a guess locks the login
 * out everywhere for the lockout time).
 */
#include "policy/authlimit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/htable.h"
#include "util/xmalloc.h"

#define SASL_LOGIN_KEY_MAX 256 /* RFC 4616: a login is at most 255 octets */

struct counter {
	struct counter *older, *newer; /* eviction order: by last failure */
	char *key;
	unsigned failures;	  /* in the current window */
	uint64_t first_ms;	  /* first failure of the window */
	uint64_t locked_until_ms; /* 0: not locked */
};

struct table {
	struct htable *h;
	struct counter *oldest, *newest;
	unsigned n;
};

struct authlimit {
	struct authlimit_params p;
	struct table source, login;
};

struct authlimit *authlimit_new(const struct authlimit_params *p)
{
	struct authlimit *al = xcalloc(1, sizeof(*al));

	al->p = *p;
	if (al->p.table_size == 0)
		al->p.table_size = 1;
	al->source.h = htable_new();
	al->login.h = htable_new();
	return al;
}

static void table_clear(struct table *t)
{
	struct counter *c, *next;

	for (c = t->oldest; c; c = next) {
		next = c->newer;
		free(c->key);
		free(c);
	}
	htable_free(t->h, NULL);
}

void authlimit_free(struct authlimit *al)
{
	if (al == NULL)
		return;
	table_clear(&al->source);
	table_clear(&al->login);
	free(al);
}

static void unlink_counter(struct table *t, struct counter *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else
		t->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		t->newest = c->older;
	c->older = c->newer = NULL;
}

static void push_newest(struct table *t, struct counter *c)
{
	c->older = t->newest;
	c->newer = NULL;
	if (t->newest)
		t->newest->newer = c;
	else
		t->oldest = c;
	t->newest = c;
}

static void drop_counter(struct table *t, struct counter *c)
{
	unlink_counter(t, c);
	htable_del(t->h, c->key);
	free(c->key);
	free(c);
	t->n--;
}

/* Login names compare case-insensitively (as the passwd-file does). */
static void login_key(const char *login, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; login[i] && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)login[i]);
	out[i] = '\0';
}

static struct counter *table_get(struct table *t, const char *key) { return htable_get(t->h, key); }

static struct counter *table_touch(struct authlimit *al, struct table *t, const char *key)
{
	struct counter *c = table_get(t, key);

	if (c) {
		unlink_counter(t, c);
		push_newest(t, c);
		return c;
	}
	while (t->n >= al->p.table_size && t->oldest)
		drop_counter(t, t->oldest);
	c = xcalloc(1, sizeof(*c));
	c->key = xstrdup(key);
	htable_put(t->h, key, c);
	push_newest(t, c);
	t->n++;
	return c;
}

static bool counter_locked(const struct counter *c, uint64_t now_ms)
{
	return c && c->locked_until_ms != 0 && now_ms < c->locked_until_ms;
}

bool authlimit_locked(struct authlimit *al, const char *source, const char *login, uint64_t now_ms,
		      const char **which)
{
	char lk[SASL_LOGIN_KEY_MAX];

	if (counter_locked(table_get(&al->source, source), now_ms)) {
		*which = "source";
		return true;
	}
	if (login && login[0]) {
		login_key(login, lk, sizeof(lk));
		if (counter_locked(table_get(&al->login, lk), now_ms)) {
			*which = "login";
			return true;
		}
	}
	return false;
}

/* Count one failure in c; true when it starts a lockout. */
static bool count_failure(struct authlimit *al, struct counter *c, unsigned max, uint64_t now_ms)
{
	if (c->failures == 0 || mono_elapsed_ms(c->first_ms, now_ms) >= al->p.window_ms ||
	    (c->locked_until_ms != 0 && now_ms >= c->locked_until_ms)) {
		/* a new window */
		c->failures = 0;
		c->first_ms = now_ms;
		c->locked_until_ms = 0;
	}
	c->failures++;
	if (c->failures >= max && c->locked_until_ms == 0) {
		c->locked_until_ms = now_ms + al->p.lockout_ms;
		return true;
	}
	return false;
}

uint64_t authlimit_failure(struct authlimit *al, const char *source, const char *login,
			   uint64_t now_ms, bool *locked)
{
	struct counter *c = table_touch(al, &al->source, source);
	uint64_t delay = al->p.delay_ms;
	unsigned i;

	*locked = count_failure(al, c, al->p.max_per_source, now_ms);
	for (i = 1; i < c->failures && delay < al->p.delay_max_ms; i++)
		delay *= 2;
	if (delay > al->p.delay_max_ms)
		delay = al->p.delay_max_ms;
	if (login && login[0]) {
		char lk[SASL_LOGIN_KEY_MAX];
		login_key(login, lk, sizeof(lk));
		if (count_failure(al, table_touch(al, &al->login, lk), al->p.max_per_login, now_ms))
			*locked = true;
	}
	return delay;
}

void authlimit_success(struct authlimit *al, const char *source, const char *login)
{
	struct counter *c = table_get(&al->source, source);

	if (c)
		drop_counter(&al->source, c); /* not locked: AUTH was not refused */
	if (login && login[0]) {
		char lk[SASL_LOGIN_KEY_MAX];
		login_key(login, lk, sizeof(lk));
		if ((c = table_get(&al->login, lk)) != NULL)
			drop_counter(&al->login, c);
	}
}

unsigned authlimit_entries(const struct authlimit *al) { return al->source.n + al->login.n; }
