/*
 * conf_int.h - between conf.c (options, conversion) and validate.c (the
 * checks made while parsing). Not for the rest of transit.
 */
#ifndef TRANSIT_CONF_INT_H
#define TRANSIT_CONF_INT_H

#include <confuse.h>

#include "conf/conf.h"

/* Register every option's validator on a fresh cfg. */
void conf_set_validators(cfg_t *cfg);
/* Around cfg_parse_buf(): errors are reported as "path:line: ...". */
void conf_parsing_begin(cfg_t *root, const char *path);
void conf_parsing_end(void);
/* One dnsbl entry ("zone" or "zone=reply text", checked already). */
void conf_parse_dnsbl_zone(const char *s, struct dnsbl_zone *z);

#endif
