/*
 * status.c - see status.h.
 */
#include "daemon/status.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conf/gen.h"
#include "ctl/status_page.h"
#include "daemon/reload.h"
#include "net/tls.h"
#include "policy/backpressure.h"
#include "queue/sched.h"
#include "smtp/server.h"
#include "util/version.h"

/* The certificates the receive connectors present, each context once
 * (connectors without their own certificate share the server's). */
static void note_certs(const struct conf_gen *g, struct status_snapshot *out)
{
	const struct config *c = g->conf;
	size_t i, k;

	out->ncerts = 0;
	for (i = 0; i < c->nrcs && out->ncerts < STATUS_CERTS; i++) {
		struct status_cert *sc = &out->certs[out->ncerts];
		bool seen = false;

		if (g->rc_tls[i] == NULL)
			continue;
		for (k = 0; k < i; k++)
			seen |= g->rc_tls[k] == g->rc_tls[i];
		if (seen || !tls_ctx_cert_info(g->rc_tls[i], sc->subject, sizeof(sc->subject),
					       &sc->not_after))
			continue;
		snprintf(sc->connector, sizeof(sc->connector), "%s", c->rcs[i].name);
		out->ncerts++;
	}
}

void daemon_status_fill(void *arg, struct status_snapshot *out)
{
	const struct daemon *d = arg;
	const struct config *c = d->gen->conf;

	snprintf(out->version, sizeof(out->version), "%s", TRANSIT_VERSION);
	snprintf(out->node, sizeof(out->node), "%s", c->server.node);
	snprintf(out->fqdn, sizeof(out->fqdn), "%s", c->server.fqdn);
	out->started = d->started;
	out->sessions = smtp_server_sessions(d->srv);
	out->backpressure = bp_level_name(backpressure_level());
	sched_stats(d->sched, out->detail, &out->queue);
	note_certs(d->gen, out);
}
