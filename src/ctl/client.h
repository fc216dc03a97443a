/*
 * client.h - transitctl's side of the control socket (ctl/control.h):
 * connect, send one request line, read one reply line (bounded in size
 * and time).
 */
#ifndef TRANSIT_CTL_CLIENT_H
#define TRANSIT_CTL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "conf/conf.h"

#define CTL_REPLY_MAX (64 * 1024 * 1024)
#define CTL_REPLY_TIMEOUT 60 /* seconds */

enum ctl_result {
	CTL_OK = 0,	    /* *reply: the daemon's answer with "ok": true */
	CTL_REFUSED = 1,    /* the daemon answered "ok": false; err: its reason */
	CTL_NOT_RUNNING = 2 /* err: "transitd is not running (control socket PATH: reason)" */
};

/* Send {"verb": verb, "args": args} (args may be NULL; it is not
 * consumed). On CTL_OK the caller json_decref()s *reply. */
enum ctl_result ctl_request(const struct config *c, const char *verb, json_t *args, json_t **reply,
			    char *err, size_t errsz);

#endif
