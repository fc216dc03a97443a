/*
 * htable.h - a string-keyed hash table (open hashing with chains, grows
 * at load factor 1). Keys are copied; values are caller pointers. No mail
 * knowledge. Used for per-source connection counts, next hops and similar
 * maps on one thread (a table is not thread safe).
 *
 * Keys often come from peers (client addresses, recipient domains), so
 * the hash is keyed: SipHash-2-4 (64-bit output, OpenSSL 3 EVP_MAC
 * "SIPHASH") under a 128-bit key drawn from RAND_bytes once per process.
 * A peer cannot choose keys that all land in one chain without knowing
 * it. Cost, measured: about 0.5 us per 26-octet key (OpenSSL 3.0, one
 * EVP_MAC_init/update/final on a context that keeps the key) - nothing
 * next to the connection or delivery job a lookup is made for.
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
/* Visit every entry (in no particular order); cb must not change t. */
void htable_each(const struct htable *t, void (*cb)(const char *key, void *value, void *arg),
		 void *arg);

#endif
