/*
 * buf.h - a counted, growable byte string for everything that came from
 * the network or is built for it. Always NUL-terminated after data[len]
 * (the NUL is not counted), so data can be handed to string functions
 * when the content has no NUL of its own.
 */
#ifndef TRANSIT_UTIL_BUF_H
#define TRANSIT_UTIL_BUF_H

#include <stddef.h>

#include "util/log.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);			 /* len = 0, keeps memory */
void buf_reserve(struct buf *b, size_t extra);	 /* room for extra more bytes */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Return data with ownership; b is reset to empty. */
char *buf_steal(struct buf *b);

#endif
