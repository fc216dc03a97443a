/* htable.c - see htable.h. */
#include "util/htable.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "util/log.h"
#include "util/xmalloc.h"

struct hnode {
	struct hnode *next;
	void *value;
	uint64_t hash;
	char key[];
};

struct htable {
	struct hnode **slots;
	size_t nslots; /* power of two */
	size_t count;
	EVP_MAC_CTX *mac; /* SipHash with the process key; re-initialised per hash */
};

/* ---- the keyed hash ------------------------------------------------------ */

#define SIPHASH_KEY_LEN 16

static unsigned char hash_key[SIPHASH_KEY_LEN];
static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void hash_key_init(void)
{
	if (RAND_bytes(hash_key, sizeof(hash_key)) != 1)
		log_fatal("htable: RAND_bytes failed: no random hash key");
}

static EVP_MAC_CTX *siphash_new(void)
{
	size_t outlen = sizeof(uint64_t); /* SipHash-2-4-64 */
	OSSL_PARAM params[] = {OSSL_PARAM_size_t(OSSL_MAC_PARAM_SIZE, &outlen), OSSL_PARAM_END};
	EVP_MAC *m;
	EVP_MAC_CTX *ctx;

	pthread_once(&hash_key_once, hash_key_init);
	if ((m = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL)
		log_fatal("htable: OpenSSL has no SIPHASH");
	ctx = EVP_MAC_CTX_new(m);
	EVP_MAC_free(m); /* the context keeps its own reference */
	if (ctx == NULL || EVP_MAC_init(ctx, hash_key, sizeof(hash_key), params) != 1)
		log_fatal("htable: cannot set up SIPHASH");
	return ctx;
}

static uint64_t key_hash(const struct htable *t, const char *s)
{
	unsigned char out[sizeof(uint64_t)];
	size_t outlen = 0;
	uint64_t h;

	/* a NULL key re-initialises with the key already set */
	if (EVP_MAC_init(t->mac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(t->mac, (const unsigned char *)s, strlen(s)) != 1 ||
	    EVP_MAC_final(t->mac, out, &outlen, sizeof(out)) != 1 || outlen != sizeof(out))
		log_panic("htable: SIPHASH failed");
	memcpy(&h, out, sizeof(h));
	return h;
}

/* ---- the table ----------------------------------------------------------- */

struct htable *htable_new(void)
{
	struct htable *t = xcalloc(1, sizeof(*t));
	t->nslots = 16;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
	t->mac = siphash_new();
	return t;
}

void htable_free(struct htable *t, void (*free_value)(void *))
{
	size_t i;
	struct hnode *n, *next;

	if (t == NULL)
		return;
	for (i = 0; i < t->nslots; i++)
		for (n = t->slots[i]; n; n = next) {
			next = n->next;
			if (free_value)
				free_value(n->value);
			free(n);
		}
	free(t->slots);
	EVP_MAC_CTX_free(t->mac);
	free(t);
}

static struct hnode **htable_find(const struct htable *t, const char *key, uint64_t h)
{
	struct hnode **pp = &t->slots[h & (t->nslots - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

void *htable_get(const struct htable *t, const char *key)
{
	struct hnode **pp = htable_find(t, key, key_hash(t, key));
	return *pp ? (*pp)->value : NULL;
}

static void htable_grow(struct htable *t)
{
	size_t i, nslots = t->nslots * 2;
	struct hnode **slots = xcalloc(nslots, sizeof(*slots));
	struct hnode *n, *next;

	for (i = 0; i < t->nslots; i++)
		for (n = t->slots[i]; n; n = next) {
			next = n->next;
			n->next = slots[n->hash & (nslots - 1)];
			slots[n->hash & (nslots - 1)] = n;
		}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
}

void *htable_put(struct htable *t, const char *key, void *value)
{
	uint64_t h = key_hash(t, key);
	struct hnode **pp = htable_find(t, key, h);
	struct hnode *n;
	size_t klen;
	void *old;

	if (*pp) {
		old = (*pp)->value;
		(*pp)->value = value;
		return old;
	}
	klen = strlen(key);
	n = xmalloc(sizeof(*n) + klen + 1);
	memcpy(n->key, key, klen + 1);
	n->hash = h;
	n->value = value;
	n->next = NULL;
	*pp = n;
	if (++t->count > t->nslots)
		htable_grow(t);
	return NULL;
}

void *htable_del(struct htable *t, const char *key)
{
	struct hnode **pp = htable_find(t, key, key_hash(t, key));
	struct hnode *n = *pp;
	void *v;

	if (n == NULL)
		return NULL;
	*pp = n->next;
	v = n->value;
	free(n);
	t->count--;
	return v;
}

size_t htable_count(const struct htable *t) { return t->count; }

void htable_each(const struct htable *t, void (*cb)(const char *key, void *value, void *arg),
		 void *arg)
{
	size_t i;
	struct hnode *n;

	for (i = 0; i < t->nslots; i++)
		for (n = t->slots[i]; n; n = n->next)
			cb(n->key, n->value, arg);
}
