/*
 * status.h - the snapshot /status and /metrics show (ctl/status_page.h),
 * filled on the event loop from the daemon's current configuration
 * generation: version, node, uptime, sessions, back pressure, the queue
 * (by state, and by next hop when asked) and the certificates the
 * receive connectors present now (they change without a restart:
 * net/tls_runtime.h).
 */
#ifndef TRANSIT_DAEMON_STATUS_H
#define TRANSIT_DAEMON_STATUS_H

struct status_snapshot;

/* An http_fill_cb (ctl/http.h); arg is the struct daemon (daemon/reload.h).
 * Loop thread only. */
void daemon_status_fill(void *arg, struct status_snapshot *out);

#endif
