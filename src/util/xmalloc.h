/*
 * xmalloc.h - allocation that never returns NULL: running out of memory
 * is a fatal environment error for a mail server (log_fatal + exit), so
 * callers need no error path for it.
 */
#ifndef TRANSIT_UTIL_XMALLOC_H
#define TRANSIT_UTIL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
