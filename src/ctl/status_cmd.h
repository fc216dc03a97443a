/*
 * status_cmd.h - "transitctl status [--json]": asks the running transitd
 * (verb "status", ctl/verbs_status.c) and prints the answer. Needs the
 * daemon: when it is down, says so and exits 1.
 */
#ifndef TRANSIT_CTL_STATUS_CMD_H
#define TRANSIT_CTL_STATUS_CMD_H

#include "conf/conf.h"

int status_main(const struct config *c, int argc, char **argv);

#endif
