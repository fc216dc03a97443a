/* htable.c - see htable.h. */
#include "util/htable.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct htable *htable_new(void)
{
	struct htable *t = xcalloc(1, sizeof(*t));
	t->nslots = 16;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
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
	struct hnode **pp = htable_find(t, key, fnv1a(key));
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
	uint64_t h = fnv1a(key);
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
	struct hnode **pp = htable_find(t, key, fnv1a(key));
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
