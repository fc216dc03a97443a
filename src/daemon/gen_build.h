/*
 * gen_build.h - what transitd builds from a configuration for one
 * generation (conf/gen.h): the receive connectors' server TLS contexts
 * (a connector without its own certificate shares the server's) and, per
 * send connector, the client TLS context and the AUTH secret read from
 * its auth-secret file. At start this runs as root (keys readable only
 * by root are fine); at a reload it runs as server.user, so a key or
 * secret that user cannot read refuses the reload (the old generation
 * stays).
 */
#ifndef TRANSIT_DAEMON_GEN_BUILD_H
#define TRANSIT_DAEMON_GEN_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "conf/gen.h"

/* The generation after prev (NULL at start: generation 1) for c;
 * ownership of c passes to it, also on failure. NULL with err
 * ("receive-connector X: tls: ...") on failure. */
struct conf_gen *gen_build(struct config *c, const struct conf_gen *prev, char *err,
			   size_t errlen);

#endif
