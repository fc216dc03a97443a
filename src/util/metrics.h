/*
 * metrics.h - process-wide counters and gauges, rendered in the
 * Prometheus text exposition format (version 0.0.4) for /metrics.
 *
 * A family (name, type, help, up to two label names) is a static const
 * struct metric_family; a series is created on first use for its label
 * values and lives until metrics_reset(). Any thread may count:
 * metrics_add() takes the registry mutex only to find the series (a few
 * dozen at most) and adds with an atomic; metrics_render() runs on the
 * HTTP thread under the same mutex and never touches the event loop.
 * Label values are escaped here (\\, \", \n), so a connector name
 * cannot break the exposition. No mail knowledge: the families transit
 * counts are declared in metrics_families.c (the list in docs/operations.md).
 */
#ifndef TRANSIT_UTIL_METRICS_H
#define TRANSIT_UTIL_METRICS_H

#include <stdint.h>

#include "util/buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct metric_family {
	const char *name; /* transit_..._total for counters */
	enum metric_type type;
	const char *help;
	const char *label[2]; /* label names, NULL when unused */
};

/* Add n to the series of f with these label values (NULL for unused labels). */
void metrics_add(const struct metric_family *f, const char *v1, const char *v2, uint64_t n);
/* A gauge's value. */
void metrics_set(const struct metric_family *f, const char *v1, const char *v2, int64_t v);
/* Read a series (0 if it does not exist yet): for tests and the status page. */
int64_t metrics_get(const struct metric_family *f, const char *v1, const char *v2);
/* Append every family with a series to out, HELP and TYPE lines first. */
void metrics_render(struct buf *out);
/* Forget every series (tests; the daemon's exit). */
void metrics_reset(void);

/* ---- the families transit counts (metrics_families.c) ---- */
extern const struct metric_family metric_received;	/* {connector} */
extern const struct metric_family metric_delivered;	/* {connector}: "local" for mailboxes */
extern const struct metric_family metric_deferred;	/* {connector} */
extern const struct metric_family metric_failed;	/* {connector} */
extern const struct metric_family metric_queue;		/* gauge {state} */
extern const struct metric_family metric_sessions;	/* gauge: SMTP sessions open */
extern const struct metric_family metric_tls;		/* {direction, version} */
extern const struct metric_family metric_backpressure;	/* gauge: 0 normal, 1 medium, 2 high */
extern const struct metric_family metric_tracking_errors; /* tracking log writes that failed */
extern const struct metric_family metric_auth_failures;	/* {connector} */
extern const struct metric_family metric_auth_lockouts;	/* {connector}: AUTH refused, too many */

/* For the tracking log writer (any thread): count one failed write. */
void metrics_tracking_write_error(void);

#endif
