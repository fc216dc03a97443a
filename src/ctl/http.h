/*
 * http.h - the control.http listener: GET /metrics (Prometheus text
 * exposition format 0.0.4) and GET /status (ctl/status_page.c), served by
 * libmicrohttpd on its own thread. Unauthenticated and read-only: conf.c
 * refuses a non-loopback address unless http-allow-remote is set.
 *
 * The HTTP thread never touches the event loop's data. A request asks
 * for a fresh snapshot (event_active on the loop, thread-safe because
 * libevent runs with pthreads locking), the loop thread's fill callback
 * takes it, and the request waits for it at most HTTP_SNAPSHOT_WAIT_MS on
 * a condition variable (then serves the last one): the loop never waits
 * for HTTP. Connections, memory per connection and idle time are bounded
 * (MHD options, see http.c).
 */
#ifndef TRANSIT_CTL_HTTP_H
#define TRANSIT_CTL_HTTP_H

#include <stddef.h>

#include "conf/conf.h"
#include "ctl/status_page.h"

struct event_base;
struct http_server;

/* Runs on the loop thread: fill everything but the recent failures
 * (http.c adds those) and the gauges (http.c sets them from the snapshot). */
typedef void (*http_fill_cb)(void *arg, struct status_snapshot *out);

/* NULL + err when the address cannot be bound. */
struct http_server *http_start(const struct config *c, struct event_base *base, http_fill_cb fill,
			       void *arg, char *err, size_t errsz);
/* Stop serving (joins the HTTP thread); call while or after the loop runs. */
void http_stop(struct http_server *h);

#endif
