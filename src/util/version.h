/*
 * version.h - the version transitd and transitctl report.
 */
#ifndef TRANSIT_UTIL_VERSION_H
#define TRANSIT_UTIL_VERSION_H

#define TRANSIT_VERSION "0.1.0"

#endif
