/*
 * complain.c - see complain.h.
 */
#include "ctl/complain.h"

#include <stdio.h>

int ctl_vcomplain(int status, const char *what, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("transitctl: ", stderr);
	if (what != NULL)
		fprintf(stderr, "%s: ", what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (status == CTL_EXIT_USAGE)
		fputs("Try 'transitctl -h' for help.\n", stderr);
	return status;
}
