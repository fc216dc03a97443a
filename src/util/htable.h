/*
 * htable.h - a string-keyed hash table (open hashing with chains, FNV-1a,
 * grows at load factor 1). Keys are copied; values are caller pointers.
 * No mail knowledge. Used for per-source connection counts and similar
 * small maps on the event loop thread (not thread safe).
 */
#ifndef TRANSIT_UTIL_HTABLE_H
#define TRANSIT_UTIL_HTABLE_H

#include <stddef.h>

struct htable;

struct htable *htable_new(void);
/* free_value is called on every value (may be NULL). */
void htable_free(struct htable *t, void (*free_value)(void *));
void *htable_get(const struct htable *t, const char *key);
/* Insert or replace; returns the old value (or NULL). */
void *htable_put(struct htable *t, const char *key, void *value);
/* Remove; returns the value (or NULL). */
void *htable_del(struct htable *t, const char *key);
size_t htable_count(const struct htable *t);

#endif
