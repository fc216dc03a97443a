/*
 * check.h - "transitctl check [blocklists|dns] [--json] [ADDRESS...]":
 * the outside view of this server, asked of DNS as the rest of the
 * internet asks it (net/dns.c, libunbound, the configured dns servers).
 *
 *   blocklists  every send connector's source address (and each ADDRESS
 *               given) in every DNSBL zone of the receive connectors
 *               (RFC 5782; a listing as policy/dnsbl.c reads one)
 *   dns         each accepted domain's MX (RFC 5321 5.1) names this
 *               server (its FQDNs, or an address it listens on); each
 *               source address (and ADDRESS) has a PTR naming its
 *               connector's FQDN (server.fqdn for ADDRESS), and that name
 *               resolves back to the address (forward-confirmed)
 *
 * One line per result: OK, LISTED, PROBLEM or UNKNOWN (no answer).
 * Exit 0 when every line is OK, 1 when any is not, 2 on usage errors.
 * The last result is written to <spool>/check.json (the same JSON as
 * --json) for "transitctl status".
 */
#ifndef TRANSIT_CTL_CHECK_H
#define TRANSIT_CTL_CHECK_H

#include "conf/conf.h"

#define CHECK_RESULT_FILE "check.json" /* under server.spool */

/* argv[0] is "check". Returns the exit status. */
int check_main(const struct config *c, int argc, char **argv);

#endif
