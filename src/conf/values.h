/*
 * values.h - parsers for the values in transit.conf that have a syntax of
 * their own: listener bindings, IP ranges (CIDR), send connector address
 * spaces ("domain;cost", "*.domain", "*"), smart hosts ("[host]:port"),
 * host names. Pure functions, shared by the validators (which report
 * "file:line:") and the conversion into struct config; unit tested.
 */
#ifndef TRANSIT_CONF_VALUES_H
#define TRANSIT_CONF_VALUES_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"

/* "0.0.0.0:25", "[::]:25", "127.0.0.1:2525" */
bool parse_binding(const char *s, struct binding *b);
/* "192.0.2.0/24", "::/0", "192.0.2.1" (a single address) */
bool parse_range(const char *s, struct ip_range *r);
/* "example.com", "*.example.com", "*", each optionally ";COST" (1..1000);
 * a->domain is malloc'ed (NULL for "*") */
bool parse_space(const char *s, struct address_space *a);
/* "[host]:port", "[host]", "host:port", "host"; h->host is malloc'ed */
bool parse_smart_host(const char *s, struct smart_host *h);
/* back-pressure memory-high: "75%" (1..100 percent: *percent set, *bytes 0)
 * or a size like "2G" (*percent 0, *bytes set, more than 0) */
bool parse_memory_limit(const char *s, unsigned *percent, uint64_t *bytes);
/* letters, digits, '-' in dot-separated labels of 1..63, at most 253 */
bool valid_hostname(const char *s);
/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
bool binding_is_loopback(const struct binding *b);

#endif
