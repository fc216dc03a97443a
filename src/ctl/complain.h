/*
 * complain.h - how transitctl reports a failure: "transitctl: [what: ]
 * message" on standard error, after whatever was already printed on
 * standard output, and for a usage error (exit status 2) the hint to
 * read -h. One place, so every verb says it the same way.
 */
#ifndef TRANSIT_CTL_COMPLAIN_H
#define TRANSIT_CTL_COMPLAIN_H

#include <stdarg.h>

#define CTL_EXIT_USAGE 2

/* what: the verb ("cert") or NULL. Returns status. */
int ctl_vcomplain(int status, const char *what, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
